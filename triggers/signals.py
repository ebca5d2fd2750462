"""Signals other apps listen to; `triggers` never imports its listeners (notifications)."""

from django.dispatch import Signal

#: Sent once per job, after the commit that moved it to a final state
#: (succeeded, failed or cancelled). kwargs: job_id (UUID), org_id (UUID), status (str).
job_finished = Signal()
