"""Celery tasks of the insights app: the DORA rollup's periodic repair."""

from __future__ import annotations

from celery import shared_task

from .reconcile import rollup_reconcile


@shared_task(ignore_result=True)
def insights_rollup_reconcile() -> dict:
    """Beat: recompute the rollup of the environments whose last 48 hours differ from their jobs
    (insights.reconcile); nothing written when none does. Safe to run twice."""
    done = rollup_reconcile()
    return {"stale": done.stale, "repaired": done.repaired}
