"""The agent when things go wrong around it: the server ended its job, the agent itself is SIGKILLed, an
outage's retries. The real agent process against the fake protocol server."""

from __future__ import annotations

import os
import signal
import sys
import time
from datetime import UTC, datetime, timedelta

from .harness import AGENT_SRC, pid_is_gone, wait_until

RUN = ("--poll-wait", "1", "--stop-timeout", "20", "--kill-grace", "1")

if str(AGENT_SRC) not in sys.path:
    sys.path.insert(0, str(AGENT_SRC))


def test_a_job_the_server_ended_is_stopped_reported_cleared_and_the_agent_moves_on(
    home, fake_server, agent_credentials
):
    pidfile = home.root / "child.pid"
    home.write_workflow(
        "chatty",
        f"""
        steps:
          - name: talk
            run: |
              sleep 300 &
              echo $! > {pidfile}
              while :; do echo tick; sleep 0.1; done
        """,
    )
    home.write_workflow("next", "steps:\n  - name: s\n    run: echo next-ran\n")
    ended = fake_server.queue_job("chatty")
    agent = home.start_agent(*RUN, **agent_credentials)
    fake_server.wait_for(lambda: "tick" in ended.log_text(), 15, "the step to talk")
    # The server fails the job (e.g. "agent lost" while this agent was cut off): from now on it takes no
    # events from the chatty step and answers every report with cancelRequested.
    fake_server.end_job(ended)
    fake_server.wait_for(lambda: ended.finish_calls >= 1, 20, "the agent to report the job it was told is over")
    wait_until(lambda: pid_is_gone(int(pidfile.read_text())), 10, message="the step's background child gone")
    wait_until(lambda: not (home.root / "logs" / "spool" / ended.id).exists(), 10, message="the spool cleared")
    assert ended.finish_calls == 1  # a 409 for a job already over is not retried
    assert "the server ended the job" in agent.output()

    # …and it is free for the next job.
    later = fake_server.queue_job("next")
    assert fake_server.wait_finished(later, 20)["status"] == "succeeded"
    assert "next-ran" in later.log_text()
    assert agent.stop(30) == 0, agent.output()


def test_a_report_left_on_disk_for_a_job_the_server_ended_is_settled_after_a_restart(
    home, fake_server, agent_credentials
):
    home.write_workflow("chatty", "steps:\n  - name: talk\n    run: while :; do echo tick; sleep 0.05; done\n")
    home.write_workflow("next", "steps:\n  - name: s\n    run: echo next-ran\n")
    ended = fake_server.queue_job("chatty")
    agent = home.start_agent(*RUN, **agent_credentials)
    fake_server.wait_for(lambda: "tick" in ended.log_text(), 15, "the step to talk")
    fake_server.stop()  # an outage: the agent spools what the step says
    time.sleep(1)
    agent.signal(signal.SIGKILL)
    agent.wait(10)
    fake_server.end_job(ended)  # meanwhile the server failed the job as lost
    fake_server.start()

    restarted = home.start_agent(*RUN, **agent_credentials)
    fake_server.wait_for(lambda: ended.finish_calls >= 1, 20, "the left-over report to be settled")
    wait_until(lambda: not (home.root / "logs" / "spool" / ended.id).exists(), 10, message="the spool cleared")
    later = fake_server.queue_job("next")
    assert fake_server.wait_finished(later, 20)["status"] == "succeeded"
    assert ended.finish_calls == 1
    assert restarted.stop(30) == 0, restarted.output()


def test_a_sigkilled_agent_takes_its_running_step_and_the_steps_children_with_it(home, fake_server, agent_credentials):
    home.write_workflow(
        "long",
        """
        steps:
          - name: wait
            run: |
              sleep 300 &
              echo $! > child.pid
              echo $$ > script.pid
              echo running
              wait
        """,
    )
    job = fake_server.queue_job("long")
    agent = home.start_agent(*RUN, **agent_credentials)
    fake_server.wait_for(lambda: "running" in job.log_text(), 15, "the step to run")
    child = int((home.root / "child.pid").read_text())
    script = int((home.root / "script.pid").read_text())
    agent.signal(signal.SIGKILL)
    agent.wait(10)
    # No restart: the kernel's parent-death signal reaches the step's group leader, which stops the group.
    wait_until(lambda: pid_is_gone(child) and pid_is_gone(script), 10, message="the step to end with its agent")


