"""Which webhook URLs the server may POST a job's result to (SSRF protection).

The same rule as storage endpoints (storage.endpoints): the URL is the customer's, and the
server itself connects to it, so it could otherwise point at the server's loopback, the
private network or a cloud metadata service. `https://` only, and every address the host
resolves to must be public — unless DEPLITE_ALLOW_PRIVATE_WEBHOOK_URLS is on (a receiver on a
LAN, tests), which also allows `http://`, loopback and private ranges. Metadata, unspecified,
multicast and reserved addresses are refused even then; so are numeric host spellings that are
not a canonical IP literal.

Checked when a trigger is saved (`validate_notify_url`) and again at connect time by the
webhook client (`connect_addresses`, integrations.webhook.transport), because DNS can answer
differently later (rebinding). Unlike a storage endpoint, a webhook URL has a path and a query.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from storage import endpoints

from .models import MAX_NOTIFY_URL

logger = logging.getLogger(__name__)

SETTING = "DEPLITE_ALLOW_PRIVATE_WEBHOOK_URLS"
_HINT = f"; for a receiver on a private network, the server needs {SETTING}=true"
_LABEL_RE = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_NUMERIC_LABEL_RE = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$", re.IGNORECASE)


class UrlNotAllowed(Exception):
    """The server refuses to send to this URL (raised before any connection)."""


@dataclass(frozen=True)
class NotifyUrl:
    scheme: str
    host: str
    port: int
    # Path and query, as sent in the request line.
    target: str


def private_allowed() -> bool:
    return bool(getattr(settings, SETTING, False))


def parse_notify_url(raw: str) -> NotifyUrl:
    """Syntax and scheme rules (no DNS). Raises UrlNotAllowed with a sentence for the user."""
    allow_private = private_allowed()
    if (
        not isinstance(raw, str)
        or not raw
        or len(raw) > MAX_NOTIFY_URL
        or any(ord(c) < 33 or ord(c) == 127 for c in raw)
    ):
        raise UrlNotAllowed("give a URL such as https://hooks.example.com/deplite (no spaces).")
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError:
        raise UrlNotAllowed("the URL is malformed.") from None
    scheme = parts.scheme.lower()
    if scheme != "https" and not (scheme == "http" and allow_private):
        raise UrlNotAllowed(
            "must start with https://."
            + (f" For a receiver over http://, the server needs {SETTING}=true." if scheme == "http" else "")
        )
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise UrlNotAllowed("must not contain credentials (user:password@); put a token in the path or query.")
    if parts.fragment:
        raise UrlNotAllowed("must not contain a #fragment.")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise UrlNotAllowed("the URL has no host.")
    if _literal(host) is None:
        labels = host.split(".")
        if len(host) > 253 or not all(_LABEL_RE.match(label) for label in labels):
            raise UrlNotAllowed("the host name is invalid.")
        if _NUMERIC_LABEL_RE.match(labels[-1]):
            raise UrlNotAllowed("write an IP address in its usual dotted form, or use a host name.")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return NotifyUrl(scheme=scheme, host=host, port=port or (443 if scheme == "https" else 80), target=target)


def _literal(host: str):
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def connect_addresses(host: str, port: int) -> list:
    """Resolve `host` and return its addresses if every one is allowed; else UrlNotAllowed.

    Every address must pass, not only the first: a name with one public and one private address
    would otherwise reach the private one on a later connect.
    """
    allow_private = private_allowed()
    literal = _literal(host)
    if literal is not None:
        problem = endpoints.address_problem(literal, allow_private=allow_private)
        if problem:
            fixable = not allow_private and endpoints.address_problem(literal, allow_private=True) is None
            raise UrlNotAllowed(f"{literal} is {problem}{_HINT if fixable else ''}")
        return [literal]
    # One answer whatever went wrong with a name: which kind of address it resolved to (or that it
    # did not) would make this check an oracle for the server's internal DNS. The log keeps the detail.
    refusal = UrlNotAllowed(
        f"the host {host!r} must resolve, from this server, to public addresses only"
        + ("" if allow_private else f" (private and loopback addresses are not allowed){_HINT}")
    )
    try:
        addresses = endpoints.resolve(host, port)
    except (OSError, UnicodeError) as exc:
        logger.info("Webhook host %r refused: does not resolve (%s)", host, type(exc).__name__)
        raise refusal from None
    if not addresses:
        raise refusal
    for address in addresses:
        problem = endpoints.address_problem(address, allow_private=allow_private)
        if problem:
            logger.info("Webhook host %r refused: resolves to %s (%s)", host, problem, address)
            raise refusal
    return addresses


def validate_notify_url(raw: str) -> str:
    """The URL if the server may send to it (syntax, scheme and today's DNS answer); else UrlNotAllowed."""
    url = parse_notify_url(raw)
    connect_addresses(url.host, url.port)
    return raw
