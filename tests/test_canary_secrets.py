"""Canary secrets: a storage secret key, an agent secret, an API token, a Slack bot token and a
webhook signing secret, each recognisable, are *used* for real (the token calls the API, the agent
signs the protocol, the Slack token posts the notification, the webhook secret signs a result
delivered to a local receiver) and then looked for everywhere the product writes:
every API list and detail under /api/orgs/<orgId>/ (read from the URLconf, so a new endpoint is
covered), every org page, every admin changelist and change page, every log record (DEBUG), and
the arguments of every Celery task run or published. None may appear anywhere.
"""

from __future__ import annotations

import json
import logging
import re

import pytest
from celery.signals import before_task_publish, task_prerun
from django.contrib import admin
from django.test import Client

from agents.models import Agent
from integrations.models import ChatIdentity, Installation, OutboxMessage
from orgs import tokens
from orgs.models import ApiToken, Membership
from storage.models import StorageBinding, StoredFile
from tests.agents.signed import SignedAgent
from tests.factories import (
    AgentFactory,
    EnvironmentFactory,
    InstallationFactory,
    ScheduleFactory,
    StorageBindingFactory,
    StoredFileFactory,
    make_token,
)
from tests.integrations.webhook_receiver import Receiver, readme_verifier
from tests.notifications.conftest import fake_slack, slack_trigger  # noqa: F401 (fake_slack is a fixture)
from tests.orgs.test_isolation import ENDPOINTS, _concrete, _lookup
from tests.orgs.test_page_isolation import PAGE_OBJECTS, PAGES, _fill
from triggers import services as trigger_services
from triggers.models import Environment, Job, Schedule, Trigger

pytestmark = pytest.mark.django_db

