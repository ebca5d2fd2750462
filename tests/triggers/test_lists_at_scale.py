"""Job and trigger lists whose cost does not grow with the number of jobs: keyset pages
(no COUNT(*)), and the trigger's last-job pointer kept by the run service."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from orgs.scoping import Actor
from triggers import services
from triggers.models import JobSource, Trigger

from ..factories import JobFactory, TriggerFactory

pytestmark = pytest.mark.django_db


def _jobs(org, trigger, n):
    now = timezone.now()
    return [JobFactory(org=org, trigger=trigger, created_at=now - timedelta(minutes=i)) for i in range(n)]


def _run(trigger):
    return services.trigger_run(trigger=trigger, actor=Actor.system(), source=JobSource.API, ref=None, params={}).job_id


def test_running_a_trigger_points_it_at_its_newest_job(org_a):
    trigger = TriggerFactory(org=org_a)
    first = _run(trigger)
    assert Trigger.objects.get(pk=trigger.pk).last_job_id == first
    second = _run(trigger)
    assert Trigger.objects.get(pk=trigger.pk).last_job_id == second


def test_triggers_page_shows_each_triggers_last_job_without_reading_the_jobs_table(member, org_a):
    ran = TriggerFactory(org=org_a, name="ran")
    TriggerFactory(org=org_a, name="idle")
    JobFactory.create_batch(3, org=org_a, trigger=ran)
    job_id = _run(ran)
    client = Client()
    client.force_login(member)
    with CaptureQueriesContext(connection) as ctx:
        page = client.get(f"/orgs/{org_a.slug}/triggers/").content.decode()
    assert f"#{str(job_id)[:8]}" in page
    assert "never run" in page  # the idle trigger
    assert not [q for q in ctx.captured_queries if re.search(r'FROM "triggers_job"', q["sql"])]


def test_jobs_api_pages_with_a_cursor_newest_first_without_counting(api, member, org_a):
    trigger = TriggerFactory(org=org_a)
    jobs = _jobs(org_a, trigger, 5)
    api.as_user(member)
    seen, url = [], "/api/orgs/acme/jobs?pageSize=2"
    with CaptureQueriesContext(connection) as ctx:
        while url:
            body = api.get(url).json()
            assert "count" not in body
            seen += [j["id"] for j in body["results"]]
            url = body["next"]
    assert seen == [str(j.pk) for j in jobs]
    assert not [q for q in ctx.captured_queries if "COUNT(" in q["sql"].upper()]


def test_jobs_api_cursor_keeps_the_filters_and_goes_back(api, member, org_a):
    t1, t2 = TriggerFactory(org=org_a), TriggerFactory(org=org_a)
    mine = _jobs(org_a, t1, 3)
    _jobs(org_a, t2, 3)
    api.as_user(member)
    first = api.get(f"/api/orgs/acme/jobs?trigger={t1.pk}&pageSize=2").json()
    second = api.get(first["next"]).json()
    assert [j["id"] for j in first["results"] + second["results"]] == [str(j.pk) for j in mine]
    assert second["next"] is None
    back = api.get(second["previous"]).json()
    assert [j["id"] for j in back["results"]] == [str(j.pk) for j in mine[:2]]


def test_a_made_up_cursor_is_a_400_in_the_error_shape(api, member, org_a):
    api.as_user(member)
    response = api.get("/api/orgs/acme/jobs?cursor=bm9wZQ")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_cursor"


def test_jobs_page_links_to_older_jobs_without_counting(member, org_a):
    trigger = TriggerFactory(org=org_a)
    jobs = _jobs(org_a, trigger, 52)
    client = Client()
    client.force_login(member)
    with CaptureQueriesContext(connection) as ctx:
        first = client.get(f"/orgs/{org_a.slug}/jobs/").content.decode()
    assert not [q for q in ctx.captured_queries if "COUNT(" in q["sql"].upper()]
    assert f"#{jobs[0].short_id}" in first and f"#{jobs[50].short_id}" not in first
    older = re.search(r'href="([^"]+)">Older', first).group(1).replace("&amp;", "&")
    second = client.get(older).content.decode()
    assert f"#{jobs[50].short_id}" in second and f"#{jobs[51].short_id}" in second
    assert f"#{jobs[0].short_id}" not in second
    assert "Newer" in second and "Older" not in second


def test_jobs_page_with_a_made_up_cursor_shows_the_newest_jobs(member, org_a):
    job = JobFactory(org=org_a)
    client = Client()
    client.force_login(member)
    response = client.get(f"/orgs/{org_a.slug}/jobs/?cursor=bm9wZQ")
    assert response.status_code == 200
    assert f"#{job.short_id}" in response.content.decode()


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("q", "indexes"),
    [("nightly-build", {"job_ref_search", "job_params_search"}), ("ENV=production", {"job_params_contains"})],
)
def test_the_jobs_search_has_indexes_on_the_expressions_it_filters_by(org_a, q, indexes):
    """A search must not read every job of the org: each expression the search filters by is the
    expression of one of its indexes (triggers/migrations/0001_initial.py), operator class included, so the
    planner can answer from them once an org has many jobs (bench/lists.py: a search no job
    matches, 53 ms at 100,000 jobs before, 4.5 ms with them)."""
    from triggers.api.jobs import JobFilter
    from triggers.models import Job

    JobFactory.create_batch(2, org=org_a)
    queryset = JobFilter({"q": q}, queryset=Job.objects.filter(org=org_a).order_by("-created_at", "-id")).qs[:51]
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'triggers_job'")
        definitions = dict(cursor.fetchall())
    for name in indexes:
        # e.g. "CREATE INDEX job_ref_search ON public.triggers_job USING gin (upper((ref)::text) gin_trgm_ops)"
        expression = re.search(r"USING gin \((.*) (gin_trgm_ops|jsonb_path_ops)\)$", definitions[name])
        assert expression is not None, definitions[name]
        operator = {"gin_trgm_ops": " ~~ ", "jsonb_path_ops": " @> "}[expression.group(2)]
        assert f"{expression.group(1)}{operator}" in plan, (name, plan)


@pytest.mark.postgres
def test_a_new_job_adds_no_entry_to_the_job_token_and_rerun_indexes_and_the_token_lookup_uses_its_own(org_a):
    """Every run request inserts a job: indexes on columns only set later (a running job's credential,
    a re-run's origin) are partial, so the insert skips them; the job-token lookup still has an index."""
    from triggers.models import Job

    JobFactory.create_batch(3, org=org_a)
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE tablename = 'triggers_job'")
        definitions = [row[0] for row in cursor.fetchall()]
        on = {column: [d for d in definitions if f"({column})" in d] for column in ("job_token_hash", "rerun_of_id")}
        assert [len(found) for found in on.values()] == [1, 1], on
        assert "WHERE (NOT ((job_token_hash)::text = ''::text))" in on["job_token_hash"][0]
        assert "WHERE (rerun_of_id IS NOT NULL)" in on["rerun_of_id"][0]
        cursor.execute("SELECT count(*) FROM triggers_job WHERE NOT (job_token_hash = '') OR rerun_of_id IS NOT NULL")
        assert cursor.fetchone()[0] == 0  # so neither index holds an entry for them

        Job.objects.bulk_create([JobFactory.build(org=org_a, trigger=None) for _ in range(300)])
        cursor.execute("ANALYZE triggers_job")
        cursor.execute("SET LOCAL enable_seqscan = off")
        queryset = Job.objects.filter(job_token_hash="a" * 64, status="running").exclude(job_token_hash="")
        sql, params = queryset.order_by().values("id").query.sql_with_params()
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "job_token_live" in plan, plan
