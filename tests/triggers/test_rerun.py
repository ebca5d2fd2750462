"""Re-run: `POST /api/orgs/<orgId>/jobs/<id>/rerun` queues the same trigger, ref and params
(or new params) through `trigger_run`, and the new job names the one it repeats."""

from __future__ import annotations

from orgs.models import AuditEvent, TokenScope
from triggers.models import Job, JobSource, JobStatus

from ..factories import JobFactory, TriggerFactory, make_token


def test_rerun_repeats_trigger_ref_and_params_and_links_back(api, member, org_a):
    trigger = TriggerFactory(org=org_a, agent_labels=["prod"])
    job = JobFactory(org=org_a, trigger=trigger, ref="v1.2.3", params={"ENV": "production"}, status=JobStatus.FAILED)
    response = api.as_user(member).post(f"/api/orgs/acme/jobs/{job.pk}/rerun")
    assert response.status_code == 202
    body = response.json()
    new = Job.objects.get(pk=body["jobId"])
    assert (new.trigger_id, new.ref, new.params, new.agent_labels) == (
        trigger.pk,
        "v1.2.3",
        {"ENV": "production"},
        ["prod"],
    )
    assert (new.status, new.source, new.rerun_of_id) == (JobStatus.QUEUED, JobSource.API, job.pk)
    assert response.headers["Location"] == body["url"]
    detail = api.get(f"/api/orgs/acme/jobs/{new.pk}").json()
    assert detail["rerunOf"] == str(job.pk)
    assert AuditEvent.objects.filter(action="job.created", data__rerunOf=job.short_id).exists()


def test_rerun_with_new_params_replaces_them(api, member, org_a):
    job = JobFactory(org=org_a, params={"ENV": "production", "OLD": "x"})
    body = (
        api.as_user(member)
        .post(f"/api/orgs/acme/jobs/{job.pk}/rerun", {"params": {"ENV": "staging"}}, format="json")
        .json()
    )
    assert Job.objects.get(pk=body["jobId"]).params == {"ENV": "staging"}


def test_rerun_refuses_bad_params_with_the_field_named(api, member, org_a):
    job = JobFactory(org=org_a)
    response = api.as_user(member).post(
        f"/api/orgs/acme/jobs/{job.pk}/rerun", {"params": {"bad key": "x"}}, format="json"
    )
    assert response.status_code == 400
    assert "params.bad key" in response.json()["error"]["details"]["fields"]
    assert Job.objects.count() == 1


def test_rerun_of_a_job_whose_trigger_is_gone_or_disabled_is_a_409(api, member, org_a):
    orphan = JobFactory(org=org_a, trigger=None)
    api.as_user(member)
    response = api.post(f"/api/orgs/acme/jobs/{orphan.pk}/rerun")
    assert (response.status_code, response.json()["error"]["code"]) == (409, "trigger_deleted")
    disabled = JobFactory(org=org_a, trigger=TriggerFactory(org=org_a, enabled=False))
    assert api.post(f"/api/orgs/acme/jobs/{disabled.pk}/rerun").json()["error"]["code"] == "trigger_disabled"
    assert Job.objects.count() == 2


def test_rerun_of_another_orgs_job_is_a_404(api, outsider, org_a):
    job = JobFactory(org=org_a)
    response = api.as_user(outsider).post(f"/api/orgs/acme/jobs/{job.pk}/rerun")
    assert response.status_code == 404
    assert api.post(f"/api/orgs/bravo/jobs/{job.pk}/rerun").status_code == 404
    assert Job.objects.count() == 1


def test_a_trigger_token_reruns_only_its_triggers_jobs(api, org_a):
    mine, other = TriggerFactory(org=org_a), TriggerFactory(org=org_a)
    _, raw = make_token(org_a, scope_type=TokenScope.TRIGGER, trigger_ids=[str(mine.pk)])
    api.as_token(raw)
    assert api.post(f"/api/orgs/acme/jobs/{JobFactory(org=org_a, trigger=mine).pk}/rerun").status_code == 202
    assert api.post(f"/api/orgs/acme/jobs/{JobFactory(org=org_a, trigger=other).pk}/rerun").status_code == 404
