"""The real agent process against the fake protocol server: claim, events, finish, batching, outages,
cancel, --once, SIGTERM. Each request is signature-checked by the fake server's own implementation."""

from __future__ import annotations

import signal
import time

from .harness import agent_command, wait_until

RUN = ("--poll-wait", "1", "--stop-timeout", "20")


def assert_all_requests_signed(server):
    api = [r for r in server.requests if r["path"].startswith("/api/")]
    assert api, "the agent made no API request"
    assert all(r["status"] != 401 for r in api), [r["path"] for r in api if r["status"] == 401]
    assert all(r["headers"].get("Content-Type") == "application/json" for r in api if r["method"] == "POST")


def assert_contiguous(job):
    assert [e["seq"] for e in job.events] == list(range(1, len(job.events) + 1))


def test_once_runs_one_job_reports_it_and_exits(home, fake_server, agent_credentials):
    home.write_workflow(
        "deploy",
        """
        timeout-minutes: 7
        steps:
          - name: build
            run: echo "building $REF for $PARAMS_ENV"
          - name: optional
            run: exit 3
            continue-on-error: true
          - name: ship
            run: echo shipped
    """,
    )
    job = fake_server.queue_job("deploy", ref="v2", params={"ENV": "prod"})
    second = fake_server.queue_job("deploy")
    agent = home.start_agent("--once", *RUN, **agent_credentials)
    assert agent.wait(30) == 0, agent.output()
    assert job.finish == {"status": "succeeded", "exitCode": 0, "error": None}
    assert second.claimed_by is None, "--once must not claim a second job"
    assert_contiguous(job)
    types = [e["type"] for e in job.events]
    assert types[0] == "job_started" and job.events[0]["timeoutMinutes"] == 7
    assert job.step_results() == [
        (0, "build", "succeeded", 0),
        (1, "optional", "failed", 3),
        (2, "ship", "succeeded", 0),
    ]
    assert [(e["step"], e["name"]) for e in job.events if e["type"] == "step_started"] == [
        (0, "build"),
        (1, "optional"),
        (2, "ship"),
    ]
    assert "building v2 for prod\n" in job.log_text() and "shipped\n" in job.log_text()
    assert all(e["at"].endswith("Z") for e in job.events)
    assert fake_server.heartbeats[0]["workflows"] == ["deploy"]
    assert_all_requests_signed(fake_server)
    assert "building v2 for prod" in home.job_log(job.id)
    assert not (home.root / "logs" / "spool" / job.id).exists()


def test_failing_job_reports_failed_with_the_step_exit_code(home, fake_server, agent_credentials):
    home.write_workflow("deploy", "steps:\n  - name: migrate\n    run: exit 9\n  - name: after\n    run: echo\n")
    job = fake_server.queue_job("deploy")
    agent = home.start_agent("--once", *RUN, **agent_credentials)
    assert agent.wait(30) == 1
    assert job.finish == {"status": "failed", "exitCode": 9, "error": 'step "migrate" exited with code 9'}
    assert job.step_results() == [(0, "migrate", "failed", 9), (1, "after", "skipped", None)]


def test_missing_workflow_fails_the_job_with_an_error_naming_it(home, fake_server, agent_credentials):
    job = fake_server.queue_job("does-not-exist")
    agent = home.start_agent("--once", *RUN, **agent_credentials)
    agent.wait(30)
    assert job.finish["status"] == "failed"
    assert "does-not-exist" in job.finish["error"] and "not found" in job.finish["error"]


def test_log_lines_are_batched_not_sent_one_request_per_line(home, fake_server, agent_credentials):
    home.write_workflow(
        "chatty",
        """
        steps:
          - name: lines
            run: for i in $(seq 1 3000); do echo "line $i"; done
    """,
    )
    job = fake_server.queue_job("chatty")
    agent = home.start_agent("--once", *RUN, **agent_credentials)
    assert agent.wait(30) == 0
    assert job.log_text() == "".join(f"line {i}\n" for i in range(1, 3001))
    event_posts = [r for r in fake_server.requests if r["path"].endswith("/events")]
    assert len(event_posts) < 20
    assert all(len(r["body"]) < 300 * 1024 for r in event_posts)


