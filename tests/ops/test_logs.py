"""LOG_FORMAT=json: one JSON object per line carrying the request id, org, caller, job and agent ids;
Celery task lines carry the task id and job id. (The same line from a real server process is checked in
test_shutdown.py.)"""

from __future__ import annotations

import io
import json
import logging
import logging.config
import uuid

import pytest
from celery import shared_task
from django.utils import timezone

from deplite import logs
from tests.agents.signed import SignedAgent
from tests.factories import AgentFactory, TriggerFactory


@pytest.fixture
def json_lines():
    """The project's LOGGING with LOG_FORMAT=json, its console handler writing to a buffer."""
    config = logs.logging_config(fmt="json", level="INFO")
    stream = io.StringIO()
    config["handlers"]["console"]["stream"] = stream
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    logging.config.dictConfig(config)

    def read() -> list[dict]:
        return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]

    yield read
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)
    root.handlers, root.level = saved[0], saved[1]


def test_plain_text_is_the_default(settings):
    assert settings.LOG_FORMAT == "plain"
    assert settings.LOGGING["handlers"]["console"]["formatter"] == "plain"


@pytest.mark.postgres
def test_a_run_request_logs_one_json_line_with_its_request_id_org_token_and_job_id(
    db, api, org_a, org_token, json_lines
):
    trigger = TriggerFactory(org=org_a)
    response = api.as_token(org_token[1]).post(
        f"/triggers/{trigger.id}/run", {"ref": "main"}, format="json", HTTP_X_REQUEST_ID="gh-run-42"
    )
    assert response.status_code == 202
    assert response["X-Request-ID"] == "gh-run-42"
    lines = [line for line in json_lines() if line["logger"] == "deplite.request"]
    assert len(lines) == 1
    line = lines[0]
    assert line["message"].startswith(f"POST /triggers/{trigger.id}/run 202 ")
    assert line["level"] == "INFO"
    assert line["request_id"] == "gh-run-42"
    assert line["job_id"] == response.json()["jobId"]
    assert line["org"] == "acme"
    assert line["token"] == org_token[0].prefix
    assert line["time"].endswith("Z")
    # The token itself is never written, only its prefix.
    assert org_token[1] not in json.dumps(json_lines())


@pytest.mark.postgres
def test_an_agent_request_line_names_the_agent_and_the_job(db, org_a, json_lines):
    agent = AgentFactory(org=org_a, last_seen_at=timezone.now())
    from tests.factories import JobFactory

    job = JobFactory(org=org_a, status="running", agent_id=agent.pk, claimed_at=timezone.now())
    assert SignedAgent(agent).events(job.pk, [{"seq": 1, "type": "log", "data": "x"}]).status_code == 200
    line = [x for x in json_lines() if x["logger"] == "deplite.request"][-1]
    assert line["agent_id"] == str(agent.pk)
    assert line["job_id"] == str(job.pk)
    assert line["org"] == "acme"


def test_probes_are_not_logged_at_info(json_lines, client):
    client.get("/healthz")
    client.get("/readyz?full=1")
    assert [x for x in json_lines() if x["logger"] == "deplite.request"] == []
    # A server's own access line for a probe is dropped too (uvicorn's format).
    logging.getLogger("django.server").info('"%s" %s %s', "GET /healthz HTTP/1.1", 200, 15)
    logging.getLogger("django.server").info('"%s" %s %s', "GET /api/orgs HTTP/1.1", 401, 15)
    assert [x["message"] for x in json_lines() if x["logger"] == "django.server"] == ['"GET /api/orgs HTTP/1.1" 401 15']


@shared_task(name="tests.ops.log_something")
def log_something(job_id: str) -> None:
    logging.getLogger("tests.ops").info("working on it")


def test_a_celery_task_line_carries_the_task_id_and_the_job_id(json_lines):
    job_id = str(uuid.uuid4())
    result = log_something.apply(args=[job_id])
    line = [x for x in json_lines() if x["logger"] == "tests.ops"][-1]
    assert line["message"] == "working on it"
    assert line["task_id"] == result.id
    assert line["job_id"] == job_id
    assert line["task"] == "tests.ops.log_something"
    # The task's context ends with the task.
    assert logs.current() == {}


def test_an_exception_is_one_line_with_its_traceback(json_lines):
    try:
        raise ValueError("bad")
    except ValueError:
        logging.getLogger("tests.ops").exception("it broke")
    line = [x for x in json_lines() if x["logger"] == "tests.ops"][-1]
    assert line["level"] == "ERROR" and "ValueError: bad" in line["exception"]


@pytest.mark.postgres
def test_every_answer_says_how_long_django_spent_on_it_in_server_timing(db, api, org_a, org_token, json_lines):
    """`Server-Timing: app;dur=<ms>`: the same duration the access-log line carries."""
    response = api.as_token(org_token[1]).get(f"/api/orgs/{org_a.slug}/jobs")
    assert response.status_code == 200
    name, _, duration = response["Server-Timing"].partition(";dur=")
    assert name == "app"
    logged = next(line for line in json_lines() if line["logger"] == "deplite.request")
    assert logged["message"].endswith(f" {float(duration):.1f}ms")
