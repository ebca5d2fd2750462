"""A job an environment ends without running it (rejected, superseded, approval timed out, refused
by a lock) is announced as a failure, with the reason on the Error: line."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from orgs.actors import Actor
from orgs.models import Role
from tests.factories import MembershipFactory
from triggers.environments import services as env_services
from triggers.models import Environment, Job

from .conftest import run, slack_trigger


@pytest.fixture
def approver(org_a):
    return MembershipFactory(org=org_a, role=Role.ADMIN, user__email="ana@acme.test").user


@pytest.fixture
def production(org_a):
    return Environment.objects.create(org=org_a, name="production", required_approvals=1)


def announced(fake_slack) -> str:
    (message,) = fake_slack.in_channel("C0456")
    return message["text"]


@pytest.mark.parametrize("notify_on", ["failure", "always"])
def test_a_rejected_job_is_announced_as_a_failure_with_the_reason(
    notify_on, org_a, slack_a, fake_slack, production, approver, django_capture_on_commit_callbacks
):
    trigger = slack_trigger(org_a, notify_on=notify_on)
    trigger.environment = production
    trigger.save()
    job = run(trigger)
    assert job.status == "pending_approval"
    with django_capture_on_commit_callbacks(execute=True):
        env_services.job_decide(job=job, actor=Actor.for_user(approver), decision="rejected", comment="freeze week")
    text = announced(fake_slack)
    assert text.startswith(f"[CANCELLED] Job #{job.short_id} — deploy-prod\n")
    assert "Error: rejected by ana@acme.test: freeze week" in text


def test_a_timed_out_approval_is_announced_with_its_reason(
    org_a, slack_a, fake_slack, production, django_capture_on_commit_callbacks
):
    trigger = slack_trigger(org_a, notify_on="failure")
    trigger.environment = production
    trigger.save()
    job = run(trigger)
    Job.objects.filter(pk=job.pk).update(approval_expires_at=timezone.now() - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        env_services.environments_sweep()
    assert "Error: approval timed out" in announced(fake_slack)


def test_a_superseded_job_is_announced_with_the_job_that_replaced_it(
    org_a, slack_a, fake_slack, django_capture_on_commit_callbacks
):
    newest = Environment.objects.create(org=org_a, name="staging", queue="newest")
    trigger = slack_trigger(org_a, notify_on="failure")
    trigger.environment = newest
    trigger.save()
    run(trigger)  # queued: holds the environment
    older = run(trigger)
    with django_capture_on_commit_callbacks(execute=True):
        newer = run(trigger)
    older.refresh_from_db()
    assert older.status == "cancelled"
    assert f"Error: superseded by #{newer.short_id}" in announced(fake_slack)