def test_log_lines_reach_the_server_within_about_a_second(home, fake_server, agent_credentials):
    home.write_workflow(
        "slowlog",
        """
        steps:
          - name: s
            run: |
              echo early-line
              sleep 4
    """,
    )
    job = fake_server.queue_job("slowlog")
    agent = home.start_agent("--once", *RUN, **agent_credentials)
    fake_server.wait_for(lambda: any(e["type"] == "step_started" for e in job.events), 15, "the step to start")
    started = time.monotonic()
    fake_server.wait_for(lambda: "early-line" in job.log_text(), 5, "the first line")
    assert time.monotonic() - started < 1.6
    assert agent.wait(30) == 0


def test_server_outage_mid_job_loses_nothing_and_duplicates_nothing(home, fake_server, agent_credentials):
    home.write_workflow(
        "steady",
        """
        steps:
          - name: tick
            run: for i in $(seq 1 60); do echo "tick $i"; sleep 0.1; done
          - name: done
            run: echo finished
    """,
    )
    job = fake_server.queue_job("steady")
    fake_server.drop_event_responses = 2  # two batches are stored but their answers are lost
    agent = home.start_agent("--once", *RUN, **agent_credentials)
    fake_server.wait_for(lambda: "tick 5\n" in job.log_text(), 20, "the first ticks")
    fake_server.stop()
    time.sleep(3)
    assert job.finish is None
    fake_server.start()  # same port
    assert agent.wait(40) == 0, agent.output()
    assert job.finish == {"status": "succeeded", "exitCode": 0, "error": None}
    assert job.log_text() == "".join(f"tick {i}\n" for i in range(1, 61)) + "finished\n"
    assert_contiguous(job)
    assert job.finish_calls == 1
    assert "retrying" in agent.output()


def test_job_keeps_running_and_finish_waits_while_the_server_is_down(home, fake_server, agent_credentials):
    home.write_workflow("short", "steps:\n  - name: s\n    run: |\n      sleep 1\n      echo done-offline\n")
    job = fake_server.queue_job("short")
    agent = home.start_agent("--once", *RUN, **agent_credentials)
    fake_server.wait_for(lambda: job.events, 15, "the job to start")
    fake_server.stop()
    wait_until(lambda: "done-offline" in home.job_log(job.id) and "succeeded" in home.job_log(job.id), 10)
    spool = home.root / "logs" / "spool" / job.id
    assert (spool / "finish.json").exists() and (spool / "events.jsonl").exists()
    fake_server.start()
    assert agent.wait(40) == 0
    assert job.finish["status"] == "succeeded"
    assert "done-offline" in job.log_text()


def test_cancel_from_the_server_kills_the_step_and_finishes_cancelled(home, fake_server, agent_credentials):
    pidfile = home.root / "bg.pid"
    home.write_workflow(
        "long",
        f"""
        steps:
          - name: wait
            run: |
              sleep 300 &
              echo $! > {pidfile}
              echo waiting
              sleep 300
          - name: never
            run: echo never
    """,
    )
    job = fake_server.queue_job("long")
    agent = home.start_agent("--once", *RUN, **agent_credentials)
    fake_server.wait_for(lambda: "waiting" in job.log_text(), 15, "the step to run")
    fake_server.request_cancel(job)
    finish = fake_server.wait_finished(job, 15)
    assert finish == {"status": "cancelled", "exitCode": 143, "error": 'cancelled during step "wait"'}
    assert job.step_results() == [(0, "wait", "cancelled", 143), (1, "never", "skipped", None)]
    from .harness import pid_is_gone

    wait_until(lambda: pid_is_gone(int(pidfile.read_text())), 3, message="background child gone")
    assert agent.wait(15) == 1


def test_sigterm_lets_the_running_job_finish_and_report_then_exits(home, fake_server, agent_credentials):
    home.write_workflow("job", "steps:\n  - name: s\n    run: |\n      echo started\n      sleep 2\n      echo ended\n")
    job = fake_server.queue_job("job")
    agent = home.start_agent(*RUN, **agent_credentials)
    fake_server.wait_for(lambda: "started" in job.log_text(), 15, "the job to start")
    agent.signal(signal.SIGTERM)
    later = fake_server.queue_job("job")
    assert agent.wait(30) == 0, agent.output()
    assert job.finish == {"status": "succeeded", "exitCode": 0, "error": None}
    assert "ended" in job.log_text()
    assert later.claimed_by is None, "a stopping agent must not claim new jobs"


