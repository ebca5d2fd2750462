"""What a caller may do inside an organisation.

One vocabulary of permissions, shared by roles and API tokens (Sentry's scopes model):
each org API action names the permission it needs, and a Principal — a member with a
role, or a token with a scope — either has it or not. Storage and trigger tokens are
further narrowed to their bindings / triggers by `Principal.restrict`.
"""

from __future__ import annotations

from enum import StrEnum

from .models import Role, StoragePermission, TokenScope


class Perm(StrEnum):
    ORG_READ = "org.read"
    ORG_WRITE = "org.write"
    MEMBERS_READ = "members.read"
    MEMBERS_MANAGE = "members.manage"
    TOKENS_MANAGE = "tokens.manage"
    AUDIT_READ = "audit.read"
    STORAGE_READ = "storage.read"
    STORAGE_MANAGE = "storage.manage"
    FILES_READ = "files.read"
    FILES_WRITE = "files.write"
    FILES_DELETE = "files.delete"
    TRIGGERS_READ = "triggers.read"
    TRIGGERS_MANAGE = "triggers.manage"
    TRIGGERS_RUN = "triggers.run"
    JOBS_READ = "jobs.read"
    JOBS_CANCEL = "jobs.cancel"
    AGENTS_READ = "agents.read"
    AGENTS_MANAGE = "agents.manage"
    INTEGRATIONS_MANAGE = "integrations.manage"


_MEMBER = frozenset(
    {
        Perm.ORG_READ,
        Perm.MEMBERS_READ,
        Perm.STORAGE_READ,
        Perm.FILES_READ,
        Perm.FILES_WRITE,
        Perm.TRIGGERS_READ,
        Perm.TRIGGERS_RUN,
        Perm.JOBS_READ,
        Perm.JOBS_CANCEL,
        Perm.AGENTS_READ,
    }
)
_ADMIN = _MEMBER | {
    Perm.ORG_WRITE,
    Perm.MEMBERS_MANAGE,
    Perm.TOKENS_MANAGE,
    Perm.AUDIT_READ,
    Perm.STORAGE_MANAGE,
    Perm.FILES_DELETE,
    Perm.TRIGGERS_MANAGE,
    Perm.AGENTS_MANAGE,
    Perm.INTEGRATIONS_MANAGE,
}

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    Role.MEMBER: _MEMBER,
    Role.ADMIN: _ADMIN,
    Role.OWNER: _ADMIN,
}

# What only a signed-in person (owner/admin) may do, never an API token: manage people,
# and mint or replace credentials — API tokens, agent secrets (create, rotate, revoke) and
# chat installations. A leaked CI token must not be able to mint itself a credential that
# outlives its own revocation (an agent secret made by a token keeps working after it).
USER_ONLY_PERMISSIONS = frozenset(
    {Perm.MEMBERS_MANAGE, Perm.TOKENS_MANAGE, Perm.AGENTS_MANAGE, Perm.INTEGRATIONS_MANAGE}
)

# An org token acts like an admin, except for the user-only permissions above.
ORG_TOKEN_PERMISSIONS = _ADMIN - USER_ONLY_PERMISSIONS

STORAGE_TOKEN_PERMISSIONS = {
    StoragePermission.READ: Perm.FILES_READ,
    StoragePermission.WRITE: Perm.FILES_WRITE,
    StoragePermission.DELETE: Perm.FILES_DELETE,
}

TRIGGER_TOKEN_PERMISSIONS = frozenset({Perm.TRIGGERS_RUN, Perm.JOBS_READ})


def _scope_permissions(token) -> frozenset[str]:
    if token.scope_type == TokenScope.ORG:
        return ORG_TOKEN_PERMISSIONS
    if token.scope_type == TokenScope.STORAGE:
        return frozenset(
            STORAGE_TOKEN_PERMISSIONS[p] for p in token.storage_permissions if p in STORAGE_TOKEN_PERMISSIONS
        )
    if token.scope_type == TokenScope.TRIGGER:
        return TRIGGER_TOKEN_PERMISSIONS
    return frozenset()


def token_permissions(token) -> frozenset[str]:
    """What a token may do: its scope, never more than its creator's *current* role allows.

    A token is its creator's automation: an admin demoted to member keeps their tokens, but
    they no longer manage triggers or storage, just as their own login no longer does.
    `token.creator_role` is loaded with the token by `orgs.authentication` (None when the
    creator is no member); a token with a creator but no known role may do nothing. A token
    with no creator recorded (made outside the services) has its scope alone.
    """
    scope = _scope_permissions(token)
    if token.created_by_id is None:
        return scope
    return scope & ROLE_PERMISSIONS.get(getattr(token, "creator_role", None), frozenset())
