"""Lists cost the same number of queries with 1 row or 11: no N+1 on any list, API or page.

The lists are read from the URLconf at collection time, like the isolation matrices
(tests/orgs/test_isolation.py, test_page_isolation.py): every API route under
/api/orgs/<orgId>/ whose GET is a `list` action, and every page under /orgs/<slug>/ that
names nothing but the org. A list added later is covered without anyone adding it here.
"""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import AgentFactory, JobFactory, StoredFileFactory, TriggerFactory
from tests.urlconf import walk

ORG_SLUG = "acme"  # org_a's slug (tests/conftest.py)


def _api_lists() -> list[str]:
    urls = []
    for route, view, _ in walk():
        groups = re.findall(r"\(\?P<(\w+)>", route)
        if groups == ["org_id"] and (getattr(view, "actions", None) or {}).get("get") == "list":
            path = re.sub(r"\(\?P<org_id>[^)]*\)", ORG_SLUG, route).rstrip("$").replace("/?", "")
            urls.append("/" + path.lstrip("^"))
    return sorted(set(urls))


def _page_lists() -> list[str]:
    urls = []
    for route, _, _ in walk():
        if route.startswith("orgs/") and re.findall(r"<[^>]+>", route) == ["<slug:org_slug>"]:
            urls.append("/" + route.replace("<slug:org_slug>", ORG_SLUG))
    return sorted(set(urls))


LISTS = _api_lists() + _page_lists()


def test_the_walk_finds_the_api_lists_and_the_pages():
    # A guard against a walk that silently finds nothing (a URLconf refactor).
    assert {"/api/orgs/acme/jobs", "/api/orgs/acme/files", "/api/orgs/acme/audit"} <= set(LISTS)
    assert {"/orgs/acme/jobs/", "/orgs/acme/storage/files/", "/orgs/acme/agents/"} <= set(LISTS)


def _one_of_each(org):
    trigger = TriggerFactory(org=org)
    JobFactory(org=org, trigger=trigger)
    AgentFactory(org=org)
    StoredFileFactory(org=org)


def _queries(api, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = api.get(url)
    assert response.status_code == 200, response.content[:200]
    return len(ctx.captured_queries)


@pytest.mark.parametrize("url", LISTS)
def test_list_query_count_does_not_grow_with_rows(api, owner, org_a, url):
    api.as_user(owner)
    api.client.force_login(owner)
    _one_of_each(org_a)
    before = _queries(api, url)
    for _ in range(10):
        _one_of_each(org_a)
    assert _queries(api, url) == before
