"""DEPLITE_JOB_TOKEN (DESIGN §6): issued with the claim, only the job's input files, only while it runs."""

from __future__ import annotations

import hashlib

import pytest
from django.test import Client

from storage.models import FileStatus
from triggers.models import Job, JobStatus
from triggers.services import job_fail

from ..factories import AgentFactory, JobFactory, StoredFileFactory
from .signed import SignedAgent

pytestmark = pytest.mark.django_db


def _input(file) -> dict:
    return {"param": "FILEID", "fileId": str(file.pk), "fileName": file.file_name, "size": file.size}


@pytest.fixture
def agent(org_a):
    return AgentFactory(org=org_a, name="web-1")


@pytest.fixture
def files(org_a):
    make = lambda: StoredFileFactory(org=org_a, status=FileStatus.AVAILABLE, size=10)  # noqa: E731
    return make(), make()


def claim(agent, job) -> str:
    response = SignedAgent(agent).claim()
    assert response.status_code == 200, response.content
    assert response.json()["id"] == str(job.pk)
    return response.json()["jobToken"]


def download_url(token: str, file_id) -> tuple[int, dict]:
    response = Client().get(f"/api/agent/files/{file_id}/download-url", HTTP_AUTHORIZATION=f"Bearer {token}")
    return response.status_code, response.json()


def test_the_claim_issues_a_job_token_that_reads_the_jobs_input_file_and_only_its_hash_is_stored(agent, org_a, files):
    wanted, _ = files
    job = JobFactory(org=org_a, params={"FILEID": str(wanted.pk)}, input_files=[_input(wanted)])
    token = claim(agent, job)
    assert token.startswith("djt_") and len(token) >= 40
    stored = Job.objects.get(pk=job.pk)
    assert stored.job_token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(Job.objects.filter(pk=job.pk).values().first())

    status, body = download_url(token, wanted.pk)
    assert status == 200, body
    assert body["fileName"] == wanted.file_name and body["downloadUrl"].startswith("http")


def test_a_job_token_cannot_read_any_other_file_of_the_org(agent, org_a, org_b, files):
    wanted, other = files
    job = JobFactory(org=org_a, params={"FILEID": str(wanted.pk)}, input_files=[_input(wanted)])
    token = claim(agent, job)
    assert download_url(token, other.pk)[0] == 404
    foreign = StoredFileFactory(org=org_b, status=FileStatus.AVAILABLE)
    status, body = download_url(token, foreign.pk)
    assert status == 404 and body["error"]["code"] == "not_found"


@pytest.mark.parametrize("how", ["finish", "failed by the server", "cancel"])
def test_a_job_token_dies_when_its_job_ends(agent, org_a, files, how, api, owner):
    wanted, _ = files
    job = JobFactory(org=org_a, params={"FILEID": str(wanted.pk)}, input_files=[_input(wanted)])
    token = claim(agent, job)
    assert download_url(token, wanted.pk)[0] == 200
    if how == "finish":
        assert SignedAgent(agent).finish(job.pk).status_code == 200
    elif how == "cancel":
        assert api.as_user(owner).post(f"/api/orgs/{org_a.slug}/jobs/{job.pk}/cancel").status_code in (200, 202)
        assert SignedAgent(agent).finish(job.pk, status="cancelled", exit_code=143).status_code == 200
    else:
        assert job_fail(job_id=job.pk, error="agent lost", from_statuses=[JobStatus.RUNNING])
    status, body = download_url(token, wanted.pk)
    assert status == 401
    assert body["error"]["code"] == "invalid_job_token"
    assert Job.objects.get(pk=job.pk).job_token_hash == ""


@pytest.mark.parametrize("token", ["djt_" + "x" * 43, "djt_", "tk_whatever", "not-a-token"])
def test_a_made_up_job_token_is_a_401_in_the_error_shape(files, token):
    status, body = download_url(token, files[0].pk)
    assert status == 401
    assert set(body["error"]) == {"code", "message", "details"}


def test_a_job_token_is_not_an_agent_credential(agent, org_a, files):
    wanted, _ = files
    job = JobFactory(org=org_a, params={"FILEID": str(wanted.pk)}, input_files=[_input(wanted)])
    token = claim(agent, job)
    JobFactory(org=org_a)
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    for path in ("/api/agent/jobs/claim", "/api/agent/heartbeat", f"/api/agent/jobs/{job.pk}/finish"):
        assert Client().post(path, b"{}", content_type="application/json", **bearer).status_code == 401
    assert Client().get(f"/api/orgs/{org_a.slug}/files", **bearer).status_code == 401
