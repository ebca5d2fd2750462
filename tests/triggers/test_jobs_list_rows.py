"""The jobs list's rows (`triggers/_jobs_rows.html`) escape every value a user can set: markup pushed
through every cell comes back as the same text, never as a tag, an attribute or a cell of its own."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.test import Client
from django.utils.text import Truncator

from triggers.models import Job, JobStatus, Trigger

from ..factories import JobFactory, TriggerFactory

SHA = "3f2c1a9b8e7d6c5b4a3928170f6e5d4c3b2a1908"
# Each breaks out of a different place: element content, a double-quoted attribute, the cell.
MARKUP = "<script>alert(1)</script>\"onmouseover=alert(2) x='</td><td>"


class Cells(HTMLParser):
    """The rows as a browser parses them: per row, its cells' text and the attributes of the elements
    in each cell, and every tag inside the rows' `<tbody>`."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.rows: dict[str, list[dict]] = {}
        self._in_rows = False
        self._row: list[dict] | None = None
        self._cell: dict | None = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "tbody" and attributes.get("id") == "job-rows":
            self._in_rows = True
        if not self._in_rows:
            return
        self.tags.append((tag, attributes))
        if tag == "tr" and "data-job" in attributes:
            self._row = self.rows.setdefault(attributes["data-job"], [])
        elif tag == "td" and self._row is not None:
            self._cell = {"text": "", "attrs": [attributes]}
            self._row.append(self._cell)
        elif self._cell is not None:
            self._cell["attrs"].append(attributes)

    def handle_endtag(self, tag):
        if tag == "tbody":
            self._in_rows = False
        elif tag == "td":
            self._cell = None
        elif tag == "tr":
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell["text"] += data


def _rows(html: str) -> Cells:
    cells = Cells()
    cells.feed(html)
    cells.close()
    assert cells.tags, "no rows in the answer"
    # No markup of ours became a tag or an attribute anywhere in the answer.
    assert "script" not in {tag for tag, _ in cells.tags}
    assert not [attrs for _, attrs in cells.tags if "onmouseover" in attrs or "x" in attrs]
    return cells


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def hostile_jobs(org_a):
    """Jobs whose every user-set value carries markup, the ones a form or the API refuses included
    (written with update(), as a bug or an old row could leave them)."""
    trigger = TriggerFactory(org=org_a, name=f"t{MARKUP}")
    named = JobFactory(
        org=org_a,
        trigger=trigger,
        ref=f"v1{MARKUP}",
        source="api",
        actor_label=f"token {MARKUP}",
        params={"actor": f"octo{MARKUP}"},
        status=JobStatus.FAILED,
        error=f"step failed {MARKUP}",
    )
    Job.objects.filter(pk=named.pk).update(trigger_name=f"t{MARKUP}", short_id='"></td>x')
    odd = JobFactory(org=org_a, trigger=trigger, ref=SHA, source="webhook")
    # Values no code path writes (a choice outside its list, a hand-edited repository URL), still escaped.
    Job.objects.filter(pk=odd.pk).update(status='x"<b>', source="</td><b>")
    Trigger.objects.filter(pk=trigger.pk).update(repository_url='https://h.test/"onmouseover=alert(3) x="<script>')
    return Job.objects.get(pk=named.pk), Job.objects.get(pk=odd.pk)


@pytest.mark.parametrize("path", ["/orgs/acme/jobs/", "/orgs/acme/jobs/rows"])
def test_markup_in_every_cell_of_the_jobs_list_comes_back_as_text(member, hostile_jobs, path):
    named, odd = hostile_jobs
    response = _client(member).get(path)
    assert response.status_code == 200
    rows = _rows(response.content.decode()).rows
    assert set(rows) == {named.short_id, odd.short_id}

    status, link, trigger, ref, who, created, duration = rows[named.short_id]
    assert status["text"] == f"Failed{Truncator(named.error).chars(120)}"
    assert status["attrs"][2]["title"] == named.error  # the error's title: the whole error
    assert link["text"] == f"#{named.short_id}" and link["attrs"][1]["href"] == f"/orgs/acme/jobs/{named.pk}"
    assert trigger["text"] == f"t{MARKUP}"
    assert ref["text"] == Truncator(named.ref).chars(40) and ref["attrs"][1]["title"] == named.ref
    assert who["text"] == f"API · token {MARKUP} · GitHub: octo{MARKUP}"
    assert created["text"].endswith(" ago") and duration["text"] == "—"

    status, _, _, ref, who, _, _ = rows[odd.short_id]
    assert status["text"] == 'x"<b>' and status["attrs"][1]["class"] == 'badge x"<b>'
    assert ref["text"] == SHA[:7]
    assert ref["attrs"][1]["href"] == f'https://h.test/"onmouseover=alert(3) x="<script>/commit/{SHA}'
    assert who["text"] == "</td><b>"


def test_a_sha_ref_links_to_its_commit_and_other_refs_are_shown_whole(member, org_a):
    trigger = TriggerFactory(org=org_a, repository_url="https://github.com/acme/web/")
    linked = JobFactory(org=org_a, trigger=trigger, ref=SHA)
    plain = JobFactory(org=org_a, trigger=TriggerFactory(org=org_a), ref=SHA)
    branch = JobFactory(org=org_a, trigger=trigger, ref="release/2026-12")
    rows = _rows(_client(member).get("/orgs/acme/jobs/rows").content.decode()).rows

    ref = rows[linked.short_id][3]
    assert ref["text"] == SHA[:7]
    assert [a.get("href") for a in ref["attrs"]] == [None, f"https://github.com/acme/web/commit/{SHA}", None]
    assert rows[plain.short_id][3]["text"] == SHA[:7] and len(rows[plain.short_id][3]["attrs"]) == 2  # no link
    assert rows[branch.short_id][3]["text"] == "release/2026-12"
