"""What keeps the DORA rollup current (insights.rollup): a deploy finished or corrected, a rollback
asked for or refused, or any job row saved in a state the rollup counts (an admin's or a test's).

All of them run after the write commits: the job signals are sent then (deplite.background
.send_after_commit), and a saved row's recompute waits for its transaction's commit. So a failing
recompute is logged and never breaks nor undoes the write, and a write rolled back never reaches the
rollup. What a failure leaves stale, `insights_rollup_reconcile` (insights.tasks) repairs.
"""

from __future__ import annotations

import logging
import uuid

from django.db import transaction

from .rollup import rollup_job_changed

logger = logging.getLogger(__name__)

# The job fields the rollup reads (insights.rollup): a save that names none of them (an agent's
# events: log counters, started_at) changes nothing the rollup counts. update_fields may name a
# foreign key either way.
ROLLUP_FIELDS = frozenset(
    {
        "org",
        "org_id",
        "environment",
        "environment_id",
        "status",
        "created_at",
        "approved_at",
        "claimed_at",
        "finished_at",
        "commit_time",
        "rollback_of",
        "rollback_of_id",
    }
)


def on_job_finished(sender, *, job_id, **kwargs) -> None:
    rollup_job_changed(job_id=job_id)


def on_job_result_corrected(sender, *, job_id, **kwargs) -> None:
    rollup_job_changed(job_id=job_id, corrected=True)


def on_job_saved(sender, *, instance, raw: bool = False, update_fields=None, **kwargs) -> None:
    # A new queued job (the run path) has neither: it returns here without a query.
    if raw or not instance.environment_id or not (instance.finished_at or instance.rollback_of_id):
        return
    if update_fields is not None and not ROLLUP_FIELDS.intersection(update_fields):
        return
    job_id = instance.pk

    def recompute_after_commit() -> None:  # named: Django's robust on_commit logs a failure by __qualname__
        _recompute_saved(job_id)

    # Robust: even a failure of the logging below stays out of the committed request.
    transaction.on_commit(recompute_after_commit, robust=True)


def _recompute_saved(job_id: uuid.UUID) -> None:
    try:
        rollup_job_changed(job_id=job_id)
    except Exception:
        # The write is committed and stays; the rollup catches up with the reconcile's next run.
        logger.exception("DORA rollup not updated after job %s was saved; the periodic reconcile repairs it.", job_id)
