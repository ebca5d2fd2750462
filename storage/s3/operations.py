"""What Deplite does with a bucket: presign a PUT and a GET, look at and delete an object, and
"test connection". Every failure is a StorageError (storage.s3.errors)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from django.utils.http import content_disposition_header

from ..models import StorageBinding
from .clients import TEST_CONNECT_TIMEOUT, TEST_READ_TIMEOUT, build, client_for, storage_for
from .errors import classify, error_code, http_status
from .guard import EndpointRefused


def presign_put(
    *, binding: StorageBinding, key: str, size: int | None, expires_in: int, sha256_b64: str | None = None
) -> str:
    """A presigned PUT URL, signed locally (no network). Content-Length is signed when the
    size is known; Content-Type is not signed, so uploads with or without it succeed.

    With `sha256_b64` (base64 of the content's SHA-256) the `x-amz-checksum-sha256` header is
    signed too: S3 refuses a body that does not match it and keeps it with the object."""
    params: dict[str, Any] = {"Bucket": binding.bucket, "Key": key}
    if size is not None:
        params["ContentLength"] = size
    if sha256_b64 is not None:
        params["ChecksumSHA256"] = sha256_b64
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
    # Base64 SHA-256 the store kept with the object, when asked for (checksums=True) and it has one.
    sha256_b64: str = ""


def head_object(*, binding: StorageBinding, key: str, checksums: bool = False) -> ObjectInfo | None:
    """What the bucket holds under `key`, or None if nothing. Raises StorageError.

    `checksums`: ask for the stored checksums too (ChecksumMode=ENABLED)."""
    extra = {"ChecksumMode": "ENABLED"} if checksums else {}
    try:
        head = client_for(binding).head_object(Bucket=binding.bucket, Key=key, **extra)
    except ClientError as exc:
        if http_status(exc) == 404 and error_code(exc) in ("404", "NoSuchKey", "NotFound"):
            return None
        raise classify(exc) from None
    except (BotoCoreError, EndpointRefused) as exc:
        raise classify(exc) from None
    return ObjectInfo(
        size=int(head.get("ContentLength", 0)),
        etag=str(head.get("ETag", "")).strip('"')[:128],
        content_type=str(head.get("ContentType", ""))[:255],
        sha256_b64=str(head.get("ChecksumSHA256", "") or ""),
    )


def object_sha256(*, binding: StorageBinding, key: str) -> str | None:
    """Hex SHA-256 of the object's content, read once in chunks (memory flat), or None if missing.

    For stores that keep no checksum with an object (some S3-compatibles): the one way left
    to know the bytes are the ones declared. Raises StorageError."""
    digest = hashlib.sha256()
    try:
        body = client_for(binding).get_object(Bucket=binding.bucket, Key=key)["Body"]
        try:
            for chunk in body.iter_chunks(chunk_size=1024 * 1024):
                digest.update(chunk)
        finally:
            body.close()
    except ClientError as exc:
        if http_status(exc) == 404:
            return None
        raise classify(exc) from None
    except (BotoCoreError, EndpointRefused) as exc:
        raise classify(exc) from None
    return digest.hexdigest()


def delete_object(*, binding: StorageBinding, key: str) -> None:
    """Remove `key`; a missing object is fine. Raises StorageError."""
    try:
        storage_for(binding).delete(key)
    except (ClientError, BotoCoreError, EndpointRefused) as exc:
        raise classify(exc) from None


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    code: str
    message: str


def check_binding(binding: StorageBinding) -> CheckResult:
    """Check the bucket is reachable with the binding's key (HeadBucket, short timeouts).

    A fresh, non-cached client with no retries: a person is waiting for the answer.
    """
    client = build(
        binding, connect_timeout=TEST_CONNECT_TIMEOUT, read_timeout=TEST_READ_TIMEOUT, max_attempts=1
    ).meta.client
    try:
        try:
            client.head_bucket(Bucket=binding.bucket)
        except ClientError as exc:
            if http_status(exc) not in (400, 403):
                raise
            # A HEAD response has no body, so no error code: ask again with a GET to tell
            # a bad key from a bad signature from a missing permission.
            client.list_objects_v2(Bucket=binding.bucket, MaxKeys=1)
            raise
    except (ClientError, BotoCoreError, EndpointRefused) as exc:
        error = classify(exc)
        return CheckResult(ok=False, code=error.code, message=error.message)
    finally:
        # The one-off client's pool would otherwise keep its socket until garbage collection.
        client.close()
    return CheckResult(ok=True, code="ok", message="The bucket is reachable with this key.")
