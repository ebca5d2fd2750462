"""The environments API (issue #20): rules, locks, approvals, the queue, history and rollback, and
what jobs, triggers and the run endpoint say about them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from orgs.models import AuditEvent
from triggers.models import Environment, Job, JobApproval, JobStatus, Trigger
from triggers.services import lifecycle

from ..factories import EnvironmentFactory, JobFactory, TriggerFactory, make_token

pytestmark = pytest.mark.django_db

ENVS = "/api/orgs/acme/environments"
SHA = "0123456789abcdef0123456789abcdef01234567"


def _run(api, trigger, ref="main"):
    return api.post(f"/api/triggers/{trigger.pk}/run", {"ref": ref}, format="json")


def _succeed(job_id):
    """What an agent's claim and success report do to the row."""
    now = timezone.now()
    Job.objects.filter(pk=job_id).update(status=JobStatus.RUNNING, claimed_at=now, started_at=now)
    lifecycle.job_finish(job=Job.objects.get(pk=job_id), status=JobStatus.SUCCEEDED, exit_code=0, error=None)


def _error(response, status):
    assert response.status_code == status, response.content
    return response.json()["error"]


# --- rules ---------------------------------------------------------------------------------------------------


def test_admin_creates_an_environment_with_its_rules(api, admin_user, member):
    body = {
        "name": "production",
        "description": "Customers see it",
        "concurrency": "one",
        "queue": "newest",
        "requiredApprovals": 2,
        "approvers": {"members": [member.email.upper(), admin_user.email]},
        "preventSelfApproval": False,
        "approvalTimeoutSeconds": 3600,
        "allowedRefs": ["main", "release/*", "main"],
    }
    response = api.as_user(admin_user).post(ENVS, body, format="json")
    assert response.status_code == 201, response.content
    answer = response.json()
    assert answer["name"] == "production" and answer["queue"] == "newest" and answer["requiredApprovals"] == 2
    assert answer["approvers"] == {
        "role": None,
        "members": sorted([member.email, admin_user.email]),
        "description": ", ".join(sorted([member.email, admin_user.email])),
    }
    assert answer["preventSelfApproval"] is False and answer["approvalTimeoutSeconds"] == 3600
    assert answer["allowedRefs"] == ["main", "release/*"]  # a repeated pattern once
    assert answer["lock"] is None and answer["current"] is None and answer["liveJobs"] == []
    assert answer["counts"] == {"running": 0, "queued": 0, "waiting": 0, "pendingApproval": 0}
    environment = Environment.objects.get(name="production")
    assert set(environment.approvers.values_list("email", flat=True)) == {member.email, admin_user.email}
    assert AuditEvent.objects.filter(action="environment.created", target_id=str(environment.pk)).exists()
    listed = api.get(ENVS).json()
    assert [e["name"] for e in listed["results"]] == ["production"]
    assert api.get(f"{ENVS}/production").json()["id"] == answer["id"]


def test_defaults_are_one_at_a_time_in_order_with_admins_approving(api, owner):
    answer = api.as_user(owner).post(ENVS, {"name": "staging"}, format="json").json()
    assert (answer["concurrency"], answer["queue"], answer["requiredApprovals"]) == ("one", "fifo", 0)
    assert answer["approvers"] == {"role": "admin", "members": [], "description": "owners and admins"}
    assert answer["preventSelfApproval"] is True and answer["approvalTimeoutSeconds"] == 24 * 3600