def test_sigterm_with_on_stop_cancel_cancels_the_running_job(home, fake_server, agent_credentials):
    home.write_workflow("job", "steps:\n  - name: s\n    run: |\n      echo started\n      sleep 300\n")
    job = fake_server.queue_job("job")
    agent = home.start_agent("--on-stop", "cancel", *RUN, **agent_credentials)
    fake_server.wait_for(lambda: "started" in job.log_text(), 15, "the job to start")
    agent.signal(signal.SIGTERM)
    assert agent.wait(30) == 0, agent.output()
    assert job.finish["status"] == "cancelled"


def test_input_file_is_downloaded_through_a_presigned_url_without_the_agent_signature(
    home, fake_server, agent_credentials
):
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = b"version=42\n"
        info = tarfile.TarInfo("app/VERSION")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    file_id = fake_server.add_file("app.tar.gz", buf.getvalue())
    home.write_workflow(
        "deploy-from-artifact",
        """
        steps:
          - name: extract
            run: |
              mkdir -p out && tar -xzf "$PARAMS_FILEID_PATH" -C out
              grep -q version=42 out/app/VERSION
          - name: again-through-the-cli
            run: deplite-agent files download "$PARAMS_FILEID" -o copy.tar.gz && cmp copy.tar.gz "$PARAMS_FILEID_PATH"
    """,
    )
    # The step calls the console script; make `deplite-agent` resolve to this checkout for the test.
    bindir = home.root / "bin"
    bindir.mkdir()
    import os

    (bindir / "deplite-agent").write_text(f'#!/bin/sh\nexec {agent_command()[0]} -m deplite_agent "$@"\n')
    (bindir / "deplite-agent").chmod(0o755)
    job = fake_server.queue_job("deploy-from-artifact", params={"FILEID": file_id}, input_params=["FILEID"])
    agent = home.start_agent("--once", *RUN, **agent_credentials, PATH=f"{bindir}{os.pathsep}{os.environ['PATH']}")
    assert agent.wait(30) == 0, agent.output() + job.log_text()
    assert job.finish["status"] == "succeeded", job.log_text()
    cached = home.root / "logs" / "files" / file_id / "app.tar.gz"
    assert cached.read_bytes() == buf.getvalue()
    s3 = [r for r in fake_server.requests if r["path"].startswith("/s3/")]
    assert len(s3) == 2 and all("X-Agent-Signature" not in r["headers"] for r in s3)
    assert agent_credentials["secret"] not in job.log_text()


def test_secret_is_absent_from_step_env_job_log_and_agent_output(home, fake_server, agent_credentials):
    home.write_workflow(
        "dump",
        """
        steps:
          - name: env
            run: |
              env | sort
              cat "$DEPLITE_AGENT_CONFIG" || true
    """,
    )
    job = fake_server.queue_job("dump")
    agent = home.start_agent("--once", *RUN, **agent_credentials)
    assert agent.wait(30) == 0
    secret = agent_credentials["secret"]
    text = job.log_text()
    assert "DEPLITE_JOB_ID=" in text and "DEPLITE_AGENT_CONFIG=" in text
    assert "DEPLITE_AGENT_SECRET" not in text
    assert secret not in text
    assert secret not in home.job_log(job.id)
    assert secret not in agent.output()
    assert not (home.root / "logs" / "private" / "agent-config.yaml").exists(), (
        "the credentials file outlives the agent"
    )


def test_bad_secret_backs_off_instead_of_hammering(home, fake_server, agent_credentials):
    agent = home.start_agent(*RUN, **{**agent_credentials, "secret": "wrong-secret-value"})
    time.sleep(4)
    agent.signal(signal.SIGTERM)
    agent.wait(20)
    assert len(fake_server.requests) <= 4
    assert all(r["status"] == 401 for r in fake_server.requests)
    assert "rejected this agent's signature" in agent.output()
    assert "wrong-secret-value" not in agent.output()


def test_a_finish_conflict_is_logged_and_not_retried(home, fake_server, agent_credentials):
    home.write_workflow("job", "steps:\n  - name: s\n    run: echo hi\n")
    job = fake_server.queue_job("job")
    fake_server.finish_status_override = 409
    agent = home.start_agent("--once", *RUN, **agent_credentials)
    agent.wait(30)
    assert job.finish_calls == 1
    assert "different final state" in agent.output()


