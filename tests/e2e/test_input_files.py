"""The docs' complete S3 flow, for real: presign → HTTP PUT of a tar.gz to the S3 server → complete →
verification → a trigger run with `params.FILEID` → the agent downloads the file into
`./logs/files/<fileId>/<fileName>` → the workflow extracts it and checks what is inside."""

from __future__ import annotations

import io
import tarfile
import uuid

import pytest
import requests

from tests.agent_program.harness import agent_command, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def _tarball(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_docs_flow_uploaded_tarball_reaches_the_workflow_through_params_fileid(e2e, moto_url, bucket):
    marker = f"hello from build {uuid.uuid4().hex}"
    tarball = _tarball({"app/index.html": f"<h1>{marker}</h1>\n", "app/VERSION": "abc123\n"})
    binding = e2e.api(
        "POST",
        "/storage/bindings",
        {
            "name": "prod-artifacts",
            "endpoint": moto_url,
            "region": "ap-northeast-2",
            "bucket": bucket,
            "accessKey": "AKIADEPLITEE2E",
            "secretKey": "moto-accepts-any-secret",
            "pathStyle": True,
        },
        expect=201,
    )

    # [a] presigned upload URL, [b] PUT straight to S3, [c] report completion — as in the docs.
    presigned = e2e.api(
        "POST",
        "/files/presign-upload",
        {"bindingId": binding["id"], "fileName": "app-abc123.tar.gz", "contentType": "application/gzip"},
        expect=201,
    )
    file_id = presigned["fileId"]
    put = requests.put(presigned["uploadUrl"], data=tarball, headers={"Content-Type": "application/gzip"}, timeout=30)
    assert put.status_code == 200, put.text
    assert e2e.api("POST", f"/files/{file_id}/complete", expect=202)["fileId"] == file_id
    stored = wait_until(
        lambda: (f := e2e.api("GET", f"/files/{file_id}"))["status"] == "available" and f,
        timeout=20,
        message="the upload to be verified",
    )
    assert stored["size"] == len(tarball)

    # The step also fetches the file itself with `deplite-agent files download` (the signed form of the
    # docs' curl) and finds the same bytes.
    download = " ".join(agent_command("files", "download", '"$PARAMS_FILEID"', "-o", "fetched.tar.gz"))
    e2e.home.write_workflow(
        "deploy-from-artifact",
        f"""
        name: deploy-from-artifact
        timeout-minutes: 20
        steps:
          - name: extract
            run: |
              test "$PARAMS_FILEID_PATH" = "$DEPLITE_FILES_DIR/$PARAMS_FILEID/app-abc123.tar.gz"
              mkdir -p www
              tar -xzf "$PARAMS_FILEID_PATH" -C www
          - name: check
            run: |
              grep -F "{marker}" www/app/index.html
              test "$(cat www/app/VERSION)" = abc123
          - name: download again
            run: |
              {download}
              cmp fetched.tar.gz "$PARAMS_FILEID_PATH"
        """,
    )
    trigger = e2e.create_trigger("deploy-from-artifact", name="deploy-prod")
    e2e.start_agent()

    queued = e2e.run(trigger, ref="main", params={"FILEID": file_id})
    job = e2e.wait_job(queued["jobId"])

    assert job["status"] == "succeeded", (job, e2e.log_text(job["id"]))
    assert [(s["name"], s["status"]) for s in job["steps"]] == [
        ("extract", "succeeded"),
        ("check", "succeeded"),
        ("download again", "succeeded"),
    ]
    assert job["inputFiles"] == [
        {"param": "FILEID", "fileId": file_id, "fileName": "app-abc123.tar.gz", "size": len(tarball)}
    ]
    cached = e2e.home.root / "logs" / "files" / file_id / "app-abc123.tar.gz"
    assert cached.read_bytes() == tarball
    log = e2e.log_text(job["id"])
    assert f"<h1>{marker}</h1>" in log
    assert f"downloading input file FILEID ({file_id})" in log

    # A second run of the same file uses the cached copy.
    again = e2e.wait_job(e2e.run(trigger, params={"FILEID": file_id})["jobId"])
    assert again["status"] == "succeeded"
    assert f"using cached input file FILEID ({file_id})" in e2e.log_text(again["id"])
