"""Runs one job: loads the workflow, fetches input files, runs each step in bash in its own process
group, and reports everything through a `Reporter` (the server event stream, or the console for `exec`)."""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess  # (running workflow steps is the agent's job)  # nosec B404
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from .config import ENV_JOB_TOKEN, ENV_SECRET
from .job import (
    CANCELLED,
    FAILED,
    FILE_ID_RE,
    JOB_ID_RE,
    SKIPPED,
    SUCCEEDED,
    FileFetcher,
    InputFile,
    JobResult,
    JobSpec,
    Reporter,
    StepResult,
)
from .outputs import OutputUploader, upload_declared
from .process import die_with_parent, exit_code_of, group_members, step_command, terminate_group
from .workflow import Step, Workflow, WorkflowError, load_workflow

log = logging.getLogger(__name__)

KILL_GRACE_SECONDS = 10.0
MAX_LINE_BYTES = 64 * 1024
# How long to keep reading a step's output after its process group is gone: a daemon that escaped the
# group with setsid may still hold the pipe, and must not hold the job.
OUTPUT_DRAIN_SECONDS = 2.0


class JobFailed(Exception):
    """Fails the job before any step runs (bad workflow, bad parameter, input file)."""


def param_env_name(key: str) -> str:
    """`app-version` → `PARAMS_APP_VERSION`: upper-cased, anything a shell name cannot hold becomes `_`."""
    return "PARAMS_" + re.sub(r"[^A-Z0-9_]", "_", key.upper())


def agent_executable() -> Path | None:
    """The `deplite-agent` command of this very installation: beside the interpreter running it
    (a venv's bin, not resolved through its symlink), else the one on PATH."""
    beside = Path(sys.executable).parent / "deplite-agent"
    if beside.is_file():
        return beside
    found = shutil.which("deplite-agent")
    return Path(found) if found else None


