"""Chat identities: who a chat user is in Deplite.

`/deplite login` answers the chat user privately with a one-time link (`link_issue`); the
Deplite user who opens it while signed in, a member of the installation's org, confirms, and
the chat user is linked to them (`identity_link`). From then on a chat act is that user's
(`Actor.for_chat_user`), with the role they hold at the moment of the act.

The link is both signed (django.core.signing, with its 10-minute age) and backed by a row
holding only the SHA-256 of its secret, used once by a conditional update, so a link refused
or used once can never be completed later by anyone.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.core import signing
from django.db import transaction
from django.utils import timezone

from deplite.links import absolute_url
from orgs.actors import Actor
from orgs.models import Membership, User
from orgs.services import audit_record
from triggers.models import ChatProvider

from .models import ChatIdentity, ChatLinkToken, Installation

LINK_TTL = timedelta(minutes=10)
_SALT = "deplite.integrations.chat-link"


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def link_issue(*, installation: Installation, chat_user_id: str, chat_user_name: str = "") -> str:
    """A fresh one-time link for this chat user of this installation (only its hash is stored)."""
    raw = secrets.token_urlsafe(24)
    now = timezone.now()
    # This chat user's spent and expired links are of no more use: they go as new ones come.
    ChatLinkToken.objects.filter(installation=installation, chat_user_id=chat_user_id[:64], expires_at__lt=now).delete()
    ChatLinkToken.objects.create(
        org_id=installation.org_id,
        installation=installation,
        chat_user_id=chat_user_id[:64],
        chat_user_name=chat_user_name[:255],
        token_hash=_hash(raw),
        created_at=now,
        expires_at=now + LINK_TTL,
    )
    return absolute_url("chat-identity-link", token=signing.TimestampSigner(salt=_SALT).sign(raw))


# Past its age a link is refused by its signature before its row is read, so the row, spent or not,
# serves nothing more. Until then a spent row stays: it is what says "already used" to a second click.
# The grace: the signed timestamp is whole seconds, and the row must outlive it to say "expired".
LINK_PURGE_GRACE = timedelta(minutes=1)
LINK_PURGE_BATCH = 500
LINK_PURGE_MAX_BATCHES = 20


def link_tokens_purge(*, batch: int = LINK_PURGE_BATCH, max_batches: int = LINK_PURGE_MAX_BATCHES) -> int:
    """Delete the login links past their age, used or not, `batch` rows per statement and at most
    `max_batches` statements (a backlog goes over the next runs); the number deleted. `link_issue`
    only clears the links of the chat user asking again: everyone else's stayed forever."""
    cutoff = timezone.now() - LINK_PURGE_GRACE
    deleted = 0
    for _ in range(max_batches):
        ids = list(
            ChatLinkToken.objects.filter(expires_at__lt=cutoff).order_by("pk").values_list("pk", flat=True)[:batch]
        )
        if ids:
            deleted += ChatLinkToken.objects.filter(pk__in=ids).delete()[0]
        if len(ids) < batch:
            break
    return deleted


class LinkRefused(Exception):
    """The link cannot be used; `message` says why, in words for the page."""

    def __init__(self, code: str, message: str):
        super().__init__(code)
        self.code = code
        self.message = message


_EXPIRED = "This link has expired (links are valid 10 minutes). Type `/deplite login` in chat for a new one."
_USED = "This link was already used. Type `/deplite login` in chat for a new one."


def _unsign(signed: str) -> str:
    try:
        return signing.TimestampSigner(salt=_SALT).unsign(signed, max_age=LINK_TTL)
    except signing.SignatureExpired:
        raise LinkRefused("link_expired", _EXPIRED) from None
    except signing.BadSignature:
        raise LinkRefused("link_invalid", "This link is not valid.") from None


def link_read(*, signed: str, user: User) -> ChatLinkToken:
    """The link's token, for the confirmation page: still valid, for an org `user` belongs to."""
    raw = _unsign(signed)
    token = ChatLinkToken.objects.select_related("org", "installation").filter(token_hash=_hash(raw)).first()
    if token is None:
        raise LinkRefused("link_invalid", "This link is not valid.")
    _check(token, user=user, now=timezone.now())
    return token


