"""`GET …/insights?environment=&window=`: the DORA numbers over the API, org-scoped, in exact queries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from orgs.models import TokenScope
from tests.factories import TriggerFactory, make_token
from triggers.models import Environment

from .test_dora import D, H, deploy

pytestmark = pytest.mark.django_db


@pytest.fixture
def production(org_a):
    return Environment.objects.create(org=org_a, name="production")


def test_one_environment_s_measures_over_a_window(api, member, production, now):
    # An hour past each day's mark: clear of the bucket edges, which the answer's own "now" moves a little.
    deploy(production, finished=now - 3 * D + H, approval=600, queue=30, running=60, commit_before=3600)
    deploy(production, finished=now - 2 * D + H, status="failed")
    deploy(production, finished=now - 1 * D + H)
    deploy(production, finished=now - 10 * D)  # the window before
    response = api.as_user(member).get("/api/orgs/acme/insights?environment=production&window=7d")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["window"] == "7d"
    (env,) = body["environments"]
    assert env["name"] == "production"
    assert env["deploymentFrequency"] == {
        "deploys": 2,
        "perDay": pytest.approx(2 / 7),
        "previousDeploys": 1,
        "change": 1.0,
    }
    assert env["changeFailureRate"] == {
        "ran": 3,
        "failures": 1,
        "rate": pytest.approx(1 / 3),
        "previousRate": 0.0,
        "change": None,
    }
    restore = env["timeToRestore"]
    assert (restore["incidents"], restore["restored"], restore["meanSeconds"], restore["openSince"]) == (
        1,
        1,
        86400.0,
        None,
    )
    lead = env["leadTime"]
    assert lead["meanSeconds"] == (690 + 90) / 2
    assert (lead["approvalWaitSeconds"], lead["queueWaitSeconds"], lead["runningSeconds"]) == (300.0, 30.0, 60.0)
    assert (lead["fromCommitSeconds"], lead["withCommitTime"]) == (4290.0, 1)
    assert [b["deploys"] for b in env["buckets"]] == [0, 0, 0, 0, 1, 0, 1]
    assert [b["failures"] for b in env["buckets"]] == [0, 0, 0, 0, 0, 1, 0]


def test_every_environment_without_a_name_and_30_days_by_default(api, member, org_a, production):
    Environment.objects.create(org=org_a, name="staging")
    body = api.as_user(member).get("/api/orgs/acme/insights").json()
    assert body["window"] == "30d"
    assert [e["name"] for e in body["environments"]] == ["production", "staging"]
    assert all(len(e["buckets"]) == 30 for e in body["environments"])


def test_a_bad_window_or_an_unknown_environment_is_a_clear_error(api, member, production):
    bad = api.as_user(member).get("/api/orgs/acme/insights?window=1y")
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "validation_error"
    assert list(bad.json()["error"]["details"]["fields"]) == ["window"]
    missing = api.as_user(member).get("/api/orgs/acme/insights?environment=nope")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_another_org_s_environment_is_a_404_and_a_trigger_token_is_refused(api, outsider, org_a, org_b, production):
    Environment.objects.create(org=org_b, name="production")
    assert api.as_user(outsider).get("/api/orgs/acme/insights?environment=production").status_code == 404
    # Through its own org, the outsider sees its own production, never org_a's deploys.
    deploy(production, finished=production.created_at - timedelta(hours=1))
    mine = api.as_user(outsider).get("/api/orgs/bravo/insights?environment=production").json()
    assert mine["environments"][0]["changeFailureRate"]["ran"] == 0
    # A trigger token reads its triggers' jobs, not a whole environment's.
    _, raw = make_token(org_a, scope_type=TokenScope.TRIGGER, trigger_ids=[str(TriggerFactory(org=org_a).pk)])
    assert api.as_token(raw).get("/api/orgs/acme/insights").status_code == 403
    _, org_raw = make_token(org_a)
    assert api.as_token(org_raw).get("/api/orgs/acme/insights?environment=production").status_code == 200


@pytest.mark.postgres
def test_the_answer_costs_the_same_queries_for_one_environment_or_many(api, member, org_a, production, now):
    for days in range(1, 20):
        deploy(production, finished=now - days * D, status="failed" if days % 5 == 0 else "succeeded")

    def queries(url) -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert api.as_user(member).get(url).status_code == 200
        return len(ctx.captured_queries)

    # Session and user, membership with the org, the environments, then one statement for all their deploys.
    assert queries("/api/orgs/acme/insights?environment=production") == 4
    for n in range(5):
        Environment.objects.create(org=org_a, name=f"env-{n}")
    assert queries("/api/orgs/acme/insights?window=90d") == 4
