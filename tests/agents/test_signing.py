"""Signed agent requests: a valid signature is accepted; every tampered variant is a 401 and changes nothing."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from agents import signing
from agents.models import Agent
from triggers.models import Job, JobLogChunk, JobStatus, JobStep

from ..factories import AgentFactory, JobFactory, OrganizationFactory
from .signed import SignedAgent


@pytest.fixture
def world(org_a):
    agent = AgentFactory(org=org_a, labels=["prod"])
    sibling = AgentFactory(org=org_a, labels=["prod"])
    foreign = AgentFactory(org=OrganizationFactory(), labels=["prod"])
    revoked = AgentFactory(org=org_a, labels=["prod"], revoked_at=timezone.now())
    running = JobFactory(org=org_a, status=JobStatus.RUNNING, agent_id=agent.pk, claimed_at=timezone.now())
    other_running = JobFactory(org=org_a, status=JobStatus.RUNNING, agent_id=agent.pk, claimed_at=timezone.now())
    queued = JobFactory(org=org_a, trigger__agent_labels=["prod"])
    return {
        "agent": agent,
        "sibling": sibling,
        "foreign": foreign,
        "revoked": revoked,
        "running": running,
        "other_running": other_running,
        "queued": queued,
    }


def snapshot():
    """Every row the agent endpoints could change."""
    return (
        sorted(Agent.objects.values_list("id", "last_seen_at", "hostname", "version", "workflows", "revoked_at")),
        sorted(
            Job.objects.values_list(
                "id", "status", "agent_id", "claimed_at", "finished_at", "exit_code", "last_event_seq", "log_seq"
            )
        ),
        JobLogChunk.objects.count(),
        JobStep.objects.count(),
    )


def test_signature_is_hmac_sha256_of_the_documented_string(world):
    """Reference computation straight from DESIGN §5, independent of agents.signing."""
    agent = world["agent"]
    body = b'{"hostname": "web-1", "version": "1.2.3", "workflows": ["deploy"]}'
    path = "/api/agent/heartbeat"
    ts, nonce = str(int(time.time())), "0123456789abcdef0123"
    message = f"v1\n{ts}\nnonce\nPOST\n{path}\n{hashlib.sha256(body).hexdigest()}".replace("nonce", nonce, 1)
    v1 = hmac.new(agent.secret.encode(), message.encode(), hashlib.sha256).hexdigest()
    header = f"agent={agent.pk},ts={ts},nonce={nonce},v1={v1}"
    response = SignedAgent(agent).send("POST", path, body, header)
    assert response.status_code == 200, response.content
    agent.refresh_from_db()
    assert agent.hostname == "web-1" and agent.workflows == ["deploy"] and agent.last_seen_at is not None


# Each variant: (base request, mutation). A base request is valid and would change state;
# the mutation returns what is actually sent: (method, path, body, header or None).
FINISH_BODY = json.dumps({"status": "succeeded", "exitCode": 0, "error": None}).encode()


def _base(kind, w):
    if kind == "finish":
        return "POST", f"/api/agent/jobs/{w['running'].pk}/finish", FINISH_BODY
    if kind == "claim":
        return "POST", "/api/agent/jobs/claim?wait=0", b"{}"
    if kind == "heartbeat":
        return "POST", "/api/agent/heartbeat", b'{"hostname": "evil", "version": "9", "workflows": []}'
    raise AssertionError(kind)


def _sig(w, method, path, body, *, agent=None, secret=None, ts=None, nonce=None):
    agent = agent or w["agent"]
    return SignedAgent(agent, secret=secret).header(method, path, body, ts=ts, nonce=nonce)


def _fields(header: str) -> dict:
    return dict(part.split("=", 1) for part in header.split(","))


def _join(fields: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in fields.items())


def _drop(name):
    def mutate(w, m, p, b):
        f = _fields(_sig(w, m, p, b))
        f.pop(name)
        return m, p, b, _join(f)

    return mutate


def _with_field(name, value_fn):
    def mutate(w, m, p, b):
        f = _fields(_sig(w, m, p, b))
        f[name] = value_fn(f)
        return m, p, b, _join(f)

    return mutate


def _flip_last_hex(value: str) -> str:
    return value[:-1] + ("0" if value[-1] != "0" else "1")


VARIANTS = {
    "no header": ("finish", lambda w, m, p, b: (m, p, b, None)),
    "empty header": ("finish", lambda w, m, p, b: (m, p, b, "")),
    "garbage header": ("finish", lambda w, m, p, b: (m, p, b, "Bearer something")),
    "missing agent": ("finish", _drop("agent")),
    "missing ts": ("finish", _drop("ts")),
    "missing nonce": ("finish", _drop("nonce")),
    "missing v1": ("finish", _drop("v1")),
    "duplicated v1": ("finish", lambda w, m, p, b: (m, p, b, _sig(w, m, p, b) + ",v1=" + "0" * 64)),
    "unknown extra field": ("finish", lambda w, m, p, b: (m, p, b, _sig(w, m, p, b) + ",v2=abc")),
    "stale timestamp": ("finish", lambda w, m, p, b: (m, p, b, _sig(w, m, p, b, ts=int(time.time()) - 301))),
    # int() drops up to a second, so "+ 301" could land inside the 300 s window by check time.
    "future timestamp": ("finish", lambda w, m, p, b: (m, p, b, _sig(w, m, p, b, ts=int(time.time()) + 305))),
    "non-numeric timestamp": ("finish", _with_field("ts", lambda f: f["ts"] + "x")),
    "ts changed after signing": ("finish", _with_field("ts", lambda f: str(int(f["ts"]) - 1))),
    "nonce changed after signing": ("finish", _with_field("nonce", lambda f: _flip_last_hex(f["nonce"]))),
    "short nonce": ("finish", lambda w, m, p, b: (m, p, b, _sig(w, m, p, b, nonce="0123456789abcde"))),
    "non-hex nonce": ("finish", lambda w, m, p, b: (m, p, b, _sig(w, m, p, b, nonce="zzzzzzzzzzzzzzzzzzzz"))),
    "method changed": ("finish", lambda w, m, p, b: (m, p, b, _sig(w, "PUT", p, b))),
    "path changed to another job": (
        "finish",
        lambda w, m, p, b: (m, f"/api/agent/jobs/{w['other_running'].pk}/finish", b, _sig(w, m, p, b)),
    ),
    "query changed": ("claim", lambda w, m, p, b: (m, "/api/agent/jobs/claim?wait=1", b, _sig(w, m, p, b))),
    "query added": ("claim", lambda w, m, p, b: (m, p + "&x=1", b, _sig(w, m, p, b))),
    "query dropped": ("claim", lambda w, m, p, b: (m, "/api/agent/jobs/claim", b, _sig(w, m, p, b))),
    "body byte changed": ("finish", lambda w, m, p, b: (m, p, b.replace(b"0", b"1", 1), _sig(w, m, p, b))),
    "body whitespace appended": ("finish", lambda w, m, p, b: (m, p, b + b" ", _sig(w, m, p, b))),
    "heartbeat body changed": ("heartbeat", lambda w, m, p, b: (m, p, b.replace(b"evil", b"evi1"), _sig(w, m, p, b))),
    "other agent's id, own signature": (
        "finish",
        lambda w, m, p, b: (m, p, b, _sig(w, m, p, b).replace(str(w["agent"].pk), str(w["sibling"].pk))),
    ),
    "other org agent's id, own signature": (
        "claim",
        lambda w, m, p, b: (m, p, b, _sig(w, m, p, b).replace(str(w["agent"].pk), str(w["foreign"].pk))),
    ),
    "unknown agent": ("claim", lambda w, m, p, b: (m, p, b, _sig(w, m, p, b, agent=AgentFactory.build()))),
    "revoked agent, valid signature": ("claim", lambda w, m, p, b: (m, p, b, _sig(w, m, p, b, agent=w["revoked"]))),
    "wrong secret": ("finish", lambda w, m, p, b: (m, p, b, _sig(w, m, p, b, secret="das_not-the-secret"))),
    "truncated signature": ("finish", _with_field("v1", lambda f: f["v1"][:-1])),
    "upper-cased signature": ("finish", _with_field("v1", lambda f: f["v1"].upper())),
    "one hex digit flipped": ("finish", _with_field("v1", lambda f: _flip_last_hex(f["v1"]))),
    "signature with a scheme prefix": ("finish", _with_field("v1", lambda f: "sha256=" + f["v1"])),
    "upper-cased agent id": ("finish", _with_field("agent", lambda f: f["agent"].upper())),
    "agent id not a uuid": ("finish", _with_field("agent", lambda f: "agent-1")),
    "signature over an empty body": ("finish", lambda w, m, p, b: (m, p, b, _sig(w, m, p, b""))),
}


@pytest.mark.parametrize("name", list(VARIANTS))
def test_tampered_request_is_401_and_changes_nothing(world, name):
    assert len(VARIANTS) >= 30
    kind, mutate = VARIANTS[name]
    method, path, body = _base(kind, world)
    before = snapshot()
    method, path, body, header = mutate(world, method, path, body)
    response = SignedAgent(world["agent"]).send(method, path, body, header)
    assert response.status_code == 401, (name, response.status_code, response.content)
    assert response.json()["error"]["code"] in {
        "invalid_signature",
        "signature_missing",
        "signature_expired",
        "signature_replayed",
    }
    assert snapshot() == before


@pytest.mark.parametrize("kind", ["finish", "claim", "heartbeat"])
def test_valid_signed_request_is_accepted_and_acts(world, kind):
    method, path, body = _base(kind, world)
    before = snapshot()
    response = SignedAgent(world["agent"]).send(method, path, body, _sig(world, method, path, body))
    assert response.status_code == 200, response.content
    assert snapshot() != before


def test_reused_nonce_is_401_and_the_replay_changes_nothing(world):
    method, path, body = _base("heartbeat", world)
    header = _sig(world, method, path, body, nonce=uuid.uuid4().hex)
    client = SignedAgent(world["agent"])
    assert client.send(method, path, body, header).status_code == 200
    Agent.objects.filter(pk=world["agent"].pk).update(hostname="changed-since", last_seen_at=None)
    before = snapshot()
    replay = client.send(method, path, body, header)
    assert replay.status_code == 401 and replay.json()["error"]["code"] == "signature_replayed"
    assert snapshot() == before


def test_rotated_secret_stops_the_old_one(world, api, owner, org_a):
    agent = world["agent"]
    old = agent.secret
    response = api.as_user(owner).post(f"/api/orgs/acme/agents/{agent.pk}/rotate-secret")
    assert response.status_code == 200
    new = response.json()["secret"]
    assert new != old
    assert SignedAgent(agent, secret=old).heartbeat().status_code == 401
    assert SignedAgent(agent, secret=new).heartbeat().status_code == 200


def test_the_agent_protocol_works_and_still_refuses_replays_while_redis_is_down(db, settings):
    """Redis down: heartbeat, claim, events and finish are answered (the nonce store is PostgreSQL), and
    a replayed request is still a 401 that changes nothing."""
    from ..factories import AgentFactory, OrganizationFactory
    from .signed import SignedAgent

    org = OrganizationFactory()
    agent = AgentFactory(org=org, labels=["prod"])
    JobFactory(org=org, trigger__agent_labels=["prod"])
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }
    client = SignedAgent(agent)
    assert client.heartbeat().status_code == 200
    claimed = client.claim()
    assert claimed.status_code == 200, claimed.content
    job_id = claimed.json()["id"]
    events = [{"seq": 1, "type": "log", "data": "hello\n"}]
    assert client.events(job_id, events).json()["acceptedThrough"] == 1
    assert client.finish(job_id).json()["status"] == "succeeded"

    method, path, body = "POST", "/api/agent/heartbeat", b'{"hostname": "replayed"}'
    header = client.header(method, path, body)
    assert client.send(method, path, body, header).status_code == 200
    Agent.objects.filter(pk=agent.pk).update(hostname="changed-since")
    replay = client.send(method, path, body, header)
    assert replay.status_code == 401 and replay.json()["error"]["code"] == "signature_replayed"
    assert Agent.objects.get(pk=agent.pk).hostname == "changed-since"


def test_a_spent_nonce_past_its_expiry_is_purged_and_a_fresh_one_is_kept(db):
    from agents.models import AgentNonce
    from agents.tasks import agent_nonces_purge

    agent = AgentFactory(org=OrganizationFactory())
    assert signing.spend_nonce(agent_id=agent.pk, nonce="a" * 32, ttl_seconds=600)
    assert not signing.spend_nonce(agent_id=agent.pk, nonce="a" * 32, ttl_seconds=600)
    assert signing.spend_nonce(agent_id=agent.pk, nonce="b" * 32, ttl_seconds=600)
    AgentNonce.objects.filter(nonce="b" * 32).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert agent_nonces_purge() == 1
    assert list(AgentNonce.objects.values_list("nonce", flat=True)) == ["a" * 32]
