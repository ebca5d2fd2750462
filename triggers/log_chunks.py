"""A job's log as append-only chunks: a model of the triggers app, imported by triggers.models."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from orgs.models import Organization


class JobLogChunk(models.Model):
    """An append-only piece of a job's output, numbered per job for incremental reads."""

    id = models.BigAutoField(primary_key=True)
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+", db_index=True)
    job = models.ForeignKey("triggers.Job", on_delete=models.CASCADE, related_name="log_chunks")
    seq = models.PositiveIntegerField()
    step = models.PositiveIntegerField(null=True, blank=True)
    # "stderr" for a step's standard error; "" for standard output and the agent's own lines.
    stream = models.CharField(max_length=6, blank=True, default="")
    data = models.TextField()
    at = models.DateTimeField(default=timezone.now)

    token_trigger_field = "job__trigger_id"  # noqa: S105 (a lookup, not a secret)

    class Meta:
        ordering = ["job", "seq"]
        constraints = [models.UniqueConstraint(fields=["job", "seq"], name="joblogchunk_unique_job_seq")]
