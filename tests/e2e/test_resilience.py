"""The server goes away in the middle of a job and comes back: the agent keeps running the job, keeps its
events on disk, and delivers all of them, and the finish, exactly once."""

from __future__ import annotations

import time

import pytest

from tests.agent_program.harness import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

LINES = 30


def test_a_server_outage_mid_job_loses_nothing_and_repeats_nothing(e2e):
    e2e.home.write_workflow(
        "count",
        f"""
        name: count
        steps:
          - name: Count
            run: |
              for i in $(seq 1 {LINES}); do echo "line $i"; sleep 0.1; done
          - name: Done
            run: echo "all counted"
        """,
    )
    trigger = e2e.create_trigger("count")
    e2e.start_agent()
    job_id = e2e.run(trigger)["jobId"]
    wait_until(lambda: "line 3\n" in e2e.log_text(job_id), message="the first lines on the server")

    server = e2e.stack.server
    server.kill()
    try:
        # Long enough for the job to finish while the server is gone: its last lines and its finish
        # wait on the agent's disk.
        wait_until(
            lambda: "all counted" in e2e.home.job_log(job_id) and " succeeded exit_code=0" in e2e.home.job_log(job_id),
            timeout=20,
            message="the job to end on the agent",
        )
        time.sleep(1)
    finally:
        server.start()

    job = e2e.wait_job(job_id, timeout=60)

    assert job["status"] == "succeeded"
    assert job["exitCode"] == 0
    assert [(s["name"], s["status"]) for s in job["steps"]] == [("Count", "succeeded"), ("Done", "succeeded")]
    chunks = e2e.logs(job_id)
    assert [c["seq"] for c in chunks] == list(range(1, len(chunks) + 1))
    lines = "".join(c["data"] for c in chunks).splitlines()
    assert lines == [f"line {i}" for i in range(1, LINES + 1)] + ["all counted"]
    # The outage really happened to the agent: it could not report and retried.
    assert "server unreachable" in e2e.agent_output()
