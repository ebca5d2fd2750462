"""Charts are HTML built from strings (insights.charts): every text in them is escaped, and the table
under a chart says what its bars say."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from insights import charts
from insights.charts import BLUE, Point, Series

HOSTILE = '<script>alert("x")</script>&'


def test_every_text_of_a_bar_chart_is_escaped_and_its_table_matches_its_bars():
    start = datetime(2026, 12, 1, tzinfo=UTC)
    chart = charts.bar_chart(
        chart_id=f"c-{HOSTILE}",
        title=HOSTILE,
        labels=[start, start + timedelta(days=1)],
        series=[Series(HOSTILE, BLUE, [3, None], hatched=True)],
        fmt=lambda value: f"{value:.0f}{HOSTILE}",
    )
    html = str(chart.html)
    assert "<script>" not in html and "&lt;script&gt;" in html and "&amp;lt;" not in html
    assert 'data-testid="table-c-&lt;script&gt;' in html
    # One bar (the None bucket draws nothing), its title and its table cell give the same text.
    assert html.count("<rect ") == 1 + 1  # the bar, and the hatch pattern's tile
    assert re.search(r"<title>&lt;script&gt;.*?: 3&lt;script&gt;", html)
    assert "<td>3&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;</td>" in html and "<td>—</td>" in html
    assert '<time datetime="2026-12-01T00:00:00+00:00" data-local>2026-12-01 00:00 UTC</time>' in html


def test_a_point_chart_escapes_its_links_and_labels():
    at = datetime(2026, 12, 1, tzinfo=UTC)
    chart = charts.point_chart(
        chart_id="p",
        title="t",
        points=[Point(5.0, True, HOSTILE, f"/jobs/{HOSTILE}", at), Point(7.0, False, "ok", "/jobs/ok", at)],
        fmt=charts.duration,
    )
    html = str(chart.html)
    assert "<script>" not in html
    assert 'href="/jobs/&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;"' in html
    assert "failed: 5s" in html and "succeeded: 7s" in html


def test_an_empty_chart_says_so_in_its_table():
    chart = charts.bar_chart(chart_id="e", title="t", labels=[], series=[Series("s", BLUE, [])], fmt=charts.count)
    assert '<td colspan="2" class="muted">No data.</td>' in str(chart.html)


def test_a_share_chart_escapes_the_names_it_draws():
    chart = charts.share_chart(chart_id="a", title=HOSTILE, items=[(HOSTILE, 0.25), ("idle-agent", None)])
    html = str(chart.html)
    assert "<script>" not in html and html.count("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;") == 6
    assert "&amp;lt;" not in html  # escaped once, never twice
    assert "25%" in html and "<td>—</td>" in html
