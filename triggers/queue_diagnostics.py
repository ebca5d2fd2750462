"""Why a queued job waits, in the user's words ("No online agent has the labels [staging]").

Who is online comes from `extensions.online_agent_labels` (`agents` fills it: agents depend on
triggers, never the reverse).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from .extensions import online_agent_labels
from .models import Job, JobStatus


def labels_diagnosis(*, org_id: uuid.UUID, labels: Iterable[str]) -> str | None:
    """What keeps a job needing `labels` from being taken, or None when an online agent could take it."""
    online = online_agent_labels(org_id)
    if online is None:
        return None
    wanted = sorted(set(labels))
    if not online:
        return "No agent is online: start `deplite-agent run` on your server (Agents page)."
    if wanted and not any(set(wanted) <= agent for agent in online):
        return f"No online agent has the labels [{', '.join(wanted)}]."
    return None


def job_diagnosis(job: Job) -> str | None:
    """Why this queued job is still waiting, if it can be told; None for a job that is not queued."""
    if job.status != JobStatus.QUEUED:
        return None
    if job.waiting_for_files:
        return None  # the summary already says it waits for its input files to be verified
    return labels_diagnosis(org_id=job.org_id, labels=job.agent_labels or [])