def _check(token: ChatLinkToken, *, user: User, now) -> None:
    if token.used_at is not None:
        raise LinkRefused("link_used", _USED)
    if token.expires_at <= now:
        raise LinkRefused("link_expired", _EXPIRED)
    if not Membership.objects.filter(org_id=token.org_id, user=user).exists():
        # Not a member: the page says nothing of the org (a 404-like answer).
        raise LinkRefused("link_not_member", "This link is for an organization you are not a member of.")


@dataclass(frozen=True)
class Linked:
    identity: ChatIdentity
    replaced_user_id: uuid.UUID | int | None


def identity_link(*, signed: str, user: User, ip: str | None = None) -> Linked:
    """Use the link once: the chat user now acts as `user` in the link's org. Re-linking a chat
    user replaces the Deplite user it was linked to. Raises LinkRefused."""
    raw = _unsign(signed)
    now = timezone.now()
    with transaction.atomic():
        token = (
            ChatLinkToken.objects.select_for_update()
            .select_related("org", "installation")
            .filter(token_hash=_hash(raw))
            .first()
        )
        if token is None:
            raise LinkRefused("link_invalid", "This link is not valid.")
        _check(token, user=user, now=now)
        # The single use: any later attempt (a second tab, a forwarded link) finds it spent.
        ChatLinkToken.objects.filter(pk=token.pk, used_at__isnull=True).update(used_at=now)
        installation = token.installation
        identity = (
            ChatIdentity.objects.select_for_update()
            .filter(
                org_id=token.org_id,
                provider=installation.provider,
                team_id=installation.external_id,
                chat_user_id=token.chat_user_id,
            )
            .first()
        )
        replaced = None
        if identity is None:
            identity = ChatIdentity.objects.create(
                org_id=token.org_id,
                provider=installation.provider,
                team_id=installation.external_id,
                chat_user_id=token.chat_user_id,
                chat_user_name=token.chat_user_name,
                user=user,
            )
        else:
            replaced = identity.user_id if identity.user_id != user.pk else None
            identity.user, identity.chat_user_name = user, token.chat_user_name or identity.chat_user_name
            identity.save(update_fields=["user", "chat_user_name"])
        audit_record(
            org=token.org,
            actor=Actor.for_user(user, ip=ip),
            action="chat_identity.linked",
            target=identity,
            data=_describe(identity) | ({"replacedUserId": str(replaced)} if replaced else {}),
        )
    return Linked(identity=identity, replaced_user_id=replaced)


def _describe(identity: ChatIdentity) -> dict:
    return {
        "provider": identity.provider,
        "teamId": identity.team_id,
        "chatUserId": identity.chat_user_id,
        "chatUserName": identity.chat_user_name,
        "userEmail": identity.user.email,
    }


def identity_remove(*, identity: ChatIdentity, actor: Actor) -> None:
    """Unlink (the Integrations page's remove, `/deplite logout`)."""
    with transaction.atomic():
        audit_record(
            org=identity.org, actor=actor, action="chat_identity.removed", target=identity, data=_describe(identity)
        )
        identity.delete()


@dataclass(frozen=True)
class ChatPerson:
    """A linked chat user as they are now: the Deplite user and their current role in the org."""

    identity: ChatIdentity
    user: User
    role: str

    def actor(self) -> Actor:
        return Actor.for_chat_user(self.user, via=ChatProvider(self.identity.provider).label)


def chat_person(*, org_id: uuid.UUID, provider: str, team_id: str, chat_user_id: str) -> ChatPerson | None:
    """The linked, active member behind a chat user of this org, or None (unlinked, left, deactivated)."""
    if not chat_user_id:
        return None
    identity = (
        ChatIdentity.objects.select_related("user", "org")
        .filter(org_id=org_id, provider=provider, team_id=team_id, chat_user_id=chat_user_id, user__is_active=True)
        .first()
    )
    if identity is None:
        return None
    role = Membership.objects.filter(org_id=org_id, user_id=identity.user_id).values_list("role", flat=True).first()
    if role is None:
        return None
    return ChatPerson(identity=identity, user=identity.user, role=role)


def identities_remove_for_member(*, org_id: uuid.UUID, user_id) -> int:
    """A member left the org: their chat identities in it go with them (a receiver of Membership's delete)."""
    deleted, _ = ChatIdentity.objects.filter(org_id=org_id, user_id=user_id).delete()
    return deleted