@pytest.mark.parametrize(
    "body,field",
    [
        ({}, "name"),
        ({"name": "Prod Env"}, "name"),
        ({"name": "-prod"}, "name"),
        ({"name": "prod", "requiredApprovals": 6}, "requiredApprovals"),
        ({"name": "prod", "requiredApprovals": "1"}, "requiredApprovals"),
        ({"name": "prod", "requiredApprovals": True}, "requiredApprovals"),
        ({"name": "prod", "approvalTimeoutSeconds": 10}, "approvalTimeoutSeconds"),
        ({"name": "prod", "approvalTimeoutSeconds": 31 * 24 * 3600}, "approvalTimeoutSeconds"),
        ({"name": "prod", "allowedRefs": "main"}, "allowedRefs"),
        ({"name": "prod", "allowedRefs": ["release/ *"]}, "allowedRefs"),
        ({"name": "prod", "allowedRefs": ["-x"]}, "allowedRefs"),
        ({"name": "prod", "allowedRefs": ["v[0-9"]}, "allowedRefs"),
        ({"name": "prod", "allowedRefs": [f"r{i}" for i in range(21)]}, "allowedRefs"),
        ({"name": "prod", "concurrency": "two"}, "concurrency"),
        ({"name": "prod", "queue": "lifo"}, "queue"),
        ({"name": "prod", "preventSelfApproval": "no"}, "preventSelfApproval"),
        ({"name": "prod", "approvers": {"role": "admin", "members": []}}, "approvers"),
        ({"name": "prod", "approvers": {}}, "approvers"),
        ({"name": "prod", "approvers": {"role": "boss"}}, "approvers.role"),
        ({"name": "prod", "approvers": {"members": ["nobody@acme.test"]}}, "approvers.members"),
    ],
)
def test_bad_rules_are_a_400_naming_the_field(api, owner, body, field):
    error = _error(api.as_user(owner).post(ENVS, body, format="json"), 400)
    assert error["code"] == "validation_error"
    assert field in error["details"]["fields"], error
    assert not Environment.objects.exists()


def test_an_approver_of_another_org_is_unknown(api, owner, outsider):
    body = {"name": "prod", "approvers": {"members": [outsider.email]}}
    error = _error(api.as_user(owner).post(ENVS, body, format="json"), 400)
    assert "approvers.members" in error["details"]["fields"]


def test_a_name_is_taken_once_per_org(api, owner, org_b):
    EnvironmentFactory(org=org_b, name="production")
    api.as_user(owner)
    assert api.post(ENVS, {"name": "production"}, format="json").status_code == 201
    assert _error(api.post(ENVS, {"name": "production"}, format="json"), 409)["code"] == "environment_exists"


def test_patch_changes_the_given_rules_and_never_the_name(api, owner, member, org_a):
    EnvironmentFactory(org=org_a, name="production", description="kept")
    api.as_user(owner)
    answer = api.patch(
        f"{ENVS}/production", {"requiredApprovals": 1, "approvers": {"members": [member.email]}}, format="json"
    ).json()
    assert answer["requiredApprovals"] == 1 and answer["description"] == "kept"
    assert answer["approvers"]["members"] == [member.email] and answer["approvers"]["role"] is None
    answer = api.patch(f"{ENVS}/production", {"approvers": {"role": "owner"}}, format="json").json()
    assert answer["approvers"] == {"role": "owner", "members": [], "description": "owners"}
    assert api.patch(f"{ENVS}/production", {"name": "production"}, format="json").status_code == 200
    error = _error(api.patch(f"{ENVS}/production", {"name": "prod"}, format="json"), 400)
    assert "fixed once created" in error["details"]["fields"]["name"][0]
    assert Environment.objects.get(org=org_a).name == "production"
    # The name sent again changed nothing: two edits, two audit events.
    assert AuditEvent.objects.filter(action="environment.updated").count() == 2


def test_a_patch_changing_nothing_writes_nothing_and_answers_the_same(api, owner, member, org_a):
    api.as_user(owner)
    rules = {
        "description": "the real one",
        "concurrency": "one",
        "queue": "newest",
        "requiredApprovals": 2,
        "approvers": {"members": [member.email, owner.email]},
        "preventSelfApproval": False,
        "approvalTimeoutSeconds": 3600,
        "allowedRefs": ["main", "release/*"],
    }
    assert api.post(ENVS, {"name": "production", **rules}, format="json").status_code == 201
    before = api.get(f"{ENVS}/production").json()
    updated_at = Environment.objects.get(org=org_a).updated_at
    audited = AuditEvent.objects.count()
    # The same rules, members in another order and another case.
    same = {**rules, "approvers": {"members": [owner.email, member.email.upper()]}}
    response = api.patch(f"{ENVS}/production", same, format="json")
    assert response.status_code == 200 and response.json() == before
    assert Environment.objects.get(org=org_a).updated_at == updated_at
    assert AuditEvent.objects.count() == audited
    # A real change: audited once, naming what changed and nothing else.
    answer = api.patch(
        f"{ENVS}/production", {**same, "requiredApprovals": 1, "approvers": {"members": [member.email]}}, format="json"
    ).json()
    assert answer["requiredApprovals"] == 1 and answer["approvers"]["members"] == [member.email]
    event = AuditEvent.objects.get(action="environment.updated")
    assert event.data["fields"] == ["approvers", "required_approvals"]
    assert event.data["changed"] == {"approvers": [member.email], "required_approvals": 1}
    assert Environment.objects.get(org=org_a).updated_at > updated_at


