"""The run endpoint: `POST /triggers/<id>/run` and `/api/triggers/<id>/run`, with Idempotency-Key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from datetime import timedelta

import pytest
import requests
from django.core.handlers.wsgi import WSGIHandler
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from kombu.exceptions import OperationalError

from orgs.models import TokenScope
from triggers.models import IdempotencyKey, Job, JobSource, JobStatus, Trigger
from triggers.signals import job_finished  # noqa: F401  (imported so the module is loaded like in prod)

from ..factories import JobFactory, TriggerFactory, make_token
from ..statements import per_backend, statements

FORM = "application/x-www-form-urlencoded"  # what curl -d sends without -H Content-Type


def docs_body(sha="3f2a9c1", actor="octocat", repo="acme/web") -> str:
    # The docs' GitHub Actions step, with the ${{ }} expressions expanded.
    return f'{{ "ref": "{sha}", "params": {{ "actor": "{actor}", "repo": "{repo}" }} }}'


@pytest.fixture
def trigger(org_a):
    return TriggerFactory(org=org_a, name="deploy-prod", workflow="deploy", agent_labels=["prod"])


def run(api, trigger, body: str, key: str | None = None, prefix: str = ""):
    extra = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return api.generic("POST", f"{prefix}/triggers/{trigger.id}/run", body, content_type=FORM, **extra)


def test_docs_github_actions_curl_creates_one_job_and_replays_with_the_same_key(api, trigger, org_token):
    api.as_token(org_token[1])
    first = run(api, trigger, docs_body(), key="9876543210")
    assert first.status_code == 202, first.content
    body = first.json()
    assert set(body) == {"jobId", "shortId", "status", "ref", "params", "url"}
    assert body["status"] == "queued"
    assert body["ref"] == "3f2a9c1"
    assert body["params"] == {"actor": "octocat", "repo": "acme/web"}
    assert body["url"] == f"http://127.0.0.1:8000/orgs/acme/jobs/{body['jobId']}"
    job = Job.objects.get()
    assert str(job.id) == body["jobId"] and job.short_id == body["shortId"] == job.id.hex[:8]
    assert job.source == JobSource.WEBHOOK and job.workflow == "deploy" and job.agent_labels == ["prod"]
    assert "Idempotent-Replayed" not in first

    again = run(api, trigger, docs_body(), key="9876543210")
    assert again.status_code == 202
    assert again.json() == body
    assert again["Idempotent-Replayed"] == "true"
    assert Job.objects.count() == 1


def test_same_key_with_a_different_body_is_422_and_creates_nothing(api, trigger, org_token):
    api.as_token(org_token[1])
    assert run(api, trigger, docs_body(sha="aaa"), key="k1").status_code == 202
    response = run(api, trigger, docs_body(sha="bbb"), key="k1")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert Job.objects.count() == 1


def test_idempotency_key_is_scoped_to_the_trigger(api, trigger, org_a, org_token):
    other = TriggerFactory(org=org_a)
    api.as_token(org_token[1])
    assert run(api, trigger, docs_body(), key="same").status_code == 202
    response = run(api, other, docs_body(), key="same")
    assert response.status_code == 202 and "Idempotent-Replayed" not in response
    assert Job.objects.count() == 2


def test_idempotency_key_is_forgotten_after_24_hours(api, trigger, org_token):
    api.as_token(org_token[1])
    first = run(api, trigger, docs_body(), key="old").json()
    IdempotencyKey.objects.update(created_at=timezone.now() - timedelta(hours=25))
    second = run(api, trigger, docs_body(), key="old")
    assert second.status_code == 202 and "Idempotent-Replayed" not in second
    assert second.json()["jobId"] != first["jobId"]
    assert Job.objects.count() == 2


def test_without_a_key_each_request_creates_a_job(api, trigger, org_token):
    api.as_token(org_token[1])
    assert run(api, trigger, docs_body()).status_code == 202
    assert run(api, trigger, docs_body()).status_code == 202
    assert Job.objects.count() == 2


def test_api_path_is_the_same_view_and_records_api_source(api, trigger, member):
    response = run(api.as_user(member), trigger, '{"params": {"FILEID": "x"}}', prefix="/api")
    assert response.status_code == 202
    job = Job.objects.get()
    assert job.source == JobSource.API
    assert job.ref == "main"  # the trigger's default ref
    assert job.actor_label == "member@acme.test"


def test_scalar_params_are_sent_as_strings(api, trigger, org_token):
    body = json.dumps({"params": {"N": 3, "DRY": True, "RATIO": 0.5, "S": "x"}})
    response = run(api.as_token(org_token[1]), trigger, body)
    assert response.status_code == 202
    assert Job.objects.get().params == {"N": "3", "DRY": "true", "RATIO": "0.5", "S": "x"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"params": {"1BAD": "x"}}', "params.1BAD"),
        ('{"params": {"with-dash": "x"}}', "params.with-dash"),
        ('{"params": {"K": {"nested": 1}}}', "params.K"),
        ('{"params": {"K": [1, 2]}}', "params.K"),
        ('{"params": {"K": null}}', "params.K"),
        ('{"params": {"K": "' + "x" * 5000 + '"}}', "params.K"),
        ('{"params": [1, 2]}', "params"),
        ('{"ref": ["main"]}', "ref"),
        ('{"ref": "' + "r" * 300 + '"}', "ref"),
        ('{"ref": "main\\nrm -rf"}', "ref"),
    ],
)
def test_bad_body_is_a_400_naming_the_field(api, trigger, org_token, body, field):
    response = run(api.as_token(org_token[1]), trigger, body)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["message"].startswith(field)
    assert Job.objects.count() == 0


def test_more_than_50_params_is_a_400(api, trigger, org_token):
    body = json.dumps({"params": {f"P{i}": "v" for i in range(51)}})
    response = run(api.as_token(org_token[1]), trigger, body)
    assert response.status_code == 400 and response.json()["error"]["message"].startswith("params")
    assert Job.objects.count() == 0


def test_malformed_json_is_a_400_not_a_500(api, trigger, org_token):
    response = run(api.as_token(org_token[1]), trigger, '{"ref": ')
    assert response.status_code == 400
    assert Job.objects.count() == 0


def test_disabled_trigger_is_a_409(api, trigger, org_token):
    trigger.enabled = False
    trigger.save()
    response = run(api.as_token(org_token[1]), trigger, docs_body())
    assert response.status_code == 409 and response.json()["error"]["code"] == "trigger_disabled"
    assert Job.objects.count() == 0


def test_anonymous_is_401(api, trigger):
    assert run(api, trigger, docs_body()).status_code == 401
    assert Job.objects.count() == 0


def test_outsider_and_other_org_token_get_404(api, trigger, outsider, outsider_token):
    assert run(api.as_user(outsider), trigger, docs_body()).status_code == 404
    assert run(api.as_token(outsider_token[1]), trigger, docs_body()).status_code == 404
    assert Job.objects.count() == 0


def test_unknown_or_malformed_trigger_id_is_404(api, org_token):
    api.as_token(org_token[1])
    assert api.generic("POST", "/triggers/not-a-uuid/run", "{}", content_type=FORM).status_code == 404
    url = "/triggers/00000000-0000-4000-8000-000000000000/run"
    assert api.generic("POST", url, "{}", content_type=FORM).status_code == 404
    assert Job.objects.count() == 0


def test_trigger_token_runs_only_the_triggers_it_lists(api, org_a, trigger):
    other = TriggerFactory(org=org_a)
    _, raw = make_token(org_a, scope_type=TokenScope.TRIGGER, trigger_ids=[str(trigger.id)])
    api.as_token(raw)
    assert run(api, trigger, docs_body()).status_code == 202
    assert run(api, other, docs_body()).status_code == 404
    assert Job.objects.count() == 1


@pytest.mark.parametrize("prefix", ["", "/api"])
def test_a_storage_token_of_the_triggers_org_is_told_its_scope_cannot_run_triggers(api, org_a, trigger, prefix):
    _, raw = make_token(org_a, scope_type=TokenScope.STORAGE, binding_ids=[], storage_permissions=["read", "write"])
    response = run(api.as_token(raw), trigger, docs_body(), prefix=prefix)
    assert response.status_code == 403, response.content
    error = response.json()["error"]
    assert error["code"] == "token_scope_cannot_run_triggers"
    assert "scoped to storage, which cannot run triggers" in error["message"]
    assert Job.objects.count() == 0


@pytest.mark.parametrize("caller", ["storage token", "org token", "owner"])
def test_another_orgs_caller_gets_the_answer_of_an_unknown_trigger(api, org_b, outsider, trigger, caller):
    if caller == "owner":
        api.as_user(outsider)
    else:
        scope = {"scope_type": TokenScope.STORAGE, "binding_ids": [], "storage_permissions": ["read", "write"]}
        api.as_token(make_token(org_b, **(scope if caller == "storage token" else {}))[1])
    foreign, unknown = run(api, trigger, docs_body()), run(api, TriggerFactory.build(), docs_body())
    assert (foreign.status_code, unknown.status_code) == (404, 404)
    # The same answer whether the trigger exists in another org or nowhere (on every backend).
    assert (
        foreign.json()
        == unknown.json()
        == {"error": {"code": "not_found", "message": "Trigger not found.", "details": {}}}
    )
    assert Job.objects.count() == 0


def test_invalid_idempotency_key_header_is_a_400(api, trigger, org_token):
    response = run(api.as_token(org_token[1]), trigger, docs_body(), key="x" * 300)
    assert response.status_code == 400
    assert Job.objects.count() == 0


def test_a_failing_enqueue_after_commit_still_answers_202_and_keeps_the_job(
    api, trigger, org_token, monkeypatch, django_capture_on_commit_callbacks
):
    import redis

    from triggers import tasks, wakeups

    def broken(*args, **kwargs):
        raise OperationalError("broker unreachable")

    def unreachable(*args, **kwargs):
        raise redis.ConnectionError("Redis unreachable")

    monkeypatch.setattr(tasks.job_dispatch, "apply_async", broken)
    monkeypatch.setattr(wakeups, "publish", unreachable)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = run(api.as_token(org_token[1]), trigger, docs_body())
    # The dispatch, and the count of created jobs in the metrics (triggers/receivers.py).
    assert len(callbacks) == 2
    assert response.status_code == 202
    assert Job.objects.get().status == JobStatus.QUEUED


def test_run_endpoint_query_count_is_constant(api, org_a, trigger, org_token):
    api.as_token(org_token[1])
    run(api, trigger, docs_body())  # warm-up: token last_used_at write happens once a minute

    def count(body: str, key: str | None) -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert run(api, trigger, body, key=key).status_code == 202
        return len(statements(ctx))

    small = count(json.dumps({"params": {"A": "1"}}), "k-small")
    JobFactory.create_batch(20, org=org_a, trigger=trigger)
    large = count(json.dumps({"ref": "v2", "params": {f"P{i}": f"value-{i}" for i in range(50)}}), "k-large")
    assert small == large
    # PostgreSQL: the token's query carrying the trigger and the stored key, then one statement (the job,
    # its key, the last-job pointer, the audit row; no BEGIN/COMMIT). SQLite: the token, the trigger and
    # the key read one by one, then the four writes one by one.
    assert small == per_backend(postgresql=2, sqlite=7), [q[:80] for q in ctx_sql(api, trigger)]
    # A replay: the token's query alone on PostgreSQL (it carries the stored answer).
    with CaptureQueriesContext(connection) as ctx:
        assert run(api, trigger, json.dumps({"params": {"A": "1"}}), key="k-small")["Idempotent-Replayed"] == "true"
    assert len(statements(ctx)) == per_backend(postgresql=1, sqlite=3), statements(ctx)


def _prepared_statements() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return {row[0] for row in cursor.fetchall()}


@pytest.mark.postgres
def test_a_run_s_statements_are_prepared_once_per_connection_and_sent_as_values_after(api, trigger, org_token):
    """Settings: values bound by PostgreSQL, and a statement prepared once its connection has run it
    `prepare_threshold` times (Django's OPTIONS): PostgreSQL then parses and plans the token lookup
    and the run's write once per connection; later runs send only their values."""
    api.as_token(org_token[1])
    before = _prepared_statements()
    for i in range(connection.connection.prepare_threshold + 1):  # the last run is the one that prepares
        assert run(api, trigger, docs_body(), key=f"prep-{i}").status_code == 202
    prepared = _prepared_statements() - before
    assert any("token_hash = $" in s for s in prepared), prepared
    assert any(s.startswith("WITH w0 AS (INSERT INTO") for s in prepared), prepared
    with CaptureQueriesContext(connection) as ctx:
        assert run(api, trigger, docs_body(), key="prep-again").status_code == 202
    assert _prepared_statements() - before == prepared  # the same statements, reused
    assert len(ctx.captured_queries) <= 5  # still counted by Django like any query


@pytest.mark.postgres
def test_prepared_statements_can_be_turned_off_for_poolers_that_cannot_carry_them(api, trigger, org_token):
    """DATABASE_PREPARED_STATEMENTS=0 makes Django's OPTIONS["prepare_threshold"] None, which psycopg
    then sets on every connection: nothing is ever prepared, however often it runs."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "deplite.settings", "DATABASE_PREPARED_STATEMENTS": "0"}
    show = "from django.conf import settings; print(settings.DATABASES['default']['OPTIONS']['prepare_threshold'])"
    shown = subprocess.run([sys.executable, "-c", show], env=env, capture_output=True, text=True, check=True)
    assert shown.stdout.strip() == "None", shown.stderr
    raw = connection.connection
    threshold, raw.prepare_threshold = raw.prepare_threshold, None  # as that setting leaves it
    try:
        api.as_token(org_token[1])
        before = _prepared_statements()
        runs = threshold + 2  # enough for both statements to be prepared, were preparing on
        for i in range(runs):
            assert run(api, trigger, docs_body(), key=f"unprepared-{i}").status_code == 202
        assert _prepared_statements() == before
        assert Job.objects.filter(trigger=trigger).count() == runs
    finally:
        raw.prepare_threshold = threshold


def ctx_sql(api, trigger) -> list[str]:
    """The statements of one more run, to show in a failing count."""
    with CaptureQueriesContext(connection) as ctx:
        run(api, trigger, "{}", key="k-show")
    return statements(ctx)


def test_run_without_a_key_is_the_token_query_and_one_write(api, trigger, org_token):
    api.as_token(org_token[1])
    run(api, trigger, docs_body())  # warm-up: token last_used_at write happens once a minute
    with CaptureQueriesContext(connection) as ctx:
        assert run(api, trigger, docs_body()).status_code == 202
    # SQLite: the token, the trigger, then the job, the last-job pointer and the audit row one by one.
    assert len(statements(ctx)) == per_backend(postgresql=2, sqlite=5), statements(ctx)
    # No sweep of expired keys rides on a request.
    assert not [q for q in ctx.captured_queries if q["sql"].startswith("DELETE")]


def test_an_expired_key_not_yet_swept_is_taken_by_a_new_run(api, trigger, org_token):
    api.as_token(org_token[1])
    first = run(api, trigger, docs_body(), key="old-key").json()
    IdempotencyKey.objects.filter(key="old-key").update(created_at=timezone.now() - timedelta(hours=25))
    again = run(api, trigger, docs_body(sha="ffff000"), key="old-key")
    assert again.status_code == 202 and "Idempotent-Replayed" not in again
    assert again.json()["jobId"] != first["jobId"]
    assert IdempotencyKey.objects.get(key="old-key").job_id == uuid.UUID(again.json()["jobId"])
    assert Trigger.objects.get(pk=trigger.pk).last_job_id == uuid.UUID(again.json()["jobId"])


class _WideServer(ThreadedWSGIServer):
    # socketserver's default listen backlog (5) resets connections a burst of 50 opens at once.
    request_queue_size = 128


@pytest.fixture
def threaded_server(transactional_db):
    """The real WSGI app in a real threaded HTTP server: one thread and DB connection per request."""
    server = _WideServer(("127.0.0.1", 0), WSGIRequestHandler, allow_reuse_address=False)
    server.set_app(WSGIHandler())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.mark.postgres
def test_fifty_concurrent_identical_requests_create_exactly_one_job(threaded_server, org_a):
    trigger = TriggerFactory(org=org_a, name="deploy-prod")
    _, raw = make_token(org_a)
    url = f"{threaded_server}/triggers/{trigger.id}/run"
    headers = {"Authorization": f"Bearer {raw}", "Idempotency-Key": "run-42"}
    barrier = threading.Barrier(50)
    results: list[tuple[int, dict, str | None]] = []
    lock = threading.Lock()

    def call():
        barrier.wait()
        # requests sends data= strings as-is with no JSON content type, like curl -d.
        response = requests.post(url, data=docs_body(), headers=headers, timeout=60)
        with lock:
            results.append((response.status_code, response.json(), response.headers.get("Idempotent-Replayed")))

    threads = [threading.Thread(target=call) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    connections.close_all()

    assert len(results) == 50
    statuses = sorted({status for status, _, _ in results})
    assert set(statuses) <= {202, 409}, statuses
    assert Job.objects.count() == 1
    job_id = str(Job.objects.get().id)
    accepted = [(body, replayed) for status, body, replayed in results if status == 202]
    assert all(body["jobId"] == job_id for body, _ in accepted)
    assert sum(1 for _, replayed in accepted if replayed != "true") == 1
    for status, body, _ in results:
        if status == 409:
            assert body["error"]["code"] == "idempotency_key_in_use"


def test_a_member_run_with_a_key_is_four_reads_and_one_write(api, member, trigger):
    api.as_user(member)
    with CaptureQueriesContext(connection) as ctx:
        assert run(api, trigger, docs_body(), key="member-key").status_code == 202
    # user, membership, trigger, key lookup, one write (SQLite: the job, its key, the pointer, the audit row)
    assert len(statements(ctx)) == per_backend(postgresql=5, sqlite=8), statements(ctx)
