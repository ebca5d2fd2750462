"""Trigger and job pages: permissions, the API's validation rules on the forms, the Run form
(source `ui`, once per form), the live log fragment and Cancel."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from orgs.models import AuditEvent
from triggers import services
from triggers.models import Job, JobLogChunk, JobSource, JobStatus, Trigger

from ..factories import JobFactory, TriggerFactory, make_token


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


VALID = {
    "name": "deploy-prod",
    "type": "webhook",
    "workflow": "deploy",
    "agent_labels": "prod, linux",
    "default_ref": "main",
    "enabled": "on",
    "notify_on": "always",
}


# --- triggers: list, form ---------------------------------------------------------------------------


def test_member_sees_triggers_and_runs_but_cannot_manage(member, org_a):
    trigger = TriggerFactory(org=org_a, name="deploy-prod")
    client = _client(member)
    page = client.get("/orgs/acme/triggers/")
    assert page.status_code == 200 and b"deploy-prod" in page.content
    assert b"New trigger" not in page.content
    detail = client.get(f"/orgs/acme/triggers/{trigger.pk}/")
    assert detail.status_code == 200
    assert b"Run deploy-prod" in detail.content and b">Edit<" not in detail.content
    assert client.get("/orgs/acme/triggers/new/").status_code == 403
    assert client.post("/orgs/acme/triggers/new/", VALID).status_code == 403
    assert client.post(f"/orgs/acme/triggers/{trigger.pk}/edit/", {**VALID, "name": "x"}).status_code == 403
    assert client.post(f"/orgs/acme/triggers/{trigger.pk}/delete").status_code == 403
    trigger.refresh_from_db()
    assert trigger.name == "deploy-prod" and Trigger.objects.count() == 1


def test_admin_creates_a_trigger_with_chat_and_notify_fields(admin_user, org_a):
    response = _client(admin_user).post(
        "/orgs/acme/triggers/new/",
        {
            **VALID,
            "type": "slack",
            "chat_team_id": "T0123",
            "chat_channel_id": "C0123",
            "chat_keyword": "Deploy",
            "notify_provider": "slack",
            "notify_team_id": "T0123",
            "notify_channel_id": "C0456",
            "notify_on": "failure",
        },
    )
    trigger = Trigger.objects.get(org=org_a)
    assert response.status_code == 302 and response["Location"] == f"/orgs/acme/triggers/{trigger.pk}/"
    # The API's rules applied: provider taken from the type, keyword lower-cased, labels sorted.
    assert trigger.chat_provider == "slack" and trigger.chat_keyword == "deploy"
    assert trigger.agent_labels == ["linux", "prod"]
    assert (trigger.notify_provider, trigger.notify_channel_id, trigger.notify_on) == ("slack", "C0456", "failure")
    assert AuditEvent.objects.filter(action="trigger.created", actor_label="admin@acme.test").exists()


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"workflow": "../etc/passwd"}, "workflow", "a workflow file name"),
        ({"name": ""}, "name", "may not be blank"),
        ({"type": "slack"}, "chat_team_id", "needs “Team / guild id”"),
        ({"chat_keyword": "deploy"}, "chat_provider", "Only slack and discord"),
        ({"notify_team_id": "T1"}, "notify_provider", "Set “Notify via”"),
        ({"notify_provider": "discord"}, "notify_channel_id", "Needed when “Notify via”"),
        ({"agent_labels": "ok, fine, label!"}, "agent_labels", "item 3: This value does not match"),
        ({"type": "carrier-pigeon"}, "type", "valid choice"),
    ],
)
def test_trigger_form_shows_the_apis_errors_and_writes_nothing(admin_user, org_a, changes, field, message):
    response = _client(admin_user).post("/orgs/acme/triggers/new/", {**VALID, **changes})
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert field in errors and message in " ".join(errors[field]), errors
    assert f'data-field-error="{field}"' in response.content.decode()
    assert not Trigger.objects.exists() and not AuditEvent.objects.filter(action="trigger.created").exists()


def test_editing_to_a_chat_keyword_in_use_shows_the_conflict(admin_user, org_a):
    chat = {"type": "slack", "chat_team_id": "T1", "chat_channel_id": "C1", "chat_keyword": "deploy"}
    TriggerFactory(org=org_a, name="first", chat_provider="slack", **{k: v for k, v in chat.items() if k != "type"})
    second = TriggerFactory(org=org_a, name="second")
    response = _client(admin_user).post(f"/orgs/acme/triggers/{second.pk}/edit/", {**VALID, "name": "second", **chat})
    assert response.status_code == 400
    assert 'Trigger "first" already uses the keyword "deploy"' in " ".join(
        response.context["form"].errors["chat_keyword"]
    )
    second.refresh_from_db()
    assert second.chat_keyword == "" and second.type == "webhook"


def test_edit_form_is_filled_with_the_trigger_and_saves_changes(admin_user, org_a):
    trigger = TriggerFactory(org=org_a, name="deploy-prod", agent_labels=["a", "b"], default_ref="release")
    client = _client(admin_user)
    page = client.get(f"/orgs/acme/triggers/{trigger.pk}/edit/")
    assert page.context["form"]["agent_labels"].value() == "a, b"
    assert page.context["form"]["default_ref"].value() == "release"
    response = client.post(f"/orgs/acme/triggers/{trigger.pk}/edit/", {**VALID, "workflow": "deploy-v2"})
    assert response.status_code == 302
    trigger.refresh_from_db()
    # An unticked checkbox is "disabled", as the browser sends nothing for it.
    assert trigger.workflow == "deploy-v2" and trigger.enabled is True
    client.post(f"/orgs/acme/triggers/{trigger.pk}/edit/", {k: v for k, v in VALID.items() if k != "enabled"})
    trigger.refresh_from_db()
    assert trigger.enabled is False


def test_admin_deletes_a_trigger_and_its_jobs_stay(admin_user, org_a):
    job = JobFactory(org=org_a)
    response = _client(admin_user).post(f"/orgs/acme/triggers/{job.trigger_id}/delete")
    assert response.status_code == 302
    assert not Trigger.objects.exists()
    job.refresh_from_db()
    assert job.trigger_id is None and job.trigger_name


def test_trigger_page_shows_the_docs_github_actions_step_for_this_trigger(member, org_a, settings):
    settings.DEPLITE_PUBLIC_URL = "https://app.deplite.example"
    trigger = TriggerFactory(org=org_a)
    html = _client(member).get(f"/orgs/acme/triggers/{trigger.pk}/").content.decode()
    snippet = re.search(r'<pre class="snippet" data-testid="gha-snippet"[^>]*>(.*?)</pre>', html, re.S).group(1)
    assert "curl -X POST https://app.deplite.example/triggers/${{ secrets.DEPLITE_TRIGGER_ID }}/run" in snippet
    assert "Idempotency-Key: ${{ github.run_id }}" in snippet
    assert "&quot;ref&quot;: &quot;${{ github.sha }}&quot;" in snippet  # escaped, as every value on the page
    assert str(trigger.pk) in html


# --- the Run form -----------------------------------------------------------------------------------


def _run_form(client, trigger) -> dict:
    page = client.get(f"/orgs/acme/triggers/{trigger.pk}/")
    return {"idempotency_key": page.context["run_form"]["idempotency_key"].value()}


def test_member_runs_a_trigger_from_the_page_and_lands_on_the_job(member, org_a):
    trigger = TriggerFactory(org=org_a, default_ref="main")
    client = _client(member)
    form = _run_form(client, trigger)
    response = client.post(
        f"/orgs/acme/triggers/{trigger.pk}/run", {**form, "ref": "v1.2.3", "params": "ENV=production\nVERSION=1.2.3\n"}
    )
    job = Job.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/orgs/acme/jobs/{job.pk}"
    assert job.source == JobSource.UI and job.ref == "v1.2.3"
    assert job.params == {"ENV": "production", "VERSION": "1.2.3"}
    assert job.actor_label == "member@acme.test"
    page = client.get(response["Location"])
    assert f"Job #{job.short_id} queued." in page.content.decode()


def test_the_same_run_form_sent_twice_runs_once(member, org_a):
    trigger = TriggerFactory(org=org_a)
    client = _client(member)
    form = _run_form(client, trigger)
    first = client.post(f"/orgs/acme/triggers/{trigger.pk}/run", {**form, "ref": "main"})
    second = client.post(f"/orgs/acme/triggers/{trigger.pk}/run", {**form, "ref": "main"})
    assert first["Location"] == second["Location"]
    assert Job.objects.count() == 1
    changed = client.post(f"/orgs/acme/triggers/{trigger.pk}/run", {**form, "ref": "other"})
    assert changed.status_code == 400 and b"already sent with other values" in changed.content
    assert Job.objects.count() == 1
    # A freshly rendered form runs again.
    client.post(f"/orgs/acme/triggers/{trigger.pk}/run", {**_run_form(client, trigger), "ref": "main"})
    assert Job.objects.count() == 2


def test_run_without_a_ref_uses_the_triggers_default(member, org_a):
    trigger = TriggerFactory(org=org_a, default_ref="release")
    _client(member).post(f"/orgs/acme/triggers/{trigger.pk}/run", {"ref": "", "params": ""})
    assert Job.objects.get().ref == "release"


@pytest.mark.parametrize(
    ("ref", "params", "message"),
    [
        ("main", "no-equals-sign", "Line 1: write KEY=value."),
        ("main", "A=1\nA=2", "A is given twice"),
        ("main", "1X=bad", "a param name is letters, digits and"),
        ("main", "KEY-WITH-DASH=x", "a param name is letters"),
        ("main", "BIG=" + "x" * 5000, "at most 4096 characters"),
        ("bad\x01ref", "", "Control characters are not allowed."),
        ("r" * 300, "", "no more than 255 characters"),
    ],
)
def test_run_form_rejects_bad_input_and_queues_nothing(member, org_a, ref, params, message):
    trigger = TriggerFactory(org=org_a)
    response = _client(member).post(f"/orgs/acme/triggers/{trigger.pk}/run", {"ref": ref, "params": params})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Job.objects.exists()


def test_running_a_disabled_trigger_says_so(member, org_a):
    trigger = TriggerFactory(org=org_a, enabled=False)
    response = _client(member).post(f"/orgs/acme/triggers/{trigger.pk}/run", {"ref": "main"})
    assert response.status_code == 400 and b"This trigger is disabled." in response.content
    assert not Job.objects.exists()


def test_run_page_cannot_reach_another_orgs_trigger(member, org_a, org_b):
    foreign = TriggerFactory(org=org_b)
    assert _client(member).post(f"/orgs/acme/triggers/{foreign.pk}/run", {"ref": "main"}).status_code == 404
    assert not Job.objects.exists()


# --- jobs -------------------------------------------------------------------------------------------


def test_jobs_list_filters_by_trigger_and_status_like_the_api(member, org_a, org_b):
    deploy = TriggerFactory(org=org_a, name="deploy")
    backup = TriggerFactory(org=org_a, name="backup")
    ok = JobFactory(org=org_a, trigger=deploy, status=JobStatus.SUCCEEDED)
    bad = JobFactory(org=org_a, trigger=deploy, status=JobStatus.FAILED)
    other = JobFactory(org=org_a, trigger=backup, status=JobStatus.FAILED)
    foreign = JobFactory(org=org_b, status=JobStatus.FAILED)
    client = _client(member)

    def shown(query: str) -> set[str]:
        response = client.get(f"/orgs/acme/jobs/{query}")
        assert response.status_code == 200
        return {job.short_id for job in response.context["page"]}

    assert shown("") == {ok.short_id, bad.short_id, other.short_id}
    assert shown(f"?trigger={deploy.pk}") == {ok.short_id, bad.short_id}
    assert shown("?status=failed") == {bad.short_id, other.short_id}
    assert shown(f"?trigger={deploy.pk}&status=failed") == {bad.short_id}
    assert shown(f"?trigger={foreign.trigger_id}") == set()
    html = client.get("/orgs/acme/jobs/").content.decode()
    assert f"#{ok.short_id}" in html and 'class="badge succeeded"' in html and foreign.short_id not in html


@pytest.mark.parametrize("query", ["?status=exploded", "?trigger=not-a-uuid", "?page=-1", "?page=zzz"])
def test_jobs_list_answers_bad_filters_without_an_error_page(member, org_a, query):
    JobFactory(org=org_a)
    response = _client(member).get(f"/orgs/acme/jobs/{query}")
    assert response.status_code == 200


def test_job_page_shows_steps_log_and_duration(member, org_a):
    job = JobFactory(org=org_a, status=JobStatus.RUNNING, agent_name="web-1")
    services.job_record_events(
        job=job,
        events=[
            {"seq": 1, "type": "job_started", "timeoutMinutes": 10},
            {"seq": 2, "type": "step_started", "step": 1, "name": "Build"},
            {"seq": 3, "type": "log", "step": 1, "data": "building…\n"},
        ],
    )
    response = _client(member).get(f"/orgs/acme/jobs/{job.pk}")
    html = response.content.decode()
    assert "Build" in html and "building…" in html and "web-1" in html
    assert 'hx-trigger="every 2s"' in html and "/live?after=1" in html
    assert "Cancel job" in html


def test_live_fragment_returns_only_new_log_and_stops_when_the_job_is_done(member, org_a):
    job = JobFactory(org=org_a, status=JobStatus.RUNNING)
    services.job_record_events(
        job=job,
        events=[
            {"seq": 1, "type": "log", "data": "first\n"},
            {"seq": 2, "type": "log", "data": "second\n"},
        ],
    )
    client = _client(member)
    fragment = client.get(f"/orgs/acme/jobs/{job.pk}/live?after=1").content.decode()
    assert "second" in fragment and "first" not in fragment
    assert 'hx-swap-oob="beforeend:#step-log-setup"' in fragment and "live?after=2" in fragment
    quiet = client.get(f"/orgs/acme/jobs/{job.pk}/live?after=2").content.decode()
    assert "beforeend:#step-log" not in quiet and 'hx-trigger="every 2s"' in quiet
    Job.objects.filter(pk=job.pk).update(agent_id=None)
    services.job_finish(job=Job.objects.get(pk=job.pk), status=JobStatus.SUCCEEDED, exit_code=0, error=None)
    done = client.get(f"/orgs/acme/jobs/{job.pk}/live?after=2").content.decode()
    assert "hx-get" not in done and "Succeeded" in done and "Cancel job" not in done


def test_live_fragment_pages_through_a_long_log(member, org_a):
    job = JobFactory(org=org_a, status=JobStatus.SUCCEEDED)
    JobLogChunk.objects.bulk_create(
        [JobLogChunk(org=org_a, job=job, seq=i, data=f"line {i}\n") for i in range(1, 2601)]
    )
    Job.objects.filter(pk=job.pk).update(log_seq=2600)
    client = _client(member)
    page = client.get(f"/orgs/acme/jobs/{job.pk}").content.decode()
    assert "line 2000\n" in page and "line 2001\n" not in page
    # The rest comes in pages, fetched at once ("load"), until the log is complete.
    assert 'hx-trigger="load"' in page and "live?after=2000" in page
    rest = client.get(f"/orgs/acme/jobs/{job.pk}/live?after=2000").content.decode()
    assert "line 2001\n" in rest and "line 2500\n" in rest and "line 2501" not in rest and "after=2500" in rest


@pytest.mark.parametrize("after", ["abc", "1.5", "9" * 30])
def test_live_fragment_refuses_a_bad_after_without_an_error_page(member, org_a, after):
    job = JobFactory(org=org_a)
    response = _client(member).get(f"/orgs/acme/jobs/{job.pk}/live?after={after}")
    assert response.status_code in (200, 400)


def test_log_and_params_are_escaped(member, org_a):
    job = JobFactory(org=org_a, params={"X": "<img src=x onerror=alert(1)>"})
    JobLogChunk.objects.create(org=org_a, job=job, seq=1, data="<script>alert(1)</script>")
    Job.objects.filter(pk=job.pk).update(log_seq=1)
    client = _client(member)
    for path in (f"/orgs/acme/jobs/{job.pk}", f"/orgs/acme/jobs/{job.pk}/live?after=0"):
        html = client.get(path).content.decode()
        assert "<script>alert(1)</script>" not in html and "<img src=x" not in html


def test_member_cancels_a_queued_job(member, org_a):
    job = JobFactory(org=org_a)
    response = _client(member).post(f"/orgs/acme/jobs/{job.pk}/cancel", follow=True)
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED and job.error == "cancelled by member@acme.test"
    assert f"Job #{job.short_id} cancelled." in response.content.decode()


def test_cancelling_a_running_job_asks_the_agent(member, org_a):
    job = JobFactory(org=org_a, status=JobStatus.RUNNING)
    response = _client(member).post(f"/orgs/acme/jobs/{job.pk}/cancel", follow=True)
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING and job.cancel_requested
    assert "Cancel requested" in response.content.decode()


def test_cancelling_a_finished_job_says_so_and_changes_nothing(member, org_a):
    job = JobFactory(org=org_a, status=JobStatus.SUCCEEDED)
    response = _client(member).post(f"/orgs/acme/jobs/{job.pk}/cancel", follow=True)
    assert "already finished as succeeded" in response.content.decode()
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED and not job.cancel_requested


def test_cancel_is_a_post(member, org_a):
    job = JobFactory(org=org_a)
    assert _client(member).get(f"/orgs/acme/jobs/{job.pk}/cancel").status_code == 405
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED


def test_session_of_a_member_never_becomes_a_token_principal(org_a, member):
    """Pages speak for the logged-in user only: a Bearer token header on a page request
    is not authentication there (pages are for people; tokens are for the API)."""
    _, raw = make_token(org_a)
    response = Client().get("/orgs/acme/jobs/", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
