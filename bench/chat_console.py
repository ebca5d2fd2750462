"""Chat as a console: how fast a command and a button click are answered, and an approval click →
the job claimable by an agent.

In-process (Django's test client, no web server), production settings (bench.settings, DEBUG off)
on the bench database and Redis DB; every request is signed exactly as Slack signs it (v0 HMAC,
current timestamp) and goes through the real endpoints (`/integrations/slack/events`,
`/integrations/slack/interactions`), bolt and the services. Nothing calls Slack in a request; the
outbox rows the acts owe are left for the worker (none runs here).

1. Commands: BENCH_CHAT_ROUNDS rounds of `help`, `status production`, `lock production`,
   `unlock production` as a linked member: p50 / p99 / max ms per answer.
2. Approval clicks: BENCH_CHAT_ROUNDS jobs waiting for approval, each approved by one click:
   p50 / p99 / max ms per answer, and click start → `job_claim_next` (the agent's claim service)
   returning that job. (Over HTTP with a real agent waiting in its long poll: bench/chat_stack.py.)

Loopback only; bounded (BENCH_CHAT_ROUNDS, default 50; BENCH_CHAT_SECONDS, default 240).

    .venv/bin/python bench/chat_console.py
"""

from __future__ import annotations

import os
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from chat_stack import ADMIN, CHANNEL, MEMBER, SECRET, TEAM, approve_body, signature, slash_body  # noqa: E402
from stack import prepare_database, production_env  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_CHAT_ROUNDS", "50"))
SECONDS = float(os.environ.get("BENCH_CHAT_SECONDS", "240"))


def _headers(body: str) -> dict:
    ts, sig = signature(body)
    return {"HTTP_X_SLACK_REQUEST_TIMESTAMP": ts, "HTTP_X_SLACK_SIGNATURE": sig}


def _slash(client, text: str, user: str):
    body = slash_body(text, user)
    return client.post(
        "/integrations/slack/events", data=body, content_type="application/x-www-form-urlencoded", **_headers(body)
    )


def _click(client, job_id: str):
    body = approve_body(job_id)
    return client.post(
        "/integrations/slack/interactions",
        data=body,
        content_type="application/x-www-form-urlencoded",
        **_headers(body),
    )


def _summary(label: str, values: list[float]) -> str:
    values = sorted(values)
    p99 = values[max(0, int(len(values) * 0.99) - 1)]
    return (
        f"{label} ({len(values)}): p50 {statistics.median(values) * 1000:.1f} ms, "
        f"p99 {p99 * 1000:.1f} ms, max {values[-1] * 1000:.1f} ms"
    )


def main() -> None:
    env = production_env(
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_CLIENT_ID="1.2",
        SLACK_CLIENT_SECRET="bench",  # noqa: S106
        SLACK_API_URL="http://127.0.0.1:9/api/",  # nothing may call Slack in a request: a closed port
        ALLOWED_HOSTS="testserver,127.0.0.1",
    )
    prepare_database(env)
    os.environ.update(env)
    import django

    django.setup()
    from django.test import Client

    from integrations.models import ChatIdentity, Installation
    from orgs.models import Membership, Organization, User
    from orgs.scoping import Actor
    from triggers.models import Environment, Job, JobStatus, Trigger
    from triggers.services import job_claim_next, trigger_run

    org, _ = Organization.objects.get_or_create(slug="bench-chat", defaults={"name": "Bench chat"})
    Job.objects.filter(org=org).delete()
    Trigger.objects.filter(org=org).delete()
    Environment.objects.filter(org=org).delete()
    Installation.objects.filter(provider="slack", external_id=TEAM).delete()
    Installation.objects.create(org=org, provider="slack", external_id=TEAM, bot_token="xoxb-bench")
    people = {}
    for chat_user, role in ((ADMIN, "admin"), (MEMBER, "member")):
        user, _ = User.objects.get_or_create(email=f"{role}@bench-chat.test")
        Membership.objects.get_or_create(org=org, user=user, defaults={"role": role})
        ChatIdentity.objects.update_or_create(
            org=org, provider="slack", team_id=TEAM, chat_user_id=chat_user, defaults={"user": user}
        )
        people[role] = user
    production = Environment.objects.create(org=org, name="production", required_approvals=1, concurrency="unlimited")
    trigger = Trigger.objects.create(
        org=org,
        name="deploy",
        workflow="deploy",
        type="slack",
        chat_provider="slack",
        chat_team_id=TEAM,
        chat_channel_id=CHANNEL,
        chat_keyword="deploy",
        environment=production,
    )
    agent_id = uuid.uuid4()  # the claim records the agent's id; no agent row is needed for it
    client = Client()
    deadline = time.monotonic() + SECONDS

    answers = []
    for _ in range(ROUNDS):
        for text in ("help", "status production", "lock production bench", "unlock production"):
            started = time.perf_counter()
            response = _slash(client, text, MEMBER)
            answers.append(time.perf_counter() - started)
            assert response.status_code == 200, response.content
        if time.monotonic() > deadline:
            break
    print(_summary("command answered", answers))  # noqa: T201

    clicks, claimable = [], []
    member_actor = Actor.for_user(people["member"])
    for _ in range(ROUNDS):
        run = trigger_run(trigger=trigger, actor=member_actor, source="api", ref="main", params={})
        started = time.perf_counter()
        response = _click(client, str(run.job_id))
        clicks.append(time.perf_counter() - started)
        assert response.status_code == 200, response.content
        claimed = job_claim_next(org_id=org.pk, agent_id=agent_id, agent_name="bench", agent_labels=[])
        claimable.append(time.perf_counter() - started)
        assert claimed is not None and claimed.pk == run.job_id, "the approved job was not claimable"
        if time.monotonic() > deadline:
            break
    print(_summary("approval click answered", clicks))  # noqa: T201
    print(_summary("approval click → job claimed (service, in-process)", claimable))  # noqa: T201
    Job.objects.filter(org=org, status=JobStatus.RUNNING).update(status=JobStatus.SUCCEEDED)


if __name__ == "__main__":
    main()
