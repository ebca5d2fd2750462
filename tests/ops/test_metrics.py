"""/metrics: bearer-token protected, Prometheus text that prometheus_client's own parser reads, counting
what happened (a run, a job finish, log bytes, a wake-up, a task failure)."""

from __future__ import annotations

import pytest
from celery import shared_task
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from tests.agents.signed import SignedAgent
from tests.factories import AgentFactory, TriggerFactory
from triggers.models import Job

TOKEN = "metrics-token-0123456789"  # noqa: S105 (a test value)


@pytest.fixture
def metrics_on(settings):
    settings.DEPLITE_METRICS_TOKEN = TOKEN


def scrape() -> dict[tuple[str, tuple], float]:
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_are_off_without_a_token_setting(settings):
    settings.DEPLITE_METRICS_TOKEN = ""
    response = Client().get("/metrics")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_metrics_need_the_bearer_token(metrics_on):
    assert Client().get("/metrics").status_code == 401
    wrong = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer not-the-token")
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "not_authenticated"
    assert wrong["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.postgres
def test_metrics_count_a_run_and_a_job_finish_without_org_labels(
    db, metrics_on, api, org_a, org_token, django_capture_on_commit_callbacks
):
    trigger = TriggerFactory(org=org_a, agent_labels=[])
    agent = AgentFactory(org=org_a, last_seen_at=timezone.now())
    before = scrape()
    with django_capture_on_commit_callbacks(execute=True):
        run = api.as_token(org_token[1]).post(f"/api/triggers/{trigger.id}/run", {"ref": "main"}, format="json")
    assert run.status_code == 202
    signed = SignedAgent(agent)
    claimed = signed.claim()
    assert claimed.status_code == 200
    job_id = claimed.json()["id"]
    with django_capture_on_commit_callbacks(execute=True):
        accepted = signed.events(job_id, [{"seq": 1, "type": "log", "data": "héllo\n"}])
    assert accepted.status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        assert signed.finish(job_id).status_code == 200
    after = scrape()

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("deplite_jobs_created_total", source="api") == 1
    assert delta("deplite_run_request_seconds_count", code="202") == 1
    assert delta("deplite_jobs_finished_total", result="succeeded", source="api") == 1
    assert delta("deplite_job_log_bytes_ingested_total") == len("héllo\n".encode())
    assert value(after, "deplite_agents_online") == 1
    assert value(after, "deplite_jobs_queued") == 0
    for _name, labels in after:
        assert "org" not in dict(labels) and "org_id" not in dict(labels)
    assert Job.objects.get(pk=job_id).status == "succeeded"


@pytest.mark.postgres
def test_queued_jobs_and_the_age_of_the_oldest_are_read_at_scrape_time(db, metrics_on, org_a):
    from tests.factories import JobFactory

    JobFactory(org=org_a, status="queued", created_at=timezone.now() - timezone.timedelta(seconds=90))
    JobFactory(org=org_a, status="queued")
    samples = scrape()
    assert value(samples, "deplite_jobs_queued") == 2
    assert 90 <= value(samples, "deplite_jobs_queued_oldest_age_seconds") < 3600


@shared_task(name="tests.ops.always_fails")
def always_fails(job_id: str) -> None:
    raise RuntimeError("boom")


def test_a_failing_celery_task_is_counted_by_task_name(db, metrics_on):
    before = scrape()
    always_fails.apply(args=["00000000-0000-4000-8000-000000000000"])
    after = scrape()
    name = "deplite_celery_task_failures_total"
    assert value(after, name, task="tests.ops.always_fails") - value(before, name, task="tests.ops.always_fails") == 1


def test_notification_deliveries_and_upload_verifications_are_defined_with_bounded_labels(db, metrics_on):
    from deplite import metrics

    metrics.NOTIFICATION_DELIVERIES.labels(provider="slack", outcome="sent").inc()
    samples = scrape()
    assert value(samples, "deplite_notification_deliveries_total", provider="slack", outcome="sent") >= 1
    assert metrics.UPLOAD_VERIFICATIONS._labelnames == ("outcome",)


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_waiting_claim_woken_by_a_new_job_observes_the_wakeup_latency(metrics_on, org_a):
    from tests.agents.test_claim_concurrency import _run_trigger_and_time_the_claim

    agent = AgentFactory(org=org_a, labels=["prod"])
    trigger = TriggerFactory(org=org_a, agent_labels=["prod"])
    before = scrape()
    _run_trigger_and_time_the_claim(org_a, agent, trigger)
    after = scrape()
    count = "deplite_claim_wakeup_seconds_count"
    assert value(after, count) - value(before, count) == 1
    assert value(after, "deplite_claim_wakeup_seconds_sum") > value(before, "deplite_claim_wakeup_seconds_sum")