def test_an_agent_killed_mid_job_stops_the_orphaned_step_and_reports_it_failed_on_the_next_start(
    home, fake_server, agent_credentials
):
    home.write_workflow(
        "job",
        "steps:\n  - name: s\n    run: |\n      sleep 300 &\n      echo $! > child.pid\n      echo before-crash\n      wait\n",
    )
    job = fake_server.queue_job("job")
    agent = home.start_agent(*RUN, **agent_credentials)
    fake_server.wait_for(lambda: "before-crash" in job.log_text(), 15, "the job to start")
    agent.signal(signal.SIGKILL)
    agent.wait(10)
    restarted = home.start_agent(*RUN, **agent_credentials)
    finish = fake_server.wait_finished(job, 20)
    assert finish == {"status": "failed", "exitCode": None, "error": "the agent stopped while the job was running"}
    assert job.log_text().count("before-crash") == 1
    # The step outlived the killed agent; the restarted agent stopped it before reporting the job failed.
    from .harness import pid_is_gone

    assert pid_is_gone(int((home.root / "child.pid").read_text()))
    assert restarted.stop(30) == 0


def test_concurrency_runs_jobs_side_by_side(home, fake_server, agent_credentials):
    # Each job waits for the other's marker: they can only both succeed if they run at the same time.
    home.write_workflow(
        "pair",
        """
        steps:
          - name: meet
            run: |
              touch "marker-$PARAMS_ME"
              for i in $(seq 1 100); do [ -e "marker-$PARAMS_OTHER" ] && exit 0; sleep 0.05; done
              exit 1
    """,
    )
    first = fake_server.queue_job("pair", params={"ME": "a", "OTHER": "b"})
    second = fake_server.queue_job("pair", params={"ME": "b", "OTHER": "a"})
    agent = home.start_agent("--concurrency", "2", *RUN, **agent_credentials)
    fake_server.wait_finished(first, 20)
    fake_server.wait_finished(second, 20)
    assert agent.stop(30) == 0
    assert first.finish["status"] == second.finish["status"] == "succeeded"


def test_sigterm_ends_an_idle_agents_long_poll_at_once(home, fake_server, agent_credentials):
    agent = home.start_agent("--poll-wait", "30", **agent_credentials)
    fake_server.wait_for(
        lambda: any(r["path"] == "/api/agent/heartbeat" for r in fake_server.requests), 15, "a heartbeat"
    )
    time.sleep(1)  # the claim that follows the heartbeat is inside its 30 s wait

    asked = time.monotonic()
    agent.signal(signal.SIGTERM)

    assert agent.wait(20) == 0, agent.output()
    assert time.monotonic() - asked < 5
    assert "claim failed" not in agent.output()


def test_every_heartbeat_lists_the_jobs_the_agent_holds_until_their_report_is_delivered(
    home, fake_server, agent_credentials
):
    """The server takes back a job it handed out that the heartbeat does not list, so a job must be listed
    while it runs and while its finish is still undelivered, and no longer once the server has it."""
    home.write_workflow(
        "hold",
        """
        steps:
          - name: wait
            run: for i in $(seq 1 400); do [ -e release ] && exit 0; sleep 0.05; done; exit 1
    """,
    )
    job = fake_server.queue_job("hold")
    fake_server.finish_status_override = 503  # the report cannot be delivered yet
    agent = home.start_agent("--heartbeat-interval", "1", *RUN, **agent_credentials)
    try:
        fake_server.wait_for(lambda: [job.id] in fake_server.held_in_heartbeats(), 15, "a heartbeat listing the job")
        (home.root / "release").touch()
        fake_server.wait_for(lambda: job.finish_calls >= 1, 15, "a finish attempt")
        listed_while_undelivered = len(fake_server.held_in_heartbeats())
        fake_server.wait_for(
            lambda: [job.id] in fake_server.held_in_heartbeats()[listed_while_undelivered:],
            15,
            "a heartbeat listing the job whose report is undelivered",
        )
        fake_server.finish_status_override = None
        assert fake_server.wait_finished(job, 30)["status"] == "succeeded"
        delivered_at = len(fake_server.held_in_heartbeats())
        fake_server.wait_for(lambda: len(fake_server.held_in_heartbeats()) >= delivered_at + 2, 15, "two heartbeats")
    finally:
        assert agent.stop(30) == 0, agent.output()
    beats = fake_server.held_in_heartbeats()
    assert beats[0] == [], "the first heartbeat, before any claim, holds nothing and says so"
    assert beats[delivered_at + 1] == [], "a delivered job is no longer held"
    assert all(held in ([], [job.id]) for held in beats)
