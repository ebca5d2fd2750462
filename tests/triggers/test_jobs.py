"""Jobs API (list, detail with steps, incremental logs, cancel), the reaper and the job_finished signal."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from orgs.models import TokenScope
from triggers import tasks
from triggers.models import Job, JobLogChunk, JobStatus, JobStep

from ..factories import JobFactory, TriggerFactory, make_token


def test_list_filters_by_trigger_and_status(api, member, org_a):
    t1, t2 = TriggerFactory(org=org_a), TriggerFactory(org=org_a)
    a = JobFactory(org=org_a, trigger=t1)
    JobFactory(org=org_a, trigger=t1, status=JobStatus.SUCCEEDED)
    JobFactory(org=org_a, trigger=t2)
    api.as_user(member)
    assert len(api.get("/api/orgs/acme/jobs").json()["results"]) == 3
    body = api.get(f"/api/orgs/acme/jobs?trigger={t1.pk}&status=queued").json()
    assert [j["id"] for j in body["results"]] == [str(a.pk)]
    assert body["results"][0]["shortId"] == a.short_id
    assert api.get("/api/orgs/acme/jobs?status=bogus").status_code == 400


def test_detail_has_steps(api, member, org_a):
    job = JobFactory(org=org_a, status=JobStatus.RUNNING)
    JobStep.objects.create(org=org_a, job=job, index=1, name="extract", status="running")
    JobStep.objects.create(org=org_a, job=job, index=0, name="download", status="succeeded", exit_code=0)
    body = api.as_user(member).get(f"/api/orgs/acme/jobs/{job.pk}").json()
    assert [(s["index"], s["name"], s["status"]) for s in body["steps"]] == [
        (0, "download", "succeeded"),
        (1, "extract", "running"),
    ]
    assert body["url"].endswith(f"/orgs/acme/jobs/{job.pk}")


def test_logs_are_read_incrementally(api, member, org_a):
    job = JobFactory(org=org_a, status=JobStatus.SUCCEEDED, log_seq=3)
    for seq, text in enumerate(["a\n", "b\n", "c\n"], start=1):
        JobLogChunk.objects.create(org=org_a, job=job, seq=seq, step=0, data=text)
    api.as_user(member)
    first = api.get(f"/api/orgs/acme/jobs/{job.pk}/logs").json()
    assert [c["data"] for c in first["chunks"]] == ["a\n", "b\n", "c\n"]
    assert first["nextAfter"] == 3 and first["complete"] is True
    later = api.get(f"/api/orgs/acme/jobs/{job.pk}/logs?after=2").json()
    assert [c["seq"] for c in later["chunks"]] == [3]
    assert api.get(f"/api/orgs/acme/jobs/{job.pk}/logs?after=x").status_code == 400
    # Not a 0 or a 10 guessed from a mistake (the schema fuzz run sent `after=`).
    for bad in ("", "1_0", "-1", " 2"):
        assert api.get(f"/api/orgs/acme/jobs/{job.pk}/logs", {"after": bad}).status_code == 400, bad


def test_outsider_sees_no_job_of_another_org(api, outsider, org_a):
    job = JobFactory(org=org_a)
    api.as_user(outsider)
    assert api.get("/api/orgs/bravo/jobs").json()["results"] == []
    for url in (f"/api/orgs/bravo/jobs/{job.pk}", f"/api/orgs/bravo/jobs/{job.pk}/logs"):
        assert api.get(url).status_code == 404
    assert api.post(f"/api/orgs/bravo/jobs/{job.pk}/cancel").status_code == 404
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED


def test_trigger_token_reads_only_its_triggers_jobs(api, org_a):
    mine, other = TriggerFactory(org=org_a), TriggerFactory(org=org_a)
    visible = JobFactory(org=org_a, trigger=mine)
    hidden = JobFactory(org=org_a, trigger=other)
    _, raw = make_token(org_a, scope_type=TokenScope.TRIGGER, trigger_ids=[str(mine.pk)])
    api.as_token(raw)
    assert [j["id"] for j in api.get("/api/orgs/acme/jobs").json()["results"]] == [str(visible.pk)]
    assert api.get(f"/api/orgs/acme/jobs/{hidden.pk}").status_code == 404
    assert api.post(f"/api/orgs/acme/jobs/{visible.pk}/cancel").status_code == 403  # read-only scope


def test_cancel_of_a_queued_job_is_immediate_and_fires_job_finished_once(
    api, member, org_a, finished_signals, django_capture_on_commit_callbacks
):
    job = JobFactory(org=org_a)
    api.as_user(member)
    with django_capture_on_commit_callbacks(execute=True):
        first = api.post(f"/api/orgs/acme/jobs/{job.pk}/cancel")
        second = api.post(f"/api/orgs/acme/jobs/{job.pk}/cancel")
    assert first.status_code == second.status_code == 200
    assert first.json()["status"] == "cancelled"
    job.refresh_from_db()
    assert job.status == "cancelled" and job.finished_at is not None and "member@acme.test" in job.error
    assert finished_signals == [(job.pk, org_a.pk, "cancelled")]


def test_cancel_of_a_finished_job_is_a_409(api, member, org_a):
    job = JobFactory(org=org_a, status=JobStatus.SUCCEEDED, finished_at=timezone.now())
    response = api.as_user(member).post(f"/api/orgs/acme/jobs/{job.pk}/cancel")
    assert response.status_code == 409
    job.refresh_from_db()
    assert job.status == "succeeded"


def test_reaper_fails_a_running_job_past_its_timeout_plus_grace(
    org_a, finished_signals, django_capture_on_commit_callbacks
):
    now = timezone.now()
    late = JobFactory(org=org_a, status=JobStatus.RUNNING, started_at=now - timedelta(minutes=23), timeout_minutes=20)
    within = JobFactory(org=org_a, status=JobStatus.RUNNING, started_at=now - timedelta(minutes=21), timeout_minutes=20)
    JobStep.objects.create(org=org_a, job=late, index=0, name="Push", status="running")
    with django_capture_on_commit_callbacks(execute=True):
        tasks.jobs_reap.delay()
        tasks.jobs_reap.delay()  # safe twice
    late.refresh_from_db()
    within.refresh_from_db()
    assert late.status == "failed" and late.error.startswith("timeout exceeded")
    assert JobStep.objects.get(job=late).status == "failed"
    assert within.status == "running"
    assert finished_signals == [(late.pk, org_a.pk, "failed")]


def test_reaper_expires_queued_jobs_older_than_the_configured_age(org_a, settings):
    settings.DEPLITE_QUEUED_JOB_MAX_AGE_SECONDS = 3600
    old = JobFactory(org=org_a, created_at=timezone.now() - timedelta(hours=2))
    fresh = JobFactory(org=org_a)
    tasks.jobs_reap.delay()
    old.refresh_from_db()
    fresh.refresh_from_db()
    assert old.status == "failed" and old.error == "expired: no agent claimed this job within 1 hour"
    assert fresh.status == "queued"


def test_sweeper_republishes_only_for_orgs_with_old_claimable_jobs(org_a, org_b, monkeypatch):
    published = []
    monkeypatch.setattr(
        tasks.wakeups, "publish_jobs_available", lambda *, org_id, labels: published.append(org_id) or 0
    )
    JobFactory(org=org_a, created_at=timezone.now() - timedelta(minutes=1))
    JobFactory(org=org_b)  # just created: its own dispatch covers it
    JobFactory(org=org_b, created_at=timezone.now() - timedelta(minutes=1), waiting_for_files=True)
    assert tasks.jobs_sweep_queued.delay().get() == 1
    assert published == [org_a.pk]


def test_idempotency_keys_are_purged_after_a_day(api, org_a, org_token):
    from triggers.models import IdempotencyKey

    trigger = TriggerFactory(org=org_a)
    api.as_token(org_token[1])
    api.generic("POST", f"/triggers/{trigger.pk}/run", "{}", content_type="text/plain", HTTP_IDEMPOTENCY_KEY="a")
    api.generic("POST", f"/triggers/{trigger.pk}/run", "{}", content_type="text/plain", HTTP_IDEMPOTENCY_KEY="b")
    IdempotencyKey.objects.filter(key="a").update(created_at=timezone.now() - timedelta(hours=25))
    tasks.idempotency_keys_purge.delay()
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["b"]
    assert Job.objects.count() == 2


def test_list_searches_ref_and_params(api, member, org_a):
    a = JobFactory(org=org_a, ref="release/v1.2", params={"ENV": "production"})
    b = JobFactory(org=org_a, ref="main", params={"ENV": "staging", "NOTE": "hotfix for v1.2"})
    JobFactory(org=org_a, ref="main", params={"ENV": "production"})
    api.as_user(member)

    def ids(q):
        return {j["id"] for j in api.get("/api/orgs/acme/jobs", {"q": q}).json()["results"]}

    assert ids("v1.2") == {str(a.pk), str(b.pk)}  # ref or any param value
    assert ids("ENV=staging") == {str(b.pk)}  # KEY=value: that param exactly
    assert ids("ENV=stag") == set()
    assert ids("env__x=1") == set()  # never an ORM lookup path
    assert api.get("/api/orgs/acme/jobs", {"q": "x" * 201}).status_code == 400