def test_delete_refuses_an_environment_a_trigger_names(api, owner, org_a):
    production = EnvironmentFactory(org=org_a, name="production")
    EnvironmentFactory(org=org_a, name="staging")
    trigger = TriggerFactory(org=org_a, name="deploy-prod", environment=production)
    api.as_user(owner)
    error = _error(api.delete(f"{ENVS}/production"), 409)
    assert error["code"] == "environment_in_use" and "deploy-prod" in error["message"]
    assert api.delete(f"{ENVS}/staging").status_code == 204
    trigger.delete()
    assert api.delete(f"{ENVS}/production").status_code == 204
    assert not Environment.objects.exists()
    assert _error(api.get(f"{ENVS}/production"), 404)["code"] == "not_found"


def test_member_reads_and_locks_but_cannot_manage(api, member, org_a):
    EnvironmentFactory(org=org_a, name="production")
    api.as_user(member)
    assert api.get(ENVS).status_code == 200 and api.get(f"{ENVS}/production").status_code == 200
    assert _error(api.post(ENVS, {"name": "staging"}, format="json"), 403)["code"] == "forbidden"
    assert _error(api.patch(f"{ENVS}/production", {"description": "x"}, format="json"), 403)["code"] == "forbidden"
    assert _error(api.delete(f"{ENVS}/production"), 403)["code"] == "forbidden"
    assert api.post(f"{ENVS}/production/lock", {"reason": "freeze"}, format="json").status_code == 200


@pytest.mark.parametrize(
    "method,path,body",
    [
        ("post", ENVS, {"name": "staging"}),
        ("patch", f"{ENVS}/production", {"description": "x"}),
        ("delete", f"{ENVS}/production", None),
        ("post", f"{ENVS}/production/lock", {"reason": "freeze"}),
        ("post", f"{ENVS}/production/unlock", None),
        ("post", "/api/orgs/acme/jobs/{job}/approve", {}),
        ("post", "/api/orgs/acme/jobs/{job}/reject", {}),
    ],
)
def test_an_api_token_gets_403_on_a_persons_acts(api, owner, org_a, method, path, body):
    production = EnvironmentFactory(org=org_a, name="production", required_approvals=1)
    job = JobFactory(org=org_a, environment=production, status=JobStatus.PENDING_APPROVAL)
    _, raw = make_token(org_a, created_by=owner)
    before = list(Environment.objects.values_list("name", "description", "locked_at"))
    response = getattr(api.as_token(raw), method)(path.format(job=job.pk), body, format="json")
    error = _error(response, 403)
    assert error["code"] == "person_required" and "API token" in error["message"]
    assert list(Environment.objects.values_list("name", "description", "locked_at")) == before
    assert not JobApproval.objects.exists()


def test_another_orgs_environment_is_a_404(api, outsider, owner, org_a, org_b):
    EnvironmentFactory(org=org_a, name="production")
    api.as_user(outsider)
    assert _error(api.get(f"{ENVS}/production"), 404)["code"] == "not_found"
    assert _error(api.get("/api/orgs/bravo/environments/production"), 404)["code"] == "not_found"
    assert _error(api.post("/api/orgs/bravo/environments/production/lock", {"reason": "x"}, format="json"), 404)
    assert api.get("/api/orgs/bravo/environments").json()["results"] == []


# --- triggers name an environment ----------------------------------------------------------------------------


