"""Environments gate their jobs: one at a time in order, newest-only, allowed refs, locks,
approvals, timeouts and rollback — through the services every entry point uses."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from deplite.errors import Conflict, Forbidden, Unprocessable
from orgs.actors import Actor
from orgs.models import AuditEvent, Role
from tests.factories import MembershipFactory, TriggerFactory, make_token
from triggers import services
from triggers.environments import services as env_services
from triggers.models import Environment, Job, JobSource, JobStatus
from triggers.tasks import jobs_reap

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def production(org_a):
    return Environment.objects.create(org=org_a, name="production")


@pytest.fixture
def deploy(org_a, production):
    return TriggerFactory(org=org_a, name="deploy-prod", environment=production)


def run(trigger, user, ref="main", **kwargs) -> Job:
    result = services.trigger_run(
        trigger=trigger, actor=Actor.for_user(user), source=JobSource.API, ref=ref, params={}, **kwargs
    )
    return Job.objects.get(pk=result.job_id)


def claim(org) -> Job | None:
    return services.job_claim_next(org_id=org.pk, agent_id=uuid.uuid4(), agent_name="a1", agent_labels=[])


def finish(job: Job, status=JobStatus.SUCCEEDED) -> None:
    job.refresh_from_db()
    services.job_finish(job=job, status=status, exit_code=0 if status == JobStatus.SUCCEEDED else 1, error=None)


def statuses(*jobs) -> list[str]:
    return [Job.objects.get(pk=j.pk).status for j in jobs]


def test_one_at_a_time_in_creation_order(org_a, deploy, owner):
    first, second, third = (run(deploy, owner) for _ in range(3))
    assert statuses(first, second, third) == ["queued", "waiting", "waiting"]
    claimed = claim(org_a)
    assert claimed.pk == first.pk
    assert claim(org_a) is None  # the others are not claimable while it runs
    finish(first)
    assert statuses(second, third) == ["queued", "waiting"]
    assert claim(org_a).pk == second.pk
    finish(second, JobStatus.FAILED)  # a failure frees the environment too
    assert claim(org_a).pk == third.pk


@pytest.mark.parametrize("how", ["cancel", "timeout", "lost"])
def test_every_way_a_job_ends_frees_the_environment(org_a, deploy, owner, how, settings):
    first, second = run(deploy, owner), run(deploy, owner)
    job = claim(org_a)
    if how == "cancel":
        services.job_cancel(job=Job.objects.get(pk=job.pk), actor=Actor.for_user(owner))
        services.job_finish(job=Job.objects.get(pk=job.pk), status=JobStatus.CANCELLED, exit_code=None, error=None)
    elif how == "timeout":
        Job.objects.filter(pk=job.pk).update(claimed_at=timezone.now() - timedelta(hours=3), timeout_minutes=1)
        jobs_reap()
    else:
        services.job_fail(job_id=job.pk, error=services.AGENT_LOST, from_statuses=[JobStatus.RUNNING])
    assert statuses(first, second)[1] == "queued"


def test_cancelling_a_waiting_job_keeps_the_order(org_a, deploy, owner):
    first, second, third = (run(deploy, owner) for _ in range(3))
    services.job_cancel(job=second, actor=Actor.for_user(owner))
    claim(org_a)
    finish(first)
    assert statuses(second, third) == ["cancelled", "queued"]


def test_a_job_released_after_waiting_is_not_expired_by_its_age(org_a, deploy, owner, settings):
    first, second = run(deploy, owner), run(deploy, owner)
    old = timezone.now() - timedelta(seconds=settings.DEPLITE_QUEUED_JOB_MAX_AGE_SECONDS + 60)
    Job.objects.filter(pk=second.pk).update(created_at=old)  # it waited longer than a queued job may
    claim(org_a)
    finish(first)
    jobs_reap()
    assert statuses(second) == ["queued"]


def test_unlimited_lets_every_job_queue(org_a, deploy, production, owner):
    production.concurrency = "unlimited"
    production.save()
    jobs = [run(deploy, owner) for _ in range(3)]
    assert statuses(*jobs) == ["queued"] * 3


def test_newest_supersedes_the_older_waiting_jobs(org_a, deploy, production, owner, finished_signals):
    production.queue = "newest"
    production.save()
    running, older, newer = run(deploy, owner), run(deploy, owner), run(deploy, owner)
    assert statuses(running, older, newer) == ["queued", "cancelled", "waiting"]
    older.refresh_from_db()
    assert older.error == f"superseded by #{newer.short_id}"
    assert (older.pk, org_a.pk, "cancelled") in finished_signals  # notified like any ending
    claim(org_a)
    finish(running)
    assert statuses(newer) == ["queued"]


def test_a_ref_outside_the_allowed_patterns_is_refused_and_no_job_made(deploy, production, owner):
    production.allowed_refs = ["main", "release/*"]
    production.save()
    assert run(deploy, owner, ref="release/2.1").status == "queued"
    with pytest.raises(Unprocessable) as refused:
        run(deploy, owner, ref="feature/x")
    assert refused.value.code == "ref_not_allowed"
    assert "main, release/*" in refused.value.message
    assert refused.value.details["allowedRefs"] == ["main", "release/*"]
    assert Job.objects.filter(ref="feature/x").count() == 0


def test_a_lock_refuses_others_holds_their_queue_and_lets_the_holder_through(org_a, deploy, production, owner, member):
    queued_before = run(deploy, member)
    env_services.environment_lock(environment=production, actor=Actor.for_user(owner), reason="release freeze")
    assert statuses(queued_before) == ["waiting"]  # not claimed yet: it waits with the lock as reason
    with pytest.raises(Conflict) as refused:
        run(deploy, member)
    assert refused.value.code == "environment_locked"
    assert "owner@acme.test" in refused.value.message and "release freeze" in refused.value.message
    assert refused.value.details["lockedBy"] == "owner@acme.test"
    assert Job.objects.filter(trigger=deploy).count() == 1
    mine = run(deploy, owner)
    assert statuses(mine) == ["queued"]  # the holder's run goes through, ahead of the held job
    assert claim(org_a).pk == mine.pk
    finish(mine)
    assert statuses(queued_before) == ["waiting"]
    env_services.environment_unlock(environment=production, actor=Actor.for_user(owner), role=Role.OWNER)
    assert statuses(queued_before) == ["queued"]
    actions = list(
        AuditEvent.objects.filter(org=org_a, action__startswith="environment.").values_list("action", flat=True)
    )
    assert actions.count("environment.locked") == 1 and actions.count("environment.unlocked") == 1


def test_only_the_holder_or_an_admin_unlocks(production, owner, member, admin_user):
    env_services.environment_lock(environment=production, actor=Actor.for_user(owner), reason="freeze")
    with pytest.raises(Forbidden):
        env_services.environment_unlock(environment=production, actor=Actor.for_user(member), role=Role.MEMBER)
    env_services.environment_unlock(environment=production, actor=Actor.for_user(admin_user), role=Role.ADMIN)
    production.refresh_from_db()
    assert not production.is_locked()


def test_an_expired_lock_refuses_nobody_and_the_sweeper_releases_its_queue(org_a, deploy, production, owner, member):
    env_services.environment_lock(
        environment=production,
        actor=Actor.for_user(owner),
        reason="night",
        expires_at=timezone.now() + timedelta(hours=1),
    )
    Environment.objects.filter(pk=production.pk).update(lock_expires_at=timezone.now() - timedelta(seconds=1))
    job = run(deploy, member)  # expired: not refused even before the sweeper ran
    assert statuses(job) == ["queued"]
    done = env_services.environments_sweep()
    assert done["unlocked"] == 1
    production.refresh_from_db()
    assert production.locked_at is None


def test_a_scheduled_fire_under_a_lock_makes_a_cancelled_job(deploy, production, owner, member, finished_signals):
    env_services.environment_lock(environment=production, actor=Actor.for_user(owner), reason="release freeze")
    job = run(deploy, member, record_lock=True)
    assert job.status == "cancelled"
    assert job.error == "environment locked by owner@acme.test: 'release freeze'"
    assert any(seen[0] == job.pk for seen in finished_signals)


def test_an_api_token_cannot_lock_or_approve(org_a, production, deploy, owner):
    token, _ = make_token(org_a, created_by=owner)
    actor = Actor(kind="token", id=str(token.pk), label=token.name, token=token)
    with pytest.raises(Forbidden) as refused:
        env_services.environment_lock(environment=production, actor=actor, reason="x")
    assert refused.value.code == "person_required"
    production.required_approvals = 1
    production.save()
    job = run(deploy, owner)
    with pytest.raises(Forbidden):
        env_services.job_decide(job=job, actor=actor, decision="approved")


@pytest.fixture
def gated(production):
    production.required_approvals = 1
    production.save()
    return production


def test_approval_moves_the_job_on(org_a, deploy, gated, member, owner):
    job = run(deploy, member)
    assert job.status == "pending_approval"
    assert job.approval_expires_at is not None
    assert claim(org_a) is None
    decided = env_services.job_decide(job=job, actor=Actor.for_user(owner), decision="approved", comment="lgtm")
    assert decided.status == "queued" and decided.approved_at is not None
    assert claim(org_a).pk == job.pk


def test_self_approval_is_refused_by_default(deploy, gated, owner):
    job = run(deploy, owner)
    with pytest.raises(Forbidden) as refused:
        env_services.job_decide(job=job, actor=Actor.for_user(owner), decision="approved")
    assert refused.value.code == "self_approval"
    gated.prevent_self_approval = False
    gated.save()
    assert env_services.job_decide(job=job, actor=Actor.for_user(owner), decision="approved").status == "queued"


def test_a_token_run_counts_as_its_creator_for_self_approval(org_a, deploy, gated, owner):
    token, _ = make_token(org_a, created_by=owner)
    actor = Actor(kind="token", id=str(token.pk), label=token.name, token=token)
    job = Job.objects.get(
        pk=services.trigger_run(trigger=deploy, actor=actor, source="api", ref="main", params={}).job_id
    )
    assert job.requested_by_id == owner.pk
    with pytest.raises(Forbidden):
        env_services.job_decide(job=job, actor=Actor.for_user(owner), decision="approved")


def test_only_eligible_members_approve(org_a, deploy, gated, member, owner):
    job = run(deploy, owner)
    with pytest.raises(Forbidden) as refused:
        env_services.job_decide(job=job, actor=Actor.for_user(member), decision="approved")
    assert "owners and admins" in refused.value.message
    gated.approvers.set([member])  # a named list replaces the role
    assert env_services.job_decide(job=job, actor=Actor.for_user(member), decision="approved").status == "queued"


def test_approving_twice_counts_once(org_a, deploy, gated, member, owner, admin_user):
    gated.required_approvals = 2
    gated.save()
    job = run(deploy, member)
    env_services.job_decide(job=job, actor=Actor.for_user(owner), decision="approved")
    again = env_services.job_decide(job=job, actor=Actor.for_user(owner), decision="approved")
    assert again.status == "pending_approval"
    assert job.approvals.count() == 1
    assert AuditEvent.objects.filter(org=org_a, action="job.approved").count() == 1
    assert env_services.job_decide(job=job, actor=Actor.for_user(admin_user), decision="approved").status == "queued"


def test_a_rejection_ends_the_job_with_the_reason(deploy, gated, member, owner, finished_signals):
    job = run(deploy, member)
    rejected = env_services.job_decide(job=job, actor=Actor.for_user(owner), decision="rejected", comment="not today")
    assert rejected.status == "cancelled"
    assert rejected.error == "rejected by owner@acme.test: not today"
    assert any(seen[0] == job.pk and seen[2] == "cancelled" for seen in finished_signals)
    with pytest.raises(Conflict):
        env_services.job_decide(job=job, actor=Actor.for_user(owner), decision="approved")


def test_an_approval_not_given_in_time_ends_the_job(deploy, gated, member):
    job = run(deploy, member)
    Job.objects.filter(pk=job.pk).update(approval_expires_at=timezone.now() - timedelta(seconds=1))
    assert env_services.environments_sweep()["timedOut"] == 1
    job.refresh_from_db()
    assert (job.status, job.error) == ("cancelled", "approval timed out")


def test_an_approved_job_waits_its_turn(org_a, deploy, gated, member, owner):
    gated.required_approvals = 0
    gated.save()
    running = run(deploy, member)
    gated.required_approvals = 1
    gated.save()
    job = run(deploy, member)
    assert env_services.job_decide(job=job, actor=Actor.for_user(owner), decision="approved").status == "waiting"
    claim(org_a)
    finish(running)
    assert statuses(job) == ["queued"]


def test_rollback_runs_the_previous_deployment_again(org_a, deploy, production, owner):
    for ref in ("v1", "v2"):
        job = run(deploy, owner, ref=ref)
        assert claim(org_a).pk == job.pk
        finish(job)
    current = Job.objects.get(ref="v2")
    result = env_services.environment_rollback(environment=production, actor=Actor.for_user(owner), source="api")
    rollback = Job.objects.get(pk=result.job_id)
    assert (rollback.ref, rollback.rollback_of_id, rollback.status) == ("v1", current.pk, "queued")


def test_rollback_without_an_earlier_deployment_is_a_conflict(production, owner):
    with pytest.raises(Conflict) as refused:
        env_services.environment_rollback(environment=production, actor=Actor.for_user(owner), source="api")
    assert refused.value.code == "nothing_to_roll_back"


def test_the_sweeper_releases_a_queue_whose_release_was_lost(org_a, deploy, owner):
    first, second = run(deploy, owner), run(deploy, owner)
    Job.objects.filter(pk=first.pk).update(status=JobStatus.SUCCEEDED)  # ended without the gate (a crash)
    assert env_services.environments_sweep()["advanced"] == 1
    assert statuses(second) == ["queued"]


def test_a_trigger_without_an_environment_is_not_gated(org_a, owner):
    plain = TriggerFactory(org=org_a)
    jobs = [run(plain, owner) for _ in range(2)]
    assert statuses(*jobs) == ["queued", "queued"]
    assert all(j.queued_at == j.created_at for j in jobs)


def test_a_member_of_another_org_named_as_approver_is_refused(org_a, org_b, production, owner):
    stranger = MembershipFactory(org=org_b).user
    from deplite.errors import ValidationFailed

    with pytest.raises(ValidationFailed):
        env_services.environment_update(environment=production, actor=Actor.for_user(owner), approver_ids=[stranger.pk])


def test_an_org_with_environments_named_by_triggers_can_be_deleted(org_a, deploy, owner):
    run(deploy, owner)
    org_a.delete()
    assert not Environment.objects.exists() and not Job.objects.exists()
