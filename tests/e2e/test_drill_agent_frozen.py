"""Fault drill: the agent is frozen (SIGSTOP) mid-job past the lost timeout, the server fails the job as
"agent lost", a user re-runs it, then the agent resumes. Another job has taken its place, so the agent must
learn that the server ended the job: stop the step, report, clear its spool and take the next job — not loop
on events. (Without a re-run, an agent that comes back gets its log and result taken: test_drill_web_outage.py
and tests/notifications/test_late_result.py.)"""

from __future__ import annotations

import signal
import time

import pytest

from agents.tasks import agents_reap_lost
from tests.agent_program.harness import pid_is_gone, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.drill]


def test_an_agent_frozen_past_the_lost_timeout_stops_the_step_and_finishes_cleanly_when_resumed(e2e, settings):
    e2e.home.write_workflow(
        "chatty",
        """
        name: chatty
        steps:
          - name: Talk
            run: |
              sleep 300 &
              echo $! > child.pid
              while :; do echo "tick $(date +%s%N)"; sleep 0.1; done
          - name: Never
            run: touch never.txt
        """,
    )
    trigger = e2e.create_trigger("chatty")
    agent = e2e.start_agent("--kill-grace", "1")
    job_id = e2e.run(trigger)["jobId"]
    wait_until(lambda: "tick" in e2e.log_text(job_id), message="the step's output on the server")
    child = int((e2e.home.root / "child.pid").read_text())

    agent.signal(signal.SIGSTOP)
    try:
        settings.DEPLITE_AGENT_LOST_AFTER_SECONDS = 2
        time.sleep(3)  # silent past the lost timeout (the step keeps talking into the frozen agent's pipe)
        assert agents_reap_lost() == 1  # the beat task, run here on the same database
        assert e2e.job(job_id)["status"] == "failed"
        rerun = e2e.api("POST", f"/jobs/{job_id}/rerun", {}, expect=202)["jobId"]
        e2e.api("POST", f"/jobs/{rerun}/cancel", "")  # only its existence matters here
    finally:
        agent.signal(signal.SIGCONT)

    wait_until(lambda: pid_is_gone(child), timeout=20, message="the step's group to be stopped")
    spool = e2e.home.root / "logs" / "spool" / job_id
    wait_until(lambda: not spool.exists(), timeout=20, message="the job's spool to be cleared")
    job = e2e.job(job_id)
    assert (job["status"], job["error"]) == ("failed", "agent lost")  # the server's outcome stands
    assert not (e2e.home.root / "never.txt").exists()
    assert "already has a different final state" in e2e.agent_output()  # its report was answered 409

    # The agent is healthy and takes the next job.
    e2e.home.write_workflow("ping", "name: ping\nsteps:\n  - name: Ping\n    run: echo pong\n")
    follow_up = e2e.wait_job(e2e.run(e2e.create_trigger("ping"))["jobId"])
    assert follow_up["status"] == "succeeded"
    assert agent.proc.poll() is None
    assert agent.stop(30) == 0
