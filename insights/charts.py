"""Charts as server-side SVG: no script, no third-party request, nothing the page's
Content-Security-Policy refuses (colours are SVG presentation attributes, not style).

Each chart comes with its numbers as a table (`Chart.table`) that the page shows under it, for
screen readers and copy-paste. Colours are the Okabe–Ito palette, which colour-blind readers tell
apart; a failed point also differs in shape (a cross, not a dot) and failed bars in pattern
(hatched), so nothing is told by colour alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property, lru_cache
from html import escape

from django.utils.safestring import SafeString, mark_safe

# Okabe–Ito.
BLUE = "#0072B2"
ORANGE = "#E69F00"
SKY = "#56B4E9"
GREEN = "#009E73"
VERMILLION = "#D55E00"
GREY = "#BBBBBB"

WIDTH, HEIGHT = 480, 200
LEFT, RIGHT, TOP, BOTTOM = 62, 8, 10, 24  # room for the axis labels


@dataclass(frozen=True)
class Cell:
    text: str
    datetime: datetime | None = None  # shown as <time>, in the reader's timezone
    href: str = ""
    escaped: str | None = None  # `text` already escaped (a chart that escaped it for its SVG too)


@dataclass(frozen=True)
class Series:
    name: str
    colour: str
    values: Sequence[float | None]
    hatched: bool = False  # a failure: hatched as well as coloured


@dataclass
class Chart:
    id: str  # unique on the page (pattern ids, captions)
    title: str
    svg: SafeString
    headers: list[str]
    rows: list[list[Cell]] = field(default_factory=list)
    legend: list[Series] = field(default_factory=list)

    @cached_property
    def html(self) -> SafeString:
        """The whole figure: caption, SVG, legend and the numbers' table (see `_figure`)."""
        return _figure(self)


@lru_cache(maxsize=1024)
def _time_cell(text: str, at: datetime) -> str:
    # The reader's timezone replaces the UTC text (insights.js); the server knows neither. Cached: a
    # page's charts share their buckets' starts (an environment's four charts, every environment's).
    shown = at.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    return f'<td><time datetime="{escape(text)}" data-local>{shown} UTC</time></td>'


def _cell(cell: Cell) -> str:
    if cell.datetime is not None:
        return _time_cell(cell.text, cell.datetime)
    if cell.href:
        return f'<td><a href="{escape(cell.href)}">{escape(cell.text)}</a></td>'
    return f"<td>{escape(cell.text) if cell.escaped is None else cell.escaped}</td>"


def _legend_mark(series: Series) -> str:
    colour = escape(series.colour)
    if series.hatched:
        mark = f'<path d="M1 1l10 10m0 -10l-10 10" stroke="{colour}" stroke-width="2.5"/>'
    else:
        mark = f'<rect width="12" height="12" fill="{colour}"/>'
    return f'<li><svg width="12" height="12" viewBox="0 0 12 12">{mark}</svg> {escape(series.name)}</li>'


def _figure(chart: Chart) -> SafeString:
    """A chart as one figure, built here rather than by a template: the Insights page draws 16 charts
    of up to 30 rows, and the template engine took ~25 ms a page over their ~1,500 table cells where
    joining escaped strings takes ~1 ms (bench/insights.py). Every text is escaped (`html.escape`)."""
    chart_id, title = escape(chart.id), escape(chart.title)
    headers = "".join(f'<th scope="col">{escape(h)}</th>' for h in chart.headers)
    if chart.rows:
        body = "".join(f"<tr>{''.join(_cell(c) for c in row)}</tr>" for row in chart.rows)
    else:
        body = f'<tr><td colspan="{len(chart.headers)}" class="muted">No data.</td></tr>'
    legend = "".join(_legend_mark(s) for s in chart.legend)
    return mark_safe(  # noqa: S308 (every part escaped above; the SVG is escaped by its builders)  # nosec B308 B703
        f'<figure class="insights-chart" id="{chart_id}">\n<figcaption>{title}</figcaption>\n{chart.svg}\n'
        f'<ul class="insights-legend" aria-hidden="true">{legend}</ul>\n'
        f"<details>\n<summary>Numbers</summary>\n"
        f'<table data-testid="table-{chart_id}">\n'
        f'<caption class="visually-hidden">{title}</caption>\n'
        f"<thead><tr>{headers}</tr></thead>\n<tbody>{body}</tbody>\n</table>\n</details>\n</figure>"
    )


