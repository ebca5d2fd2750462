"""Writes for storage bindings and files, by concern:

- `bindings`: create, update, delete and check a binding;
- `files`: the API side of a file (presigned upload, complete, download URL, delete);
- `outputs`: a job's own uploads (declared SHA-256, checked synchronously on complete);
- `verification`: the worker side (verify the object, remove objects, the sweeper).

API-facing services are keyword-only, run in one transaction, write their audit event and
enqueue worker tasks after commit (deplite.background). Callers import from here.
"""

from ..models import LIVE_STATUSES
from .bindings import binding_check, binding_create, binding_delete, binding_update
from .files import file_complete, file_delete, file_download_url, file_presign_upload
from .outputs import output_complete, output_presign_upload, outputs_expire
from .verification import MAX_VERIFY_ATTEMPTS, file_remove_object, file_verify, files_sweep

__all__ = [
    "LIVE_STATUSES",
    "MAX_VERIFY_ATTEMPTS",
    "binding_check",
    "binding_create",
    "binding_delete",
    "binding_update",
    "file_complete",
    "file_delete",
    "file_download_url",
    "file_presign_upload",
    "file_remove_object",
    "file_verify",
    "files_sweep",
    "output_complete",
    "output_presign_upload",
    "outputs_expire",
]
