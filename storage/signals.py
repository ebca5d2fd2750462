"""Signals other apps listen to (storage never imports them).

`file_status_changed` is sent after the transaction that changed the file commits, when a
file becomes available, failed, expired or deleted. Keyword arguments: `file_id` (UUID),
`org_id` (UUID), `status` (str, a FileStatus value). `sender` is StoredFile. Triggers use
it to start jobs that were waiting for a file still being verified.
"""

from django.dispatch import Signal

file_status_changed = Signal()
