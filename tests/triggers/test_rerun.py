"""Re-run: `POST /api/orgs/<orgId>/jobs/<id>/rerun` queues the same trigger, ref and params
(or a new ref and/or params) through `trigger_run`, and the new job names the one it repeats."""

from __future__ import annotations

import pytest
from django.test import Client

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


def test_rerun_at_another_ref_keeps_the_params_and_links_back(api, member, org_a):
    job = JobFactory(org=org_a, ref="v1.2.3", params={"ENV": "production"}, status=JobStatus.FAILED)
    response = api.as_user(member).post(f"/api/orgs/acme/jobs/{job.pk}/rerun", {"ref": "v1.2.4"}, format="json")
    assert response.status_code == 202, response.content
    assert response.json()["ref"] == "v1.2.4"
    new = Job.objects.get(pk=response.json()["jobId"])
    assert (new.ref, new.params, new.rerun_of_id) == ("v1.2.4", {"ENV": "production"}, job.pk)
    assert AuditEvent.objects.filter(action="job.created", data__rerunOf=job.short_id, data__ref="v1.2.4").exists()


@pytest.mark.parametrize("ref", [None, "", "   "])
def test_rerun_with_a_blank_or_null_ref_keeps_the_jobs_own(api, member, org_a, ref):
    """Not the trigger's default ref: a re-run asks for the same thing unless told otherwise."""
    job = JobFactory(org=org_a, trigger=TriggerFactory(org=org_a, default_ref="main"), ref="hotfix/7")
    response = api.as_user(member).post(f"/api/orgs/acme/jobs/{job.pk}/rerun", {"ref": ref}, format="json")
    assert response.status_code == 202, response.content
    assert Job.objects.get(pk=response.json()["jobId"]).ref == "hotfix/7"


def test_the_job_page_reruns_at_the_ref_typed_in_the_form(member, org_a):
    job = JobFactory(org=org_a, ref="v1", params={"ENV": "staging"}, status=JobStatus.FAILED)
    client = Client()
    client.force_login(member)
    page = client.get(f"/orgs/acme/jobs/{job.pk}").content.decode()
    assert 'name="ref" value="v1"' in page  # the job's ref, to edit or keep
    response = client.post(f"/orgs/acme/jobs/{job.pk}/rerun", {"ref": "v2", "params": "ENV=staging"})
    new = Job.objects.exclude(pk=job.pk).get()
    assert response.status_code == 302 and response["Location"] == f"/orgs/acme/jobs/{new.pk}"
    assert (new.ref, new.params, new.rerun_of_id, new.source) == ("v2", {"ENV": "staging"}, job.pk, JobSource.UI)
