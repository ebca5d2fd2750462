"""Stopping steps for real: timeouts and cancels end the step's whole process group (background children
included), and the agent's own lifecycle: `--once` and SIGTERM while a job runs."""

from __future__ import annotations

import signal
import time

import pytest

from tests.agent_program.harness import pid_is_gone, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

# A step that records its own pid (its process group), starts background children, one of which ignores
# SIGTERM so only the agent's SIGKILL after the grace period can end it, and waits for them.
STUCK_STEP = """
    run: |
      echo $$ > step.pid
      sleep 300 &
      echo $! > child.pid
      (trap '' TERM; exec sleep 301) &
      echo $! > stubborn.pid
      echo "started the children"
      wait
"""


def _pids(home, *names: str) -> dict[str, int]:
    return {name: int((home.root / f"{name}.pid").read_text()) for name in names}


def _wait_for_pids(home, *names: str) -> dict[str, int]:
    wait_until(
        lambda: all((home.root / f"{n}.pid").is_file() and (home.root / f"{n}.pid").read_text().strip() for n in names),
        timeout=20,
        message="the step to record its pids",
    )
    return _pids(home, *names)


def _assert_all_gone(pids: dict[str, int]) -> None:
    # The agent waits for the group to empty before it reports, so they are gone by the time the job is final.
    alive = {name: pid for name, pid in pids.items() if not pid_is_gone(pid)}
    assert alive == {}


@pytest.mark.parametrize("where", ["step", "job"])
def test_a_timeout_kills_the_step_and_its_children_and_fails_the_job_naming_the_step(e2e, where):
    # 0.05 minutes = 3 seconds.
    job_timeout = "timeout-minutes: 0.05" if where == "job" else ""
    step_timeout = "    timeout-minutes: 0.05" if where == "step" else ""
    e2e.home.write_workflow(
        "push",
        f"""
name: push
{job_timeout}
steps:
  - name: Push
{step_timeout}
{STUCK_STEP}
  - name: After
    run: echo after > after.txt
""",
    )
    trigger = e2e.create_trigger("push")
    e2e.start_agent("--kill-grace", "1")

    started = time.monotonic()
    job_id = e2e.run(trigger)["jobId"]
    pids = _wait_for_pids(e2e.home, "step", "child", "stubborn")
    job = e2e.wait_job(job_id, timeout=30)

    assert job["status"] == "failed"
    assert job["error"] == 'timeout exceeded in step "Push"'
    assert time.monotonic() - started < 20  # three seconds of budget, one of grace; not the 300 s sleep
    push, after = job["steps"]
    assert (push["name"], push["status"]) == ("Push", "failed")
    assert job["exitCode"] == push["exitCode"] == 128 + signal.SIGTERM
    assert (after["name"], after["status"]) == ("After", "skipped")
    assert not (e2e.home.root / "after.txt").exists()
    _assert_all_gone(pids)
    log = e2e.log_text(job_id)
    assert "started the children\n" in log
    assert 'timeout exceeded in step "Push"' in log


def test_cancelling_a_running_job_stops_its_step_group_and_the_job_ends_cancelled(e2e):
    e2e.home.write_workflow(
        "approve",
        f"""
name: approve
steps:
  - name: Wait for approval
{STUCK_STEP}
  - name: Deploy
    run: echo deployed > deployed.txt
""",
    )
    trigger = e2e.create_trigger("approve")
    agent = e2e.start_agent("--kill-grace", "1")
    job_id = e2e.run(trigger)["jobId"]
    pids = _wait_for_pids(e2e.home, "step", "child", "stubborn")
    wait_until(lambda: "started the children" in e2e.log_text(job_id), message="the step's output on the server")

    answer = e2e.api("POST", f"/jobs/{job_id}/cancel", "")
    assert answer["cancelRequested"] is True
    asked = time.monotonic()
    job = e2e.wait_job(job_id, timeout=20)

    assert job["status"] == "cancelled"
    assert time.monotonic() - asked < 10
    assert job["error"] == 'cancelled during step "Wait for approval"'
    assert [(s["name"], s["status"]) for s in job["steps"]] == [
        ("Wait for approval", "cancelled"),
        ("Deploy", "skipped"),
    ]
    _assert_all_gone(pids)
    assert not (e2e.home.root / "deployed.txt").exists()
    # The agent itself carries on with the next job.
    e2e.home.write_workflow("ping", "name: ping\nsteps:\n  - name: Ping\n    run: echo pong\n")
    follow_up = e2e.wait_job(e2e.run(e2e.create_trigger("ping"))["jobId"])
    assert follow_up["status"] == "succeeded"
    assert agent.proc.poll() is None


def test_once_runs_one_job_reports_it_and_exits_leaving_the_next_job_queued(e2e):
    e2e.home.write_workflow("ping", "name: ping\nsteps:\n  - name: Ping\n    run: echo pong\n")
    trigger = e2e.create_trigger("ping")
    first = e2e.run(trigger)["jobId"]
    second = e2e.run(trigger)["jobId"]

    agent = e2e.start_agent("--once")

    assert agent.wait(timeout=30) == 0
    done = e2e.job(first)
    assert (done["status"], done["exitCode"]) == ("succeeded", 0)
    assert e2e.log_text(first) == "pong\n"
    waiting = e2e.job(second)
    assert (waiting["status"], waiting["agentId"]) == ("queued", None)


RELEASE = """
name: release
steps:
  - name: Release
    run: |
      echo "release started"
      while [ ! -f go ]; do sleep 0.05; done
      echo "release finished"
"""


def test_sigterm_while_a_job_runs_lets_it_finish_reports_it_and_claims_nothing_more(e2e):
    e2e.home.write_workflow("release", RELEASE)
    trigger = e2e.create_trigger("release")
    agent = e2e.start_agent()
    job_id = e2e.run(trigger)["jobId"]
    wait_until(lambda: "release started" in e2e.log_text(job_id), message="the step's output on the server")

    agent.signal(signal.SIGTERM)
    time.sleep(0.5)
    assert agent.proc.poll() is None  # still running its job
    queued_meanwhile = e2e.run(trigger)["jobId"]
    (e2e.home.root / "go").touch()

    assert agent.wait(timeout=30) == 0
    job = e2e.job(job_id)
    assert (job["status"], job["exitCode"]) == ("succeeded", 0)
    assert e2e.log_text(job_id) == "release started\nrelease finished\n"
    assert e2e.job(queued_meanwhile)["status"] == "queued"


def test_sigterm_with_on_stop_cancel_cancels_the_running_job_kills_its_group_and_reports_it(e2e):
    e2e.home.write_workflow("hang", f"name: hang\nsteps:\n  - name: Hang\n{STUCK_STEP}")
    trigger = e2e.create_trigger("hang")
    agent = e2e.start_agent("--on-stop", "cancel", "--kill-grace", "1")
    job_id = e2e.run(trigger)["jobId"]
    pids = _wait_for_pids(e2e.home, "step", "child", "stubborn")

    agent.signal(signal.SIGTERM)

    assert agent.wait(timeout=30) == 0
    job = e2e.job(job_id)
    assert job["status"] == "cancelled"
    assert job["error"] == 'cancelled during step "Hang"'
    assert [(s["name"], s["status"]) for s in job["steps"]] == [("Hang", "cancelled")]
    _assert_all_gone(pids)
