"""Input files: a run param naming one of the org's stored files (needs the storage app).

Skipped until the storage app (StoredFile, file_status_changed, file_get, file_download_url)
is merged next to triggers.
"""

from __future__ import annotations

import json

import pytest

from storage.models import StoredFile
from storage.signals import file_status_changed
from triggers.models import Job, JobStatus

from ..agents.signed import SignedAgent
from ..factories import AgentFactory, StoredFileFactory, TriggerFactory

FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def trigger(org_a):
    return TriggerFactory(org=org_a, name="deploy-from-artifact", workflow="deploy-from-artifact")


@pytest.fixture
def agent(org_a):
    return SignedAgent(AgentFactory(org=org_a))


def run(api, trigger, file_id):
    # The docs' deploy-from-artifact call, verbatim apart from the ids.
    body = f'{{"ref": "main", "params": {{"FILEID": "{file_id}"}}}}'
    return api.generic("POST", f"/triggers/{trigger.pk}/run", body, content_type=FORM)


def announce(stored: StoredFile, status: str) -> None:
    StoredFile.objects.filter(pk=stored.pk).update(status=status, size=stored.size or 1234)
    file_status_changed.send(sender=StoredFile, file_id=stored.pk, org_id=stored.org_id, status=status)


def test_available_file_param_becomes_an_input_file_in_the_claim(api, org_a, org_token, trigger, agent):
    stored = StoredFileFactory(org=org_a, file_name="app-abc.tar.gz", status="available", size=2048)
    response = run(api.as_token(org_token[1]), trigger, stored.pk)
    assert response.status_code == 202, response.content
    claim = agent.claim().json()
    assert claim["params"] == {"FILEID": str(stored.pk)}
    assert claim["inputFiles"] == [
        {"param": "FILEID", "fileId": str(stored.pk), "fileName": "app-abc.tar.gz", "size": 2048}
    ]


@pytest.mark.parametrize("status", ["failed", "deleted", "expired", "pending"])
def test_unusable_file_is_a_409_and_creates_no_job(api, org_a, org_token, trigger, status):
    stored = StoredFileFactory(org=org_a, status=status)
    response = run(api.as_token(org_token[1]), trigger, stored.pk)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "input_file_unavailable"
    assert Job.objects.count() == 0


def test_verifying_file_is_accepted_and_the_job_waits_until_it_is_available(
    api, org_a, org_token, trigger, agent, django_capture_on_commit_callbacks
):
    stored = StoredFileFactory(org=org_a, status="verifying")
    assert run(api.as_token(org_token[1]), trigger, stored.pk).status_code == 202
    job = Job.objects.get()
    assert job.waiting_for_files
    assert agent.claim().status_code == 204
    with django_capture_on_commit_callbacks(execute=True):
        announce(stored, "available")
    job.refresh_from_db()
    assert not job.waiting_for_files
    claim = agent.claim()
    assert claim.status_code == 200 and claim.json()["inputFiles"][0]["size"] == 1234


def test_job_waiting_for_a_file_that_fails_verification_fails(
    api, org_a, org_token, trigger, django_capture_on_commit_callbacks
):
    stored = StoredFileFactory(org=org_a, status="verifying", file_name="broken.tar.gz")
    run(api.as_token(org_token[1]), trigger, stored.pk)
    with django_capture_on_commit_callbacks(execute=True):
        announce(stored, "failed")
    job = Job.objects.get()
    assert job.status == JobStatus.FAILED
    assert 'input file "broken.tar.gz"' in job.error and "failed" in job.error


def test_another_orgs_file_id_is_just_a_string_param(api, org_b, org_token, trigger):
    foreign = StoredFileFactory(org=org_b, status="available")
    assert run(api.as_token(org_token[1]), trigger, foreign.pk).status_code == 202
    job = Job.objects.get()
    assert job.input_files == [] and job.params == {"FILEID": str(foreign.pk)}


def test_agent_gets_a_download_url_for_its_orgs_available_file_only(org_a, org_b, agent):
    mine = StoredFileFactory(org=org_a, status="available", size=10, file_name="a.tar.gz")
    theirs = StoredFileFactory(org=org_b, status="available", size=10)
    verifying = StoredFileFactory(org=org_a, status="verifying")
    response = agent.get(f"/api/agent/files/{mine.pk}/download-url")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["downloadUrl"].startswith("https://") and body["expiresInSeconds"] > 0
    assert (body["fileName"], body["size"]) == ("a.tar.gz", 10)
    assert agent.get(f"/api/agent/files/{theirs.pk}/download-url").status_code == 404
    assert agent.get(f"/api/agent/files/{verifying.pk}/download-url").status_code == 409


def test_params_with_many_file_ids_cost_one_storage_query(api, org_a, org_token, trigger):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    files = [StoredFileFactory(org=org_a, status="available", size=1) for _ in range(5)]
    api.as_token(org_token[1])
    api.generic("POST", f"/triggers/{trigger.pk}/run", "{}", content_type=FORM)  # warm-up

    def count(params):
        with CaptureQueriesContext(connection) as ctx:
            body = json.dumps({"params": params})
            assert api.generic("POST", f"/triggers/{trigger.pk}/run", body, content_type=FORM).status_code == 202
        return len(ctx.captured_queries)

    assert count({"F0": str(files[0].pk)}) == count({f"F{i}": str(f.pk) for i, f in enumerate(files)})


def test_a_run_links_each_input_file_to_its_job_once(api, org_a, org_token, trigger):
    from triggers.models import JobFile

    stored = StoredFileFactory(org=org_a, status="available", size=10)
    body = json.dumps({"params": {"FILEID": str(stored.pk), "AGAIN": str(stored.pk)}})
    response = api.as_token(org_token[1]).post(f"/triggers/{trigger.pk}/run", body, content_type="application/json")
    assert response.status_code == 202, response.content
    job = Job.objects.get()
    assert list(JobFile.objects.filter(job=job).values_list("file_id", "direction", "org_id")) == [
        (stored.pk, "input", org_a.pk)
    ]
