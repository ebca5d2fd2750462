"""/healthz, /readyz and `manage.py deplite_status` in-process (the outage drills with a real server
process are in test_readiness_drill.py)."""

from __future__ import annotations

import io
import json
import re
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from deplite import health
from tests.factories import AgentFactory, JobFactory, TriggerFactory
from tests.s3_server import free_port


def test_healthz_answers_without_credentials_and_echoes_a_request_id():
    response = Client().get("/healthz", HTTP_X_REQUEST_ID="lb-probe-1")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["X-Request-ID"] == "lb-probe-1"


def test_a_request_without_an_id_gets_a_generated_one_and_a_forged_one_is_replaced():
    generated = Client().get("/healthz")["X-Request-ID"]
    assert len(generated) == 32
    forged = Client().get("/healthz", HTTP_X_REQUEST_ID="evil\nid with spaces")["X-Request-ID"]
    assert "\n" not in forged and " " not in forged and len(forged) == 32


@pytest.mark.postgres
@pytest.mark.redis
def test_readyz_is_200_with_every_check_named_when_all_are_up(db):
    response = Client().get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "migrations": "ok", "redis": "ok"}}


@pytest.mark.postgres
@pytest.mark.redis
def test_readyz_is_503_naming_redis_when_redis_is_unreachable_and_200_when_it_is_back(db, settings):
    real = settings.REDIS_URL
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    response = Client().get("/readyz")
    assert response.status_code == 503
    body = response.json()["error"]
    assert body["code"] == "not_ready"
    assert body["details"]["failing"] == ["redis"]
    assert "redis" in body["message"]
    assert body["details"]["checks"]["database"] == "ok"
    settings.REDIS_URL = real
    assert Client().get("/readyz").status_code == 200


@pytest.mark.postgres
def test_readyz_names_migrations_that_the_code_has_and_the_database_lacks(db, monkeypatch):
    expected = health._expected_migrations() | {("triggers", "9999_from_the_next_release")}
    monkeypatch.setattr(health, "_expected_migrations", lambda: expected)
    response = Client().get("/readyz")
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["details"]["failing"] == ["migrations"]
    assert "triggers.9999_from_the_next_release" in error["details"]["checks"]["migrations"]


def test_health_endpoints_refuse_writes():
    assert Client().post("/readyz").status_code == 405
    assert Client().post("/healthz").status_code == 405


@pytest.mark.postgres
@pytest.mark.redis
def test_deplite_status_prints_the_checks_queue_depth_and_agents_online(db, org_a):
    trigger = TriggerFactory(org=org_a)
    JobFactory(org=org_a, trigger=trigger, status="queued", created_at=timezone.now() - timedelta(minutes=3))
    JobFactory(org=org_a, trigger=trigger, status="succeeded")
    AgentFactory(org=org_a, last_seen_at=timezone.now())
    AgentFactory(org=org_a, last_seen_at=timezone.now() - timedelta(hours=1))
    out = io.StringIO()
    call_command("deplite_status", "--json", stdout=out)
    status = json.loads(out.getvalue())
    assert status["status"] == "ok"
    assert status["checks"] == {"database": "ok", "migrations": "ok", "redis": "ok"}
    assert status["state"]["jobs_queued"] == 1
    assert 170 <= status["state"]["jobs_queued_oldest_age_seconds"] < 3600
    assert status["state"]["agents_online"] == 1
    assert isinstance(status["broker_queue_depth"], int)
    text = io.StringIO()
    call_command("deplite_status", stdout=text)
    assert re.search(r"^database\s+ok$", text.getvalue(), re.M)
    assert re.search(r"^jobs_queued\s+1$", text.getvalue(), re.M)
    assert re.search(r"^agents_online\s+1$", text.getvalue(), re.M)


@pytest.mark.postgres
def test_deplite_status_fails_naming_the_check(db, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    out = io.StringIO()
    with pytest.raises(CommandError, match="redis"):
        call_command("deplite_status", stdout=out)
    assert re.search(r"^redis\s+FAILING: unreachable", out.getvalue(), re.M)


def test_probes_answer_a_load_balancer_that_uses_the_instance_address_over_plain_http(settings):
    settings.ALLOWED_HOSTS = ["app.example.com"]
    settings.SECURE_SSL_REDIRECT = True
    probe = Client().get("/healthz", HTTP_HOST="10.0.3.17:8000")
    assert probe.status_code == 200 and probe.json() == {"status": "ok"}
    # Everything else still refuses an unknown host and redirects to HTTPS.
    assert Client().get("/api/orgs", HTTP_HOST="10.0.3.17:8000").status_code == 400
    assert Client().get("/api/orgs", HTTP_HOST="app.example.com").status_code == 301


def test_readyz_checks_what_is_configured_on_any_database(db, settings):
    # The embedded default (SQLite, no Redis) is ready too: there is no Redis to check.
    response = Client().get("/readyz")
    assert response.status_code == 200, response.content
    expected = {"database", "migrations"} | ({"redis"} if settings.REDIS_URL else set())
    assert set(response.json()["checks"]) == expected