def _svg(chart_id: str, title: str, body: str, *, role: str = "img") -> SafeString:
    # A chart whose points are links is a group (an image's parts are hidden from assistive tech,
    # and a link inside one is an interactive element nobody can reach by name).
    # f-strings over escaped parts here and below: a page draws 16 charts (format_html took ~10% of it).
    chart_id, title = escape(chart_id), escape(title)
    return mark_safe(  # noqa: S308 (escaped above; `body` built from escaped parts)  # nosec B308 B703
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="{role}" '
        f'aria-labelledby="{chart_id}-title" preserveAspectRatio="xMidYMid meet" data-testid="chart-{chart_id}">'
        f'<title id="{chart_id}-title">{title}</title>{body}</svg>'
    )


def _hatch(pattern_id: str, colour: str) -> str:
    return (
        f'<pattern id="{escape(pattern_id)}" patternUnits="userSpaceOnUse" width="6" height="6" '
        f'patternTransform="rotate(45)"><rect width="6" height="6" fill="{escape(colour)}"/>'
        '<line x1="0" y1="0" x2="0" y2="6" stroke="#000" stroke-opacity="0.55" stroke-width="2.5"/></pattern>'
    )


def _axis(top_value: float, fmt: Callable[[float], str]) -> str:
    """Grid lines at 0, half and the top value, labelled on the left."""
    parts = []
    plot_h = HEIGHT - TOP - BOTTOM
    for fraction in (0.0, 0.5, 1.0):
        y = TOP + plot_h * (1 - fraction)
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" font-size="13" text-anchor="end" fill="#555">'
            f"{escape(fmt(top_value * fraction))}</text>"
        )
    return "".join(parts)


