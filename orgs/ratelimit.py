"""Sliding-window rate limits kept in the cache (Redis in production), and the client address.

Failures are counted, never successes, and a limit never refuses a valid credential that
cannot be guessed:

- Bearer credentials (JWTs, `tk_` tokens) are counted per client address. Past the limit
  a *bad* credential from that address gets a 429 instead of a 401; a valid one still goes
  through, so one misconfigured script behind a NAT cannot lock out everyone behind it.
- Passwords can be guessed, so past the limit even the right one is refused; but the
  counter is per account *and* address (a stranger's typos lock out only that account from
  that address), plus a wider per-address cap against spraying many accounts. The limit
  is the number of failures tolerated: the attempt after the last tolerated one is still
  checked.

A window is counted in slices (a sixth of it each): a failure counts for the whole window
after it, give or take one slice, so no run of failures gets more than the limit through
by straddling a window boundary, as fixed windows allow (twice the limit, back to back).

When the cache is unreachable the limiter fails open (and says so in the log): an outage of
Redis must not turn every authenticated API call into a 500.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import logging
import time

import redis
from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)

_CACHE_DOWN = (redis.RedisError, OSError)


@functools.cache
def _trusted_networks(cidrs: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def _ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # [v6]:port
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # v4:port
        value = value.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def client_ip(request) -> str | None:
    """The client's address: REMOTE_ADDR, unless that is one of the operator's proxies
    (DEPLITE_TRUSTED_PROXIES), in which case the nearest address in X-Forwarded-For that
    is not a trusted proxy. Without trusted proxies X-Forwarded-For is ignored: a client
    could otherwise pick its own address and dodge every limit."""
    remote = request.META.get("REMOTE_ADDR") or ""
    trusted = _trusted_networks(tuple(settings.DEPLITE_TRUSTED_PROXIES))
    address = _ip(remote)
    if address is None:
        return remote or None
    if not trusted or not any(address in net for net in trusted):
        return str(address)
    hops = [h for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
    for hop in reversed(hops):
        hop_address = _ip(hop)
        if hop_address is None:
            break  # garbage a client wrote: the last trusted hop is all we know
        address = hop_address
        if not any(hop_address in net for net in trusted):
            break
    return str(address)


# Slices per window. A failure is counted until its slice has fully left the window, so a
# client waits out the window plus at most one slice.
SLICES = 6


def _slice(window: int) -> tuple[float, int]:
    width = window / SLICES
    return width, int(time.time() // width)


def _key(scope: str, ident: str, window: int, n: int) -> str:
    return f"rl:{scope}:{ident}:{window}:{n}"


def count(scope: str, ident: str, window: int) -> int:
    """Failures in the last `window` seconds: the current slice and the SLICES before it
    (one cache round trip)."""
    _width, now = _slice(window)
    keys = [_key(scope, ident, window, n) for n in range(now - SLICES, now + 1)]
    return sum(int(v) for v in cache.get_many(keys).values())


def is_limited(scope: str, ident: str, rate: tuple[int, int]) -> bool:
    limit, window = rate
    try:
        return count(scope, ident, window) >= limit
    except _CACHE_DOWN as exc:
        logger.warning("Rate limiter cannot reach the cache (%s); not limiting %s", type(exc).__name__, scope)
        return False


def hit(scope: str, ident: str, rate: tuple[int, int]) -> None:
    _limit, window = rate
    width, now = _slice(window)
    key = _key(scope, ident, window, now)
    # Kept until the slice has left the window.
    timeout = int(window + width) + 1
    try:
        if cache.add(key, 1, timeout=timeout):
            return
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.add(key, 1, timeout=timeout)
    except _CACHE_DOWN as exc:
        logger.warning("Rate limiter cannot reach the cache (%s); not counting %s", type(exc).__name__, scope)


# --- password logins (API, site, admin) ----------------------------------------------------------


def _account(account: str) -> str:
    # A digest, so the cache never holds the email address.
    return hashlib.sha256(account.strip().lower().encode()).hexdigest()[:32]


def _tolerating(rate: tuple[int, int]) -> tuple[int, int]:
    # A login rate is the number of failures *tolerated*: after 10 typos the 11th attempt
    # is still checked, so the person who finally remembers the password gets in; only
    # once more than 10 attempts failed does the account wait out the window.
    limit, window = rate
    return limit + 1, window


def login_limited(request, account: str) -> bool:
    """Whether a password login for `account` from this client is refused for now."""
    ip = client_ip(request) or "unknown"
    return is_limited("login", f"{_account(account)}:{ip}", _tolerating(settings.DEPLITE_LOGIN_RATE)) or is_limited(
        "login-ip", ip, _tolerating(settings.DEPLITE_LOGIN_ADDRESS_RATE)
    )


def login_failed(request, account: str) -> None:
    ip = client_ip(request) or "unknown"
    hit("login", f"{_account(account)}:{ip}", settings.DEPLITE_LOGIN_RATE)
    hit("login-ip", ip, settings.DEPLITE_LOGIN_ADDRESS_RATE)
