"""Talking to a binding's bucket: one boto3 client per binding per process.

Which library does what, and why:

- **Raw boto3** (`client.generate_presigned_url`) signs the presigned PUT. We must
  choose exactly which headers are signed — Content-Length when the size is declared,
  never Content-Type, so both PUTs in the public docs (with and without a Content-Type
  header) succeed — and django-storages' `url()` offers no control over that.
- **Raw boto3** (`client.head_object`) verifies an upload: one request gives size,
  ETag and stored content type together; `S3Storage.size()` / `exists()` would make one
  request each and do not expose the ETag.
- **Raw boto3** (`client.head_bucket`, then `list_objects_v2` to read the error code a
  HEAD response cannot carry) is the binding's "test connection".
- **django-storages' `S3Storage`** does the plain object operations it was made for:
  `delete()` (a missing object is not an error) and `url()` for the presigned GET with
  `ResponseContentDisposition` / `ResponseContentType`, so the browser saves the file
  under its name and declared type.

Both paths share one boto3 resource per binding (its `meta.client` is the client used
for presigning): built under a lock, cached per process, rebuilt when the binding's
connection settings or credentials change. SigV4, path-style when `path_style`, short
connect/read timeouts and botocore's "standard" retries. Region "auto" (Cloudflare R2)
is passed through as the signing region.

Every connection the client opens goes through `_GuardedConnectionMixin`, which resolves
the host, checks every address (storage.endpoints) and connects to a checked address —
so the endpoint rule holds at connect time too, not only when the binding was saved.
"""

from __future__ import annotations

import hashlib
import logging
import socket
import sys
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.awsrequest
import botocore.httpsession
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)
from django.utils.http import content_disposition_header
from storages.backends.s3 import S3Storage
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util import connection as urllib3_connection

from . import endpoints
from .models import StorageBinding

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5
READ_TIMEOUT = 30
MAX_ATTEMPTS = 3
# "Test connection" answers a person waiting on a page: fail fast, no retries.
TEST_CONNECT_TIMEOUT = 3
TEST_READ_TIMEOUT = 5
MAX_CACHED_CLIENTS = 256


class StorageError(Exception):
    """A bucket operation failed. `permanent` errors will not fix themselves by retrying."""

    def __init__(self, message: str, *, code: str, permanent: bool):
        super().__init__(message)
        self.message = message
        self.code = code
        self.permanent = permanent


# --- connect-time endpoint check ----------------------------------------------------------


class EndpointRefused(Exception):
    """Raised inside a connection attempt; no socket was opened."""


class EndpointRedirected(BotoCoreError):
    """The endpoint answered a 3xx. Never followed: a redirect could lead the server
    anywhere (the connect-time check would hold, but botocore's region redirector
    re-sends until Python's recursion limit, ~77 requests, then crashes)."""

    fmt = "The storage endpoint answered with a redirect (HTTP {status})."


def _refuse_redirects(response=None, **kwargs) -> None:
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
        error: OSError | None = None
        for address in addresses:
            try:
                sock = urllib3_connection.create_connection(
                    (str(address), self.port),
                    self.timeout,
                    source_address=self.source_address,
                    socket_options=self.socket_options,
                )
            except TimeoutError as exc:
                raise ConnectTimeoutError(
                    self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})"
                ) from exc
            except OSError as exc:
                error = exc
                continue
            sys.audit("http.client.connect", self, self.host, self.port)
            return sock
        raise NewConnectionError(self, f"Failed to establish a new connection: {error}")


class _GuardedHTTPConnection(_GuardedConnectionMixin, botocore.awsrequest.AWSHTTPConnection):
    pass


class _GuardedHTTPSConnection(_GuardedConnectionMixin, botocore.awsrequest.AWSHTTPSConnection):
    pass


