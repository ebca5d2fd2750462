"""Web pages for triggers and jobs, on the same `org_page` resolver as every org page.

Thin views: the API's input serializers validate (TriggerInput, RunInput), the services
write (trigger_create/update/delete, trigger_run, job_cancel), and every query goes
through `request.principal.restrict(...)`. Job pages are in `jobs.py`, trigger pages in `triggers.py`,
environment pages (and a job's Approve / Reject) in `environments.py`.
"""

from .environments import (
    environment_delete,
    environment_detail,
    environment_edit,
    environment_lock,
    environment_queue_live,
    environment_rollback,
    environment_unlock,
    environments_list,
    job_approve,
    job_reject,
)
from .jobs import job_cancel, job_detail, job_live, job_log_raw, job_rerun, jobs_list, jobs_rows
from .triggers import (
    trigger_delete,
    trigger_detail,
    trigger_edit,
    trigger_new,
    trigger_rotate_notify_secret,
    trigger_run,
    triggers_list,
)

__all__ = [
    "environment_delete",
    "environment_detail",
    "environment_edit",
    "environment_lock",
    "environment_queue_live",
    "environment_rollback",
    "environment_unlock",
    "environments_list",
    "job_approve",
    "job_reject",
    "job_cancel",
    "job_detail",
    "job_live",
    "job_log_raw",
    "job_rerun",
    "jobs_list",
    "jobs_rows",
    "trigger_delete",
    "trigger_detail",
    "trigger_edit",
    "trigger_new",
    "trigger_rotate_notify_secret",
    "trigger_run",
    "triggers_list",
]
