"""Signals other apps listen to; `triggers` never imports its listeners (notifications)."""

from django.dispatch import Signal

#: Sent once per job, after the commit that moved it to a final state
#: (succeeded, failed or cancelled). kwargs: job_id (UUID), org_id (UUID), status (str).
job_finished = Signal()

#: Sent after the commit that corrected a job's final state: a job the server had failed as
#: `agent lost` whose agent came back with its log and result (lifecycle.job_finish).
#: kwargs: job_id (UUID), org_id (UUID), status (str, the corrected one).
job_result_corrected = Signal()

#: Sent after the commit that created a job waiting for approval (`pending_approval`): chat
#: posts its approval request with buttons. kwargs: job_id (UUID), org_id (UUID).
job_awaiting_approval = Signal()