def test_a_trigger_names_its_environment_by_name(api, admin_user, org_a, org_b):
    EnvironmentFactory(org=org_a, name="production")
    EnvironmentFactory(org=org_b, name="bravo-only")
    api.as_user(admin_user)
    base = {"name": "deploy-prod", "workflow": "deploy"}
    for name in ("staging", "bravo-only"):  # unknown, and another org's: the same answer
        error = _error(api.post("/api/orgs/acme/triggers", {**base, "environment": name}, format="json"), 400)
        assert "environment" in error["details"]["fields"], error
    error = _error(api.post("/api/orgs/acme/triggers", {**base, "environment": "Prod X"}, format="json"), 400)
    assert "environment" in error["details"]["fields"]
    created = api.post("/api/orgs/acme/triggers", {**base, "environment": "production"}, format="json").json()
    assert created["environment"] == "production"
    url = f"/api/orgs/acme/triggers/{created['id']}"
    assert api.patch(url, {"enabled": False}, format="json").json()["environment"] == "production"
    assert api.get("/api/orgs/acme/triggers").json()["results"][0]["environment"] == "production"
    assert api.patch(url, {"environment": None}, format="json").json()["environment"] is None
    assert Trigger.objects.get(pk=created["id"]).environment_id is None
    assert api.patch(url, {"environment": "production"}, format="json").json()["environment"] == "production"


# --- the run endpoint's refusals -----------------------------------------------------------------------------


def test_a_ref_outside_allowed_refs_is_a_422_naming_the_patterns(api, member, org_a):
    production = EnvironmentFactory(org=org_a, name="production", allowed_refs=["main", "release/*"])
    trigger = TriggerFactory(org=org_a, environment=production)
    error = _error(_run(api.as_user(member), trigger, ref="feature/x"), 422)
    assert error["code"] == "ref_not_allowed" and "main, release/*" in error["message"]
    assert error["details"] == {"environment": "production", "ref": "feature/x", "allowedRefs": ["main", "release/*"]}
    assert not Job.objects.exists()
    assert _run(api, trigger, ref="release/2.1").status_code == 202


def test_a_locked_environment_refuses_others_runs_with_a_409_and_lets_its_holder_run(api, member, admin_user, org_a):
    production = EnvironmentFactory(org=org_a, name="production")
    trigger = TriggerFactory(org=org_a, environment=production)
    expires = (timezone.now() + timedelta(hours=1)).replace(microsecond=0)
    api.as_user(member)
    answer = api.post(
        f"{ENVS}/production/lock", {"reason": "release freeze", "expiresAt": expires.isoformat()}, format="json"
    ).json()
    assert answer["lock"]["lockedBy"] == member.email and answer["lock"]["reason"] == "release freeze"
    assert answer["lock"]["expiresAt"].startswith(expires.strftime("%Y-%m-%dT%H:%M:%S"))
    error = _error(_run(api.as_user(admin_user), trigger), 409)
    assert error["code"] == "environment_locked" and "release freeze" in error["message"]
    assert error["details"]["lockedBy"] == member.email and error["details"]["reason"] == "release freeze"
    assert error["details"]["lockedAt"] and error["details"]["expiresAt"].startswith(expires.strftime("%Y-%m-%dT%H"))
    assert not Job.objects.exists()
    assert _run(api.as_user(member), trigger).status_code == 202  # the holder's own run goes through


def test_lock_input_is_checked(api, member, org_a):
    EnvironmentFactory(org=org_a, name="production")
    api.as_user(member)
    assert "reason" in _error(api.post(f"{ENVS}/production/lock", {}, format="json"), 400)["details"]["fields"]
    past = (timezone.now() - timedelta(minutes=1)).isoformat()
    error = _error(api.post(f"{ENVS}/production/lock", {"reason": "x", "expiresAt": past}, format="json"), 400)
    assert "expiresAt" in error["details"]["fields"]
    error = _error(api.post(f"{ENVS}/production/lock", {"reason": "x", "expiresAt": "soon"}, format="json"), 400)
    assert "expiresAt" in error["details"]["fields"]
    assert Environment.objects.get(name="production").locked_at is None


def test_unlock_by_the_holder_or_an_admin_only(api, member, admin_user, org_a):
    from tests.factories import MembershipFactory

    other = MembershipFactory(org=org_a, user__email="other@acme.test").user
    EnvironmentFactory(org=org_a, name="production")
    api.as_user(member).post(f"{ENVS}/production/lock", {"reason": "freeze"}, format="json")
    error = _error(api.as_user(other).post(f"{ENVS}/production/unlock"), 403)
    assert error["code"] == "not_lock_holder" and member.email in error["message"]
    assert _error(api.post(f"{ENVS}/production/lock", {"reason": "mine"}, format="json"), 409)["code"] == (
        "environment_locked"
    )
    assert api.as_user(admin_user).post(f"{ENVS}/production/unlock").json()["lock"] is None
    assert AuditEvent.objects.filter(action="environment.unlocked").count() == 1
    api.as_user(member).post(f"{ENVS}/production/lock", {"reason": "again"}, format="json")
    assert api.post(f"{ENVS}/production/unlock").json()["lock"] is None  # the holder


