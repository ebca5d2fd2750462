"""The web process (deplite/asgi.py, as the Procfile runs it): sync requests run in a small thread
pool through Django's WSGI handler, the agents' long-poll claim on the event loop. So waiting agents
never take the threads the API and pages need: with 2 threads and 6 agents waiting, API calls are
still answered while every claim is still waiting."""

from __future__ import annotations

import pytest
import redis
import requests
from django.conf import settings
from django.utils import timezone

from tests.agent_program.harness import wait_until
from tests.factories import AgentFactory
from tests.ops.test_shutdown import Gunicorn, _claim_in_background, _env
from tests.s3_server import free_port
from triggers import wakeups

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres, pytest.mark.redis]


def test_waiting_claims_leave_the_threads_to_api_calls(tmp_path, org_a, org_token):
    port = free_port()
    env = {**_env(port), "WEB_THREADS": "2", "DATABASE_POOL_MAX": "4"}
    server = Gunicorn(port=port, env=env, log_path=tmp_path / "gunicorn.log", workers=1).start()
    agents = [AgentFactory(org=org_a, labels=["prod"], last_seen_at=timezone.now()) for _ in range(6)]
    try:
        claims = [_claim_in_background(server.url, agent) for agent in agents]
        client = redis.Redis.from_url(settings.REDIS_URL)
        wait_until(
            lambda: dict(client.pubsub_numsub(wakeups.CHANNEL)).get(wakeups.CHANNEL.encode(), 0) >= 1,
            timeout=15,
            message="the claims to wait in their long poll",
        )
        answers = [
            requests.get(
                f"{server.url}/api/orgs/{org_a.slug}", headers={"Authorization": f"Bearer {org_token[1]}"}, timeout=20
            )
            for _ in range(8)
        ]
        # Answered while all six agents still wait (their claims asked for 30 s): had the claims
        # taken the two threads, these calls would have queued behind them.
        still_waiting = sum("status" not in claim for claim in claims)
    finally:
        server.kill()
    assert [a.status_code for a in answers] == [200] * 8, answers[-1].text
    assert answers[0].json()["slug"] == org_a.slug
    assert still_waiting == 6