def test_retry_pauses_are_capped_at_a_few_seconds_with_jitter():
    from deplite_agent.client import Backoff

    backoff = Backoff()
    delays = [backoff.next_delay() for _ in range(40)]
    assert max(delays) <= 4.0
    assert delays[0] <= 0.5  # the first retry comes quickly
    saturated = delays[10:]
    assert min(saturated) >= 2.0  # "equal jitter": never below half the cap…
    assert len({round(d, 3) for d in saturated}) > 20  # …and spread, so a fleet does not come back in lockstep


def test_the_agent_waits_as_long_as_the_servers_retry_after_asks_beyond_its_own_cap(
    home, fake_server, agent_credentials
):
    agent = home.start_agent(*RUN, **agent_credentials)
    claims = lambda: [r for r in fake_server.requests if r["path"].startswith("/api/agent/jobs/claim")]  # noqa: E731
    fake_server.wait_for(lambda: len(claims()) >= 1, 15, "the agent to claim")
    with fake_server.lock:
        fake_server.unavailable_retry_after = "6"  # above the agent's own 4 s backoff cap
        fake_server.unavailable_answers = 1
    fake_server.wait_for(
        lambda: any(r["status"] == 503 for r in claims()), 15, "a claim to be answered 503 with Retry-After"
    )
    refused = next(r for r in claims() if r["status"] == 503)
    fake_server.wait_for(lambda: claims()[-1]["at"] > refused["at"], 15, "the next claim")
    retried = next(r for r in claims() if r["at"] > refused["at"])
    assert retried["at"] - refused["at"] >= 5.9
    assert agent.stop(30) == 0, agent.output()


def test_retry_after_is_read_in_seconds_or_as_a_date_and_capped_at_five_minutes():
    from email.utils import format_datetime

    from deplite_agent.client import MAX_RETRY_AFTER_SECONDS, retry_after_seconds

    assert retry_after_seconds("12") == 12.0
    assert retry_after_seconds("86400") == MAX_RETRY_AFTER_SECONDS == 300.0
    in_a_minute = datetime.now(UTC) + timedelta(seconds=60)
    assert 55 <= retry_after_seconds(format_datetime(in_a_minute, usegmt=True)) <= 60
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None


def test_a_repeated_parent_death_signal_does_not_restart_the_step_leaders_grace(tmp_path):
    """A SIGKILLed agent is many threads, and the kernel sends the parent-death signal each time the
    leader's parent thread exits (the leader passes from one dying thread to the next): SIGHUP can arrive
    twice. The second one must not start a second grace period."""
    import subprocess

    from deplite_agent.process import step_command

    script = tmp_path / "step.sh"
    script.write_text("trap '' TERM\necho running\nsleep 300\n")  # a step that ignores SIGTERM: only SIGKILL ends it
    grace = 2.0
    leader = subprocess.Popen(
        step_command(str(script), grace), stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, start_new_session=True
    )
    try:
        assert leader.stdout.readline() == b"running\n"
        started = time.monotonic()
        leader.send_signal(signal.SIGHUP)
        time.sleep(0.5)  # inside the grace, as a second dying thread of the agent would send it
        leader.send_signal(signal.SIGHUP)
        leader.wait(3 * grace)
        elapsed = time.monotonic() - started
        assert elapsed < grace + 1.0, f"the step's group lived {elapsed:.1f}s past its agent, grace {grace}s"
        wait_until(lambda: not _group_alive(leader.pid), 2, message="the step's group to be gone")
    finally:
        if leader.poll() is None:
            os.killpg(leader.pid, signal.SIGKILL)
            leader.wait(5)


def _group_alive(pgid: int) -> bool:
    from deplite_agent.process import group_members

    return bool(group_members(pgid))
