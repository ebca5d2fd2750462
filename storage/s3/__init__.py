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

Every connection the client opens goes through `guard._GuardedConnectionMixin`, which resolves
the host, checks every address (storage.endpoints) and connects to a checked address —
so the endpoint rule holds at connect time too, not only when the binding was saved.

The package: `clients.py` (one client per binding), `guard.py` (the connect-time endpoint
check), `operations.py` (what Deplite does with a bucket), `errors.py` (StorageError).
"""

from .clients import client_for, forget, storage_for
from .errors import StorageError
from .operations import (
    CheckResult,
    ObjectInfo,
    check_binding,
    delete_object,
    head_object,
    object_sha256,
    presign_get,
    presign_put,
)

__all__ = [
    "CheckResult",
    "ObjectInfo",
    "StorageError",
    "check_binding",
    "client_for",
    "delete_object",
    "forget",
    "head_object",
    "object_sha256",
    "presign_get",
    "presign_put",
    "storage_for",
]
