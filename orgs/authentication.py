"""DRF authentication: `Bearer tk_…` API tokens and `Bearer <JWT>` users.

Failed attempts are counted per client address; past the limit a *bad* credential from
that address gets a 429 instead of a 401 until the window passes. A valid credential is
always let through: these credentials cannot be guessed, and one broken script behind a
shared address must not lock out everyone else behind it.
"""

from __future__ import annotations

import json
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import OuterRef, Subquery
from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework_simplejwt import authentication as jwt_auth
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.tokens import RefreshToken

from deplite import logs
from deplite.api.errors import RateLimited
from deplite.json_rows import instance_from_json_row

from . import ratelimit, tokens
from .models import ApiToken, Membership, Organization

LAST_USED_RESOLUTION = timedelta(minutes=1)
EPOCH_CLAIM = "ep"


class MachineUser:
    """`request.user` for a request made by a machine credential rather than a person:
    authenticated, but never staff and with no user row."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None
    id = None


class TokenPrincipalUser(MachineUser):
    """`request.user` for a request authenticated by an API token (the token is `request.auth`)."""

    def __init__(self, token: ApiToken):
        self.token = token

    def __str__(self) -> str:
        return f"token {self.token.prefix}"


def _bearer(request) -> str | None:
    header = authentication.get_authorization_header(request).decode("latin-1")
    parts = header.split()
    if len(parts) != 2 or parts[0].lower() != "bearer":
        return None
    return parts[1]


def _refuse(request, message: str):
    ip = ratelimit.client_ip(request) or "unknown"
    if ratelimit.is_limited("auth-fail", ip, settings.DEPLITE_TOKEN_FAILURE_RATE):
        raise RateLimited("Too many failed authentication attempts. Try again in a minute.")
    ratelimit.hit("auth-fail", ip, settings.DEPLITE_TOKEN_FAILURE_RATE)
    raise exceptions.AuthenticationFailed(message)


class ApiTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        raw = _bearer(request)
        if raw is None or not raw.startswith(tokens.PREFIX):
            return None
        if not tokens.is_well_formed(raw):
            _refuse(request, "The API token is malformed.")
        token = _token_by_hash(tokens.hash_token(raw), request)
        if token is None or token.revoked_at is not None:
            _refuse(request, "The API token is invalid or has been revoked.")
        if token.created_by_id is not None and not (token.creator_is_active and token.creator_role is not None):
            # Services revoke a leaver's tokens; this also covers a membership deleted by
            # a path that bypassed them (the admin, a shell).
            _refuse(request, "The API token is invalid or has been revoked.")
        now = timezone.now()
        if token.expires_at is not None and token.expires_at <= now:
            _refuse(request, "The API token has expired.")
        if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
            # Written at most once a minute per token: a busy CI token must not turn
            # every API call into a row update.
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
            token.last_used_at = now
        logs.bind(token=token.prefix, org=token.org.slug)
        return TokenPrincipalUser(token), token

    def authenticate_header(self, request):
        return self.keyword


def _token_by_hash(token_hash: str, request) -> ApiToken | None:
    """The token with its org, whether its creator is still active and the creator's current
    role in the org (None: no longer a member; `orgs.permissions.token_permissions` caps the
    token by it), in one query.

    A hot-path view may have rows it needs ride along (the run endpoint's trigger and Idempotency-Key):
    `view.token_lookup_extras()` names them as constant SQL returning JSON text, set on the token.
    On PostgreSQL the query is constant SQL, so a request pays no ORM compilation for it (about
    a fifth of a run request's time went into compiling this one query).
    """
    if connection.vendor != "postgresql":
        token = (
            ApiToken.objects.select_related("org", "created_by")
            .annotate(
                creator_role=Subquery(
                    Membership.objects.filter(org=OuterRef("org"), user=OuterRef("created_by")).values("role")[:1]
                )
            )
            .filter(token_hash=token_hash)
            .first()
        )
        if token is not None:
            token.creator_is_active = token.created_by is not None and token.created_by.is_active
        return token
    view = (getattr(request, "parser_context", None) or {}).get("view")
    extras = view.token_lookup_extras() if hasattr(view, "token_lookup_extras") else {}
    columns = "".join(f", ({sql}) AS {name}" for name, (sql, _) in extras.items())
    params = [value for _, values in extras.values() for value in values]
    with connection.cursor() as cursor:
        cursor.execute(_TOKEN_SQL.format(extras=columns), [*params, token_hash])
        row = cursor.fetchone()
    if row is None:
        return None
    token_row, org_row, creator_is_active, creator_role, *extra_values = row
    token = instance_from_json_row(
        ApiToken, json.loads(token_row), org=instance_from_json_row(Organization, json.loads(org_row))
    )
    token.creator_is_active = bool(creator_is_active)
    token.creator_role = creator_role
    for name, value in zip(extras, extra_values, strict=True):
        setattr(token, name, json.loads(value) if value is not None else None)
    return token


def _token_sql() -> str:
    """Table names from the models, every value a parameter; `{extras}` is where the views'
    constant column expressions go (they may name the token's table)."""
    t, o = ApiToken._meta.db_table, Organization._meta.db_table
    m, u = Membership._meta.db_table, get_user_model()._meta.db_table
    return (
        f'SELECT row_to_json("{t}")::text, row_to_json(o)::text, u.is_active, '  # noqa: S608  # nosec B608
        f'(SELECT m.role FROM "{m}" m WHERE m.org_id = "{t}".org_id AND m.user_id = "{t}".created_by_id){{extras}} '
        f'FROM "{t}" JOIN "{o}" o ON o.id = "{t}".org_id LEFT JOIN "{u}" u ON u.id = "{t}".created_by_id '
        f'WHERE "{t}".token_hash = %s'
    )


_TOKEN_SQL = _token_sql()


class UserRefreshToken(RefreshToken):
    """A refresh token (and the access tokens made from it) carrying the user's
    `auth_epoch`: "log out everywhere" and a password change move the epoch on."""

    @classmethod
    def for_user(cls, user):
        token = super().for_user(user)
        token[EPOCH_CLAIM] = user.auth_epoch
        return token


class JWTAuthentication(jwt_auth.JWTAuthentication):
    def get_user(self, validated_token):
        user = super().get_user(validated_token)
        if validated_token.get(EPOCH_CLAIM, 0) != user.auth_epoch:
            raise exceptions.AuthenticationFailed("This login has ended. Log in again.")
        return user

    def authenticate(self, request):
        raw = _bearer(request)
        if raw is None:
            return None
        try:
            result = super().authenticate(request)
        except (InvalidToken, TokenError, exceptions.AuthenticationFailed):
            _refuse(request, "The access token is invalid or has expired.")
        if result is not None:
            logs.bind(user=result[0].pk)
        return result
