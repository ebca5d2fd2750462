"""A claim whose answer never reached the agent: the agent's heartbeat does not list the job, the server
puts it back in the queue, and the same agent then claims it and runs it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from orgs.models import AuditEvent
from triggers.models import Job, JobStatus

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_job_whose_claim_answer_was_lost_is_requeued_and_run_by_the_same_agent(e2e):
    e2e.home.write_workflow(
        "hello",
        """
        steps:
          - name: Hello
            run: echo "hello from the second claim"
        """,
    )
    trigger = e2e.create_trigger("hello")
    agent = e2e.create_agent("web-1")
    job_id = e2e.run(trigger)["jobId"]
    # The claim as the server made it, its answer lost on the way: running for this agent, which never
    # heard of it, since longer than the grace (the server runs with the default one).
    claimed_at = timezone.now() - timedelta(seconds=settings.DEPLITE_CLAIM_CONFIRM_GRACE_SECONDS + 60)
    assert Job.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING, agent_id=agent["agent_id"], agent_name="web-1", claimed_at=claimed_at
    )

    e2e.start_agent("--poll-wait", "2")
    job = e2e.wait_job(job_id, timeout=60)

    assert job["status"] == "succeeded", job
    assert "hello from the second claim" in e2e.log_text(job_id)
    row = Job.objects.get(pk=job_id)
    assert str(row.agent_id) == agent["agent_id"] and row.claimed_at > claimed_at
    requeued = AuditEvent.objects.get(action="job.requeued", target_id=job_id)
    assert (requeued.actor_kind, requeued.actor_id) == ("agent", agent["agent_id"])
