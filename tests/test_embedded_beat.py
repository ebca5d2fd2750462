from datetime import timedelta

from django.core.management import call_command
from django.utils import timezone

from triggers.models import Job, JobStatus

from .factories import JobFactory


def test_embedded_beat_runs_the_reapers_in_process(org_a, settings):
    settings.DEPLITE_QUEUED_JOB_MAX_AGE_SECONDS = 60
    stale = JobFactory(org=org_a)
    Job.objects.filter(pk=stale.pk).update(created_at=timezone.now() - timedelta(hours=1))
    fresh = JobFactory(org=org_a)
    call_command("embedded_beat", "--once")
    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert stale.status == JobStatus.FAILED and stale.error
    assert fresh.status == JobStatus.QUEUED
