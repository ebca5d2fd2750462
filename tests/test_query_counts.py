"""Lists cost the same number of queries with 1 row or 11: no N+1 on any list, API or page."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import AgentFactory, JobFactory, StoredFileFactory, TriggerFactory

LISTS = [
    "/api/orgs/acme/jobs",
    "/api/orgs/acme/triggers",
    "/api/orgs/acme/agents",
    "/api/orgs/acme/files",
    "/api/orgs/acme/storage/bindings",
    "/api/orgs/acme/members",
    "/api/orgs/acme/tokens",
    "/api/orgs/acme/audit",
    "/orgs/acme/jobs/",
    "/orgs/acme/triggers/",
    "/orgs/acme/agents/",
    "/orgs/acme/storage/",
    "/orgs/acme/storage/files/",
]


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
