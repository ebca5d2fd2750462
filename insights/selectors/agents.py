"""The agent fleet over the last day: how busy each agent and each label was, and how long jobs
waited in the queue for one, so "do we need another agent for `staging`?" is a glance."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import BooleanField, Case, DurationField, ExpressionWrapper, F, Q, Value, When
from django.db.models.functions import Coalesce, Greatest, Least

from agents.models import Agent
from orgs.models import Organization
from triggers.models import Job, JobStatus

from ..stats import percentile

SPAN = timedelta(days=1)
#: At most this many of the day's claimed jobs are read (the newest): a bound on the page's work
#: for an org running more than that in a day, whose percentiles it still estimates well.
MAX_JOBS = 20_000
#: The label of jobs that name none (any agent may take them).
ANY_LABEL = None


@dataclass(frozen=True)
class AgentLoad:
    agent_id: uuid.UUID
    name: str
    labels: list[str]
    status: str
    jobs: int
    busy_seconds: float

    @property
    def busy_share(self) -> float:
        return min(self.busy_seconds / SPAN.total_seconds(), 1.0)


@dataclass(frozen=True)
class LabelLoad:
    label: str | None  # ANY_LABEL (None): jobs that name no label
    agents: int  # agents carrying the label (every agent for ANY_LABEL)
    busy_share: float | None  # of those agents' day; None without agents
    jobs: int  # jobs claimed over the day that needed the label
    wait_p50_seconds: float | None
    wait_p95_seconds: float | None


@dataclass(frozen=True)
class AgentsInsights:
    since: datetime
    until: datetime
    agents: list[AgentLoad]
    labels: list[LabelLoad]
    jobs: int
    wait_p50_seconds: float | None
    wait_p95_seconds: float | None


def agents_insights(*, org: Organization, now: datetime) -> AgentsInsights:
    """Busy time per agent over [now − 1 day, now) and queue waits of the jobs claimed in it (two queries).

    Busy: the part of the day an agent held a claimed job (claim to finish, or to now while running).
    Queue wait: from when a job could be claimed to its claim.
    """
    since = now - SPAN
    agents = list(
        Agent.objects.filter(org=org)
        .filter(Q(revoked_at__isnull=True) | Q(revoked_at__gt=since))
        .order_by("name", "created_at")
    )
    # The spans come back as intervals, computed by the database: a day's jobs as four timestamps each
    # were most of this answer's time (Django loads each timestamp in Python, ~5 µs).
    at_now, at_since = Value(now), Value(since)
    rows = (
        Job.objects.filter(org=org, claimed_at__isnull=False, claimed_at__lt=now)
        .filter(Q(finished_at__gte=since) | Q(status=JobStatus.RUNNING))
        .order_by("-claimed_at")
        .annotate(
            busy=ExpressionWrapper(
                Least(Coalesce("finished_at", at_now), at_now) - Greatest("claimed_at", at_since),
                output_field=DurationField(),
            ),
            # From when it became claimable (after its approvals and its turn in the environment).
            wait=ExpressionWrapper(F("claimed_at") - Coalesce("queued_at", "created_at"), output_field=DurationField()),
            in_day=Case(When(claimed_at__gte=since, then=True), default=False, output_field=BooleanField()),
        )
        .values_list("agent_id", "agent_labels", "busy", "wait", "in_day")[:MAX_JOBS]
    )
    busy: dict[uuid.UUID, float] = defaultdict(float)
    jobs_of: dict[uuid.UUID, int] = defaultdict(int)
    waits_by_label: dict[str | None, list[float]] = defaultdict(list)
    waits: list[float] = []
    for agent_id, job_labels, busy_span, wait_span, in_day in rows:
        busy[agent_id] += max(busy_span.total_seconds(), 0.0)
        jobs_of[agent_id] += 1
        if in_day:
            wait = max(wait_span.total_seconds(), 0.0)
            waits.append(wait)
            for label in job_labels or [ANY_LABEL]:
                waits_by_label[label].append(wait)
    loads = [
        AgentLoad(
            agent_id=agent.pk,
            name=agent.name,
            labels=list(agent.labels or []),
            status=agent.status,
            jobs=jobs_of.get(agent.pk, 0),
            busy_seconds=min(busy.get(agent.pk, 0.0), SPAN.total_seconds()),
        )
        for agent in agents
    ]
    return AgentsInsights(
        since=since,
        until=now,
        agents=loads,
        labels=_label_loads(loads, waits_by_label),
        jobs=len(waits),
        wait_p50_seconds=percentile(waits, 0.5),
        wait_p95_seconds=percentile(waits, 0.95),
    )


def _label_loads(loads: list[AgentLoad], waits_by_label: dict[str | None, list[float]]) -> list[LabelLoad]:
    labels = sorted({label for load in loads for label in load.labels} | set(waits_by_label) - {ANY_LABEL})
    out = []
    for label in [ANY_LABEL, *labels]:
        carriers = loads if label == ANY_LABEL else [load for load in loads if label in load.labels]
        waits = waits_by_label.get(label, [])
        if label == ANY_LABEL and not waits:
            continue  # no job asked for "any agent": the per-agent rows already say it all
        out.append(
            LabelLoad(
                label=label,
                agents=len(carriers),
                busy_share=(sum(load.busy_share for load in carriers) / len(carriers)) if carriers else None,
                jobs=len(waits),
                wait_p50_seconds=percentile(waits, 0.5),
                wait_p95_seconds=percentile(waits, 0.95),
            )
        )
    return out