def utcnow_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JobRunner:
    def __init__(
        self,
        *,
        job: JobSpec,
        agent_dir: Path,
        reporter: Reporter,
        secret: str = "",
        cancel: threading.Event | None = None,
        fetch_file: FileFetcher | None = None,
        step_env: dict[str, str] | None = None,
        kill_grace_seconds: float = KILL_GRACE_SECONDS,
        uploader: OutputUploader | None = None,
    ):
        self.job = job
        self.agent_dir = agent_dir.resolve()
        self.reporter = reporter
        self.secret = secret
        self.cancel = cancel or threading.Event()
        self.fetch_file = fetch_file
        # Extra variables for every step (the server's URL and the agent's id, for `files download`).
        self.extra_env = dict(step_env or {})
        self.kill_grace_seconds = kill_grace_seconds
        # Uploads the workflow's `outputs:` (None without a server: `exec` only lists them).
        self.uploader = uploader
        self.files_dir = self.agent_dir / "logs" / "files"
        self._local_log = None
        self._local_lock = threading.Lock()

    # -- reporting -------------------------------------------------------------------------------------------
    def _mask(self, text: str) -> str:
        for value in (self.secret, self.job.job_token):
            if value:
                text = text.replace(value, "***")
        return text

    def _local(self, text: str) -> None:
        with self._local_lock:
            if self._local_log is not None:
                stamp = utcnow_iso()
                self._local_log.write("".join(f"{stamp} {line}\n" for line in text.splitlines()))
                self._local_log.flush()

    def _log(self, step: int | None, text: str, stream: str = "stdout") -> None:
        text = self._mask(text)
        if not text.endswith("\n"):
            text += "\n"
        self._local(("" if step is None else f"[{step}] ") + text)
        if stream == "stdout":
            self.reporter.log(step=step, data=text)
        else:
            self.reporter.log(step=step, data=text, stream=stream)

    def _agent_note(self, step: int | None, text: str) -> None:
        """A line the agent itself writes into the job log (prefixed so it reads apart from step output)."""
        self._log(step, f"[deplite-agent] {text}")

    # -- the job ---------------------------------------------------------------------------------------------
    def run(self) -> JobResult:
        if not JOB_ID_RE.match(self.job.id):
            raise ValueError(f"invalid job id {self.job.id!r}")
        jobs_dir = self.agent_dir / "logs" / "jobs"
        jobs_dir.mkdir(parents=True, exist_ok=True)
        self._local_log = open(jobs_dir / f"{self.job.id}.log", "a", encoding="utf-8")
        try:
            result = self._run()
            self._local(
                f"job {self.job.id} {result.status} exit_code={result.exit_code}"
                + (f" error={self._mask(result.error)}" if result.error else "")
            )
            return result
        finally:
            with self._local_lock:
                self._local_log.close()
                self._local_log = None

    def _run(self) -> JobResult:
        self._local(f"job {self.job.id} (#{self.job.short_id}) workflow={self.job.workflow} ref={self.job.ref}")
        try:
            workflow = load_workflow(self.agent_dir / "workflows", self.job.workflow)
        except WorkflowError as exc:
            self.reporter.job_started(timeout_minutes=60)
            self._agent_note(None, str(exc))
            return JobResult(FAILED, None, str(exc))
        self.reporter.job_started(timeout_minutes=workflow.timeout_minutes, steps=[s.name for s in workflow.steps])
        job_deadline = time.monotonic() + workflow.timeout_minutes * 60
        try:
            env = self._job_env(workflow)
        except JobFailed as exc:
            self._agent_note(None, str(exc))
            return JobResult(FAILED, None, str(exc))
        if self.cancel.is_set():
            return JobResult(CANCELLED, None, "cancelled before the first step")
        result = self._run_steps(workflow, env, job_deadline)
        if workflow.outputs and result.status in (SUCCEEDED, FAILED):
            errors = upload_declared(
                workflow.outputs,
                workdir=self.agent_dir,
                uploader=self.uploader,
                steps_succeeded=result.status == SUCCEEDED,
                note=lambda text: self._agent_note(None, text),
                cancelled=self.cancel.is_set,
            )
            if errors:
                error = "; ".join(e for e in (result.error, *errors) if e)
                result = JobResult(
                    FAILED, None if result.status == SUCCEEDED else result.exit_code, error, result.steps
                )
        return result

    def _job_env(self, workflow: Workflow) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in (ENV_SECRET, ENV_JOB_TOKEN, "DEPLITE_AGENT_CONFIG")
            and not k.startswith("PARAMS_")
            and not (self.secret and self.secret in v)
        }
        env.update(self.extra_env)
        agent_bin = agent_executable()
        if agent_bin is not None:
            # `deplite-agent files download …` works in a step even when the agent lives in a venv.
            env["PATH"] = f"{agent_bin.parent}{os.pathsep}{env.get('PATH', os.defpath)}"
            env["DEPLITE_AGENT_BIN"] = str(agent_bin)
        env.update(workflow.env)
        env.update(
            {
                "REF": self.job.ref,
                "DEPLITE_JOB_ID": self.job.id,
                "DEPLITE_JOB_SHORT_ID": self.job.short_id,
                "DEPLITE_TRIGGER": self.job.trigger_name,
                "DEPLITE_WORKFLOW": self.job.workflow,
                "DEPLITE_FILES_DIR": str(self.files_dir),
            }
        )
        if self.job.job_token:
            env[ENV_JOB_TOKEN] = self.job.job_token
        for key, value in self.job.params.items():
            name = param_env_name(key)
            if not re.match(r"^PARAMS_[A-Z_][A-Z0-9_]*$", name):
                raise JobFailed(f"invalid parameter name {key!r}")
            if "\0" in value:
                raise JobFailed(f"parameter {key!r} contains a NUL byte")
            env[name] = value
        for input_file in self.job.input_files:
            path = self._fetch_input_file(input_file)
            env[param_env_name(input_file.param) + "_PATH"] = str(path)
        return env

    def _fetch_input_file(self, f: InputFile) -> Path:
        label = f"input file {f.param} ({f.file_id})"
        name = f.file_name
        if not FILE_ID_RE.match(f.file_id):
            raise JobFailed(f"{label}: invalid file id")
        if not name or "/" in name or "\\" in name or "\0" in name or name in (".", ".."):
            raise JobFailed(f"{label}: invalid file name {name!r}")
        target = self.files_dir / f.file_id / name
        if target.is_file() and f.size is not None and target.stat().st_size == f.size:
            self._agent_note(None, f"using cached {label} at {target}")
            return target
        if self.fetch_file is None:
            raise JobFailed(f"{label}: not cached at {target} and no server to download it from")
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        self._agent_note(None, f"downloading {label} to {target}")
        try:
            self.fetch_file(f, partial)
        except Exception as exc:  # any download failure fails the job with its reason, never the agent
            partial.unlink(missing_ok=True)
            raise JobFailed(f"{label}: download failed: {self._mask(str(exc))}")
        size = partial.stat().st_size
        if f.size is not None and size != f.size:
            partial.unlink(missing_ok=True)
            raise JobFailed(f"{label}: downloaded {size} bytes, expected {f.size}")
        os.replace(partial, target)
        return target

    def _run_steps(self, workflow: Workflow, env: dict[str, str], job_deadline: float) -> JobResult:
        results: list[StepResult] = []
        outcome: JobResult | None = None
        for index, step in enumerate(workflow.steps):
            if outcome is not None:
                self._local(f"--- step {index} {step.name} {SKIPPED}")
                self.reporter.step_finished(step=index, name=step.name, status=SKIPPED, exit_code=None)
                results.append(StepResult(index, step.name, SKIPPED, None))
                continue
            status, code, error = self._run_step(index, step, workflow, env, job_deadline)
            results.append(StepResult(index, step.name, status, code))
            if status == CANCELLED:
                outcome = JobResult(CANCELLED, code, error)
            elif status == FAILED and (error or not step.continue_on_error):
                # A timeout fails the job even with continue-on-error: the time budget is gone.
                outcome = JobResult(FAILED, code, error or f'step "{step.name}" exited with code {code}')
            elif status == FAILED:
                self._agent_note(index, f'step "{step.name}" failed with code {code}; continuing (continue-on-error)')
        if outcome is None:
            outcome = JobResult(SUCCEEDED, 0, None)
        outcome.steps = results
        return outcome

    def _run_step(self, index: int, step: Step, workflow: Workflow, job_env: dict[str, str], job_deadline: float):
        """Returns (status, exit code, job error or None when a plain non-zero exit)."""
        self.reporter.step_started(step=index, name=step.name)
        self._local(f"--- step {index} {step.name}")
        env = dict(job_env)
        env.update(step.env)
        # Step env cannot override what Deplite sets for the job.
        for key in ("REF", "DEPLITE_JOB_ID", "DEPLITE_JOB_SHORT_ID", "DEPLITE_TRIGGER", "DEPLITE_WORKFLOW"):
            env[key] = job_env[key]
        if ENV_JOB_TOKEN in job_env:
            env[ENV_JOB_TOKEN] = job_env[ENV_JOB_TOKEN]
        cwd = self.agent_dir
        if step.working_directory:
            cwd = (self.agent_dir / step.working_directory).resolve()
            if not cwd.is_dir():
                error = f'step "{step.name}": working directory {step.working_directory!r} does not exist'
                self._agent_note(index, error)
                return self._finish_step(index, step, FAILED, 1, error)
        deadline = job_deadline
        if step.timeout_minutes is not None:
            deadline = min(deadline, time.monotonic() + step.timeout_minutes * 60)
        scripts = self.agent_dir / "logs" / "tmp" / self.job.id
        scripts.mkdir(parents=True, exist_ok=True)
        script = scripts / f"step-{index}.sh"
        script.write_text(step.run, encoding="utf-8")
        try:
            # Running the host owner's own workflow file is the agent's job; bash comes from PATH as on CI runners.
            proc = subprocess.Popen(  # noqa: S603 (the host owner's own workflow step)  # nosec B603
                step_command(str(script), self.kill_grace_seconds),
                cwd=str(cwd),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                # The step ends with the agent, even a SIGKILLed one (see process.STEP_LEADER).
                preexec_fn=die_with_parent(),
            )
        except OSError as exc:
            error = f'step "{step.name}" could not start: {exc.strerror}'
            self._agent_note(index, error)
            shutil.rmtree(scripts, ignore_errors=True)
            return self._finish_step(index, step, FAILED, 127, error)
        # If the agent dies, the step lives on in its own group; its next start stops it through this file.
        (scripts / f"step-{index}.pgid").write_text(str(proc.pid))
        readers = [
            threading.Thread(target=self._pump, args=(pipe, index, name), daemon=True, name=f"step-{index}-{name}")
            for pipe, name in ((proc.stdout, "stdout"), (proc.stderr, "stderr"))
        ]
        for reader in readers:
            reader.start()
        stopped_for = None
        while proc.poll() is None:
            if self.cancel.is_set():
                stopped_for = "cancel"
            elif time.monotonic() >= deadline:
                stopped_for = "timeout"
            if stopped_for:
                what = "cancel requested" if stopped_for == "cancel" else f'timeout exceeded in step "{step.name}"'
                self._agent_note(
                    index, f"{what}: stopping the step (SIGTERM, then SIGKILL after {self.kill_grace_seconds:g}s)"
                )
                terminate_group(proc, self.kill_grace_seconds)
                break
            try:
                proc.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                pass
        code = exit_code_of(proc.wait())
        if stopped_for is None and group_members(proc.pid):
            # Background processes a step leaves behind end with it, like on CI runners; a daemon belongs
            # under a service manager, not in a deploy step's process group.
            self._agent_note(index, "stopping processes the step left running in the background")
            terminate_group(proc, self.kill_grace_seconds)
        drain_until = time.monotonic() + OUTPUT_DRAIN_SECONDS
        # Two readers, two pipes; zip(strict=) is Python 3.10+ and the agent runs on 3.9.
        for reader, pipe in zip(readers, (proc.stdout, proc.stderr)):
            reader.join(max(drain_until - time.monotonic(), 0))
            if not reader.is_alive():
                pipe.close()
        shutil.rmtree(scripts, ignore_errors=True)
        if stopped_for == "cancel":
            return self._finish_step(index, step, CANCELLED, code, f'cancelled during step "{step.name}"')
        if stopped_for == "timeout":
            return self._finish_step(index, step, FAILED, code, f'timeout exceeded in step "{step.name}"')
        if code != 0:
            return self._finish_step(index, step, FAILED, code, None)
        return self._finish_step(index, step, SUCCEEDED, 0, None)

    def _finish_step(self, index: int, step: Step, status: str, code: int | None, error: str | None):
        self._local(f"--- step {index} {step.name} {status} exit_code={code}")
        # A plain non-zero exit of a continue-on-error step is allowed; a timeout never is.
        if status == FAILED and error is None and step.continue_on_error:
            self.reporter.step_finished(step=index, name=step.name, status=status, exit_code=code, allowed=True)
        else:
            self.reporter.step_finished(step=index, name=step.name, status=status, exit_code=code)
        return status, code, error

    def _pump(self, stream, index: int, name: str) -> None:
        # Whatever the pipe holds, cut at the last complete line: a step printing megabytes
        # costs a few calls per 64 KiB, not several per line (a flush per line made a 20 MB
        # step's output take seconds to read and held the step back on a full pipe).
        pending = b""
        try:
            while True:
                data = stream.read1(MAX_LINE_BYTES)
                if not data:
                    if pending:
                        self._log(index, pending.decode("utf-8", errors="replace"), name)
                    return
                pending += data
                cut = pending.rfind(b"\n") + 1
                if not cut:
                    if len(pending) < MAX_LINE_BYTES:
                        continue  # the rest of the line is on its way
                    cut = MAX_LINE_BYTES  # an endless line is cut, as before
                block, pending = pending[:cut], pending[cut:]
                self._log(index, block.decode("utf-8", errors="replace"), name)
        except (OSError, ValueError):  # the pipe was closed under us after the drain window
            return
