"""Process-group handling for steps: each step is a session/process-group leader, so a timeout or a
cancel can stop the step *and everything it started* (background jobs, pipelines)."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess  # (process groups of workflow steps)  # nosec B404
import sys
import time
from pathlib import Path

# A step's group leader is a small bash that runs the step's script as its child and waits for it. The agent
# sets a parent-death signal (SIGHUP) on that leader: when the agent dies, even by SIGKILL, the kernel sends it
# SIGHUP and it stops its whole process group (SIGTERM, a grace period, SIGKILL), so nothing of the step runs on
# unsupervised. A plain `bash script` leader would die alone and leave its children running. The leader
# ignores the agent's own SIGTERM to the group (the script gets it and ends; the leader then exits with the
# script's status), so timeouts and cancels work as before. `$0` is the script, `$1` the grace in seconds.
#
# The HUP handler runs once: its first act ignores HUP. The kernel sends the parent-death signal each time the
# leader's parent *thread* exits, and the leader is handed from one dying thread of the agent to the next
# before it reaches init, so a SIGKILLed multi-threaded agent can deliver SIGHUP two or more times. bash runs
# a trap again for a signal that arrived while the trap itself was running (after its foreground `sleep`),
# so a second HUP during the grace used to start a second grace: the group lived on for twice the grace.
STEP_LEADER = (
    "trap \"trap '' HUP; kill -TERM 0 2>/dev/null; sleep $1; kill -KILL 0\" HUP; trap : TERM INT; "
    'bash --noprofile --norc -eo pipefail "$0" & child=$!; '
    "while :; do wait $child; status=$?; kill -0 $child 2>/dev/null || exit $status; done"
)


def step_command(script: str, grace_seconds: float) -> list[str]:
    """The argv of a step: the group leader (see STEP_LEADER) running `bash -eo pipefail <script>`."""
    return ["bash", "--noprofile", "--norc", "-c", STEP_LEADER, script, f"{max(0.0, grace_seconds):g}"]


def die_with_parent():
    """A `preexec_fn` that makes the step's group leader get SIGHUP when the agent dies (Linux
    PR_SET_PDEATHSIG, set in the child between fork and exec), or None where that does not exist. The
    restart clean-up (`stop_job_processes`) covers what this cannot: other systems, and an agent that died
    in the instant between the fork and the prctl (checked right after, by the parent's pid)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        # Resolved before the fork: between fork and exec only this call and a getppid run in the child.
        prctl(PR_SET_PDEATHSIG, signal.SIGHUP, 0, 0, 0)
        if os.getppid() != parent:  # the agent died before the prctl took effect
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4


def keep_environment_private() -> None:
    """Linux: make this process non-dumpable, so that a step (which runs as the same user) cannot read the
    agent's secret from /proc/<agent pid>/environ or attach a debugger to it. A no-op elsewhere."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # no prctl: nothing more this process can do


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