# --- approvals -----------------------------------------------------------------------------------------------


@pytest.fixture
def gated(org_a):
    """`production`, one approval by an owner or admin, and its trigger."""
    production = EnvironmentFactory(org=org_a, name="production", required_approvals=1)
    return TriggerFactory(org=org_a, environment=production)


def test_an_approval_moves_the_job_on_and_approving_twice_counts_once(api, member, owner, gated):
    run = _run(api.as_user(member), gated).json()
    assert run["status"] == "pending_approval"
    job = api.get(f"/api/orgs/acme/jobs/{run['jobId']}").json()
    assert job["environment"] == "production" and job["requiredApprovals"] == 1
    assert job["approvals"] == [] and job["approvedAt"] is None and job["queuedAt"] is None
    assert job["waitingReason"] is None
    url = f"/api/orgs/acme/jobs/{run['jobId']}/approve"
    answer = api.as_user(owner).post(url, {"comment": "ship it"}, format="json")
    assert answer.status_code == 200, answer.content
    job = answer.json()
    assert job["status"] == "queued" and job["approvedAt"] and job["queuedAt"]
    assert [(a["user"], a["decision"], a["comment"]) for a in job["approvals"]] == [
        (owner.email, "approved", "ship it")
    ]
    again = api.post(url, {}, format="json")
    assert again.status_code == 200 and again.json()["status"] == "queued"
    assert JobApproval.objects.count() == 1
    assert AuditEvent.objects.filter(action="job.approved").count() == 1


def test_who_may_not_approve_gets_a_403_with_the_reason(api, member, owner, admin_user, gated):
    run = _run(api.as_user(owner), gated).json()
    url = f"/api/orgs/acme/jobs/{run['jobId']}/approve"
    error = _error(api.as_user(member).post(url, {}, format="json"), 403)
    assert error["code"] == "not_an_approver" and "owners and admins" in error["message"]
    error = _error(api.as_user(owner).post(url, {}, format="json"), 403)
    assert error["code"] == "self_approval"
    assert Job.objects.get(pk=run["jobId"]).status == JobStatus.PENDING_APPROVAL
    assert api.as_user(admin_user).post(url, {}, format="json").json()["status"] == "queued"


def test_a_rejection_ends_the_job_with_who_and_why(api, member, owner, gated):
    run = _run(api.as_user(member), gated).json()
    url = f"/api/orgs/acme/jobs/{run['jobId']}/reject"
    job = api.as_user(owner).post(url, {"comment": "not on a Friday"}, format="json").json()
    assert job["status"] == "cancelled" and job["error"] == f"rejected by {owner.email}: not on a Friday"
    assert job["approvals"][0]["decision"] == "rejected"
    error = _error(api.post(f"/api/orgs/acme/jobs/{run['jobId']}/approve", {}, format="json"), 409)
    assert error["code"] == "job_not_pending_approval"
    long = _error(api.post(url, {"comment": "x" * 1001}, format="json"), 400)
    assert "comment" in long["details"]["fields"]


def test_approving_another_orgs_job_is_a_404(api, outsider, member, gated):
    run = _run(api.as_user(member), gated).json()
    api.as_user(outsider)
    assert _error(api.post(f"/api/orgs/bravo/jobs/{run['jobId']}/approve", {}, format="json"), 404)
    assert _error(api.post(f"/api/orgs/acme/jobs/{run['jobId']}/reject", {}, format="json"), 404)
    assert not JobApproval.objects.exists()
    assert Job.objects.get(pk=run["jobId"]).status == JobStatus.PENDING_APPROVAL


# --- the queue, the jobs list, history and rollback -----------------------------------------------------------


