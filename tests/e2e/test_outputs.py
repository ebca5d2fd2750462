"""Output files end to end (issue 22): the real agent, the real server and the S3 server over HTTP. A
workflow hands back two files through `outputs:` and one through `deplite-agent files upload`; each is an
available file of the org that downloads with the sha256 the agent printed; a second run takes one as its
input file; the job token uploads only to its own job and only while that job runs."""

from __future__ import annotations

import hashlib
import re

import pytest
import requests

from tests.agent_program.harness import agent_command

pytestmark = pytest.mark.django_db(transaction=True)

UPLOADED = re.compile(r"([0-9a-f-]{36})  (\S+)  (\d+) bytes  sha256:([0-9a-f]{64})")


def test_outputs_reach_the_bucket_download_intact_and_feed_the_next_run(e2e, moto_url, bucket):
    e2e.api(
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
    upload = " ".join(agent_command("files", "upload"))
    e2e.home.write_workflow(
        "report",
        f"""
        outputs:
          - path: "reports/*.html"
            required: true
        steps:
          - name: build
            run: |
              mkdir -p reports
              echo '<p>one</p>' > reports/one.html
              echo '<p>two</p>' > reports/two.html
              head -c 300000 /dev/urandom > dump.sql
              {upload} dump.sql --content-type application/sql
              echo "$DEPLITE_JOB_TOKEN" > job-token.txt
        """,
    )
    # The consumer checks the file it was handed, and tries its own token on the producer's job.
    e2e.home.write_workflow(
        "consume",
        """
        steps:
          - name: use
            run: |
              echo "got $(sha256sum "$PARAMS_REPORT_PATH" | cut -d' ' -f1)"
              code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $DEPLITE_JOB_TOKEN" \\
                -H 'Content-Type: application/json' -d '{"name": "x", "size": 1, "sha256": "'"$(printf %064d 0)"'"}' \\
                "$DEPLITE_URL/api/agent/jobs/$PARAMS_OTHER_JOB/outputs")
              echo "other job answered $code"
        """,
    )
    producer, consumer = e2e.create_trigger("report"), e2e.create_trigger("consume")
    e2e.start_agent()

    job = e2e.wait_job(e2e.run(producer)["jobId"])
    log = e2e.log_text(job["id"])
    assert job["status"] == "succeeded", (job, log)
    printed = {name: (file_id, int(size), digest) for file_id, name, size, digest in UPLOADED.findall(log)}
    assert set(printed) == {"one.html", "two.html", "dump.sql"}, log
    # The job's files list the three, as the agent printed them; each downloads with its sha256.
    listed = {f["name"]: f for f in e2e.api("GET", f"/jobs/{job['id']}/files")["files"]}
    assert set(listed) == set(printed)
    for name, (file_id, size, digest) in printed.items():
        local = e2e.home.root / ("reports/" + name if name.endswith(".html") else name)
        assert digest == hashlib.sha256(local.read_bytes()).hexdigest()
        entry = listed[name]
        assert (entry["id"], entry["size"], entry["sha256"]) == (file_id, size, digest)
        assert (entry["direction"], entry["status"]) == ("output", "available")
        presign = requests.get(entry["downloadUrl"], headers={"Authorization": f"Bearer {e2e.jwt}"}, timeout=10)
        body = requests.get(presign.json()["downloadUrl"], timeout=30).content
        assert hashlib.sha256(body).hexdigest() == digest, name
    assert listed["dump.sql"]["contentType"] == "application/sql"

    # The producer's token died with its job.
    token = (e2e.home.root / "job-token.txt").read_text().strip()
    late = requests.post(
        f"{e2e.url}/api/agent/jobs/{job['id']}/outputs",
        json={"name": "late.txt", "size": 1, "sha256": "0" * 64},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert late.status_code == 401 and late.json()["error"]["code"] == "invalid_job_token"

    # An output is an ordinary file: the next run takes it as an input file.
    report_id, _, report_digest = printed["one.html"]
    second = e2e.wait_job(e2e.run(consumer, params={"REPORT": report_id, "OTHER_JOB": job["id"]})["jobId"])
    second_log = e2e.log_text(second["id"])
    assert second["status"] == "succeeded", (second, second_log)
    assert second["inputFiles"][0]["fileId"] == report_id
    assert [(f["id"], f["direction"]) for f in e2e.api("GET", f"/jobs/{second['id']}/files")["files"]] == [
        (report_id, "input")
    ]
    assert f"got {report_digest}" in second_log
    # A live token of one job uploads nothing to another job.
    assert "other job answered 404" in second_log
