"""Writes for organisations, members, invitations and API tokens.

Every service is keyword-only, runs in one transaction and writes its audit event.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from deplite.background import enqueue_after_commit
from deplite.errors import Conflict, Forbidden, NotFound, ValidationFailed

from . import extensions, rules, tokens
from .actors import Actor
from .models import ApiToken, AuditEvent, Invitation, Membership, Organization, Role, TokenScope, User
from .tasks import send_invitation_email

logger = logging.getLogger(__name__)


def audit_event(
    *,
    org: Organization,
    actor: Actor,
    action: str,
    target: Any = None,
    data: dict | None = None,
) -> AuditEvent:
    """The audit event `audit_record` appends, not yet saved: for a hot path that writes it
    together with its other rows (deplite.one_statement). `data` must never hold a secret."""
    return AuditEvent(
        org=org,
        **actor.stamp(),
        action=action,
        target_type=type(target).__name__ if target is not None else "",
        target_id=str(getattr(target, "pk", "") or "") if target is not None else "",
        data={**(data or {}), "via": actor.via} if actor.via else (data or {}),
        ip=actor.ip,
    )


def audit_record(
    *,
    org: Organization,
    actor: Actor,
    action: str,
    target: Any = None,
    data: dict | None = None,
) -> AuditEvent:
    """Append one audit event. `data` must never hold a secret."""
    event = audit_event(org=org, actor=actor, action=action, target=target, data=data)
    event.save(force_insert=True)
    return event


def _clean_slug(slug: str) -> str:
    """The one slug rule (orgs.rules), on create and on update alike."""
    try:
        return rules.clean_slug(slug)
    except ValueError as exc:
        raise ValidationFailed(f"slug: {exc}", details={"fields": {"slug": [str(exc)]}}) from None


def _unique_slug(base: str) -> str:
    base = slugify(base)[:40].strip("-") or "org"
    slug, n = base, 1
    while Organization.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


def org_create(*, user: User, name: str, slug: str | None = None, actor: Actor) -> Organization:
    """Create an organisation with `user` as its owner."""
    if slug is not None:
        slug = _clean_slug(slug)
    try:
        with transaction.atomic():
            org = Organization.objects.create(name=name, slug=slug or _unique_slug(name))
            Membership.objects.create(org=org, user=user, role=Role.OWNER)
            audit_record(org=org, actor=actor, action="org.created", target=org, data={"name": name, "slug": org.slug})
    except IntegrityError:
        raise Conflict("An organization with this slug already exists.", code="slug_taken") from None
    return org


def org_update(*, org: Organization, actor: Actor, name: str | None = None, slug: str | None = None) -> Organization:
    changes: dict[str, Any] = {}
    if name is not None and name != org.name:
        changes["name"] = name
    if slug is not None and slug != org.slug:
        changes["slug"] = _clean_slug(slug)
    if not changes:
        return org
    try:
        with transaction.atomic():
            Organization.objects.filter(pk=org.pk).update(**changes)
            audit_record(org=org, actor=actor, action="org.updated", target=org, data=changes)
    except IntegrityError:
        raise Conflict("An organization with this slug already exists.", code="slug_taken") from None
    org.refresh_from_db()
    return org


def _assert_can_grant(actor_role: str | None, role: str) -> None:
    # Only owners make owners; tokens never manage members (permission map).
    if role == Role.OWNER and actor_role != Role.OWNER:
        raise Forbidden("Only an owner can grant the owner role.")


def member_add(*, org: Organization, email: str, role: str, actor: Actor, actor_role: str | None) -> Invitation:
    """Invite a person by email. Nobody joins by being added: the invited person accepts,
    logged in with that address verified (`invitation_accept`). Joining at once would let
    whoever registered the address first — verified or not — into the organization."""
    _assert_can_grant(actor_role, role)
    email = email.strip().lower()
    with transaction.atomic():
        if Membership.objects.filter(org=org, user__email__iexact=email).exists():
            raise Conflict("This person is already a member.", code="already_member")
        invitation, created = Invitation.objects.select_for_update().get_or_create(
            org=org, email=email, accepted_at=None, defaults={"role": role, "invited_by": actor.user}
        )
        if not created and not invitation.is_expired:
            raise Conflict("This email has already been invited.", code="already_invited")
        if not created:
            # Inviting again after the invitation expired renews it (same row, a new term).
            invitation.role, invitation.invited_by, invitation.created_at = role, actor.user, timezone.now()
            invitation.save(update_fields=["role", "invited_by", "created_at"])
        audit_record(
            org=org, actor=actor, action="member.invited", target=invitation, data={"email": email, "role": role}
        )
        enqueue_after_commit(send_invitation_email, str(invitation.pk))
    return invitation


def invitation_accept(*, invitation_id: uuid.UUID | str, user: User, ip: str | None = None) -> Membership:
    """`user` accepts an invitation sent to one of their verified addresses.

    An invitation to an address that is not one of the user's is a 404 (its existence is not
    revealed); to their address while it is unverified, a 403 asking them to confirm it.
    """
    from allauth.account.models import EmailAddress

    try:
        invitation_id = uuid.UUID(str(invitation_id))
    except ValueError:
        raise NotFound("Invitation not found.") from None
    with transaction.atomic():
        invitation = (
            Invitation.objects.select_for_update()
            .select_related("org")
            .filter(pk=invitation_id, accepted_at__isnull=True)
            .first()
        )
        addresses = EmailAddress.objects.filter(user=user, email__iexact=invitation.email) if invitation else None
        if invitation is None or not (addresses.exists() or user.email.lower() == invitation.email.lower()):
            raise NotFound("Invitation not found.")
        if invitation.is_expired:
            raise Conflict(
                f"This invitation to {invitation.org.name} expired on {invitation.expires_at:%Y-%m-%d %H:%M} UTC. "
                "Ask an owner or admin of the organization to invite you again.",
                code="invitation_expired",
                details={"expiresAt": invitation.expires_at.isoformat()},
            )
        if not addresses.filter(verified=True).exists():
            raise Forbidden(
                "Confirm your email address first: the invitation is accepted only from a verified address.",
                code="email_not_verified",
            )
        membership, created = Membership.objects.get_or_create(
            org=invitation.org, user=user, defaults={"role": invitation.role}
        )
        invitation.accepted_at = timezone.now()
        invitation.save(update_fields=["accepted_at"])
        if created:
            audit_record(
                org=invitation.org,
                actor=Actor.for_user(user, ip=ip),
                action="member.joined",
                target=membership,
                data={"email": invitation.email, "role": membership.role},
            )
    return membership


def invitation_withdraw(*, invitation: Invitation, actor: Actor) -> None:
    """Withdraw an invitation not accepted yet (expired or not): it can no longer be accepted,
    and the address can be invited again."""
    with transaction.atomic():
        withdrawn = Invitation.objects.filter(pk=invitation.pk, accepted_at__isnull=True).delete()[0]
        if not withdrawn:
            raise NotFound("Invitation not found.")
        audit_record(
            org=invitation.org,
            actor=actor,
            action="member.invitation_withdrawn",
            target=invitation,
            data={"email": invitation.email, "role": invitation.role},
        )


def member_update(*, membership: Membership, role: str, actor: Actor, actor_role: str | None) -> Membership:
    if membership.role == Role.OWNER or role == Role.OWNER:
        _assert_can_grant(actor_role, Role.OWNER)
    with transaction.atomic():
        if membership.role == Role.OWNER and role != Role.OWNER:
            _assert_other_owner(membership)
        old = membership.role
        membership.role = role
        membership.save(update_fields=["role"])
        audit_record(
            org=membership.org,
            actor=actor,
            action="member.role_changed",
            target=membership,
            data={"email": membership.user.email, "from": old, "to": role},
        )
    return membership


def member_remove(*, membership: Membership, actor: Actor, actor_role: str | None) -> None:
    """Remove a member. The API tokens they created in this org are revoked with them: a
    person who leaves must not keep access through the automation they set up."""
    if membership.role == Role.OWNER:
        _assert_can_grant(actor_role, Role.OWNER)
    with transaction.atomic():
        if membership.role == Role.OWNER:
            _assert_other_owner(membership)
        revoked = tokens_revoke_created_by(
            user=membership.user, org=membership.org, actor=actor, reason="member removed"
        )
        audit_record(
            org=membership.org,
            actor=actor,
            action="member.removed",
            target=membership,
            data={"email": membership.user.email, "role": membership.role, "revokedTokens": revoked},
        )
        membership.delete()


def tokens_revoke_created_by(*, user: User, actor: Actor, reason: str, org: Organization | None = None) -> list[str]:
    """Revoke every active API token `user` created (in `org`, or in every org); one
    `token.revoked` audit event per token, naming the reason. Returns the revoked prefixes."""
    prefixes = []
    with transaction.atomic():
        active = (
            ApiToken.objects.select_for_update().select_related("org").filter(created_by=user, revoked_at__isnull=True)
        )
        if org is not None:
            active = active.filter(org=org)
        now = timezone.now()
        for token in active:
            ApiToken.objects.filter(pk=token.pk).update(revoked_at=now)
            audit_record(
                org=token.org,
                actor=actor,
                action="token.revoked",
                target=token,
                data={"prefix": token.prefix, "reason": reason, "createdBy": user.email},
            )
            prefixes.append(token.prefix)
    return prefixes


def user_deactivated(*, user: User) -> None:
    """A user was deactivated (admin, shell or any other path): the API tokens they
    created stop working, each revocation audited in its org, and their sessions end."""
    tokens_revoke_created_by(user=user, actor=Actor.system("user deactivated"), reason="user deactivated")
    user_sessions_end(user=user)


def user_sessions_end(*, user: User) -> int:
    """End every login of `user`: each refresh token is blacklisted, and bumping
    `auth_epoch` ends their web sessions and the access tokens already handed out.
    Returns how many refresh tokens were blacklisted. (The caller keeps its own web
    session with `update_session_auth_hash` if it should.)"""
    from django.db.models import F
    from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

    with transaction.atomic():
        outstanding = OutstandingToken.objects.filter(user=user, expires_at__gt=timezone.now()).exclude(
            blacklistedtoken__isnull=False
        )
        blacklisted = BlacklistedToken.objects.bulk_create(
            [BlacklistedToken(token=t) for t in outstanding], ignore_conflicts=True
        )
        User.objects.filter(pk=user.pk).update(auth_epoch=F("auth_epoch") + 1)
        user.auth_epoch = User.objects.filter(pk=user.pk).values_list("auth_epoch", flat=True).get()
    return len(blacklisted)


def _assert_other_owner(membership: Membership) -> None:
    owners = (
        Membership.objects.select_for_update().filter(org=membership.org, role=Role.OWNER).exclude(pk=membership.pk)
    )
    if not owners.exists():
        raise Conflict("An organization needs at least one owner.", code="last_owner")


def token_create(
    *,
    org: Organization,
    actor: Actor,
    name: str,
    scope_type: str,
    binding_ids: list[uuid.UUID] | None = None,
    storage_permissions: list[str] | None = None,
    trigger_ids: list[uuid.UUID] | None = None,
    expires_at: datetime | None = None,
) -> tuple[ApiToken, str]:
    """Create a token; returns the row and the plaintext, which is never stored or shown again."""
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationFailed("expiresAt: must be in the future.", details={"fields": {"expiresAt": ["in the past"]}})
    if scope_type == TokenScope.STORAGE:
        _assert_org_owns(org, scope_type, binding_ids)
    elif scope_type == TokenScope.TRIGGER:
        _assert_org_owns(org, scope_type, trigger_ids)
    raw = tokens.generate()
    if not name.strip():
        # Unnamed (the docs' permissions JSON has no name): say what it is and when it was made.
        name = f"{scope_type} token {timezone.now():%Y-%m-%d %H:%M:%S}"
    with transaction.atomic():
        token = ApiToken.objects.create(
            org=org,
            name=name,
            token_hash=tokens.hash_token(raw),
            prefix=tokens.visible_prefix(raw),
            scope_type=scope_type,
            binding_ids=[str(b) for b in (binding_ids or [])] if scope_type == TokenScope.STORAGE else [],
            storage_permissions=sorted(set(storage_permissions or [])) if scope_type == TokenScope.STORAGE else [],
            trigger_ids=[str(t) for t in (trigger_ids or [])] if scope_type == TokenScope.TRIGGER else [],
            expires_at=expires_at,
            created_by=actor.user,
        )
        audit_record(
            org=org,
            actor=actor,
            action="token.created",
            target=token,
            data={"name": name, "scopeType": scope_type, "prefix": token.prefix},
        )
    return token, raw


def _assert_org_owns(org: Organization, scope_type: str, ids) -> None:
    """Every id a narrowed token names must be an object of this org: unknown ids are a 400."""
    wanted = {str(i) for i in ids or ()}
    if not wanted:
        return
    scope = extensions.token_scope_target(scope_type)
    field = scope.field if scope else f"{scope_type}Ids"
    found = set()
    if scope is not None:
        found = {
            str(pk) for pk in scope.model._default_manager.filter(org=org, pk__in=wanted).values_list("pk", flat=True)
        }
    missing = sorted(wanted - found)
    if missing:
        raise ValidationFailed(
            f"{field}: not found in this organization: {', '.join(missing)}", details={"fields": {field: missing}}
        )


def token_revoke(*, token: ApiToken, actor: Actor) -> ApiToken:
    """Revoke a token. Revoking twice is harmless and keeps the first time."""
    with transaction.atomic():
        updated = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        if updated:
            audit_record(
                org=token.org, actor=actor, action="token.revoked", target=token, data={"prefix": token.prefix}
            )
    token.refresh_from_db()
    return token
