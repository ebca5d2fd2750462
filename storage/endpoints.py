"""Which storage endpoints the server may connect to (SSRF protection).

A binding's endpoint is a URL the customer types, and the server itself connects to it
(test connection, upload verification, deletes). Without a check, a binding could point
the server at its own loopback, the private network or a cloud metadata service.

Rules: `https://` only and every address the host resolves to must be public — unless
DEPLITE_ALLOW_PRIVATE_STORAGE_ENDPOINTS is on (self-hosted MinIO on a LAN, tests), which
also allows `http://`, loopback and private ranges. Cloud metadata addresses, unspecified,
multicast and reserved addresses are refused even then. Numeric host spellings that are
not a canonical IP literal (`2130706433`, `0x7f.1`, `017700000001`) are refused always:
resolvers turn them into addresses, people reading them do not.

The check runs when a binding is saved (`validate_endpoint`) and again at connect time
(`check_connect_addresses`, used by storage.s3's connection class), because DNS can
answer differently later (rebinding).
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from deplite.errors import ValidationFailed

# Link-local 169.254.0.0/16 covers AWS/GCP/Azure's 169.254.169.254; these are the others.
METADATA_ADDRESSES = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),
        ipaddress.ip_address("169.254.170.2"),  # ECS task metadata
        ipaddress.ip_address("fd00:ec2::254"),  # AWS IMDS over IPv6
        ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
        ipaddress.ip_address("192.0.0.192"),  # Oracle Cloud
    }
)

_LABEL_RE = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_NUMERIC_LABEL_RE = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$", re.IGNORECASE)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

logger = logging.getLogger(__name__)


class EndpointNotAllowed(Exception):
    """The server refuses to connect to this endpoint (raised before any connection)."""


@dataclass(frozen=True)
class Endpoint:
    scheme: str
    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return f"{self.scheme}://{host}" + ("" if self.port == default else f":{self.port}")


_ALLOW_SETTING = "DEPLITE_ALLOW_PRIVATE_STORAGE_ENDPOINTS"
_PRIVATE_HINT = f"; for self-hosted storage on a private network, the server needs {_ALLOW_SETTING}=true"


def private_allowed() -> bool:
    return bool(settings.DEPLITE_ALLOW_PRIVATE_STORAGE_ENDPOINTS)


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to. The one place the storage code asks DNS."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]


# NAT64's well-known prefix (RFC 6052): 64:ff9b::a.b.c.d reaches the IPv4 a.b.c.d.
NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")


def embedded_ipv4(address: IPAddress) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address leads to when it embeds one: IPv4-mapped
    (::ffff:a.b.c.d), 6to4 (2002::/16), Teredo (2001::/32: its server and client) and
    NAT64 (64:ff9b::/96). A gateway on the path turns those into IPv4 traffic, so they
    are judged by the IPv4 address, not by the IPv6 wrapper."""
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    if address.ipv4_mapped is not None:
        return [address.ipv4_mapped]
    if address.sixtofour is not None:
        return [address.sixtofour]
    if address.teredo is not None:
        return list(address.teredo)
    if address in NAT64_PREFIX:
        return [ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)]
    return []


def address_problem(address: IPAddress, *, allow_private: bool) -> str | None:
    """Why the server must not connect to `address`, or None when it may."""
    embedded = embedded_ipv4(address)
    if embedded:
        problems = [p for p in (address_problem(a, allow_private=allow_private) for a in embedded) if p]
        return problems[0] if problems else None
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_unspecified or address.is_multicast or address.is_reserved:
        return "an unspecified, multicast or reserved address"
    if address.is_global:
        return None
    if allow_private and (address.is_loopback or address.is_private or address.is_link_local):
        return None
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    return "a private or non-public address"


def _literal_ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _refuse(message: str) -> ValidationFailed:
    return ValidationFailed(message, code="endpoint_not_allowed", details={"fields": {"endpoint": [message]}})


def parse_endpoint(raw: str, *, allow_private: bool | None = None) -> Endpoint:
    """Syntax and scheme rules (no DNS). Raises ValidationFailed."""
    allow_private = private_allowed() if allow_private is None else allow_private
    if not isinstance(raw, str) or not raw or len(raw) > 255 or any(ord(c) < 33 or ord(c) == 127 for c in raw):
        raise _refuse("endpoint: give a URL such as https://s3.amazonaws.com.")
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError:
        raise _refuse("endpoint: the URL is malformed.") from None
    scheme = parts.scheme.lower()
    if scheme != "https" and not (scheme == "http" and allow_private):
        raise _refuse(
            "endpoint: must start with https://."
            + (
                f" For self-hosted storage over http://, the server needs {_ALLOW_SETTING}=true."
                if scheme == "http"
                else ""
            )
        )
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise _refuse("endpoint: must not contain credentials.")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise _refuse("endpoint: give only the scheme, host and port (no path or query).")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise _refuse("endpoint: the URL has no host.")
    if _literal_ip(host) is None:
        labels = host.split(".")
        if len(host) > 253 or not all(_LABEL_RE.match(label) for label in labels):
            raise _refuse("endpoint: the host name is invalid.")
        if _NUMERIC_LABEL_RE.match(labels[-1]):
            raise _refuse("endpoint: write an IP address in its usual dotted form, or use a host name.")
    return Endpoint(scheme=scheme, host=host, port=port or (443 if scheme == "https" else 80))


def check_connect_addresses(host: str, port: int, *, allow_private: bool | None = None) -> list[IPAddress]:
    """Resolve `host` and return its addresses if every one is allowed; else EndpointNotAllowed.

    Every address must pass, not just the first: a name with one public and one private
    address would otherwise reach the private one on a later connect.
    """
    allow_private = private_allowed() if allow_private is None else allow_private
    literal = _literal_ip(host.strip("[]"))
    if literal is not None:
        # The person typed this address: saying what is wrong with it reveals nothing.
        problem = address_problem(literal, allow_private=allow_private)
        if problem:
            # Say how to allow it when the operator may (a LAN MinIO), never for metadata addresses.
            hint = _PRIVATE_HINT if not allow_private and address_problem(literal, allow_private=True) is None else ""
            raise EndpointNotAllowed(f"{literal} is {problem}{hint}")
        return [literal]
    # For a name, one answer whatever went wrong: saying that it does not resolve, or to
    # what kind of address (let alone which), would make this check an oracle for the
    # server's internal DNS. The log keeps the detail for the operator.
    refusal = EndpointNotAllowed(
        f"the host {host!r} must resolve, from this server, to public addresses only"
        + ("" if allow_private else f" (private and loopback addresses are not allowed){_PRIVATE_HINT}")
    )
    try:
        addresses = resolve(host, port)
    except (OSError, UnicodeError) as exc:
        logger.info("Storage endpoint %r refused: does not resolve (%s)", host, type(exc).__name__)
        raise refusal from None
    if not addresses:
        raise refusal
    for address in addresses:
        problem = address_problem(address, allow_private=allow_private)
        if problem:
            logger.info("Storage endpoint %r refused: resolves to %s (%s)", host, problem, address)
            raise refusal
    return addresses


def validate_endpoint(raw: str) -> str:
    """The normalised endpoint URL if the server may use it; ValidationFailed otherwise."""
    endpoint = parse_endpoint(raw)
    try:
        check_connect_addresses(endpoint.host, endpoint.port)
    except EndpointNotAllowed as exc:
        raise _refuse(f"endpoint: not allowed: {exc}.") from None
    return endpoint.url
