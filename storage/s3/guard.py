"""The endpoint rule (storage.endpoints) at connect time, for every connection a binding's client opens.

`_GuardedConnectionMixin` resolves the host, checks every address and connects to a checked
address, so the rule holds when the request is made, not only when the binding was saved;
`refuse_redirects` stops botocore before it follows a 3xx anywhere.
"""

from __future__ import annotations

import socket
import sys

import botocore.awsrequest
import botocore.httpsession
from botocore.exceptions import BotoCoreError
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util import connection as urllib3_connection

from .. import endpoints


class EndpointRefused(Exception):
    """Raised inside a connection attempt; no socket was opened."""


class EndpointRedirected(BotoCoreError):
    """The endpoint answered a 3xx. Never followed: a redirect could lead the server
    anywhere (the connect-time check would hold, but botocore's region redirector
    re-sends until Python's recursion limit, ~77 requests, then crashes)."""

    fmt = "The storage endpoint answered with a redirect (HTTP {status})."


def refuse_redirects(response=None, **kwargs) -> None:
    # First 'needs-retry' handler: raising here stops botocore before its S3 region
    # redirector (or a retry) sends the request again.
    http_response = response[0] if response else None
    if http_response is not None and 300 <= http_response.status_code < 400:
        raise EndpointRedirected(
            status=http_response.status_code, region=http_response.headers.get("x-amz-bucket-region", "")
        )


class _GuardedConnectionMixin:
    """urllib3 connection whose socket only ever reaches an address storage.endpoints allows.

    The host is resolved once here, every address checked, and the socket connected to a
    checked address — a second DNS answer (rebinding) cannot slip in between the check
    and the connect. TLS still verifies the certificate against the host name.
    """

    def _new_conn(self) -> socket.socket:
        try:
            addresses = endpoints.check_connect_addresses(self._dns_host, self.port)
        except endpoints.EndpointNotAllowed as exc:
            raise EndpointRefused(str(exc)) from None
        return connect_first(self, addresses)


def connect_first(conn, addresses) -> socket.socket:
    """A socket to the first of `addresses` (already checked) that answers, for urllib3 connection `conn`.

    Shared by every client that may only reach addresses a guard allowed (this S3 client, the webhook
    client): the host was resolved once and checked, so no second DNS answer can slip in before the connect.
    """
    error: OSError | None = None
    for address in addresses:
        try:
            sock = urllib3_connection.create_connection(
                (str(address), conn.port),
                conn.timeout,
                source_address=conn.source_address,
                socket_options=conn.socket_options,
            )
        except TimeoutError as exc:
            raise ConnectTimeoutError(
                conn, f"Connection to {conn.host} timed out. (connect timeout={conn.timeout})"
            ) from exc
        except OSError as exc:
            error = exc
            continue
        sys.audit("http.client.connect", conn, conn.host, conn.port)
        return sock
    raise NewConnectionError(conn, f"Failed to establish a new connection: {error}")


class _GuardedHTTPConnection(_GuardedConnectionMixin, botocore.awsrequest.AWSHTTPConnection):
    pass


class _GuardedHTTPSConnection(_GuardedConnectionMixin, botocore.awsrequest.AWSHTTPSConnection):
    pass


class _GuardedHTTPConnectionPool(botocore.awsrequest.AWSHTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSConnectionPool(botocore.awsrequest.AWSHTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


def install_connect_guard(client) -> None:
    # botocore has no public hook for the connection class; its URLLib3Session keeps the
    # pool classes in one dict shared with its pool managers. Fail loudly if an upgrade
    # changes that, rather than silently connecting unchecked.
    http_session = client._endpoint.http_session
    pools = getattr(http_session, "_pool_classes_by_scheme", None)
    if not isinstance(http_session, botocore.httpsession.URLLib3Session) or not isinstance(pools, dict):
        raise RuntimeError("botocore's HTTP session changed; the storage connect-time check cannot be installed.")
    pools["http"] = _GuardedHTTPConnectionPool
    pools["https"] = _GuardedHTTPSConnectionPool
