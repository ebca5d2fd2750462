"""The one client for webhook endpoints: a signed JSON POST to the URL a trigger names.

`X-Deplite-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>` — Stripe's scheme,
so receivers can reuse code they have (README, "Webhook notifications"). Every failure
becomes a `TransportError` (the outbox retries, counts and records); nothing retries here.

The URL is the customer's and the server connects to it, so the connection itself enforces
triggers.notify_url's rule: the host is resolved here, every address checked, and the socket
connected to a checked address (a second DNS answer cannot slip in: rebinding); TLS still
verifies the certificate against the host name. Redirects are never followed (a 3xx could lead
the server anywhere), connect and read are bounded, and at most MAX_ANSWER_BYTES of the answer
are read, within TOTAL_SECONDS.
"""

from __future__ import annotations

import email.utils
import hashlib
import hmac
import json
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import certifi
import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from storage.s3 import guard
from triggers import notify_url

from ..transport import TransportError, seconds

CONNECT_TIMEOUT_SECONDS = 5.0
READ_TIMEOUT_SECONDS = 10.0
# The whole exchange, answer included: a receiver dripping its answer byte by byte stops here.
TOTAL_SECONDS = 15.0
# Only the status matters; the answer body is read this far (so the connection ends cleanly), no further.
MAX_ANSWER_BYTES = 64 * 1024
# A Retry-After is honoured up to this (a receiver asking for a day would hold the delivery for good).
MAX_RETRY_AFTER_SECONDS = 3600.0
USER_AGENT = "Deplite-Webhook/1.0"
SIGNATURE_HEADER = "X-Deplite-Signature"
EVENT_HEADER = "X-Deplite-Event"
DELIVERY_HEADER = "X-Deplite-Delivery"

GONE = "gone"
URL_NOT_ALLOWED = "url_not_allowed"


def signature(*, secret: str, body: bytes, timestamp: int) -> str:
    """The header value: `t=<timestamp>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def encode(document: dict) -> bytes:
    """The exact bytes sent (and signed): compact JSON, UTF-8."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class Answer:
    status: int
    elapsed_ms: int
    # The answer went on past MAX_ANSWER_BYTES (or TOTAL_SECONDS): the rest was not read.
    truncated: bool = False


class _Refused(Exception):
    """Raised inside a connection attempt; no socket was opened."""


class _GuardedConnectionMixin:
    def _new_conn(self) -> socket.socket:
        try:
            addresses = notify_url.connect_addresses(self._dns_host, self.port)
        except notify_url.UrlNotAllowed as exc:
            raise _Refused(str(exc)) from None
        return guard.connect_first(self, addresses)


class _GuardedHTTPConnection(_GuardedConnectionMixin, HTTPConnection):
    pass


class _GuardedHTTPSConnection(_GuardedConnectionMixin, HTTPSConnection):
    pass


class _GuardedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


def _pool(url: notify_url.NotifyUrl) -> HTTPConnectionPool:
    timeout = urllib3.Timeout(connect=CONNECT_TIMEOUT_SECONDS, read=READ_TIMEOUT_SECONDS)
    if url.scheme == "https":
        return _GuardedHTTPSConnectionPool(
            url.host, url.port, timeout=timeout, maxsize=1, cert_reqs="CERT_REQUIRED", ca_certs=certifi.where()
        )
    return _GuardedHTTPConnectionPool(url.host, url.port, timeout=timeout, maxsize=1)


def post_event(*, url: str, secret: str, body: bytes, event: str, delivery_id: str) -> Answer:
    """POST `body` to `url`, signed with `secret` now. A 2xx is an `Answer`; anything else a TransportError."""
    try:
        target = notify_url.parse_notify_url(url)
    except notify_url.UrlNotAllowed as exc:
        raise TransportError(URL_NOT_ALLOWED, f"The webhook URL is not allowed: {exc}", permanent=True) from None
    if not secret:
        raise TransportError("no_secret", "The trigger has no webhook secret to sign with", permanent=True)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        EVENT_HEADER: event,
        DELIVERY_HEADER: delivery_id,
        SIGNATURE_HEADER: signature(secret=secret, body=body, timestamp=int(time.time())),
    }
    started = time.monotonic()
    pool = _pool(target)
    try:
        response = pool.urlopen(
            "POST", target.target, body=body, headers=headers, redirect=False, retries=False, preload_content=False
        )
        try:
            truncated = _drain(response, deadline=started + TOTAL_SECONDS)
        finally:
            response.release_conn()
    except _Refused as exc:
        raise TransportError(URL_NOT_ALLOWED, f"The webhook URL is not allowed: {exc}", permanent=True) from None
    except urllib3.exceptions.SSLError:
        raise TransportError(
            "tls_error", "The endpoint's TLS certificate could not be verified for its host name", permanent=False
        ) from None
    except (urllib3.exceptions.TimeoutError, TimeoutError):
        raise TransportError("timeout", "The endpoint did not answer in time", permanent=False) from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise TransportError(
            "connection_error", f"The endpoint could not be reached: {type(exc).__name__}", permanent=False
        ) from None
    finally:
        pool.close()
    elapsed_ms = int((time.monotonic() - started) * 1000)
    _raise_for_status(response.status, response.headers.get("Retry-After"))
    return Answer(status=response.status, elapsed_ms=elapsed_ms, truncated=truncated)


def _drain(response, *, deadline: float) -> bool:
    """Read the answer up to MAX_ANSWER_BYTES and the deadline; True when more was left unread.
    The status is what counts: once it arrived, the receiver has the event, so a slow or huge
    body is cut off, never waited for."""
    read = 0
    while read <= MAX_ANSWER_BYTES:  # bounded: each pass reads at least one byte or ends
        if time.monotonic() > deadline:
            return True
        try:
            chunk = response.read(8192, decode_content=False)
        except (urllib3.exceptions.HTTPError, OSError):
            return True
        if not chunk:
            return False
        read += len(chunk)
    return True


def _raise_for_status(status: int, retry_after_header: str | None) -> None:
    if 200 <= status < 300:
        return
    if 300 <= status < 400:
        raise TransportError(
            "redirect_not_followed",
            f"The endpoint answered {status} (a redirect); redirects are not followed: give the final URL",
            permanent=True,
        )
    retry_after = retry_after_seconds(retry_after_header)
    if status == 410:
        raise TransportError(GONE, "The endpoint answered 410 Gone: it no longer wants these events", permanent=True)
    if status == 429:
        raise TransportError(
            "rate_limited", "The endpoint asked us to slow down (429)", permanent=False, retry_after=retry_after
        )
    if status == 408 or status >= 500:
        raise TransportError(
            f"http_{status}", f"The endpoint answered {status}", permanent=False, retry_after=retry_after
        )
    raise TransportError(f"http_{status}", f"The endpoint refused the event ({status})", permanent=True)


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds: a number, or an HTTP date; None when absent or unusable."""
    if value is None:
        return None
    result = seconds(value.strip())
    if result is None:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        result = max((when - datetime.now(UTC)).total_seconds(), 0.0)
    return min(result, MAX_RETRY_AFTER_SECONDS)
