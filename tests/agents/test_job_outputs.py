"""Output files (issue 22): a running job uploads a file from its step with its DEPLITE_JOB_TOKEN, straight
to the org's bucket (moto's S3 server over HTTP, real PUTs to the presigned URL), and the server checks it."""

from __future__ import annotations

import hashlib
import json
from urllib.parse import urlsplit

import pytest
import requests
from django.test import Client

from orgs.models import AuditEvent
from storage.models import FileStatus, StoredFile
from triggers.models import Job, JobFile, JobStatus

from ..factories import AgentFactory, JobFactory, StorageBindingFactory, StoredFileFactory, TriggerFactory
from .signed import SignedAgent

pytestmark = pytest.mark.django_db

CONTENT = b"<html><body>report</body></html>\n" * 200
SHA = hashlib.sha256(CONTENT).hexdigest()


@pytest.fixture
def binding(org_a, moto_url, bucket, settings):
    settings.DEPLITE_ALLOW_PRIVATE_STORAGE_ENDPOINTS = True
    return StorageBindingFactory(
        org=org_a,
        name="outputs",
        endpoint=moto_url,
        region="ap-northeast-2",
        bucket=bucket,
        access_key="AKIADEPLITETEST",
        secret_key="moto-secret",
        path_style=True,
    )


@pytest.fixture
def agent(org_a):
    return AgentFactory(org=org_a, name="web-1")


def claim(agent, job) -> str:
    response = SignedAgent(agent).claim()
    assert response.status_code == 200, response.content
    assert response.json()["id"] == str(job.pk)
    return response.json()["jobToken"]


@pytest.fixture
def running(agent, org_a, binding):
    """A running job of org_a and its DEPLITE_JOB_TOKEN."""
    job = JobFactory(org=org_a)
    return job, claim(agent, job)


