"""Writes for triggers and jobs, by concern:

- `crud`: trigger create/update/delete;
- `notify_target`: a trigger's webhook target (its signing secret, disabled after a 410);
- `runs`: running a trigger (the job, its Idempotency-Key, waking agents);
- `claims`: an agent taking the oldest job it can run;
- `events`: an agent's step and log events;
- `lifecycle`: how a job ends (agent report, cancel, reapers, lost claims) through `_finalize`.

Callers import the public names from here: `from triggers.services import trigger_run`.
"""

from .claims import JOB_TOKEN_PREFIX, job_claim_next, job_for_token
from .crud import trigger_create, trigger_delete, trigger_update
from .events import job_record_events
from .lifecycle import AGENT_LOST, AGENT_LOST_THE_JOB, job_cancel, job_fail, job_finish, job_recover_unheld
from .notify_target import trigger_notify_disable, trigger_notify_enable, trigger_notify_secret_rotate
from .runs import IDEMPOTENCY_KEY_TTL, RunResult, job_enqueue_dispatch, job_rerun, trigger_run

__all__ = [
    "AGENT_LOST",
    "JOB_TOKEN_PREFIX",
    "job_for_token",
    "AGENT_LOST_THE_JOB",
    "IDEMPOTENCY_KEY_TTL",
    "RunResult",
    "job_cancel",
    "job_claim_next",
    "job_enqueue_dispatch",
    "job_fail",
    "job_finish",
    "job_record_events",
    "job_rerun",
    "job_recover_unheld",
    "trigger_create",
    "trigger_delete",
    "trigger_notify_disable",
    "trigger_notify_enable",
    "trigger_notify_secret_rotate",
    "trigger_run",
    "trigger_update",
]