def test_the_environment_shows_its_queue_with_positions_and_reasons(api, member, org_a):
    production = EnvironmentFactory(org=org_a, name="production")
    trigger = TriggerFactory(org=org_a, environment=production)
    first = _run(api.as_user(member), trigger).json()
    second = _run(api, trigger).json()
    assert (first["status"], second["status"]) == ("queued", "waiting")
    answer = api.get(f"{ENVS}/production").json()
    assert answer["counts"] == {"running": 0, "queued": 1, "waiting": 1, "pendingApproval": 0}
    queue = [(e["job"]["jobId"], e["position"], e["waitingReason"]) for e in answer["liveJobs"]]
    assert queue == [
        (first["jobId"], None, None),
        (second["jobId"], 1, f"behind #{first['shortId']} (queued)"),
    ]
    job = api.get(f"/api/orgs/acme/jobs/{second['jobId']}").json()
    assert job["waitingReason"] == f"behind #{first['shortId']} (queued)"
    listed = api.get(ENVS).json()["results"][0]
    assert listed["counts"]["waiting"] == 1 and "liveJobs" not in listed


def test_jobs_filter_by_environment_and_the_new_states(api, member, org_a):
    production = EnvironmentFactory(org=org_a, name="production", required_approvals=1)
    staging = EnvironmentFactory(org=org_a, name="staging")
    prod_job = _run(api.as_user(member), TriggerFactory(org=org_a, environment=production)).json()
    staging_trigger = TriggerFactory(org=org_a, environment=staging)
    _run(api, staging_trigger)
    waiting = _run(api, staging_trigger).json()
    JobFactory(org=org_a)  # no environment
    ids = lambda query: [j["id"] for j in api.get(f"/api/orgs/acme/jobs?{query}").json()["results"]]  # noqa: E731
    assert ids("environment=production") == [prod_job["jobId"]]
    assert len(ids("environment=staging")) == 2 and ids("environment=nowhere") == []
    assert ids("status=pending_approval") == [prod_job["jobId"]]
    assert ids("status=waiting") == [waiting["jobId"]]
    row = api.get("/api/orgs/acme/jobs?environment=production").json()["results"][0]
    assert row["environment"] == "production" and row["requiredApprovals"] == 1 and "approvals" not in row


def test_deployments_are_the_history_in_keyset_pages(api, member, org_a):
    production = EnvironmentFactory(org=org_a, name="production")
    now = timezone.now()
    jobs = [
        JobFactory(
            org=org_a, environment=production, environment_name="production", created_at=now - timedelta(minutes=i)
        )
        for i in range(5)
    ]
    JobFactory(org=org_a)  # not of the environment
    api.as_user(member)
    seen, url = [], f"{ENVS}/production/deployments?pageSize=2"
    for _ in range(5):
        page = api.get(url).json()
        assert "count" not in page
        seen += [j["id"] for j in page["results"]]
        url = page["next"]
        if not url:
            break
    assert seen == [str(j.pk) for j in jobs]
    assert _error(api.get(f"{ENVS}/production/deployments?cursor=bm9wZQ"), 400)["code"] == "invalid_cursor"
    assert _error(api.get(f"{ENVS}/nowhere/deployments"), 404)["code"] == "not_found"


def test_current_deployment_links_its_commit_and_rollback_runs_the_previous_one(api, member, org_a):
    production = EnvironmentFactory(org=org_a, name="production")
    trigger = TriggerFactory(org=org_a, environment=production, repository_url="https://github.com/acme/web")
    api.as_user(member)
    assert _error(api.post(f"{ENVS}/production/rollback"), 409)["code"] == "nothing_to_roll_back"
    old = _run(api, trigger, ref="v1.0.0").json()
    _succeed(old["jobId"])
    new = _run(api, trigger, ref=SHA).json()
    _succeed(new["jobId"])
    current = api.get(f"{ENVS}/production").json()["current"]
    assert current["jobId"] == new["jobId"] and current["status"] == "succeeded"
    assert current["refShown"] == SHA[:7] and current["commitUrl"] == f"https://github.com/acme/web/commit/{SHA}"
    assert current["actor"] and current["finishedAt"]
    response = api.post(f"{ENVS}/production/rollback")
    assert response.status_code == 202, response.content
    rollback = response.json()
    assert rollback["ref"] == "v1.0.0" and rollback["status"] == "queued"
    assert rollback["rollbackOf"] == {"id": new["jobId"], "shortId": new["shortId"]}
    assert response["Location"] == rollback["url"]
    job = api.get(f"/api/orgs/acme/jobs/{rollback['jobId']}").json()
    assert job["rollbackOf"] == {"id": new["jobId"], "shortId": new["shortId"]}