def declare(token: str, job_id, **body):
    payload = {"name": "report.html", "size": len(CONTENT), "sha256": SHA, "contentType": "text/html", **body}
    response = Client().post(
        f"/api/agent/jobs/{job_id}/outputs",
        json.dumps(payload),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    return response.status_code, response.json()


def complete(token: str, job_id, file_id):
    response = Client().post(
        f"/api/agent/jobs/{job_id}/outputs/{file_id}/complete", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    return response.status_code, response.json()


def test_a_step_uploads_an_output_straight_to_the_bucket_and_the_server_checks_it(running, binding, s3_admin):
    job, token = running
    status, body = declare(token, job.pk)
    assert status == 201, body
    assert body["method"] == "PUT"
    assert body["headers"]["Content-Type"] == "text/html"
    assert body["headers"]["Content-Length"] == str(len(CONTENT))
    assert "x-amz-checksum-sha256" in body["headers"]
    # The checksum header is part of the signature: S3 refuses a PUT without it or with another.
    assert "x-amz-checksum-sha256" in body["uploadUrl"].split("X-Amz-SignedHeaders=")[1].split("&")[0]

    put = requests.put(body["uploadUrl"], data=CONTENT, headers=body["headers"], timeout=10)
    assert put.status_code == 200, put.text

    status, done = complete(token, job.pk, body["fileId"])
    assert status == 200, done
    assert done == {
        "fileId": body["fileId"],
        "name": "report.html",
        "size": len(CONTENT),
        "sha256": SHA,
        "status": "available",
    }

    stored = StoredFile.objects.get(pk=body["fileId"])
    assert (stored.status, stored.sha256, stored.job_id, stored.binding_id) == ("available", SHA, job.pk, binding.pk)
    assert str(stored.pk) in stored.object_key and stored.object_key.endswith("/report.html")
    assert s3_admin.get_object(Bucket=binding.bucket, Key=stored.object_key)["Body"].read() == CONTENT
    assert JobFile.objects.filter(job=job, file=stored, direction="output").exists()
    assert AuditEvent.objects.filter(action="file.output_uploaded", target_id=str(stored.pk)).exists()
    # Completing again changes nothing.
    assert complete(token, job.pk, body["fileId"]) == (200, done)


def test_a_body_that_is_not_the_declared_one_fails_the_file_with_the_reason(running, binding):
    job, token = running
    status, body = declare(token, job.pk)
    assert status == 201, body
    other = CONTENT.replace(b"report", b"REPORT")  # same size, other bytes
    assert len(other) == len(CONTENT)
    put = requests.put(body["uploadUrl"], data=other, headers=body["headers"], timeout=10)
    # Real S3 refuses this PUT itself (the signed checksum); moto accepts it, and the server's check catches it.
    if put.status_code == 200:
        status, error = complete(token, job.pk, body["fileId"])
        assert status == 409, error
        assert error["error"]["code"] == "upload_incomplete"
        assert "SHA-256" in error["error"]["message"]
    stored = StoredFile.objects.get(pk=body["fileId"])
    assert stored.status == FileStatus.FAILED if put.status_code == 200 else FileStatus.PENDING


def test_complete_without_a_put_is_409_and_fails_the_file(running, binding):
    job, token = running
    _, body = declare(token, job.pk)
    status, error = complete(token, job.pk, body["fileId"])
    assert status == 409 and error["error"]["code"] == "upload_incomplete"
    assert "No object was found" in error["error"]["message"]
    assert StoredFile.objects.get(pk=body["fileId"]).status == FileStatus.FAILED


def test_a_job_token_uploads_only_to_its_own_job(agent, org_a, running, binding):
    job, token = running
    other = JobFactory(org=org_a)
    status, error = declare(token, other.pk)
    assert status == 404 and error["error"]["code"] == "not_found"
    # Nor completes a file of another job.
    _, mine = declare(token, job.pk)
    second_agent = AgentFactory(org=org_a, name="web-2")
    other_token = claim(second_agent, other)
    assert complete(other_token, other.pk, mine["fileId"])[0] == 404
    assert complete(other_token, job.pk, mine["fileId"])[0] == 404
    assert not StoredFile.objects.filter(job_id=other.pk).exists()


def test_another_orgs_job_is_a_404(org_b, running):
    _, token = running
    foreign = JobFactory(org=org_b)
    status, error = declare(token, foreign.pk)
    assert status == 404 and error["error"]["code"] == "not_found"


def test_a_job_token_is_refused_once_its_job_ended(agent, running):
    job, token = running
    _, body = declare(token, job.pk)
    assert SignedAgent(agent).finish(job.pk).status_code == 200
    assert Job.objects.get(pk=job.pk).status == JobStatus.SUCCEEDED
    status, error = declare(token, job.pk)
    assert status == 401 and error["error"]["code"] == "invalid_job_token"
    assert complete(token, job.pk, body["fileId"])[0] == 401


def test_at_most_the_configured_number_of_outputs_per_job(running, settings):
    job, token = running
    settings.DEPLITE_MAX_OUTPUTS_PER_JOB = 2
    assert declare(token, job.pk, name="a.html")[0] == 201
    assert declare(token, job.pk, name="b.html")[0] == 201
    status, error = declare(token, job.pk, name="c.html")
    assert status == 409 and error["error"]["code"] == "too_many_outputs"
    assert JobFile.objects.filter(job=job).count() == 2


def test_a_file_over_the_upload_limit_is_413(running, settings):
    job, token = running
    settings.DEPLITE_MAX_UPLOAD_BYTES = 1000
    status, error = declare(token, job.pk, size=1001)
    assert status == 413 and error["error"]["code"] == "file_too_large"
    assert not StoredFile.objects.filter(job_id=job.pk).exists()


@pytest.mark.parametrize(
    "body, field",
    [
        ({"name": "../etc/passwd"}, "name"),
        ({"name": "reports/a.html"}, "name"),
        ({"name": "x" * 256}, "name"),
        ({"sha256": "abc"}, "sha256"),
        ({"size": -1}, "size"),
        ({"contentType": "not a type"}, "contentType"),
    ],
)
def test_bad_declarations_are_400_naming_the_field(running, body, field):
    job, token = running
    status, error = declare(token, job.pk, **body)
    assert status == 400 and field in error["error"]["details"]["fields"], error


def test_without_any_binding_the_error_says_to_set_the_triggers_output_binding(agent, org_a):
    job = JobFactory(org=org_a)
    token = claim(agent, job)
    status, error = declare(token, job.pk)
    assert status == 409 and error["error"]["code"] == "no_output_binding"
    assert "outputBindingId" in error["error"]["message"]


def test_the_output_binding_is_the_triggers_then_the_input_files_then_the_orgs_only_one(agent, org_a, binding):
    second = StorageBindingFactory(org=org_a, name="second", endpoint=binding.endpoint, bucket=binding.bucket)
    # Two bindings, none named: no way to choose.
    job = JobFactory(org=org_a)
    token = claim(agent, job)
    assert declare(token, job.pk)[1]["error"]["code"] == "no_output_binding"
    SignedAgent(agent).finish(job.pk)

    # The binding of the job's input file.
    source = StoredFileFactory(org=org_a, binding=second, status=FileStatus.AVAILABLE, size=1)
    job = JobFactory(
        org=org_a, input_files=[{"param": "F", "fileId": str(source.pk), "fileName": source.file_name, "size": 1}]
    )
    token = claim(agent, job)
    _, body = declare(token, job.pk)
    assert StoredFile.objects.get(pk=body["fileId"]).binding_id == second.pk
    SignedAgent(agent).finish(job.pk)

    # The trigger's output binding wins over both.
    trigger = TriggerFactory(org=org_a, output_binding=binding)
    job = JobFactory(
        org=org_a,
        trigger=trigger,
        input_files=[{"param": "F", "fileId": str(source.pk), "fileName": source.file_name, "size": 1}],
    )
    token = claim(agent, job)
    _, body = declare(token, job.pk)
    assert StoredFile.objects.get(pk=body["fileId"]).binding_id == binding.pk


def test_an_output_is_an_ordinary_file_another_run_takes_as_its_input(api, org_a, org_token, agent, running):
    job, token = running
    _, body = declare(token, job.pk)
    requests.put(body["uploadUrl"], data=CONTENT, headers=body["headers"], timeout=10).raise_for_status()
    assert complete(token, job.pk, body["fileId"])[0] == 200
    SignedAgent(agent).finish(job.pk)

    trigger = TriggerFactory(org=org_a, workflow="publish")
    run = api.as_token(org_token[1]).post(
        f"/triggers/{trigger.pk}/run",
        json.dumps({"params": {"REPORT": body["fileId"]}}),
        content_type="application/json",
    )
    assert run.status_code == 202, run.content
    claimed = SignedAgent(agent).claim().json()
    assert claimed["inputFiles"] == [
        {"param": "REPORT", "fileId": body["fileId"], "fileName": "report.html", "size": len(CONTENT)}
    ]
    second = Job.objects.get(pk=claimed["id"])
    assert JobFile.objects.get(job=second).direction == "input"
    # The second job's token reads it (the step's `deplite-agent files download`), and gets the same bytes.
    url = (
        Client()
        .get(f"/api/agent/files/{body['fileId']}/download-url", HTTP_AUTHORIZATION=f"Bearer {claimed['jobToken']}")
        .json()["downloadUrl"]
    )
    assert hashlib.sha256(requests.get(url, timeout=10).content).hexdigest() == SHA


def test_the_jobs_files_api_lists_its_inputs_and_outputs_to_its_org_only(api, owner, outsider, org_a, agent, binding):
    source = StoredFileFactory(org=org_a, binding=binding, status=FileStatus.AVAILABLE, size=1, file_name="in.tar.gz")
    job = JobFactory(
        org=org_a, input_files=[{"param": "F", "fileId": str(source.pk), "fileName": "in.tar.gz", "size": 1}]
    )
    JobFile.objects.create(org=org_a, job=job, file=source, direction="input")
    token = claim(agent, job)
    _, body = declare(token, job.pk)
    requests.put(body["uploadUrl"], data=CONTENT, headers=body["headers"], timeout=10).raise_for_status()
    complete(token, job.pk, body["fileId"])

    listed = api.as_user(owner).get(f"/api/orgs/{org_a.slug}/jobs/{job.pk}/files")
    assert listed.status_code == 200, listed.content
    files = listed.json()["files"]
    assert [(f["name"], f["direction"], f["status"]) for f in files] == [
        ("in.tar.gz", "input", "available"),
        ("report.html", "output", "available"),
    ]
    assert files[1]["id"] == body["fileId"] and files[1]["sha256"] == SHA and files[1]["size"] == len(CONTENT)
    # downloadUrl is the API route that presigns the download; it hands out the same bytes.
    presigned = api.get(urlsplit(files[1]["downloadUrl"]).path).json()["downloadUrl"]
    assert hashlib.sha256(requests.get(presigned, timeout=10).content).hexdigest() == SHA

    assert api.as_user(outsider).get(f"/api/orgs/{org_a.slug}/jobs/{job.pk}/files").status_code in (403, 404)


def test_the_job_page_lists_its_files_and_the_files_page_filters_by_job(owner, org_a, running, binding):
    job, token = running
    _, body = declare(token, job.pk)
    requests.put(body["uploadUrl"], data=CONTENT, headers=body["headers"], timeout=10).raise_for_status()
    complete(token, job.pk, body["fileId"])
    other = StoredFileFactory(org=org_a, binding=binding, status=FileStatus.AVAILABLE, file_name="unrelated.bin")
    client = Client()
    client.force_login(owner)

    page = client.get(f"/orgs/{org_a.slug}/jobs/{job.pk}")
    assert page.status_code == 200
    html = page.content.decode()
    section = html[html.index('data-testid="job-files"') :]
    assert "report.html" in section and SHA in section and body["fileId"] in section
    assert f"/orgs/{org_a.slug}/storage/files/{body['fileId']}/download" in section
    download = client.get(f"/orgs/{org_a.slug}/storage/files/{body['fileId']}/download")
    assert hashlib.sha256(requests.get(download["Location"], timeout=10).content).hexdigest() == SHA

    files = client.get(f"/orgs/{org_a.slug}/storage/files/?job={job.pk}").content.decode()
    assert body["fileId"] in files and str(other.pk) not in files
    assert f"/orgs/{org_a.slug}/jobs/{job.pk}" in files  # "uploaded by" links the job

    # The files API says the same: ?job= and the file's sha256, job and uploader.
    api = Client()
    api.force_login(owner)
    listed = api.get(f"/api/orgs/{org_a.slug}/files?job={job.pk}").json()["results"]
    assert [(f["id"], f["sha256"], f["jobId"]) for f in listed] == [(body["fileId"], SHA, str(job.pk))]
    assert listed[0]["createdBy"]["kind"] == "agent"


def test_retention_expires_old_outputs_and_removes_their_objects_only(
    running, binding, s3_admin, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from django.utils import timezone

    from storage.tasks import expire_outputs

    job, token = running
    _, body = declare(token, job.pk)
    requests.put(body["uploadUrl"], data=CONTENT, headers=body["headers"], timeout=10).raise_for_status()
    complete(token, job.pk, body["fileId"])
    output = StoredFile.objects.get(pk=body["fileId"])
    s3_admin.put_object(Bucket=binding.bucket, Key="deplite/input.bin", Body=b"input")
    old_input = StoredFileFactory(
        org=job.org, binding=binding, status=FileStatus.AVAILABLE, object_key="deplite/input.bin", size=5
    )
    StoredFile.objects.filter(pk__in=[output.pk, old_input.pk]).update(created_at=timezone.now() - timedelta(days=8))

    with django_capture_on_commit_callbacks(execute=True):
        assert expire_outputs() == 0  # no retention set: kept
    binding.output_retention_days = 7
    binding.save()
    with django_capture_on_commit_callbacks(execute=True):
        assert expire_outputs() == 1
    output.refresh_from_db()
    assert output.status == FileStatus.EXPIRED and output.object_removed_at is not None
    assert s3_admin.list_objects_v2(Bucket=binding.bucket, Prefix=output.object_key).get("KeyCount") == 0
    assert AuditEvent.objects.filter(action="file.expired", target_id=str(output.pk)).exists()
    # An input file of the same age stays, object and all; a second run changes nothing.
    assert StoredFile.objects.get(pk=old_input.pk).status == FileStatus.AVAILABLE
    assert s3_admin.get_object(Bucket=binding.bucket, Key="deplite/input.bin")["Body"].read() == b"input"
    assert expire_outputs() == 0


def test_the_rerun_form_offers_an_output_of_the_job_for_its_input_file_param(owner, org_a, agent, binding):
    source = StoredFileFactory(org=org_a, binding=binding, status=FileStatus.AVAILABLE, size=1, file_name="in.tar.gz")
    trigger = TriggerFactory(org=org_a, workflow="build")
    job = JobFactory(
        org=org_a,
        trigger=trigger,
        params={"FILE": str(source.pk), "ENV": "prod"},
        input_files=[{"param": "FILE", "fileId": str(source.pk), "fileName": "in.tar.gz", "size": 1}],
    )
    token = claim(agent, job)
    _, body = declare(token, job.pk)
    requests.put(body["uploadUrl"], data=CONTENT, headers=body["headers"], timeout=10).raise_for_status()
    complete(token, job.pk, body["fileId"])
    SignedAgent(agent).finish(job.pk)

    web = Client()
    web.force_login(owner)
    page = web.get(f"/orgs/{org_a.slug}/jobs/{job.pk}").content.decode()
    assert "Use an output of this job as FILE" in page and body["fileId"] in page
    response = web.post(
        f"/orgs/{org_a.slug}/jobs/{job.pk}/rerun",
        {"ref": "", "params": f"FILE={source.pk}\nENV=prod", "output_for_FILE": body["fileId"]},
    )
    assert response.status_code == 302, response.content[:3000]
    rerun = Job.objects.get(rerun_of=job)
    assert rerun.params == {"FILE": body["fileId"], "ENV": "prod"}
    assert [f["fileId"] for f in rerun.input_files] == [body["fileId"]]
