"""Helpers to run the real agent against a server: a temporary agent home with workflow files, and the
agent's console entry point as a subprocess. They take a server URL and agent credentials, so the same
helpers serve the fake protocol server here and the real Django live server in end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

AGENT_SRC = Path(__file__).resolve().parents[2] / "deplite_agent" / "src"


def agent_command(*args: str) -> list[str]:
    """The console script `deplite-agent …`: the same entry point (`deplite_agent.cli:main`), run from this
    checkout's source so the tests never exercise a stale installed copy. DEPLITE_AGENT_TEST_PYTHON picks
    another interpreter (with requests and PyYAML), e.g. a Python 3.9 to prove the agent's floor."""
    return [os.environ.get("DEPLITE_AGENT_TEST_PYTHON") or sys.executable, "-m", "deplite_agent", *args]


class AgentHome:
    """A directory laid out like an agent's host: `workflows/` and, once it ran, `logs/`."""

    def __init__(self, root: Path):
        self.root = Path(root)
        (self.root / "workflows").mkdir(parents=True, exist_ok=True)

    def write_workflow(self, name: str, text: str, suffix: str = ".yaml") -> Path:
        path = self.root / "workflows" / f"{name}{suffix}"
        path.write_text(textwrap.dedent(text))
        return path

    def job_log(self, job_id: str) -> str:
        return (self.root / "logs" / "jobs" / f"{job_id}.log").read_text()

    def env(self, *, url: str = "", agent_id: str = "", secret: str = "", **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DEPLITE_")}
        env.update(
            PYTHONPATH=os.pathsep.join([str(AGENT_SRC), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
            PYTHONUNBUFFERED="1",
            DEPLITE_AGENT_DIR=str(self.root),
            DEPLITE_URL=url,
            DEPLITE_AGENT_ID=agent_id,
            DEPLITE_AGENT_SECRET=secret,
        )
        env.update(extra)
        return env

    def run_cli(self, *args: str, timeout: float = 60, **env_kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(
            agent_command(*args),
            cwd=self.root,
            env=self.env(**env_kwargs),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start_agent(self, *args: str, **env_kwargs) -> AgentProcess:
        return AgentProcess(self, list(args), self.env(**env_kwargs))


class AgentProcess:
    """`deplite-agent run …` in the background; output goes to a file so a chatty agent never blocks."""

    def __init__(self, home: AgentHome, args: list[str], env: dict[str, str]):
        self.home = home
        self.output_path = home.root / f"agent-output-{time.monotonic_ns()}.txt"
        self._out = open(self.output_path, "w")
        self.proc = subprocess.Popen(
            agent_command("run", *args), cwd=home.root, env=env, stdout=self._out, stderr=subprocess.STDOUT
        )

    def output(self) -> str:
        return self.output_path.read_text()

    def signal(self, sig: int = signal.SIGTERM) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 60) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self._out.close()

    def stop(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
        try:
            return self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def __enter__(self) -> AgentProcess:
        return self

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._out.close()


def wait_until(predicate, timeout: float = 20.0, interval: float = 0.05, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {message}")
        time.sleep(interval)


def pid_is_gone(pid: int) -> bool:
    """True when the process no longer exists or is a zombie waiting to be reaped (it holds nothing)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):  # gone before the open, or between the open and the read
        return True
    return stat[stat.rfind(")") + 2 :].split()[0] in ("Z", "X")
