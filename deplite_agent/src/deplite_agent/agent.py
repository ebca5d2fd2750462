"""`deplite-agent run`: heartbeat, long-poll claim, run jobs, report; graceful stop on SIGTERM."""

from __future__ import annotations

import fcntl
import logging
import shutil
import signal
import socket
import threading
import time
from pathlib import Path

from .client import AgentTooOld, Backoff, RetryableError, ServerClient, ServerError, abortable_session
from .config import ENV_AGENT_ID, ENV_DIR, ENV_URL, AgentConfig
from .events import EventRecorder, EventSpool, JobDelivery
from .job import CANCELLED, FAILED, JOB_ID_RE, InputFile, JobSpec
from .outputs import OutputUploader
from .process import keep_environment_private, stop_job_processes
from .runner import KILL_GRACE_SECONDS, JobRunner
from .workflow import workflow_names

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 30
ON_STOP_FINISH, ON_STOP_CANCEL = "finish", "cancel"
# `run` exits with this when the server refused the agent as too old: a restart cannot help, so the
# systemd unit does not restart on it (RestartPreventExitStatus).
EXIT_TOO_OLD = 3


class AgentAlreadyRunning(Exception):
    pass


class RunningJob:
    def __init__(self, job: JobSpec):
        self.job = job
        self.cancel = threading.Event()
        self.thread: threading.Thread | None = None
        self.delivery: JobDelivery | None = None
        self.status: str | None = None


