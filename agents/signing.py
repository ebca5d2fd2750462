"""Signed agent requests (DESIGN §5).

    X-Agent-Signature: agent=<agentId>,ts=<unix seconds>,nonce=<16+ hex>,v1=<hex>
    v1 = HMAC-SHA256(secret, "v1\\n{ts}\\n{nonce}\\n{METHOD}\\n{path with query}\\n{sha256 hex of raw body}")

The secret is the agent's secret string as UTF-8 bytes. A request is refused (401) when
the header is malformed, the agent is unknown or revoked, |now − ts| exceeds the window,
the nonce was seen before within the window, or any byte of method, path, query or body
differs from what was signed. The signature is compared in constant time, and only a
request whose signature verifies can spend a nonce. Spent nonces are kept in PostgreSQL
(`AgentNonce`), so agents keep working while Redis is down.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
import uuid
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from deplite import logs
from deplite.api.errors import Unauthenticated

from .models import Agent, AgentNonce

HEADER = "X-Agent-Signature"
META_KEY = "HTTP_X_AGENT_SIGNATURE"
SECRET_PREFIX = "das_"  # noqa: S105 (the visible prefix of generated secrets)
_NONCE_RE = re.compile(r"^[0-9a-fA-F]{16,128}$")
_V1_RE = re.compile(r"^[0-9a-f]{64}$")
_TS_RE = re.compile(r"^[0-9]{1,12}$")
_FIELDS = ("agent", "ts", "nonce", "v1")
# Other requests than heartbeats refresh last_seen_at at most this often (one UPDATE).
TOUCH_EVERY = timedelta(seconds=10)


def generate_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def string_to_sign(*, ts: str, nonce: str, method: str, path: str, body: bytes) -> str:
    return f"v1\n{ts}\n{nonce}\n{method.upper()}\n{path}\n{hashlib.sha256(body).hexdigest()}"


def sign(*, secret: str, ts: str, nonce: str, method: str, path: str, body: bytes) -> str:
    message = string_to_sign(ts=ts, nonce=nonce, method=method, path=path, body=body)
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def signature_header(
    *,
    agent_id: str,
    secret: str,
    method: str,
    path: str,
    body: bytes = b"",
    ts: int | None = None,
    nonce: str | None = None,
) -> str:
    """The header value an agent sends (used by tests and as the reference for the agent package)."""
    ts_text = str(int(time.time()) if ts is None else ts)
    nonce = nonce or secrets.token_hex(16)
    v1 = sign(secret=secret, ts=ts_text, nonce=nonce, method=method, path=path, body=body)
    return f"agent={agent_id},ts={ts_text},nonce={nonce},v1={v1}"


def _refuse(message: str, code: str = "invalid_signature") -> Unauthenticated:
    return Unauthenticated(message, code=code)


def parse_header(value: str | None) -> dict[str, str]:
    if not value:
        raise _refuse(f"The {HEADER} header is missing.", "signature_missing")
    fields: dict[str, str] = {}
    for part in value.split(","):
        name, sep, field_value = part.strip().partition("=")
        if not sep or name not in _FIELDS or name in fields:
            raise _refuse(f"The {HEADER} header is malformed.")
        fields[name] = field_value
    if set(fields) != set(_FIELDS):
        raise _refuse(f"The {HEADER} header is malformed.")
    if not _TS_RE.match(fields["ts"]) or not _NONCE_RE.match(fields["nonce"]) or not _V1_RE.match(fields["v1"]):
        raise _refuse(f"The {HEADER} header is malformed.")
    try:
        uuid.UUID(fields["agent"])
    except ValueError:
        raise _refuse("Unknown agent.") from None
    if str(uuid.UUID(fields["agent"])) != fields["agent"]:  # canonical form only: one spelling per agent
        raise _refuse("Unknown agent.")
    return fields


def authenticate(*, header: str | None, method: str, path: str, body: bytes) -> Agent:
    """The agent that signed this request, or Unauthenticated. `path` includes the query string."""
    fields = parse_header(header)
    window = settings.DEPLITE_AGENT_SIGNATURE_WINDOW_SECONDS
    if abs(time.time() - int(fields["ts"])) > window:
        raise _refuse(
            "The signature timestamp is outside the allowed window; check the agent's clock.", "signature_expired"
        )
    agent = Agent.objects.select_related("org").filter(pk=fields["agent"], revoked_at__isnull=True).first()
    if agent is None:
        raise _refuse("Unknown or revoked agent.")
    expected = sign(secret=agent.secret, ts=fields["ts"], nonce=fields["nonce"], method=method, path=path, body=body)
    if not hmac.compare_digest(expected, fields["v1"]):
        raise _refuse("The request signature does not match.")
    # Remembered for two windows: a ts up to `window` ahead stays acceptable that long.
    if not spend_nonce(agent_id=agent.pk, nonce=fields["nonce"].lower(), ttl_seconds=2 * window):
        raise _refuse("This nonce was already used.", "signature_replayed")
    now = timezone.now()
    if agent.last_seen_at is None or now - agent.last_seen_at >= TOUCH_EVERY:
        Agent.objects.filter(pk=agent.pk).update(last_seen_at=now)
        agent.last_seen_at = now
    return agent


def spend_nonce(*, agent_id: uuid.UUID, nonce: str, ttl_seconds: int) -> bool:
    """Record `nonce` as spent by the agent; False when it was spent already (a replay).

    One statement, so two requests racing with the same nonce cannot both win. A row past its
    expiry is taken over (its signature would be outside the window by now); beat purges the rest.
    """
    now = timezone.now()
    table = connection.ops.quote_name(AgentNonce._meta.db_table)
    agent_field = AgentNonce._meta.get_field("agent").target_field
    expires_field = AgentNonce._meta.get_field("expires_at")
    with connection.cursor() as cursor:
        cursor.execute(
            # Constant SQL (the table name from the model); every value is a parameter.
            f"INSERT INTO {table} (agent_id, nonce, expires_at) VALUES (%s, %s, %s) "  # noqa: S608  # nosec B608
            f"ON CONFLICT (agent_id, nonce) DO UPDATE SET expires_at = EXCLUDED.expires_at "
            f"WHERE {table}.expires_at < %s",
            [
                agent_field.get_db_prep_value(agent_id, connection),
                nonce,
                expires_field.get_db_prep_value(now + timedelta(seconds=ttl_seconds), connection),
                expires_field.get_db_prep_value(now, connection),
            ],
        )
        return cursor.rowcount == 1


def nonces_purge() -> int:
    """Delete the nonces whose signatures are outside the window by now."""
    deleted, _ = AgentNonce.objects.filter(expires_at__lt=timezone.now()).delete()
    return deleted


def signed_at(request) -> datetime:
    """The signed timestamp of an authenticated request (when the agent built it, by its clock)."""
    return datetime.fromtimestamp(int(parse_header(request.META.get(META_KEY))["ts"]), tz=UTC)


def authenticate_request(request) -> Agent:
    """`authenticate` for a Django request: the exact method, path with query and raw body."""
    agent = authenticate(
        header=request.META.get(META_KEY),
        method=request.method,
        path=request.get_full_path(),
        body=request.body,
    )
    logs.bind(agent_id=agent.pk, org=agent.org.slug)
    return agent