def test_the_environments_list_costs_the_same_with_more_environments(api, member, org_a):
    def one_more(i):
        environment = EnvironmentFactory(org=org_a, name=f"env-{i}", approver_role="owner")
        trigger = TriggerFactory(org=org_a, environment=environment, repository_url="https://github.com/acme/web")
        JobFactory(org=org_a, trigger=trigger, environment=environment, status=JobStatus.SUCCEEDED, ref=SHA)
        JobFactory(org=org_a, trigger=trigger, environment=environment, status=JobStatus.WAITING)
        environment.approvers.add(member)

    def queries():
        with CaptureQueriesContext(connection) as ctx:
            body = api.get(ENVS).json()
        return len(ctx.captured_queries), body

    api.as_user(member)
    one_more(0)
    few, _ = queries()
    for i in range(1, 6):
        one_more(i)
    many, body = queries()
    assert many == few and len(body["results"]) == 6
    assert all(e["current"]["refShown"] == SHA[:7] and e["counts"]["waiting"] == 1 for e in body["results"])


# --- the schema and the isolation matrix know the new routes -------------------------------------------------


def test_the_schema_states_the_runs_refusals_and_the_new_states(api, owner):
    schema = api.as_user(owner).get("/api/schema/?format=json").json()
    run = schema["paths"]["/api/triggers/{trigger_id}/run/"]["post"]["responses"]
    assert "environment_locked" in run["409"]["description"] and "lockedBy" in run["409"]["description"]
    assert "ref_not_allowed" in run["422"]["description"] and "allowedRefs" in run["422"]["description"]
    assert run["409"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    jobs = schema["paths"]["/api/orgs/{org_id}/jobs/"]["get"]["parameters"]
    status = next(p for p in jobs if p["name"] == "status")["schema"]
    assert {"pending_approval", "waiting"} <= set(status["enum"])
    assert any(p["name"] == "environment" for p in jobs)
    environments = [p for p in schema["paths"] if "/environments" in p]
    assert len(environments) == 6
    assert all(op["tags"] == ["environments"] for p in environments for op in schema["paths"][p].values())
    detail = schema["components"]["schemas"]["JobDetailOutput"]["properties"]
    assert {"waitingReason", "approvals", "environment", "requiredApprovals", "rollbackOf"} <= set(detail)


def test_the_isolation_matrix_walks_the_environment_and_approval_routes():
    from tests.orgs.test_isolation import ENDPOINTS

    actions = {(e.view.__name__, e.action) for e in ENDPOINTS}
    expected = {"list", "create", "retrieve", "partial_update", "destroy", "lock", "unlock", "deployments", "rollback"}
    assert {("EnvironmentViewSet", a) for a in expected} <= actions
    assert {("JobViewSet", "approve"), ("JobViewSet", "reject")} <= actions


def test_a_name_that_no_environment_can_have_is_a_404(api, owner, org_a):
    EnvironmentFactory(org=org_a, name="production")
    api.as_user(owner)
    for name in ("prod%00uction", "prod.uction", "%E2%98%83"):
        assert api.get(f"{ENVS}/{name}").status_code == 404


def test_the_environment_detail_costs_the_same_with_a_longer_queue(api, member, org_a):
    production = EnvironmentFactory(org=org_a, name="production")
    trigger = TriggerFactory(org=org_a, environment=production, repository_url="https://github.com/acme/web")
    api.as_user(member)

    def queries():
        with CaptureQueriesContext(connection) as ctx:
            body = api.get(f"{ENVS}/production").json()
        return len(ctx.captured_queries), body

    JobFactory(org=org_a, trigger=trigger, environment=production, status=JobStatus.RUNNING, ref=SHA)
    JobFactory(org=org_a, trigger=trigger, environment=production, status=JobStatus.WAITING, ref=SHA)
    few, _ = queries()
    for _ in range(4):
        JobFactory(
            org=org_a, trigger=TriggerFactory(org=org_a), environment=production, status=JobStatus.WAITING, ref=SHA
        )
    many, body = queries()
    assert many == few
    assert [e["position"] for e in body["liveJobs"]] == [None, 1, 2, 3, 4, 5]
    assert body["liveJobs"][1]["job"]["commitUrl"] == f"https://github.com/acme/web/commit/{SHA}"
