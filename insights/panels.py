"""What an insights section of a page shows: the selectors' numbers as headline figures with their
trend, and as charts (insights.charts) with their tables."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.urls import reverse

from . import charts
from .charts import BLUE, GREEN, ORANGE, SKY, VERMILLION, Chart, Point, Series
from .selectors.agents import AgentsInsights
from .selectors.deploys import EnvironmentDeploys, Totals
from .selectors.triggers import TriggerInsights
from .stats import change
from .windows import WINDOWS, Window


@dataclass(frozen=True)
class Figure:
    """A headline number: its text, and how it moved against the previous window."""

    label: str
    value: str
    trend: str = ""  # "+25% vs previous 30 days"; blank without a base
    better: bool | None = None  # whether the move is good news (None: neither or unknown)
    note: str = ""


@dataclass
class Panel:
    figures: list[Figure] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    empty: bool = False
    steps: list[dict] = field(default_factory=list)
    labels: list[dict] = field(default_factory=list)
    window: Window | None = None  # the environment page's section: which window, and the others
    windows: list[tuple[str, bool]] = field(default_factory=list)


def _trend(
    current: float | None, previous: float | None, window: Window, *, lower_is_better: bool
) -> tuple[str, bool | None]:
    moved = change(current, previous)
    if moved is None:
        return "", None
    text = f"{moved * 100:+.0f}% vs previous {window.days} days"
    if round(moved * 100) == 0:
        return text, None
    return text, (moved < 0) == lower_is_better


def _figure(
    label: str,
    current: float | None,
    previous: float | None,
    window: Window,
    fmt,
    *,
    lower_is_better: bool,
    note: str = "",
) -> Figure:
    trend, better = _trend(current, previous, window, lower_is_better=lower_is_better)
    return Figure(label, "—" if current is None else fmt(current), trend, better, note)


def deploy_frequency(totals: Totals, window: Window) -> float:
    """Succeeded deploys per day over the window."""
    return totals.succeeded / window.days


def environment_panel(*, chart_id: str, deploys: EnvironmentDeploys, window: Window) -> Panel:
    cur, prev = deploys.current, deploys.previous
    per_day = deploy_frequency(cur, window)
    per = (lambda v: f"{v:.1f}/day") if per_day >= 1 or window.days <= 7 else (lambda v: f"{v * 7:.1f}/week")
    restore_note = ""
    if deploys.open_since is not None:
        restore_note = "not restored yet"
    lead_note = ""
    if cur.lead_mean_seconds is not None:
        lead_note = (
            f"approval {charts.duration(cur.approval_mean_seconds or 0)} · "
            f"waiting {charts.duration(cur.queue_mean_seconds or 0)} · running {charts.duration(cur.running_mean_seconds or 0)}"
        )
        if cur.commit_lead_mean_seconds is not None:
            lead_note += (
                f" · from commit {charts.duration(cur.commit_lead_mean_seconds)} ({cur.commit_count} with commit time)"
            )
    panel = Panel(
        figures=[
            _figure(
                "Deployment frequency",
                per_day,
                deploy_frequency(prev, window),
                window,
                per,
                lower_is_better=False,
                note=f"{cur.succeeded} succeeded",
            ),
            _figure(
                "Change failure rate",
                cur.change_failure_rate,
                prev.change_failure_rate,
                window,
                charts.percent,
                lower_is_better=True,
                note=f"{cur.failures} of {cur.ran} deploys",
            ),
            _figure(
                "Time to restore",
                cur.restore_mean_seconds,
                prev.restore_mean_seconds,
                window,
                charts.duration,
                lower_is_better=True,
                note=restore_note,
            ),
            _figure(
                "Lead time",
                cur.lead_mean_seconds,
                prev.lead_mean_seconds,
                window,
                charts.duration,
                lower_is_better=True,
                note=lead_note,
            ),
        ],
        empty=cur.ran == 0 and cur.incidents == 0,
    )
    labels = window.bucket_starts()
    b = deploys.buckets
    panel.charts = [
        charts.bar_chart(
            chart_id=f"{chart_id}-deploys",
            title="Deploys",
            labels=labels,
            series=[
                Series("succeeded", BLUE, [t.succeeded for t in b]),
                Series("failed", VERMILLION, [t.ran - t.succeeded for t in b], hatched=True),
            ],
            fmt=charts.count,
        ),
        charts.bar_chart(
            chart_id=f"{chart_id}-failure-rate",
            title="Change failure rate",
            labels=labels,
            series=[Series("change failure rate", VERMILLION, [t.change_failure_rate for t in b], hatched=True)],
            fmt=charts.percent,
        ),
        charts.bar_chart(
            chart_id=f"{chart_id}-restore",
            title="Time to restore (mean, by when the incident began)",
            labels=labels,
            series=[Series("time to restore", ORANGE, [t.restore_mean_seconds for t in b])],
            fmt=charts.duration,
        ),
        charts.bar_chart(
            chart_id=f"{chart_id}-lead",
            title="Lead time (mean), request to success",
            labels=labels,
            series=[
                Series("waiting for approval", ORANGE, [t.approval_mean_seconds for t in b]),
                Series("waiting to run", SKY, [t.queue_mean_seconds for t in b]),
                Series("running", GREEN, [t.running_mean_seconds for t in b]),
            ],
            fmt=charts.duration,
        ),
    ]
    return panel


def trigger_panel(*, org_slug: str, insights: TriggerInsights) -> Panel:
    panel = Panel(
        figures=[
            Figure(
                "Success rate",
                "—" if insights.success_rate is None else charts.percent(insights.success_rate),
                note=f"last {len(insights.runs)} runs",
            ),
            Figure("p50 duration", "—" if insights.p50_seconds is None else charts.duration(insights.p50_seconds)),
            Figure("p95 duration", "—" if insights.p95_seconds is None else charts.duration(insights.p95_seconds)),
        ],
        empty=not insights.runs,
    )
    # One reverse() for the hundred links (each costs ~20 µs): the job's id is the path's last part.
    marker = "00000000-0000-0000-0000-000000000000"
    job_url = reverse("job-detail", args=[org_slug, marker])
    points = [
        Point(run.duration_seconds, run.failed, run.short_id, job_url.replace(marker, str(run.job_id)), run.finished_at)
        for run in insights.runs
    ]
    panel.charts = [
        charts.point_chart(
            chart_id="trigger-durations",
            title=f"Duration of the last {len(points)} runs",
            points=points,
            fmt=charts.duration,
        )
    ]
    panel.steps = [
        {
            "name": step.name,
            "runs": step.runs,
            "failures": step.failures,
            "mean": charts.duration(step.mean_seconds),
            "share": charts.percent(step.share),
        }
        for step in insights.steps
    ]
    return panel


def agents_panel(*, insights: AgentsInsights) -> Panel:
    panel = Panel(
        figures=[
            Figure("Jobs claimed", str(insights.jobs), note="last 24 hours"),
            Figure(
                "Queue wait p50",
                "—" if insights.wait_p50_seconds is None else charts.duration(insights.wait_p50_seconds),
            ),
            Figure(
                "Queue wait p95",
                "—" if insights.wait_p95_seconds is None else charts.duration(insights.wait_p95_seconds),
            ),
        ],
        empty=not insights.agents,
    )
    panel.charts = [
        charts.share_chart(
            chart_id="agents-busy",
            title="Busy over the last 24 hours, per agent",
            items=[(a.name, a.busy_share) for a in insights.agents],
        ),
        charts.share_chart(
            chart_id="labels-busy",
            title="Busy over the last 24 hours, per label",
            items=[(label.label or "any agent", label.busy_share) for label in insights.labels],
        ),
    ]
    panel.labels = [
        {
            "label": label.label,
            "agents": label.agents,
            "busy": "—" if label.busy_share is None else charts.percent(label.busy_share),
            "jobs": label.jobs,
            "p50": "—" if label.wait_p50_seconds is None else charts.duration(label.wait_p50_seconds),
            "p95": "—" if label.wait_p95_seconds is None else charts.duration(label.wait_p95_seconds),
        }
        for label in insights.labels
    ]
    return panel


def window_choices(current: Window) -> list[tuple[str, bool]]:
    return [(name, name == current.name) for name in WINDOWS]
