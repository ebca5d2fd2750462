"""Process-group handling for steps: each step is a session/process-group leader, so a timeout or a
cancel can stop the step *and everything it started* (background jobs, pipelines)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of a process group. A zombie holds no resources and only waits for
    its parent (or init) to reap it, so it counts as gone."""
    proc = Path("/proc")
    if not proc.is_dir():  # not Linux: the best portable signal is whether the group exists at all
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return []
        return [pgid]
    members = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid pgrp …"; comm may contain spaces or parentheses, so split after the last ")".
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) >= 3 and int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members.append(int(entry.name))
    return members


def terminate_group(proc: subprocess.Popen, grace_seconds: float) -> bool:
    """SIGTERM the whole group, wait up to `grace_seconds` for it to empty, then SIGKILL what is left.
    Returns True when SIGKILL was needed."""
    pgid = proc.pid
    _signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline:
        proc.poll()  # reap the leader so it does not linger as a zombie member
        if not group_members(pgid):
            return False
        time.sleep(0.05)
    _signal_group(pgid, signal.SIGKILL)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL cannot be ignored; only an unkillable D state
        pass
    return True


def job_processes(pgid: int, job_id: str) -> list[int]:
    """Live members of process group `pgid` whose environment says they belong to job `job_id`. A group id
    recorded before the agent died may have been reused since: only the job's own processes qualify."""
    marker = f"DEPLITE_JOB_ID={job_id}".encode()
    pids = []
    for pid in group_members(pgid):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue  # gone, or not ours to read
        if marker in environ:
            pids.append(pid)
    return pids


def stop_job_processes(pgid: int, job_id: str, grace_seconds: float) -> int:
    """SIGTERM, then after `grace_seconds` SIGKILL, the processes of a step the agent started before it died
    (see `job_processes`). Returns how many there were."""
    found = job_processes(pgid, job_id)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in job_processes(pgid, job_id):
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        deadline = time.monotonic() + grace_seconds
        while job_processes(pgid, job_id) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not job_processes(pgid, job_id):
            break
    return len(found)


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def exit_code_of(returncode: int) -> int:
    """Shell convention: a process killed by signal N exits 128+N."""
    return 128 - returncode if returncode < 0 else returncode