BUCKET_SECRET = "CANARYbucketSecret9f3e1a77"
AGENT_SECRET = "das_CANARYagentSecret-4b8d2c0e19f7a6"
SLACK_TOKEN = "xoxb-CANARYslackBotToken-71c0d2"
_TOKEN_BODY = "CANARYapiToken0123456789abcdef"  # 30 base62 characters
API_TOKEN = f"{tokens.PREFIX}{_TOKEN_BODY}{tokens._checksum(_TOKEN_BODY)}"
CANARIES = {"bucket secret": BUCKET_SECRET, "agent secret": AGENT_SECRET, "api token": API_TOKEN}
CANARIES["slack token"] = SLACK_TOKEN
WEBHOOK_SECRET = "whsec_CANARYwebhookSecret-5e2a9c71"  # noqa: S105 (a canary)
CANARIES["webhook secret"] = WEBHOOK_SECRET
# A fragment long enough to be unmistakable: catches a canary cut short or wrapped.
FRAGMENTS = {name: value[len(value) // 4 : len(value) // 4 + 12] for name, value in CANARIES.items()}


@pytest.fixture
def task_messages():
    """What every Celery task was handed: args/kwargs of tasks run eagerly, bodies of tasks published."""
    seen: list[str] = []

    def ran(sender=None, task_id=None, task=None, args=None, kwargs=None, **extra):
        seen.append(
            json.dumps({"task": getattr(task, "name", str(sender)), "args": args, "kwargs": kwargs}, default=str)
        )

    def published(sender=None, body=None, headers=None, **extra):
        seen.append(json.dumps({"task": sender, "body": body, "headers": headers}, default=str))

    task_prerun.connect(ran, weak=False, dispatch_uid="tests.canary.prerun")
    before_task_publish.connect(published, weak=False, dispatch_uid="tests.canary.publish")
    yield seen
    task_prerun.disconnect(dispatch_uid="tests.canary.prerun")
    before_task_publish.disconnect(dispatch_uid="tests.canary.publish")


def _leaks(where: str, text: str) -> list[str]:
    return [f"{name} in {where}" for name, frag in FRAGMENTS.items() if frag in text]


def test_no_canary_secret_appears_in_any_response_page_admin_log_or_task(
    api,
    org_a,
    owner,
    fake_slack,  # noqa: F811 (the imported fixture)
    caplog,
    task_messages,
    django_capture_on_commit_callbacks,
    settings,
):
    caplog.set_level(logging.DEBUG)  # django, celery, urllib3, slack_sdk, botocore: everything
    bodies: list[tuple[str, str]] = []

    def keep(label: str, response):
        if response.streaming:  # the live view (SSE) streams for as long as it is read: headers only
            bodies.append((label, str(dict(response.headers))))
        else:
            bodies.append((label, response.content.decode("utf-8", "replace")))
        return response

    # The canaries, each in its real home.
    fake_slack.tokens.add(SLACK_TOKEN)
    installation = InstallationFactory(org=org_a, provider="slack", external_id="T0123", bot_token=SLACK_TOKEN)
    binding = StorageBindingFactory(org=org_a, name="canary-binding", secret_key=BUCKET_SECRET)
    stored = StoredFileFactory(org=org_a, binding=binding, status="available", size=10)
    agent_row = AgentFactory(org=org_a, name="canary-agent", secret=AGENT_SECRET)
    token_row, _ = make_token(org_a, name="canary-token")
    ApiToken.objects.filter(pk=token_row.pk).update(
        token_hash=tokens.hash_token(API_TOKEN), prefix=tokens.visible_prefix(API_TOKEN)
    )
    trigger = slack_trigger(org_a, notify_on="always")
    settings.DEPLITE_ALLOW_PRIVATE_WEBHOOK_URLS = True  # the receiver is on loopback
    receiver = Receiver()
    hook = Trigger.objects.create(
        org=org_a,
        name="canary-hook",
        workflow="deploy",
        notify_provider="webhook",
        notify_url=receiver.url(),
        notify_secret=WEBHOOK_SECRET,
    )

    # Used for real: the token runs the trigger, the agent signs the whole protocol, the Slack
    # token posts the notification of the finished job.
    with django_capture_on_commit_callbacks(execute=True):
        ran = keep(
            "run", api.as_token(API_TOKEN).post(f"/api/triggers/{trigger.pk}/run", {"ref": "main"}, format="json")
        )
    assert ran.status_code == 202, ran.content
    agent = SignedAgent(agent_row)
    assert keep("heartbeat", agent.heartbeat()).status_code == 200
    claim = keep("claim", agent.claim())
    assert claim.status_code == 200, claim.content
    job_id = claim.json()["id"]
    events = [{"seq": 1, "type": "log", "at": "2026-01-01T00:00:00Z", "step": None, "data": "deploying\n"}]
    assert keep("events", agent.events(job_id, events)).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        finished = keep("finish", agent.finish(job_id))
    assert finished.status_code == 200, finished.content
    assert fake_slack.wait_for(lambda: fake_slack.posts("C0456")), "the Slack token should have posted"
    # The webhook secret signs a real delivery (and "Send test").
    with django_capture_on_commit_callbacks(execute=True):
        hooked = api.as_token(API_TOKEN).post(f"/api/triggers/{hook.pk}/run", {"ref": "main"}, format="json")
    assert keep("run hook", hooked).status_code == 202, hooked.content
    hook_job = Job.objects.get(pk=hooked.json()["jobId"])
    with django_capture_on_commit_callbacks(execute=True):
        Job.objects.filter(pk=hook_job.pk).update(status="running", agent_id=agent_row.pk)
        trigger_services.job_finish(job=Job.objects.get(pk=hook_job.pk), status="succeeded", exit_code=0, error=None)
    tested = api.as_user(owner).post(f"/api/orgs/{org_a.pk}/triggers/{hook.pk}/notify-test")
    assert keep("notify test", tested).status_code == 200, tested.content
    receiver.close()
    verify = readme_verifier()
    assert len(receiver.received) == 2
    assert all(verify(WEBHOOK_SECRET, r.body, r.headers["x-deplite-signature"]) for r in receiver.received)
    # The bucket secret written through the API too (write-only: never rendered back).
    api.as_user(owner)
    patched = api.patch(
        f"/api/orgs/{org_a.pk}/storage/bindings/{binding.pk}", {"secretKey": BUCKET_SECRET}, format="json"
    )
    assert keep("patch binding", patched).status_code == 200, patched.content

    objects = {
        Agent: agent_row,
        ApiToken: token_row,
        Installation: installation,
        Job: Job.objects.get(pk=job_id),
        Membership: Membership.objects.get(org=org_a, user=owner),
        OutboxMessage: OutboxMessage.objects.filter(job_id=job_id).first(),
        StorageBinding: binding,
        StoredFile: stored,
        Trigger: trigger,
        ChatIdentity: ChatIdentity.objects.create(
            org=org_a, provider="slack", team_id="TCANARY", chat_user_id="U0CANARY", user=owner
        ),
        Schedule: ScheduleFactory(org=org_a, trigger=trigger, created_by=owner),
        Environment: EnvironmentFactory(org=org_a, name="production"),
    }

    # Every GET endpoint of the org API, as the owner and as the canary token.
    api_urls = 0
    for endpoint in ENDPOINTS:
        if endpoint.method != "get":
            continue
        pk = None
        kwarg, field = _lookup(endpoint.view)  # a pk, or an environment's name
        if f"(?P<{kwarg}>" in endpoint.regex:
            obj = objects.get(endpoint.view.queryset.model)
            assert obj is not None, f"give the canary test an object of {endpoint.view.queryset.model.__name__}"
            pk = str(getattr(obj, field))
        url = _concrete(endpoint.regex, str(org_a.pk), pk, kwarg)
        url = re.sub(r"/[0-9a-f-]{36}/notifications/", f"/{job_id}/notifications/", url)
        for caller in (lambda: api.as_user(owner), lambda: api.as_token(API_TOKEN)):
            caller()
            response = keep(url, api.get(url))
            assert response.status_code < 500, (url, response.status_code)
        api_urls += 1
    assert api_urls >= 15, api_urls

    # The webhook trigger itself, through the API (as owner and token) and its page.
    for caller in (lambda: api.as_user(owner), lambda: api.as_token(API_TOKEN)):
        caller()
        keep("hook trigger", api.get(f"/api/orgs/{org_a.pk}/triggers/{hook.pk}"))
        keep("hook job", api.get(f"/api/orgs/{org_a.pk}/jobs/{hook_job.pk}"))

    # Every org page, as the owner.
    browser = Client()
    browser.force_login(owner)
    keep("hook page", browser.get(f"/orgs/{org_a.slug}/triggers/{hook.pk}/"))
    keep("hook job page", browser.get(f"/orgs/{org_a.slug}/jobs/{hook_job.pk}"))
    # The objects themselves: a page URL names most by id, an environment by its name (`_fill`).
    page_ids = {name: objects[model] for name, model in PAGE_OBJECTS.items()}
    for route in PAGES:
        url = _fill(route, org_a.slug, page_ids)
        response = keep(url, browser.get(url))
        assert response.status_code < 500, (url, response.status_code)

    # Every admin changelist and change page, as a superuser.
    owner.is_staff = owner.is_superuser = True
    owner.save()
    browser.force_login(owner)
    admin_pages = 0
    for model in admin.site._registry:
        meta = model._meta
        base = f"/admin/{meta.app_label}/{meta.model_name}/"
        urls = [base] + [f"{base}{pk}/change/" for pk in model._default_manager.values_list("pk", flat=True)[:20]]
        for url in urls:
            response = keep(url, browser.get(url))
            assert response.status_code == 200, (url, response.status_code)
            admin_pages += 1
    assert admin_pages >= 20, admin_pages

    assert task_messages, "the run and the finish should have handed tasks their arguments"
    log_text = "\n".join(
        f"{r.name} {r.getMessage()} {r.args!r} {getattr(r, 'exc_text', '') or ''}" for r in caplog.records
    )
    leaks = []
    for label, body in bodies:
        leaks += _leaks(label, body)
    leaks += _leaks("logs", log_text)
    leaks += _leaks("celery tasks", "\n".join(task_messages))
    assert leaks == []