class Agent:
    def __init__(
        self,
        config: AgentConfig,
        *,
        concurrency: int = 1,
        once: bool = False,
        on_stop: str = ON_STOP_FINISH,
        poll_wait: int = 30,
        stop_timeout: float = 60.0,
        kill_grace_seconds: float = KILL_GRACE_SECONDS,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
        client: ServerClient | None = None,
    ):
        self.config = config
        self.client = client or ServerClient(config)
        # Claims (long polls) go through their own connection, which a stop cuts short (see `stop`).
        self._claim_adapter = None
        if client is None:
            claim_session, self._claim_adapter = abortable_session()
            self.claim_client = ServerClient(config, session=claim_session)
        else:
            self.claim_client = client
        self.concurrency = max(1, concurrency)
        self.once = once
        self.on_stop = on_stop
        self.poll_wait = poll_wait
        self.stop_timeout = stop_timeout
        self.kill_grace_seconds = kill_grace_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.stopping = threading.Event()
        self.jobs: dict[str, RunningJob] = {}
        self.deliveries: list[JobDelivery] = []
        self._lock = threading.Lock()
        self._slots = threading.Semaphore(self.concurrency)
        self._lock_file = None
        self.last_status: str | None = None
        self.refused: AgentTooOld | None = None
        self.hostname = socket.gethostname()

    # -- lifecycle -------------------------------------------------------------------------------------------
    def run(self, *, install_signals: bool = True) -> int:
        logs = self.config.logs_dir
        logs.mkdir(parents=True, exist_ok=True)
        self._take_dir_lock(logs / "agent.lock")
        if install_signals:
            signal.signal(signal.SIGTERM, self._on_signal)
            signal.signal(signal.SIGINT, self._on_signal)
        try:
            keep_environment_private()
            self._step_env = self._prepare_step_env()
            self._resume_spools()
            self._heartbeat()
            threading.Thread(target=self._heartbeat_loop, daemon=True, name="heartbeat").start()
            claimer = threading.Thread(target=self._claim_loop, daemon=True, name="claimer")
            claimer.start()
            while claimer.is_alive():
                claimer.join(0.2)
            status = self._drain()
            return EXIT_TOO_OLD if self.refused is not None else status
        finally:
            self._lock_file.close()

    def stop(self, *, cancel_jobs: bool = False) -> None:
        if not self.stopping.is_set():
            log.info("stopping: no new jobs will be claimed")
        self.stopping.set()
        # An idle agent sits in a claim that can last 30 s; end it now rather than make the stop wait for it.
        # Closing the connection also ends the server's wait, so no job is claimed for an agent that is leaving.
        if self._claim_adapter is not None:
            self._claim_adapter.abort()
        if cancel_jobs or self.on_stop == ON_STOP_CANCEL:
            with self._lock:
                for running in self.jobs.values():
                    running.cancel.set()

    def _refuse(self, exc: AgentTooOld) -> None:
        """The server no longer speaks this agent's protocol: say so once and stop claiming. Jobs already
        running finish and are reported (the server still takes their reports)."""
        if self.refused is None:
            self.refused = exc
            log.error("the server refuses this agent version (%s): %s", exc.code, exc.message)
        self.stop()

    def _on_signal(self, signum, frame) -> None:
        # A second signal while stopping means "now": cancel whatever still runs.
        self.stop(cancel_jobs=self.stopping.is_set())

    def _take_dir_lock(self, path: Path) -> None:
        self._lock_file = open(path, "w")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            raise AgentAlreadyRunning(f"another deplite-agent is already running in {self.config.dir}")

    def _prepare_step_env(self) -> dict[str, str]:
        """Where the server is, for `deplite-agent files download` in a step. The agent's secret never reaches
        a step, neither in its environment nor in a file: each job brings its own short-lived credential
        (DEPLITE_JOB_TOKEN, set by the runner) that only reads that job's input files while it runs. A credentials
        file left behind by an older agent is removed."""
        stale = self.config.logs_dir / "private"
        (stale / "agent-config.yaml").unlink(missing_ok=True)
        if stale.is_dir() and not any(stale.iterdir()):
            stale.rmdir()
        return {
            ENV_URL: self.config.url,
            ENV_AGENT_ID: self.config.agent_id,
            ENV_DIR: str(self.config.dir),
        }

    # -- heartbeat and claim -----------------------------------------------------------------------------------
    def _held_job_ids(self) -> list[str]:
        """Every job this agent still answers for: running, or with a report not yet delivered. The server
        gives back (or fails) a job it handed to this agent that is not listed, e.g. a claim answer lost on
        the way; so a job must be listed from the moment its claim answer arrived until its finish is
        delivered."""
        with self._lock:
            held = set(self.jobs)
            held.update(d.job_id for d in self.deliveries if not d.delivered.is_set())
        return sorted(held)

    def _heartbeat(self) -> bool:
        try:
            info = self.client.heartbeat(
                hostname=self.hostname,
                workflows=workflow_names(self.config.workflows_dir),
                running_jobs=self._held_job_ids(),
            )
        except AgentTooOld as exc:
            self._refuse(exc)
            return False
        except (RetryableError, ServerError) as exc:
            log.warning("heartbeat failed: %s", exc)
            return False
        log.info("connected as %s (%s)", info.get("name"), info.get("agentId"))
        return True

    def _heartbeat_loop(self) -> None:
        while not self.stopping.wait(self.heartbeat_seconds):
            self._heartbeat()

    def _claim_loop(self) -> None:
        backoff = Backoff()
        claimed = 0
        while not self.stopping.is_set():
            if self.once and claimed:
                return
            if not self._slots.acquire(timeout=0.5):
                continue
            try:
                data = self.claim_client.claim(wait=self.poll_wait)
            except AgentTooOld as exc:
                self._slots.release()
                self._refuse(exc)
                return
            except (RetryableError, ServerError) as exc:
                self._slots.release()
                if self.stopping.is_set():
                    return  # the stop cut the claim short
                delay = exc.pause(backoff) if isinstance(exc, RetryableError) else backoff.next_delay()
                if getattr(exc, "status", None) == 401:
                    delay = max(delay, 5.0)
                    log.error(
                        "the server rejected this agent's signature (check %s and the secret, "
                        "or whether the agent was revoked); retrying in %.0fs",
                        ENV_AGENT_ID,
                        delay,
                    )
                else:
                    log.warning("claim failed: %s; retrying in %.1fs", exc, delay)
                self.stopping.wait(delay)
                continue
            backoff.reset()
            if data is None:
                self._slots.release()
                continue
            claimed += 1
            self._start_job(data)

    # -- jobs --------------------------------------------------------------------------------------------------
    def _start_job(self, data: dict) -> None:
        try:
            job = JobSpec.from_claim(data)
            if not JOB_ID_RE.match(job.id):
                raise ValueError(f"invalid job id {job.id!r}")
        except (KeyError, ValueError, TypeError) as exc:
            log.error("the server sent a job this agent cannot read: %s", exc)
            self._slots.release()
            return
        running = RunningJob(job)
        if self.stopping.is_set() and self.on_stop == ON_STOP_CANCEL:
            running.cancel.set()  # claimed while stopping: report it cancelled rather than drop it
        with self._lock:
            self.jobs[job.id] = running
            self.deliveries = [d for d in self.deliveries if d.is_alive() or not d.delivered.is_set()]
        running.thread = threading.Thread(target=self._run_job, args=(running,), name=f"job-{job.id}", daemon=True)
        running.thread.start()

    def _run_job(self, running: RunningJob) -> None:
        job = running.job
        try:
            log.info("job %s (#%s): workflow %s, ref %s", job.id, job.short_id, job.workflow, job.ref or "-")
            spool = EventSpool(self.config.logs_dir / "spool" / job.id)
            delivery = JobDelivery(client=self.client, job_id=job.id, spool=spool, on_cancel=running.cancel.set)
            recorder = EventRecorder(spool, wake=delivery.wake)
            delivery.recorder = recorder
            running.delivery = delivery
            with self._lock:
                self.deliveries.append(delivery)
            delivery.start()
            runner = JobRunner(
                job=job,
                agent_dir=self.config.dir,
                reporter=recorder,
                secret=self.config.secret,
                cancel=running.cancel,
                fetch_file=self._fetch_file,
                step_env=self._step_env,
                kill_grace_seconds=self.kill_grace_seconds,
                uploader=OutputUploader(url=self.config.url, job_id=job.id, job_token=job.job_token)
                if job.job_token
                else None,
            )
            if running.cancel.is_set():
                result_status, exit_code, error = CANCELLED, None, "the agent stopped before the job started"
            else:
                try:
                    result = runner.run()
                    result_status, exit_code, error = result.status, result.exit_code, result.error
                except Exception as exc:  # a bug in the agent must still end the job on the server
                    log.exception("job %s crashed the runner", job.id)
                    result_status, exit_code, error = FAILED, None, f"agent error: {type(exc).__name__}: {exc}"
            recorder.flush_log()
            spool.set_finish({"status": result_status, "exitCode": exit_code, "error": error})
            running.status = self.last_status = result_status
            delivery.wake()
            log.info("job %s %s%s", job.id, result_status, f": {error}" if error else "")
        finally:
            with self._lock:
                self.jobs.pop(job.id, None)
            self._slots.release()

    def _fetch_file(self, input_file: InputFile, destination: Path) -> None:
        self.client.download_file(input_file.file_id, destination)

    def _resume_spools(self) -> None:
        """Deliver what a previous run of the agent left undelivered. A job without a recorded finish was
        interrupted mid-run (the process died): it is reported failed, since its steps are gone."""
        root = self.config.logs_dir / "spool"
        if not root.is_dir():
            return
        for directory in sorted(root.iterdir()):
            if not directory.is_dir() or not JOB_ID_RE.match(directory.name):
                continue
            spool = EventSpool(directory)
            if spool.finish() is None:
                self._stop_orphaned_steps(directory.name)
                spool.set_finish(
                    {"status": FAILED, "exitCode": None, "error": "the agent stopped while the job was running"}
                )
            log.info("delivering the pending report of job %s", directory.name)
            delivery = JobDelivery(client=self.client, job_id=directory.name, spool=spool)
            self.deliveries.append(delivery)
            delivery.start()

    def _stop_orphaned_steps(self, job_id: str) -> None:
        """A step outlives an agent that died (it runs in its own process group): stop it before the job is
        reported failed, so nothing of a failed job keeps running, nor runs beside its retry."""
        scripts = self.config.logs_dir / "tmp" / job_id
        for pgid_file in sorted(scripts.glob("step-*.pgid")):
            try:
                pgid = int(pgid_file.read_text())
            except (OSError, ValueError):
                continue
            stopped = stop_job_processes(pgid, job_id, self.kill_grace_seconds)
            if stopped:
                log.warning("job %s: stopped %d process(es) its step left running when the agent died", job_id, stopped)
        shutil.rmtree(scripts, ignore_errors=True)

    def _drain(self) -> int:
        """Wait for running jobs, then for their reports; leave undelivered reports on disk for next time."""
        while True:
            with self._lock:
                threads = [r.thread for r in self.jobs.values() if r.thread is not None]
            if not threads:
                break
            for thread in threads:
                thread.join(0.2)
        deadline = time.monotonic() + self.stop_timeout
        for delivery in list(self.deliveries):
            delivery.wake()
            delivery.join(max(0.0, deadline - time.monotonic()))
        undelivered = [d.job_id for d in self.deliveries if not d.delivered.is_set()]
        for delivery in self.deliveries:
            delivery.give_up.set()
        for delivery in self.deliveries:
            delivery.join(5)
        if undelivered:
            log.error(
                "could not deliver the report of %s; it will be sent when the agent starts again",
                ", ".join(undelivered),
            )
            return 2
        if self.once:
            return 0 if self.last_status == "succeeded" else 1
        return 0
