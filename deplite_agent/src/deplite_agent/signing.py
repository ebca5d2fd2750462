"""Request signing shared by the agent and any server (or test double) that verifies it.

`v1 = HMAC-SHA256(secret, "v1\\n{ts}\\n{nonce}\\n{METHOD}\\n{path with query}\\n{sha256 hex of body}")`,
sent as `X-Agent-Signature: agent=<id>,ts=<unix seconds>,nonce=<32 hex>,v1=<hex>`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

SIGNATURE_HEADER = "X-Agent-Signature"


def signing_payload(*, ts: int, nonce: str, method: str, path: str, body: bytes) -> bytes:
    """The exact bytes that are MACed. `path` is the URL path plus `?query` when there is one."""
    body_hash = hashlib.sha256(body).hexdigest()
    return f"v1\n{ts}\n{nonce}\n{method.upper()}\n{path}\n{body_hash}".encode()


def compute_v1(*, secret: str, ts: int, nonce: str, method: str, path: str, body: bytes) -> str:
    payload = signing_payload(ts=ts, nonce=nonce, method=method, path=path, body=body)
    return hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()


def signature_header(
    *,
    agent_id: str,
    secret: str,
    method: str,
    path: str,
    body: bytes,
    ts: int | None = None,
    nonce: str | None = None,
) -> str:
    ts = int(time.time()) if ts is None else ts
    nonce = secrets.token_hex(16) if nonce is None else nonce
    v1 = compute_v1(secret=secret, ts=ts, nonce=nonce, method=method, path=path, body=body)
    return f"agent={agent_id},ts={ts},nonce={nonce},v1={v1}"


def parse_signature_header(value: str) -> dict[str, str]:
    """`agent=..,ts=..,nonce=..,v1=..` → dict; raises ValueError when a part is missing or repeated."""
    parts: dict[str, str] = {}
    for item in value.split(","):
        key, sep, val = item.strip().partition("=")
        if not sep or not val or key in parts:
            raise ValueError("malformed signature header")
        parts[key] = val
    missing = {"agent", "ts", "nonce", "v1"} - parts.keys()
    if missing:
        raise ValueError(f"signature header lacks {', '.join(sorted(missing))}")
    return parts


def verify(*, secret: str, header: str, method: str, path: str, body: bytes) -> bool:
    """Constant-time check of a header against the request (no clock or nonce policy: the caller owns those)."""
    try:
        parts = parse_signature_header(header)
        ts = int(parts["ts"])
    except ValueError:
        return False
    expected = compute_v1(secret=secret, ts=ts, nonce=parts["nonce"], method=method, path=path, body=body)
    return hmac.compare_digest(expected, parts["v1"])
