"""Triggers, jobs and the agents that run them, and the agent this server hands out."""

from __future__ import annotations

from pathlib import Path

from .base import VAR_DIR, env

# A job's log is capped; past the cap one truncation marker is written and the rest dropped.
DEPLITE_JOB_LOG_MAX_BYTES = env.int("DEPLITE_JOB_LOG_MAX_BYTES", default=5 * 1024 * 1024)
# A queued job nobody claimed within this many seconds fails with a clear error.
DEPLITE_QUEUED_JOB_MAX_AGE_SECONDS = env.int("DEPLITE_QUEUED_JOB_MAX_AGE_SECONDS", default=24 * 3600)
# Extra time past a job's timeout-minutes before the reaper fails it (the agent enforces it first).
DEPLITE_JOB_TIMEOUT_GRACE_SECONDS = env.int("DEPLITE_JOB_TIMEOUT_GRACE_SECONDS", default=120)
DEPLITE_AGENT_OFFLINE_AFTER_SECONDS = env.int("DEPLITE_AGENT_OFFLINE_AFTER_SECONDS", default=60)
DEPLITE_AGENT_LOST_AFTER_SECONDS = env.int("DEPLITE_AGENT_LOST_AFTER_SECONDS", default=300)
# Every web process marks the web tier as up this often (agents.pulse); no mark for three times this
# long means the web tier was down, and agents' silence does not count until it is back.
DEPLITE_SERVER_PULSE_SECONDS = env.float("DEPLITE_SERVER_PULSE_SECONDS", default=10.0)
# A running job claimed longer ago than this (before the heartbeat's signed time) that the agent's
# heartbeat does not list in runningJobs is taken back: requeued if never started, else failed.
DEPLITE_CLAIM_CONFIRM_GRACE_SECONDS = env.int("DEPLITE_CLAIM_CONFIRM_GRACE_SECONDS", default=60)
# Signed agent requests: allowed clock skew, and how long a nonce is remembered (same window).
DEPLITE_AGENT_SIGNATURE_WINDOW_SECONDS = 300
# The longest long poll an agent may ask for (`claim?wait=`).
DEPLITE_AGENT_MAX_WAIT_SECONDS = 30

# --- the agent this server hands out (agents/distribution.py) ---------------------------------
# `manage.py build_agent` (make install, the Procfile's release line) writes the agent's wheel, its
# sha256, install.sh and version.json here; every web process serves /agent/… from it, so in production
# it must be the same directory the web processes see (built into the image, or a shared volume).
DEPLITE_AGENT_DIST_DIR = Path(env.str("DEPLITE_AGENT_DIST_DIR", default=str(VAR_DIR / "agent")))
# The oldest agent version this server still speaks to: older agents get `426 agent_too_old` on heartbeat
# and claim (their running jobs can still report). Raise it to make every host upgrade.
DEPLITE_AGENT_MIN_VERSION = env.str("DEPLITE_AGENT_MIN_VERSION", default="0.1.0")
