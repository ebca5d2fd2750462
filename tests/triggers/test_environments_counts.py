"""Issue #20's correctness and cost promises at the service and request level: a run's exact query
count with and without an environment, and two approvers deciding at the same moment."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from orgs.actors import Actor
from orgs.models import AuditEvent, Role
from triggers.environments import services as environments
from triggers.models import Concurrency, Environment, Job, JobApproval, JobStatus, QueueOrder
from triggers.services import runs

from ..factories import JobFactory, MembershipFactory, TriggerFactory
from ..statements import per_backend, statements

FORM = "application/x-www-form-urlencoded"


def _run(api, trigger):
    return api.generic("POST", f"/triggers/{trigger.id}/run", '{"ref": "main"}', content_type=FORM)


def _count(api, trigger) -> list[str]:
    with CaptureQueriesContext(connection) as ctx:
        response = _run(api, trigger)
    assert response.status_code == 202, response.content
    return statements(ctx)


@pytest.fixture
def environment(org_a):
    return Environment.objects.create(org=org_a, name="production")


def test_a_run_without_an_environment_is_unchanged_and_with_one_adds_at_most_two_queries(
    api, org_a, org_token, environment
):
    plain = TriggerFactory(org=org_a, name="plain", workflow="deploy")
    gated = TriggerFactory(org=org_a, name="gated", workflow="deploy", environment=environment)
    api.as_token(org_token[1])
    _run(api, plain)  # warm-up: the token's last_used_at write happens once a minute
    without = _count(api, plain)
    # As before environments (tests/triggers/test_run.py): the token's query and one write.
    assert len(without) == per_backend(postgresql=2, sqlite=5), without

    # Free (nothing ahead): the environment's row lock and "is anything ahead", then the same write.
    Job.objects.filter(environment=environment).delete()
    free = _count(api, gated)
    assert Job.objects.filter(trigger=gated).get().status == JobStatus.QUEUED
    assert len(free) == len(without) + 2, free
    # SQLite has no row locks (its IMMEDIATE transactions already run one writer at a time).
    assert any("FOR UPDATE" in sql for sql in free) == (connection.vendor == "postgresql"), free

    # Busy (the first still queued, so this one waits its turn): the same count, and it does not grow
    # with the queue's length.
    busy = _count(api, gated)
    JobFactory.create_batch(20, org=org_a, trigger=gated, environment=environment, status=JobStatus.WAITING)
    longer = _count(api, gated)
    assert len(busy) == len(longer) == len(without) + 2, longer
    assert list(Job.objects.filter(trigger=gated).order_by("created_at").values_list("status", flat=True))[:2] == [
        JobStatus.QUEUED,
        JobStatus.WAITING,
    ]

    # `unlimited` needs no "anything ahead": one more than without.
    environment.concurrency = Concurrency.UNLIMITED
    environment.save()
    unlimited = _count(api, gated)
    assert len(unlimited) == len(without) + 1, unlimited


def test_a_newest_environment_s_waiting_run_supersedes_at_a_cost_bounded_by_the_queue(
    api, org_a, org_token, environment
):
    """`newest`: a run that waits ends the older waiting job(s) in its transaction; with one waiting job
    before it (all `newest` ever keeps), the cost is fixed."""
    environment.queue = QueueOrder.NEWEST
    environment.save()
    gated = TriggerFactory(org=org_a, name="gated", workflow="deploy", environment=environment)
    api.as_token(org_token[1])
    _run(api, gated)  # queued: it runs
    _run(api, gated)  # waits
    first = _count(api, gated)
    second = _count(api, gated)
    assert len(first) == len(second), (first, second)
    statuses = list(Job.objects.filter(trigger=gated).order_by("created_at").values_list("status", "error"))
    assert [s for s, _ in statuses] == [JobStatus.QUEUED, JobStatus.CANCELLED, JobStatus.CANCELLED, JobStatus.WAITING]
    newest = Job.objects.filter(trigger=gated).order_by("-created_at").first()
    assert statuses[2][1] == f"superseded by #{newest.short_id}"


@pytest.mark.postgres
def test_two_approvers_at_once_make_one_transition_two_audited_approvals_and_one_release(
    transactional_db, org_a, monkeypatch
):
    requester = MembershipFactory(org=org_a, role=Role.MEMBER, user__email="dev@acme.test").user
    approvers = [
        MembershipFactory(org=org_a, role=Role.ADMIN, user__email=f"approver{i}@acme.test").user for i in range(2)
    ]
    environment = Environment.objects.create(org=org_a, name="production", required_approvals=1)
    trigger = TriggerFactory(org=org_a, name="deploy", workflow="deploy", environment=environment)
    result = runs.trigger_run(trigger=trigger, actor=Actor.for_user(requester), source="api", ref="main", params={})
    job = Job.objects.get(pk=result.job_id)
    assert job.status == JobStatus.PENDING_APPROVAL

    released: list = []
    enqueue = runs.job_enqueue_dispatch

    def counting_enqueue(**kw):  # calls through: the wake-up is still published
        released.append(kw["job_id"])
        enqueue(**kw)

    monkeypatch.setattr(runs, "job_enqueue_dispatch", counting_enqueue)
    barrier = threading.Barrier(2)
    outcomes: list = []

    def approve(user):
        try:
            barrier.wait(10)
            decided = environments.job_decide(
                job=Job.objects.get(pk=job.pk), actor=Actor.for_user(user), decision="approved"
            )
            outcomes.append(decided.status)
        except Exception as error:  # reported by the assertion below
            outcomes.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=approve, args=(user,)) for user in approvers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert len(outcomes) == 2 and not [o for o in outcomes if isinstance(o, Exception)], outcomes
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED
    assert job.approved_at is not None and job.queued_at is not None
    assert released == [job.pk]  # released once
    approvals = JobApproval.objects.filter(job=job)
    assert sorted(approvals.values_list("user_label", flat=True)) == ["approver0@acme.test", "approver1@acme.test"]
    audited = AuditEvent.objects.filter(action="job.approved", target_id=str(job.pk))
    assert sorted(audited.values_list("actor_label", flat=True)) == ["approver0@acme.test", "approver1@acme.test"]


@pytest.mark.postgres
def test_a_run_that_waited_on_the_environment_lock_is_after_the_run_that_went_ahead(
    transactional_db, org_a, monkeypatch
):
    """The queue's order is created_at, so it is stamped under the environment's lock: a run built first but
    admitted second (it waited on the lock) comes second. Stamped when the job row was built, the drill
    (tests/drills/test_environment_queue.py) saw the second-created job run first."""
    from triggers.environments import gate

    environment = Environment.objects.create(org=org_a, name="production")
    trigger = TriggerFactory(org=org_a, name="deploy", workflow="deploy", environment=environment)
    first_built, second_done = threading.Event(), threading.Event()
    lock = gate.environment_for_update

    def slow_lock(environment_id):  # the first run, built, reaches the lock only after the second committed
        if threading.current_thread().name == "first":
            first_built.set()
            assert second_done.wait(10)
        return lock(environment_id)

    monkeypatch.setattr(gate, "environment_for_update", slow_lock)
    results: dict = {}

    def run(name):
        try:
            if name == "second":
                assert first_built.wait(10)
            results[name] = runs.trigger_run(
                trigger=trigger, actor=Actor.system(), source="api", ref="main", params={}
            ).job_id
        finally:
            if name == "second":
                second_done.set()
            connections.close_all()

    threads = [threading.Thread(target=run, args=(name,), name=name) for name in ("first", "second")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    first, second = Job.objects.get(pk=results["first"]), Job.objects.get(pk=results["second"])
    assert (second.status, first.status) == (JobStatus.QUEUED, JobStatus.WAITING)
    assert first.created_at > second.created_at  # the queue's order is the admission's
    assert list(Job.objects.filter(environment=environment).order_by("created_at").values_list("pk", flat=True)) == [
        second.pk,
        first.pk,
    ]


@pytest.mark.postgres
def test_a_gated_run_s_statements_as_production_sends_them(transactional_db, api, org_a, org_token):
    """Outside the test's own transaction, what PostgreSQL receives: without an environment, the token's
    query and one write that is its own transaction; with one, the gate's reads need a transaction that
    holds the environment's row lock, so BEGIN and COMMIT are round trips too (the "+2" above counts the
    gate's reads; a run of an environment costs 4 round trips more with `one`, 3 with `unlimited`)."""
    environment = Environment.objects.create(org=org_a, name="production")
    unlimited = Environment.objects.create(org=org_a, name="staging", concurrency=Concurrency.UNLIMITED)
    plain = TriggerFactory(org=org_a, name="plain", workflow="deploy")
    gated = TriggerFactory(org=org_a, name="gated", workflow="deploy", environment=environment)
    free = TriggerFactory(org=org_a, name="free", workflow="deploy", environment=unlimited)
    api.as_token(org_token[1])
    _run(api, plain)  # warm-up: the token's last_used_at write happens once a minute

    def kinds(trigger) -> list[str]:
        return [sql.split()[0] for sql in _count(api, trigger)]

    assert kinds(plain) == ["SELECT", "WITH"]
    assert kinds(gated) == ["SELECT", "BEGIN", "SELECT", "SELECT", "WITH", "COMMIT"]
    assert kinds(free) == ["SELECT", "BEGIN", "SELECT", "WITH", "COMMIT"]
