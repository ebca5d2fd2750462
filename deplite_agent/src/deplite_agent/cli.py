"""Command line: `deplite-agent run | check | files download | files upload | exec | version`."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import uuid
from pathlib import Path

from . import __version__
from .agent import HEARTBEAT_SECONDS, ON_STOP_CANCEL, ON_STOP_FINISH, Agent, AgentAlreadyRunning
from .client import AgentTooOld, RetryableError, ServerClient, ServerError, fetch_url, job_file_download_url
from .config import ENV_AGENT_ID, ENV_JOB_ID, ENV_JOB_TOKEN, ENV_SECRET, ENV_URL, AgentConfig, ConfigError, load_config
from .job import SUCCEEDED, JobSpec
from .outputs import DEFAULT_CONTENT_TYPE, OutputError, OutputUploader, ProgressLines, expand_paths
from .runner import KILL_GRACE_SECONDS, JobRunner
from .workflow import WORKFLOW_NAME_RE, WorkflowError, list_workflow_files, parse_workflow_file, workflow_names


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="deplite-agent", description="Runs Deplite workflows on this host.")
    parser.add_argument("--config", help="YAML file with url, agentId, secret, dir (default: environment variables)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="claim and run jobs until stopped")
    run.add_argument("--concurrency", type=int, default=1, help="jobs run at the same time (default 1)")
    run.add_argument("--once", action="store_true", help="take one job, run it, report it, exit")
    run.add_argument(
        "--on-stop",
        choices=[ON_STOP_FINISH, ON_STOP_CANCEL],
        default=ON_STOP_FINISH,
        help="on SIGTERM, let running jobs finish (default) or cancel them; a second signal always cancels",
    )
    run.add_argument("--poll-wait", type=int, default=30, help="long-poll seconds per claim, 0..30 (default 30)")
    run.add_argument("--stop-timeout", type=float, default=60.0, help="seconds to keep trying to report on stop")
    run.add_argument("--kill-grace", type=float, default=KILL_GRACE_SECONDS, help=argparse.SUPPRESS)
    run.add_argument("--heartbeat-interval", type=float, default=HEARTBEAT_SECONDS, help=argparse.SUPPRESS)

    sub.add_parser("check", help="validate the workflow files and the connection to the server").add_argument(
        "--offline", action="store_true", help="only validate workflow files"
    )

    files = sub.add_parser("files", help="stored files").add_subparsers(dest="files_command", required=True)
    download = files.add_parser(
        "download", help="download a stored file (inside a workflow step: one of the job's input files)"
    )
    download.add_argument("file_id")
    download.add_argument("-o", "--output", help="destination path (default: the file's name in the current directory)")
    upload = files.add_parser(
        "upload", help="inside a workflow step: upload files as outputs of the job (prints each file's id)"
    )
    upload.add_argument("paths", nargs="+", metavar="PATH", help="a file or a glob (quoted; `**` crosses directories)")
    upload.add_argument("--name", help="the name the file gets on the server (one file only; default: its name)")
    upload.add_argument("--content-type", help=f"the file's media type (default {DEFAULT_CONTENT_TYPE})")

    exec_ = sub.add_parser("exec", help="run a workflow locally, without a server")
    exec_.add_argument("workflow")
    exec_.add_argument("--ref", default="", help="value of $REF")
    exec_.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="sets $PARAMS_<KEY>")
    exec_.add_argument("--kill-grace", type=float, default=KILL_GRACE_SECONDS, help=argparse.SUPPRESS)

    sub.add_parser("version", help="print the version")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    if args.command == "version":
        print(__version__)
        return 0
    try:
        config = load_config(args.config)
        if args.command == "run":
            return cmd_run(config, args)
        if args.command == "check":
            return cmd_check(config, offline=args.offline)
        if args.command == "files" and args.files_command == "upload":
            return cmd_files_upload(config, args)
        if args.command == "files":
            return cmd_files_download(config, args.file_id, args.output)
        if args.command == "exec":
            return cmd_exec(config, args)
    except (ConfigError, AgentAlreadyRunning) as exc:
        print(f"deplite-agent: {exc}", file=sys.stderr)
        return 2
    return 2  # pragma: no cover - argparse rejects unknown commands


def cmd_run(config: AgentConfig, args) -> int:
    config.require_server()
    agent = Agent(
        config,
        concurrency=args.concurrency,
        once=args.once,
        on_stop=args.on_stop,
        poll_wait=max(0, min(30, args.poll_wait)),
        stop_timeout=args.stop_timeout,
        kill_grace_seconds=args.kill_grace,
        heartbeat_seconds=max(1.0, args.heartbeat_interval),
    )
    return agent.run()


def cmd_check(config: AgentConfig, *, offline: bool) -> int:
    problems = 0
    files = list_workflow_files(config.workflows_dir)
    if not files:
        print(f"error: no workflow files in {config.workflows_dir}")
        problems += 1
    seen = {}
    for path in files:
        shown = _relative(path, config.dir)
        if not WORKFLOW_NAME_RE.match(path.stem):
            print(f"error: {shown}: the name {path.stem!r} cannot be used (letters, digits, '.', '_', '-')")
            problems += 1
            continue
        if path.stem in seen:
            print(f"error: {shown}: workflow {path.stem!r} is also defined in {seen[path.stem]}")
            problems += 1
            continue
        seen[path.stem] = shown
        try:
            workflow = parse_workflow_file(path)
        except WorkflowError as exc:
            exc.file = Path(shown)
            print(f"error: {exc}")
            problems += 1
            continue
        outputs = f", {len(workflow.outputs)} output(s)" if workflow.outputs else ""
        print(f"ok: {shown}: {len(workflow.steps)} step(s){outputs}, timeout {workflow.timeout_minutes:g} min")
    if not offline:
        problems += _check_connection(config)
    print("all good" if not problems else f"{problems} problem(s)")
    return 0 if not problems else 1


def _check_connection(config: AgentConfig) -> int:
    try:
        config.require_server()
        # No runningJobs: this process holds no job, and an agent may be running beside it. The
        # workflows are this directory's, so a check beside a running agent does not blank its list.
        info = ServerClient(config).heartbeat(hostname=_hostname(), workflows=workflow_names(config.workflows_dir))
    except ConfigError as exc:
        print(f"error: {exc}")
        return 1
    except RetryableError as exc:
        if exc.status == 401:
            print(
                f"error: {config.url} rejected this agent's signature: check {ENV_AGENT_ID} and {ENV_SECRET}, "
                "the host's clock, and whether the agent was deleted"
            )
        else:
            print(f"error: cannot reach {config.url}: {exc}")
        return 1
    except AgentTooOld as exc:
        print(f"error: {config.url} refuses this agent version ({__version__}): {exc.message}")
        return 1
    except ServerError as exc:
        print(f"error: {config.url}: {exc}")
        return 1
    print(f"ok: connected to {config.url} as {info.get('name')} ({info.get('agentId')})")
    return 0


def _hostname() -> str:
    import socket

    return socket.gethostname()


def _relative(path: Path, base: Path) -> str:
    try:
        return str(path.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)


class _Progress:
    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.last = -1

    def __call__(self, done: int, total: int | None) -> None:
        if not self.enabled:
            return
        mib = done / 1048576
        if total:
            percent = done * 100 // total
            if percent == self.last:
                return
            self.last = percent
            sys.stderr.write(f"\r{mib:8.1f} MiB / {total / 1048576:.1f} MiB ({percent}%)")
        else:
            sys.stderr.write(f"\r{mib:8.1f} MiB")
        sys.stderr.flush()


def cmd_files_download(config: AgentConfig, file_id: str, output: str | None) -> int:
    """Inside a step, with the job's DEPLITE_JOB_TOKEN (the job's input files only); elsewhere, signed as
    the agent (any available file of the org)."""
    if config.job_token:
        if not config.url:
            raise ConfigError(f"the agent is not configured: set {ENV_URL}")
        fetch_info = lambda: job_file_download_url(url=config.url, job_token=config.job_token, file_id=file_id)  # noqa: E731
    else:
        config.require_server()
        fetch_info = lambda: ServerClient(config).file_download_url(file_id)  # noqa: E731
    try:
        info = fetch_info()
        name = Path(str(info.get("fileName") or file_id)).name or file_id
        destination = Path(output) if output else Path(name)
        if destination.is_dir():
            destination = destination / name
        size = info.get("size") if isinstance(info.get("size"), int) else None
        progress = _Progress(sys.stderr.isatty())
        written = fetch_url(info["downloadUrl"], destination, size=size, progress=progress)
        if progress.enabled:
            sys.stderr.write("\n")
    except (RetryableError, ServerError) as exc:
        print(f"deplite-agent: cannot download {file_id}: {exc}", file=sys.stderr)
        return 1
    if size is not None and written != size:
        print(f"deplite-agent: {destination}: got {written} bytes, expected {size}", file=sys.stderr)
        return 1
    print(destination)
    return 0


def cmd_files_upload(config: AgentConfig, args) -> int:
    """Inside a step only: the job's token uploads to that job, while it runs. Exit 2 for a usage error (no
    job, a path matching nothing, --name with several files), 1 when the server or the bucket refused."""
    job_id = os.environ.get(ENV_JOB_ID, "")
    if not (config.job_token and job_id and config.url):
        raise ConfigError(
            f"files upload runs inside a workflow step (it needs {ENV_JOB_TOKEN}, {ENV_JOB_ID} and {ENV_URL})"
        )
    try:
        paths = expand_paths(args.paths, Path.cwd())
    except OutputError as exc:
        print(f"deplite-agent: {exc}", file=sys.stderr)
        return 2
    if args.name and len(paths) > 1:
        print(f"deplite-agent: --name names one file, but {len(paths)} match", file=sys.stderr)
        return 2
    uploader = OutputUploader(url=config.url, job_id=job_id, job_token=config.job_token)
    for path in paths:
        progress = ProgressLines(f"uploading {path}", lambda line: print(line, file=sys.stderr, flush=True))
        try:
            uploaded = uploader.upload(path, name=args.name, content_type=args.content_type, progress=progress)
        except (OutputError, RetryableError, ServerError) as exc:
            print(f"deplite-agent: cannot upload {path}: {exc}", file=sys.stderr)
            return 1
        print(uploaded.line(), flush=True)
    return 0


class ConsoleReporter:
    """`exec` prints the job as it runs. A closed stdout (`| head`) must not stop the job, so a broken
    pipe only silences the output."""

    def __init__(self):
        self.closed = False

    def _print(self, text: str) -> None:
        if self.closed:
            return
        try:
            sys.stdout.write(text)
            sys.stdout.flush()
        except BrokenPipeError:
            self.closed = True

    def job_started(self, *, timeout_minutes: float, steps: list[str] | None = None) -> None:
        pass

    def step_started(self, *, step: int, name: str) -> None:
        self._print(f"==> {name}\n")

    def log(self, *, step: int | None, data: str, stream: str = "stdout") -> None:
        self._print(data)

    def step_finished(self, *, step: int, name: str, status: str, exit_code: int | None, allowed: bool = False) -> None:
        if status != SUCCEEDED:
            code = f" (exit code {exit_code})" if exit_code is not None else ""
            self._print(f"==> {name}: {status}{' (allowed)' if allowed else ''}{code}\n")


def cmd_exec(config: AgentConfig, args) -> int:
    params = {}
    for item in args.param:
        key, sep, value = item.partition("=")
        if not sep or not key:
            print(f"deplite-agent: --param needs KEY=VALUE, got {item!r}", file=sys.stderr)
            return 2
        params[key] = value
    cancel = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: cancel.set())
    job = JobSpec(
        id=f"local-{uuid.uuid4().hex[:12]}",
        short_id="local",
        workflow=args.workflow,
        ref=args.ref,
        params=params,
        trigger_name="exec",
    )
    runner = JobRunner(
        job=job,
        agent_dir=config.dir,
        reporter=ConsoleReporter(),
        secret=config.secret,
        cancel=cancel,
        kill_grace_seconds=args.kill_grace,
    )
    reporter = runner.reporter
    result = runner.run()
    reporter._print(f"==> job {result.status}" + (f": {result.error}" if result.error else "") + "\n")
    if result.status == SUCCEEDED:
        return 0
    if result.status == "cancelled":
        return 130
    return result.exit_code or 1