class _GuardedHTTPConnectionPool(botocore.awsrequest.AWSHTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSConnectionPool(botocore.awsrequest.AWSHTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


def _install_connect_guard(client) -> None:
    # botocore has no public hook for the connection class; its URLLib3Session keeps the
    # pool classes in one dict shared with its pool managers. Fail loudly if an upgrade
    # changes that, rather than silently connecting unchecked.
    http_session = client._endpoint.http_session
    pools = getattr(http_session, "_pool_classes_by_scheme", None)
    if not isinstance(http_session, botocore.httpsession.URLLib3Session) or not isinstance(pools, dict):
        raise RuntimeError("botocore's HTTP session changed; the storage connect-time check cannot be installed.")
    pools["http"] = _GuardedHTTPConnectionPool
    pools["https"] = _GuardedHTTPSConnectionPool


# --- one client per binding ----------------------------------------------------------------


class BindingStorage(S3Storage):
    """django-storages' S3 backend on the binding's shared, guarded boto3 resource."""

    def __init__(self, *, binding: StorageBinding, resource):
        super().__init__(
            bucket_name=binding.bucket,
            endpoint_url=binding.endpoint,
            region_name=_region(binding),
            location="",
            file_overwrite=True,
            querystring_auth=True,
            default_acl=None,
        )
        self._resource = resource

    @property
    def connection(self):
        return self._resource


@dataclass(frozen=True)
class _Entry:
    fingerprint: str
    resource: Any
    storage: BindingStorage

    @property
    def client(self):
        return self.resource.meta.client


_lock = threading.Lock()
_cache: OrderedDict[Any, _Entry] = OrderedDict()


def _region(binding: StorageBinding) -> str:
    return binding.region or "us-east-1"


def _fingerprint(binding: StorageBinding) -> str:
    # A digest, so the cache never holds a second copy of the plaintext secret in a key.
    parts = [binding.endpoint, binding.region, binding.bucket, binding.access_key, binding.secret_key]
    parts.append("path" if binding.path_style else "virtual")
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


def _build(
    binding: StorageBinding, *, connect_timeout: float, read_timeout: float, max_attempts: int
):  # -> boto3 S3 ServiceResource
    config = Config(
        signature_version="s3v4",
        region_name=_region(binding),
        s3={"addressing_style": "path" if binding.path_style else "virtual"},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"mode": "standard", "max_attempts": max_attempts},
    )
    session = boto3.session.Session(
        aws_access_key_id=binding.access_key,
        aws_secret_access_key=binding.secret_key,
        region_name=_region(binding),
    )
    resource = session.resource("s3", endpoint_url=binding.endpoint, config=config)
    _install_connect_guard(resource.meta.client)
    resource.meta.client.meta.events.register_first("needs-retry.s3", _refuse_redirects)
    return resource


def _entry(binding: StorageBinding) -> _Entry:
    fingerprint = _fingerprint(binding)
    entry = _cache.get(binding.pk)
    if entry is not None and entry.fingerprint == fingerprint:
        return entry
    with _lock:
        entry = _cache.get(binding.pk)
        if entry is None or entry.fingerprint != fingerprint:
            resource = _build(
                binding, connect_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT, max_attempts=MAX_ATTEMPTS
            )
            entry = _Entry(fingerprint, resource, BindingStorage(binding=binding, resource=resource))
            _cache[binding.pk] = entry
        _cache.move_to_end(binding.pk)
        while len(_cache) > MAX_CACHED_CLIENTS:
            _cache.popitem(last=False)
        return entry


def client_for(binding: StorageBinding):
    """The binding's shared boto3 S3 client (thread-safe)."""
    return _entry(binding).client


def storage_for(binding: StorageBinding) -> BindingStorage:
    return _entry(binding).storage


def forget(binding_id) -> None:
    """Drop a binding's cached client (after delete; a change of settings rebuilds by itself)."""
    with _lock:
        _cache.pop(binding_id, None)


# --- operations ---------------------------------------------------------------------------------


def presign_put(*, binding: StorageBinding, key: str, size: int | None, expires_in: int) -> str:
    """A presigned PUT URL, signed locally (no network). Content-Length is signed when the
    size is known; Content-Type is not signed, so uploads with or without it succeed."""
    params: dict[str, Any] = {"Bucket": binding.bucket, "Key": key}
    if size is not None:
        params["ContentLength"] = size
    return client_for(binding).generate_presigned_url(
        "put_object", Params=params, ExpiresIn=expires_in, HttpMethod="PUT"
    )


def presign_get(*, binding: StorageBinding, key: str, file_name: str, content_type: str, expires_in: int) -> str:
    """A presigned GET URL that makes a browser save the object as `file_name`."""
    parameters = {
        "ResponseContentDisposition": content_disposition_header(as_attachment=True, filename=file_name),
        "ResponseContentType": content_type,
    }
    return storage_for(binding).url(key, parameters=parameters, expire=expires_in)


@dataclass(frozen=True)
class ObjectInfo:
    size: int
    etag: str
    content_type: str


def head_object(*, binding: StorageBinding, key: str) -> ObjectInfo | None:
    """What the bucket holds under `key`, or None if nothing. Raises StorageError."""
    try:
        head = client_for(binding).head_object(Bucket=binding.bucket, Key=key)
    except ClientError as exc:
        if _status(exc) == 404 and _code(exc) in ("404", "NoSuchKey", "NotFound"):
            return None
        raise _classify(exc) from None
    except (BotoCoreError, EndpointRefused) as exc:
        raise _classify(exc) from None
    return ObjectInfo(
        size=int(head.get("ContentLength", 0)),
        etag=str(head.get("ETag", "")).strip('"')[:128],
        content_type=str(head.get("ContentType", ""))[:255],
    )


def delete_object(*, binding: StorageBinding, key: str) -> None:
    """Remove `key`; a missing object is fine. Raises StorageError."""
    try:
        storage_for(binding).delete(key)
    except (ClientError, BotoCoreError, EndpointRefused) as exc:
        raise _classify(exc) from None


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    code: str
    message: str


_MESSAGES = {
    "invalid_access_key": "The access key is not known to the storage service.",
    "signature_mismatch": "The secret key does not match the access key (bad signature).",
    "no_such_bucket": "The bucket does not exist at this endpoint.",
    "access_denied": "The key is valid but may not access this bucket.",
    "wrong_region": "The bucket is in another region than the binding's.",
}


def check_binding(binding: StorageBinding) -> CheckResult:
    """Check the bucket is reachable with the binding's key (HeadBucket, short timeouts).

    A fresh, non-cached client with no retries: a person is waiting for the answer.
    """
    client = _build(
        binding, connect_timeout=TEST_CONNECT_TIMEOUT, read_timeout=TEST_READ_TIMEOUT, max_attempts=1
    ).meta.client
    try:
        try:
            client.head_bucket(Bucket=binding.bucket)
        except ClientError as exc:
            if _status(exc) not in (400, 403):
                raise
            # A HEAD response has no body, so no error code: ask again with a GET to tell
            # a bad key from a bad signature from a missing permission.
            client.list_objects_v2(Bucket=binding.bucket, MaxKeys=1)
            raise
    except (ClientError, BotoCoreError, EndpointRefused) as exc:
        error = _classify(exc)
        return CheckResult(ok=False, code=error.code, message=error.message)
    finally:
        # The one-off client's pool would otherwise keep its socket until garbage collection.
        client.close()
    return CheckResult(ok=True, code="ok", message="The bucket is reachable with this key.")


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code") or "")


def _classify(exc: Exception) -> StorageError:
    """Turn a boto3 error into a StorageError with a reason safe to show to the customer."""
    if isinstance(exc, HTTPClientError) and isinstance(exc.kwargs.get("error"), EndpointRefused):
        exc = exc.kwargs["error"]
    if isinstance(exc, EndpointRefused):
        return StorageError(f"The storage endpoint is not allowed: {exc}.", code="endpoint_not_allowed", permanent=True)
    if isinstance(exc, EndpointRedirected):
        region = exc.kwargs.get("region")
        if region:
            return StorageError(
                f"{_MESSAGES['wrong_region']} The bucket is in {region}.", code="wrong_region", permanent=True
            )
        return StorageError(
            f"The storage endpoint answered with a redirect (HTTP {exc.kwargs['status']}); Deplite does not follow "
            "redirects. Set the endpoint to the address that serves the bucket.",
            code="endpoint_redirect",
            permanent=True,
        )
    if isinstance(exc, ClientError):
        code, status = _code(exc), _status(exc)
        if code == "InvalidAccessKeyId":
            return StorageError(_MESSAGES["invalid_access_key"], code="invalid_access_key", permanent=True)
        if code == "SignatureDoesNotMatch":
            return StorageError(_MESSAGES["signature_mismatch"], code="signature_mismatch", permanent=True)
        if code == "NoSuchBucket" or (status == 404 and code in ("404", "NotFound")):
            return StorageError(_MESSAGES["no_such_bucket"], code="no_such_bucket", permanent=True)
        if code in ("AccessDenied", "403", "AllAccessDisabled") or status == 403:
            return StorageError(_MESSAGES["access_denied"], code="access_denied", permanent=True)
        if code in ("PermanentRedirect", "AuthorizationHeaderMalformed", "301") or status == 301:
            return StorageError(_MESSAGES["wrong_region"], code="wrong_region", permanent=True)
        if status >= 500 or code in ("SlowDown", "RequestTimeout", "ServiceUnavailable", "InternalError"):
            return StorageError(
                f"The storage service answered HTTP {status or code}; try again later.",
                code="storage_unavailable",
                permanent=False,
            )
        return StorageError(
            f"The storage service refused the request ({code or status}).", code="storage_error", permanent=True
        )
    if isinstance(exc, BotoConnectionError | HTTPClientError):
        return StorageError(
            "The storage endpoint could not be reached (connection failed or timed out).",
            code="endpoint_unreachable",
            permanent=False,
        )
    return StorageError(f"The storage request failed ({type(exc).__name__}).", code="storage_error", permanent=False)
