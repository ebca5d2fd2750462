"""The step runner with real bash: statuses, exit codes, timeouts, cancel, environment, input files."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from deplite_agent.job import InputFile, JobSpec
from deplite_agent.runner import JobRunner

from .harness import pid_is_gone, wait_until

SECRET = "ags_very_secret_value_0123456789"


class Recorder:
    def __init__(self):
        self.events: list[tuple] = []
        self.lock = threading.Lock()
        self.stderr: list[str] = []
        self.allowed: list[int] = []
        self.step_names = None

    def job_started(self, *, timeout_minutes, steps=None):
        self.events.append(("job_started", timeout_minutes))
        self.step_names = steps

    def step_started(self, *, step, name):
        self.events.append(("step_started", step, name))

    def log(self, *, step, data, stream="stdout"):
        with self.lock:
            self.events.append(("log", step, data))
            if stream == "stderr":
                self.stderr.append(data)

    def step_finished(self, *, step, name, status, exit_code, allowed=False):
        self.events.append(("step_finished", step, name, status, exit_code))
        if allowed:
            self.allowed.append(step)

    def steps(self):
        return [e[1:] for e in self.events if e[0] == "step_finished"]

    def text(self):
        return "".join(e[2] for e in self.events if e[0] == "log")


def run_job(home, workflow: str, *, cancel=None, grace: float = 10.0, fetch_file=None, **job_fields):
    reporter = Recorder()
    job = JobSpec(id=job_fields.pop("id", "job-1"), workflow=workflow, **job_fields)
    runner = JobRunner(
        job=job,
        agent_dir=home.root,
        reporter=reporter,
        secret=SECRET,
        cancel=cancel,
        kill_grace_seconds=grace,
        fetch_file=fetch_file,
    )
    return runner.run(), reporter


def test_successful_job_reports_every_step_and_exit_code_zero(home):
    home.write_workflow(
        "ok",
        """
        timeout-minutes: 5
        steps:
          - name: one
            run: echo first
          - name: two
            run: |
              echo second
              echo to-stderr >&2
    """,
    )
    result, rec = run_job(home, "ok")
    assert (result.status, result.exit_code, result.error) == ("succeeded", 0, None)
    assert rec.events[0] == ("job_started", 5)
    assert rec.steps() == [(0, "one", "succeeded", 0), (1, "two", "succeeded", 0)]
    assert sorted(rec.text().splitlines()) == ["first", "second", "to-stderr"]  # two pipes: order across them may vary
    assert rec.stderr == ["to-stderr\n"]  # stderr is told apart
    assert rec.step_names == ["one", "two"]  # every step named before the first runs
    assert "second" in home.job_log("job-1")


def test_failing_step_fails_the_job_with_its_exit_code_and_skips_the_rest(home):
    home.write_workflow(
        "bad",
        """
        steps:
          - name: build
            run: |
              echo building
              (exit 7)
              echo not reached because of -e
          - name: deploy
            run: echo deployed
    """,
    )
    result, rec = run_job(home, "bad")
    assert (result.status, result.exit_code) == ("failed", 7)
    assert result.error == 'step "build" exited with code 7'
    assert rec.steps() == [(0, "build", "failed", 7), (1, "deploy", "skipped", None)]
    assert "not reached" not in rec.text()


def test_pipefail_makes_a_failing_pipeline_fail_the_step(home):
    home.write_workflow("pipe", "steps:\n  - name: p\n    run: false | cat\n")
    result, _ = run_job(home, "pipe")
    assert (result.status, result.exit_code) == ("failed", 1)


def test_continue_on_error_keeps_the_job_going_and_succeeding(home):
    home.write_workflow(
        "coe",
        """
        steps:
          - name: optional
            run: exit 4
            continue-on-error: true
          - name: main
            run: echo main ran
    """,
    )
    result, rec = run_job(home, "coe")
    assert (result.status, result.exit_code) == ("succeeded", 0)
    assert rec.steps() == [(0, "optional", "failed", 4), (1, "main", "succeeded", 0)]
    assert rec.allowed == [0]  # reported as an allowed failure
    assert "main ran" in rec.text()


def test_step_timeout_kills_the_step_and_its_background_children(home):
    pidfile = home.root / "child.pid"
    home.write_workflow(
        "slow",
        f"""
        steps:
          - name: hang
            timeout-minutes: 0.02
            run: |
              sleep 300 &
              echo $! > {pidfile}
              sleep 300
          - name: after
            run: echo never
    """,
    )
    started = time.monotonic()
    result, rec = run_job(home, "slow")
    assert time.monotonic() - started < 8
    assert result.status == "failed"
    assert result.error == 'timeout exceeded in step "hang"'
    assert result.exit_code == 143  # SIGTERM
    assert rec.steps() == [(0, "hang", "failed", 143), (1, "after", "skipped", None)]
    child = int(pidfile.read_text())
    wait_until(lambda: pid_is_gone(child), timeout=3, message="the background sleep to be gone")


def test_job_timeout_applies_across_steps(home):
    home.write_workflow(
        "jobtimeout",
        """
        timeout-minutes: 0.02
        steps:
          - name: quick
            run: echo ok
          - name: slow
            run: sleep 300
    """,
    )
    result, rec = run_job(home, "jobtimeout")
    assert result.error == 'timeout exceeded in step "slow"'
    assert rec.steps()[0] == (0, "quick", "succeeded", 0)


def test_a_child_ignoring_sigterm_is_killed_after_the_grace_period(home):
    pidfile = home.root / "stubborn.pid"
    home.write_workflow(
        "stubborn",
        f"""
        steps:
          - name: stubborn
            timeout-minutes: 0.01
            run: |
              bash -c 'trap "" TERM; echo $$ > {pidfile}; while true; do sleep 0.1; done' &
              wait
    """,
    )
    started = time.monotonic()
    result, _ = run_job(home, "stubborn", grace=1.0)
    elapsed = time.monotonic() - started
    assert result.error == 'timeout exceeded in step "stubborn"'
    assert 1.0 <= elapsed < 6
    wait_until(lambda: pid_is_gone(int(pidfile.read_text())), timeout=3, message="the stubborn child to be killed")


def test_cancel_stops_the_running_step_and_finishes_cancelled(home):
    marker = home.root / "started"
    home.write_workflow(
        "long",
        f"""
        steps:
          - name: wait
            run: |
              touch {marker}
              sleep 300
          - name: next
            run: echo next
    """,
    )
    cancel = threading.Event()
    threading.Thread(target=lambda: (wait_until(marker.exists), cancel.set()), daemon=True).start()
    result, rec = run_job(home, "long", cancel=cancel)
    assert result.status == "cancelled"
    assert result.error == 'cancelled during step "wait"'
    assert rec.steps() == [(0, "wait", "cancelled", 143), (1, "next", "skipped", None)]


def test_step_environment_has_job_values_and_never_the_secret(home, monkeypatch):
    monkeypatch.setenv("DEPLITE_AGENT_SECRET", SECRET)
    monkeypatch.setenv("SOME_TOKEN_COPY", f"prefix-{SECRET}")
    monkeypatch.setenv("PARAMS_STALE", "from-the-agent-env")
    envfile = home.root / "env.txt"
    home.write_workflow(
        "env",
        f"""
        env:
          WORKFLOW_LEVEL: wf
        steps:
          - name: dump
            env:
              STEP_LEVEL: st
            run: |
              env > {envfile}
              echo "leak attempt: $SOME_TOKEN_COPY {SECRET}"
    """,
    )
    result, rec = run_job(
        home, "env", ref="v1.2.3", params={"env": "prod", "app-version": "42"}, short_id="17", trigger_name="web hook"
    )
    assert result.status == "succeeded"
    env = dict(line.split("=", 1) for line in envfile.read_text().splitlines() if "=" in line)
    assert env["REF"] == "v1.2.3"
    assert env["PARAMS_ENV"] == "prod"
    assert env["PARAMS_APP_VERSION"] == "42"
    assert env["DEPLITE_JOB_ID"] == "job-1"
    assert env["DEPLITE_JOB_SHORT_ID"] == "17"
    assert env["DEPLITE_TRIGGER"] == "web hook"
    assert env["DEPLITE_WORKFLOW"] == "env"
    assert env["DEPLITE_FILES_DIR"] == str(home.root.resolve() / "logs" / "files")
    assert (env["WORKFLOW_LEVEL"], env["STEP_LEVEL"]) == ("wf", "st")
    assert "PARAMS_STALE" not in env and "SOME_TOKEN_COPY" not in env and "DEPLITE_AGENT_SECRET" not in env
    assert SECRET not in envfile.read_text()
    # A step that prints the secret gets it masked, in the reported log and in the local log.
    assert SECRET not in rec.text() and "leak attempt:  ***" in rec.text()
    assert SECRET not in home.job_log("job-1")


def test_missing_workflow_fails_the_job_naming_the_file(home):
    result, rec = run_job(home, "nope")
    assert result.status == "failed"
    assert "workflow 'nope' not found" in result.error and "nope.yaml" in result.error
    assert result.error in rec.text()


def test_invalid_yaml_fails_the_job_naming_file_and_line(home):
    home.write_workflow("broken", "steps:\n  - name: a\n    run: echo\n  bad: [\n")
    result, _ = run_job(home, "broken")
    assert result.status == "failed"
    assert "broken.yaml:" in result.error and "invalid YAML" in result.error


def test_input_files_are_downloaded_once_then_reused_from_the_cache(home):
    content = b"artifact-bytes" * 100
    calls = []

    def fetch(input_file: InputFile, destination: Path) -> None:
        calls.append(input_file.file_id)
        destination.write_bytes(content)

    home.write_workflow(
        "files",
        """
        steps:
          - name: use
            run: |
              test "$PARAMS_FILEID" = file-1
              test -f "$PARAMS_FILEID_PATH"
              wc -c < "$PARAMS_FILEID_PATH"
    """,
    )
    spec = {"params": {"FILEID": "file-1"}, "input_files": (InputFile("FILEID", "file-1", "app.tar.gz", len(content)),)}
    first, rec = run_job(home, "files", fetch_file=fetch, **spec)
    assert first.status == "succeeded", rec.text()
    assert (home.root / "logs" / "files" / "file-1" / "app.tar.gz").read_bytes() == content
    assert "1400" in rec.text()
    second, _ = run_job(home, "files", id="job-2", fetch_file=fetch, **spec)
    assert second.status == "succeeded"
    assert calls == ["file-1"]


def test_input_file_with_wrong_size_fails_the_job(home):
    home.write_workflow("files", "steps:\n  - name: use\n    run: echo should not run\n")
    result, rec = run_job(
        home,
        "files",
        params={"F": "file-2"},
        input_files=(InputFile("F", "file-2", "a.bin", 10),),
        fetch_file=lambda f, dest: dest.write_bytes(b"short"),
    )
    assert result.status == "failed"
    assert "downloaded 5 bytes, expected 10" in result.error
    assert rec.steps() == []
    assert not (home.root / "logs" / "files" / "file-2" / "a.bin").exists()


def test_exec_runs_a_workflow_locally_and_exits_with_the_failing_step_code(home):
    home.write_workflow(
        "local",
        """
        steps:
          - name: hello
            run: echo "hello $PARAMS_WHO at $REF"
          - name: fail
            run: exit 5
    """,
    )
    result = home.run_cli("exec", "local", "--ref", "main", "--param", "who=world")
    assert result.returncode == 5
    assert "hello world at main" in result.stdout
    assert 'job failed: step "fail" exited with code 5' in result.stdout


def test_exec_success_exits_zero(home):
    home.write_workflow("fine", "steps:\n  - name: a\n    run: echo fine\n")
    result = home.run_cli("exec", "fine")
    assert result.returncode == 0 and "==> job succeeded" in result.stdout


def test_a_step_finds_the_agents_own_command_even_off_path(home, monkeypatch):
    # The agent installed in a venv as the README says, started by its full path: the venv's
    # bin is not on PATH, yet `deplite-agent files download …` must work inside a step.
    import sys

    venv_agent = Path(sys.executable).parent / "deplite-agent"
    assert venv_agent.is_file(), "make test installs deplite_agent into the venv"
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    out = home.root / "which.txt"
    home.write_workflow(
        "which",
        f"""
        steps:
          - name: which
            run: |
              command -v deplite-agent > {out}
              echo "$DEPLITE_AGENT_BIN" >> {out}
              deplite-agent --help > /dev/null
    """,
    )
    result, _ = run_job(home, "which")
    assert result.status == "succeeded", result
    assert out.read_text().splitlines() == [str(venv_agent), str(venv_agent)]
