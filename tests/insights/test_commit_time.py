"""`commitTime` next to `ref` in a run request: stored for lead time from commit, optional, and a bad
value is a 400 naming the field (the docs' snippets, without it, still run)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
from django.test import Client

from tests.factories import TriggerFactory
from triggers.models import Job

pytestmark = pytest.mark.django_db

FORM = "application/x-www-form-urlencoded"  # what curl -d sends


@pytest.fixture
def trigger(org_a):
    return TriggerFactory(org=org_a)


def run(api, trigger, body: dict):
    return api.generic("POST", f"/api/triggers/{trigger.id}/run", json.dumps(body), content_type=FORM)


@pytest.mark.parametrize(
    "sent,stored",
    [
        ("2026-12-07T09:30:00+01:00", datetime(2026, 12, 7, 8, 30, tzinfo=UTC)),
        ("2026-12-07T09:30:00.250Z", datetime(2026, 12, 7, 9, 30, 0, 250000, tzinfo=UTC)),
        # GitHub's head_commit is null on a manual dispatch: the snippet then sends "".
        ("", None),
        (None, None),
    ],
)
def test_a_run_stores_its_commit_time(api, member, trigger, sent, stored):
    response = run(api.as_user(member), trigger, {"ref": "abc123", "commitTime": sent})
    assert response.status_code == 202, response.content
    assert Job.objects.get().commit_time == stored


def test_the_docs_snippet_without_commit_time_still_runs(api, member, trigger):
    response = run(api.as_user(member), trigger, {"ref": "main", "params": {"ENV": "prod"}})
    assert response.status_code == 202
    assert Job.objects.get().commit_time is None


@pytest.mark.parametrize(
    "bad", ["yesterday", "2026-12-07", "2026-12-07T09:30:00", "2026-13-01T00:00:00Z", 1733563800, ["x"]]
)
def test_a_bad_commit_time_is_a_400_naming_the_field(api, member, trigger, bad):
    response = run(api.as_user(member), trigger, {"ref": "main", "commitTime": bad})
    assert response.status_code == 400
    error = response.json()["error"]
    assert list(error["details"]["fields"]) == ["commitTime"]
    assert "RFC 3339" in error["details"]["fields"]["commitTime"][0]
    assert not Job.objects.exists()


def test_the_trigger_page_s_github_actions_step_sends_the_commit_time(member, trigger):
    client = Client()
    client.force_login(member)
    html = client.get(f"/orgs/acme/triggers/{trigger.pk}/").content.decode()
    snippet = re.search(r'<pre class="snippet" data-testid="gha-snippet"[^>]*>(.*?)</pre>', html, re.S).group(1)
    assert "&quot;commitTime&quot;: &quot;${{ github.event.head_commit.timestamp }}&quot;" in snippet