def _nice_top(value: float) -> float:
    """A round number at or above `value` for the axis (1, 2, 5 × 10ⁿ)."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** len(str(int(value))) / 10 if value >= 1 else 0.1
    while magnitude * 10 < value:
        magnitude *= 10
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def bar_chart(
    *,
    chart_id: str,
    title: str,
    labels: Sequence[datetime],
    series: Sequence[Series],
    fmt: Callable[[float], str],
    label_header: str = "From",
) -> Chart:
    """Stacked bars, one per bucket (`labels` are the buckets' starts); a None value draws nothing
    and reads "—" in the table."""
    count = len(labels)
    totals = [sum(s.values[i] or 0 for s in series) for i in range(count)]
    top = _nice_top(max(totals, default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(count, 1)
    bar_w = max(slot * 0.7, 1.0)
    defs = "".join(_hatch(f"{chart_id}-{n}", s.colour) for n, s in enumerate(series) if s.hatched)
    # The page draws ~500 bars: f-strings over escaped parts, not format_html per bar (5× the time).
    fills = [escape(f"url(#{chart_id}-{n})" if s.hatched else s.colour) for n, s in enumerate(series)]
    names = [escape(s.name) for s in series]
    # Each value's text, escaped once for its bar's title and its table cell.
    raw = [["—" if v is None else fmt(v) for v in s.values[:count]] for s in series]
    texts = [[escape(text) for text in texts] for texts in raw]
    bars = []
    for i in range(count):
        y = TOP + plot_h
        x = LEFT + i * slot + (slot - bar_w) / 2
        for n, s in enumerate(series):
            value = s.values[i]
            if not value:
                continue
            h = plot_h * value / top
            y -= h
            bars.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" fill="{fills[n]}">'
                f"<title>{names[n]}: {texts[n][i]}</title></rect>"
            )
    ticks = []
    for i in (0, count - 1) if count else ():
        anchor, x, word = ("start", LEFT, "oldest") if i == 0 else ("end", WIDTH - RIGHT, "newest")
        ticks.append(f'<text x="{x}" y="{HEIGHT - 6}" font-size="13" text-anchor="{anchor}" fill="#555">{word}</text>')
    body = (f"<defs>{defs}</defs>" if defs else "") + _axis(top, fmt) + "".join(bars) + "".join(ticks)
    rows = [
        [Cell(labels[i].isoformat(), datetime=labels[i])]
        + [Cell(raw[n][i], escaped=texts[n][i]) for n in range(len(series))]
        for i in range(count)
    ]
    return Chart(
        id=chart_id,
        title=title,
        svg=_svg(chart_id, title, body),
        headers=[label_header, *(s.name for s in series)],
        rows=rows,
        legend=list(series),
    )


@dataclass(frozen=True)
class Point:
    value: float
    failed: bool
    label: str  # the job's short id
    href: str
    at: datetime


def point_chart(*, chart_id: str, title: str, points: Sequence[Point], fmt: Callable[[float], str]) -> Chart:
    """One point per run, oldest left, joined by a line: a dot when it succeeded, a cross when it
    failed; each point links to its job."""
    top = _nice_top(max((p.value for p in points), default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(len(points) - 1, 1)
    coords = [(LEFT + i * step, TOP + plot_h * (1 - p.value / top)) for i, p in enumerate(points)]
    line = ""
    if len(coords) > 1:
        points_text = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        line = f'<polyline points="{points_text}" fill="none" stroke="{GREY}" stroke-width="1" stroke-opacity="0.5"/>'
    marks = []  # up to 100 (the trigger page): f-strings over escaped parts, as bar_chart's bars
    for (x, y), p in zip(coords, points, strict=True):
        if p.failed:
            shape = f'<path d="M{x - 4:.1f} {y - 4:.1f}l8 8m0 -8l-8 8" stroke="{VERMILLION}" stroke-width="2.5"/>'
        else:
            shape = f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{BLUE}"/>'
        result = "failed" if p.failed else "succeeded"
        marks.append(
            f'<a href="{escape(p.href)}"><title>#{escape(p.label)} {result}: {escape(fmt(p.value))}</title>{shape}</a>'
        )
    body = _axis(top, fmt) + line + "".join(marks)
    rows = [
        [
            Cell(f"#{p.label}", href=p.href),
            Cell(p.at.isoformat(), datetime=p.at),
            Cell("failed" if p.failed else "succeeded"),
            Cell(fmt(p.value)),
        ]
        for p in points
    ]
    return Chart(
        id=chart_id,
        title=title,
        svg=_svg(chart_id, title, body, role="group"),
        headers=["Job", "Finished", "Result", "Duration"],
        rows=rows,
        legend=[Series("succeeded", BLUE, ()), Series("failed (×)", VERMILLION, (), hatched=True)],
    )


def share_chart(
    *, chart_id: str, title: str, items: Sequence[tuple[str, float | None]], busy_name: str = "busy"
) -> Chart:
    """Horizontal bars of a share (0–1) per item (an agent, a label), the rest drawn as idle."""
    row_h = 22
    height = max(len(items), 1) * row_h + 8
    name_w, plot_w = 150, WIDTH - 150 - 60
    parts = []
    for i, (name, share) in enumerate(items):
        y = 4 + i * row_h
        shown, value = escape(name), "—" if share is None else percent(share)
        parts.append(
            f'<text x="{name_w - 8}" y="{y + 12}" font-size="12" text-anchor="end" fill="#333">{shown}</text>'
            f'<rect x="{name_w}" y="{y}" width="{plot_w}" height="14" fill="{GREY}"/>'
        )
        if share:
            parts.append(
                f'<rect x="{name_w}" y="{y}" width="{plot_w * share:.1f}" height="14" fill="{BLUE}">'
                f"<title>{shown}: {value} {escape(busy_name)}</title></rect>"
            )
        parts.append(f'<text x="{name_w + plot_w + 6}" y="{y + 12}" font-size="12" fill="#333">{value}</text>')
    svg_id, svg_title = escape(chart_id), escape(title)
    svg = mark_safe(  # noqa: S308 (every part escaped above)  # nosec B308 B703
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" width="100%" role="img" '
        f'aria-labelledby="{svg_id}-title" data-testid="chart-{svg_id}">'
        f'<title id="{svg_id}-title">{svg_title}</title>{"".join(parts)}</svg>'
    )
    rows = [[Cell(name), Cell("—" if share is None else percent(share))] for name, share in items]
    return Chart(
        id=chart_id,
        title=title,
        svg=svg,
        headers=["", busy_name.capitalize()],
        rows=rows,
        legend=[Series(busy_name, BLUE, ()), Series("idle", GREY, ())],
    )


def percent(value: float) -> str:
    return f"{value * 100:.0f}%" if value * 100 >= 10 or value == 0 else f"{value * 100:.1f}%"


def duration(seconds: float) -> str:
    """Like the job pages' durations ("2m 34s"), for a chart's axis and table."""
    seconds = max(int(round(seconds)), 0)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def count(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"
