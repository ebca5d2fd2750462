"""Why a queued job waits, in the user's words ("No online agent has the labels [staging]").

`triggers` never imports `agents` (agents depend on triggers): the agents app registers, in
its AppConfig.ready(), the function that lists the labels of an org's online agents.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable

from .models import Job, JobStatus

# org id → the label set of each online agent of that org.
OnlineAgentLabels = Callable[[uuid.UUID], list[set[str]]]

_online_agent_labels: OnlineAgentLabels | None = None


def register_online_agents(provider: OnlineAgentLabels) -> None:
    global _online_agent_labels
    _online_agent_labels = provider


def labels_diagnosis(*, org_id: uuid.UUID, labels: Iterable[str]) -> str | None:
    """What keeps a job needing `labels` from being taken, or None when an online agent could take it."""
    if _online_agent_labels is None:
        return None
    online = _online_agent_labels(org_id)
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
