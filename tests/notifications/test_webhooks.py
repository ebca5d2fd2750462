"""Webhook notifications end to end: a finished job's result POSTed to a local receiver (http.server on
127.0.0.1) through the real outbox and webhook client, its signature checked with the README's verifier;
retries and Retry-After, permanent 4xx, 410 disabling the target, one delivery per job × endpoint, and
the URL guard at send time (private addresses, redirects, oversized answers, DNS rebinding)."""

from __future__ import annotations

import ipaddress
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from integrations.models import OutboxMessage
from integrations.tasks import outbox_sweep
from integrations.webhook import transport
from notifications import services
from orgs.actors import Actor
from storage import endpoints
from tests.factories import StoredFileFactory
from tests.integrations.webhook_receiver import Receiver, Reply, readme_verifier, self_signed_cert
from triggers import services as trigger_services
from triggers.models import Environment, Job, JobFile, Trigger

from .conftest import finish, run

verify = readme_verifier()


@pytest.fixture
def receiver(settings):
    settings.DEPLITE_ALLOW_PRIVATE_WEBHOOK_URLS = True  # the receiver is on loopback
    server = Receiver()
    yield server
    server.close()


def webhook_trigger(org, url: str, *, notify_on: str = "always", name: str = "deploy-prod") -> Trigger:
    return trigger_services.trigger_create(
        org=org,
        actor=Actor.system("test"),
        name=name,
        workflow="deploy",
        notify_provider="webhook",
        notify_url=url,
        notify_on=notify_on,
    )


def _finish(job, status, capture, **kw):
    with capture(execute=True):
        return finish(job, status, **kw)


def _sweep_due(capture, row) -> None:
    # Due well past the sweeper's grace.
    OutboxMessage.objects.filter(pk=row.pk).update(next_attempt_at=timezone.now() - timedelta(minutes=5))
    with capture(execute=True):
        outbox_sweep()


def test_a_result_is_posted_as_signed_json_that_the_readme_verifier_accepts(
    org_a, receiver, django_capture_on_commit_callbacks
):
    trigger = webhook_trigger(org_a, receiver.url("/hook?token=abc"))
    secret = trigger.notify_secret
    job = run(trigger, ref="v1.2.3")
    _finish(job, "failed", django_capture_on_commit_callbacks, exit_code=1, error='step "Push" exited with code 1')

    row = OutboxMessage.objects.get(job=job)
    assert (row.provider, row.status, row.attempts, row.provider_message_id) == ("webhook", "sent", 1, "http_200")
    [got] = receiver.received
    assert got.path == "/hook?token=abc"
    assert got.headers["content-type"] == "application/json"
    assert got.headers["user-agent"].startswith("Deplite-Webhook/")
    assert got.headers["x-deplite-event"] == "job.finished"
    assert got.headers["x-deplite-delivery"] == str(row.pk)
    header = got.headers["x-deplite-signature"]
    assert verify(secret, got.body, header)
    assert not verify("whsec_someone-else", got.body, header)
    assert not verify(secret, got.body.replace(b"failed", b"succeeded"), header)
    document = got.json()
    assert document == {
        "event": "job.finished",
        "jobId": str(job.pk),
        "shortId": job.short_id,
        "status": "failed",
        "trigger": {"id": str(trigger.pk), "name": "deploy-prod"},
        "environment": None,
        "ref": "v1.2.3",
        "params": {},
        "duration": document["duration"],
        "exitCode": 1,
        "error": 'step "Push" exited with code 1',
        "outputs": [],
        "url": document["url"],
        "finishedAt": document["finishedAt"],
    }
    assert document["url"].endswith(f"/orgs/acme/jobs/{job.pk}")
    assert isinstance(document["duration"], float) and document["duration"] >= 0


def test_a_stale_or_forged_signature_is_refused_by_the_readme_verifier():
    body = b'{"event":"test"}'
    old = transport.signature(secret="whsec_x", body=body, timestamp=int(time.time()) - 600)
    assert not verify("whsec_x", body, old)
    assert not verify("whsec_x", body, "t=abc,v1=00")
    assert not verify("whsec_x", body, "")
    assert verify("whsec_x", body, transport.signature(secret="whsec_x", body=body, timestamp=int(time.time())))


def test_the_document_lists_the_jobs_output_files(org_a, receiver, django_capture_on_commit_callbacks):
    job = run(webhook_trigger(org_a, receiver.url()))
    stored = StoredFileFactory(org=org_a, file_name="report.html", status="available", size=5120, job_id=job.pk)
    StoredFileFactory(org=org_a, file_name="broken.bin", status="failed", job_id=job.pk)
    JobFile.objects.create(org=org_a, job=job, file=stored, direction="output")
    _finish(job, "succeeded", django_capture_on_commit_callbacks)
    [got] = receiver.received
    assert got.json()["outputs"] == [{"fileId": str(stored.pk), "name": "report.html", "size": 5120}]


def test_a_503_waits_for_its_retry_after_then_the_retry_is_signed_with_the_rotated_secret(
    org_a, receiver, settings, django_capture_on_commit_callbacks
):
    settings.DEPLITE_NOTIFY_SWEEP_GRACE_SECONDS = 0
    receiver.reply(Reply(status=503, headers={"Retry-After": "120"}))
    trigger = webhook_trigger(org_a, receiver.url())
    job = run(trigger)
    attempted_after = timezone.now()
    _finish(job, "succeeded", django_capture_on_commit_callbacks)
    row = OutboxMessage.objects.get(job=job)
    assert (row.status, row.last_error) == ("pending", "http_503")
    assert row.next_attempt_at >= attempted_after + timedelta(seconds=120)
    with django_capture_on_commit_callbacks(execute=True):
        outbox_sweep()  # not due: the Retry-After is honoured
    assert len(receiver.received) == 1

    trigger.refresh_from_db()
    _, new_secret = trigger_services.trigger_notify_secret_rotate(trigger=trigger, actor=Actor.system("test"))
    _sweep_due(django_capture_on_commit_callbacks, row)
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("sent", 2)
    first, second = receiver.received
    assert first.headers["x-deplite-delivery"] == second.headers["x-deplite-delivery"] == str(row.pk)
    assert verify(new_secret, second.body, second.headers["x-deplite-signature"])


@pytest.mark.parametrize("status", [408, 429, 500, 502])
def test_timeouts_rate_limits_and_server_errors_are_retried(
    org_a, receiver, status, django_capture_on_commit_callbacks
):
    receiver.reply(Reply(status=status))
    job = run(webhook_trigger(org_a, receiver.url()))
    _finish(job, "succeeded", django_capture_on_commit_callbacks)
    row = OutboxMessage.objects.get(job=job)
    assert row.status == "pending" and row.next_attempt_at is not None
    _sweep_due(django_capture_on_commit_callbacks, row)
    row.refresh_from_db()
    assert (row.status, row.attempts, len(receiver.received)) == ("sent", 2, 2)


def test_an_http_date_retry_after_is_honoured():
    later = timezone.now() + timedelta(seconds=90)
    wait = transport.retry_after_seconds(later.strftime("%a, %d %b %Y %H:%M:%S GMT"))
    assert 80 <= wait <= 90
    assert transport.retry_after_seconds("86400") == transport.MAX_RETRY_AFTER_SECONDS
    assert transport.retry_after_seconds("soon") is None


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_a_4xx_is_permanent_and_never_retried(org_a, receiver, status, settings, django_capture_on_commit_callbacks):
    settings.DEPLITE_NOTIFY_SWEEP_GRACE_SECONDS = 0
    receiver.reply(Reply(status=status))
    job = run(webhook_trigger(org_a, receiver.url()))
    _finish(job, "succeeded", django_capture_on_commit_callbacks)
    row = OutboxMessage.objects.get(job=job)
    assert (row.status, row.last_error, row.attempts) == ("failed", f"http_{status}", 1)
    OutboxMessage.objects.filter(pk=row.pk).update(updated_at=timezone.now() - timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert outbox_sweep() == 0
    assert len(receiver.received) == 1


def test_a_410_disables_the_target_until_a_new_url(
    api, client, owner, org_a, receiver, django_capture_on_commit_callbacks
):
    receiver.reply(Reply(status=410))
    trigger = webhook_trigger(org_a, receiver.url())
    first = run(trigger)
    _finish(first, "succeeded", django_capture_on_commit_callbacks)
    row = OutboxMessage.objects.get(job=first)
    assert (row.status, row.last_error) == ("failed", "gone")
    trigger.refresh_from_db()
    assert trigger.notify_disabled_at is not None
    assert "410 Gone" in trigger.notify_disabled_reason and first.short_id in trigger.notify_disabled_reason

    body = api.as_user(owner).get(f"/api/orgs/acme/triggers/{trigger.pk}").json()
    assert body["notifyDisabledAt"] and "410" in body["notifyDisabledReason"]
    client.force_login(owner)
    page = client.get(f"/orgs/acme/triggers/{trigger.pk}/")
    assert b'data-testid="notify-disabled"' in page.content

    second = run(trigger)
    _finish(second, "succeeded", django_capture_on_commit_callbacks)
    assert OutboxMessage.objects.get(job=second).last_error == "target_disabled"
    assert len(receiver.received) == 1  # nothing sent to a disabled endpoint

    trigger_services.trigger_update(trigger=trigger, actor=Actor.system("test"), notify_url=receiver.url("/new"))
    trigger.refresh_from_db()
    assert trigger.notify_disabled_at is None
    third = run(trigger)
    _finish(third, "succeeded", django_capture_on_commit_callbacks)
    assert OutboxMessage.objects.get(job=third).status == "sent"
    assert receiver.received[-1].path == "/new"


def test_one_delivery_per_job_and_endpoint_however_often_it_is_owed(
    org_a, receiver, django_capture_on_commit_callbacks
):
    job = run(webhook_trigger(org_a, receiver.url()))
    _finish(job, "succeeded", django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.deliveries_for_finished_job(job_id=job.pk) == []
        outbox_sweep()
    assert OutboxMessage.objects.filter(job=job).count() == 1
    assert len(receiver.received) == 1


def test_a_trigger_edited_later_does_not_redirect_an_earlier_jobs_result(
    org_a, receiver, django_capture_on_commit_callbacks
):
    trigger = webhook_trigger(org_a, receiver.url("/old"))
    job = run(trigger)
    trigger_services.trigger_update(trigger=trigger, actor=Actor.system("test"), notify_url=receiver.url("/new"))
    _finish(job, "succeeded", django_capture_on_commit_callbacks)
    assert [r.path for r in receiver.received] == ["/old"]


def test_notify_on_failure_sends_nothing_for_a_success(org_a, receiver, django_capture_on_commit_callbacks):
    job = run(webhook_trigger(org_a, receiver.url(), notify_on="failure"))
    _finish(job, "succeeded", django_capture_on_commit_callbacks)
    assert OutboxMessage.objects.filter(job=job).count() == 0 and receiver.received == []


def test_a_redirect_is_never_followed(org_a, receiver, django_capture_on_commit_callbacks):
    receiver.reply(Reply(status=302, headers={"Location": receiver.url("/elsewhere")}))
    job = run(webhook_trigger(org_a, receiver.url()))
    _finish(job, "succeeded", django_capture_on_commit_callbacks)
    row = OutboxMessage.objects.get(job=job)
    assert (row.status, row.last_error) == ("failed", "redirect_not_followed")
    assert [r.path for r in receiver.received] == ["/hook"]


def test_an_oversized_answer_is_cut_off_and_the_delivery_still_counts(
    org_a, receiver, django_capture_on_commit_callbacks
):
    huge = 256 * 1024 * 1024
    receiver.reply(Reply(status=200, stream_bytes=huge))
    job = run(webhook_trigger(org_a, receiver.url()))
    _finish(job, "succeeded", django_capture_on_commit_callbacks)
    assert OutboxMessage.objects.get(job=job).status == "sent"
    for _ in range(200):  # bounded: the receiver's thread notices the hang-up
        if receiver.stream_stopped_at is not None:
            break
        time.sleep(0.05)
    assert receiver.stream_stopped_at is not None and receiver.stream_stopped_at < huge


def test_the_client_reads_at_most_its_bound_of_an_answer(receiver):
    receiver.reply(Reply(status=200, stream_bytes=64 * 1024 * 1024))
    answer = transport.post_event(url=receiver.url(), secret="whsec_x", body=b"{}", event="test", delivery_id="d1")
    assert (answer.status, answer.truncated) == (200, True)


def test_a_private_address_is_refused_at_send_time_once_not_allowed(
    org_a, receiver, settings, django_capture_on_commit_callbacks
):
    job = run(webhook_trigger(org_a, receiver.url()))  # saved while private URLs were allowed
    settings.DEPLITE_ALLOW_PRIVATE_WEBHOOK_URLS = False
    _finish(job, "succeeded", django_capture_on_commit_callbacks)
    row = OutboxMessage.objects.get(job=job)
    assert (row.status, row.last_error) == ("failed", "url_not_allowed")
    assert receiver.received == []


def test_dns_rebinding_after_save_is_refused_at_connect_time(
    org_a, settings, monkeypatch, django_capture_on_commit_callbacks
):
    settings.DEPLITE_ALLOW_PRIVATE_WEBHOOK_URLS = False
    answers = {"now": [ipaddress.ip_address("93.184.216.34")]}
    monkeypatch.setattr(endpoints, "resolve", lambda host, port: answers["now"])
    job = run(webhook_trigger(org_a, "https://hooks.rebind.example/deplite"))
    answers["now"] = [ipaddress.ip_address("10.0.0.7")]  # the name now points inside
    _finish(job, "succeeded", django_capture_on_commit_callbacks)
    row = OutboxMessage.objects.get(job=job)
    assert (row.status, row.last_error) == ("failed", "url_not_allowed")
    assert "10.0.0.7" not in row.last_error_message  # no oracle for the server's DNS


def test_the_job_page_and_api_name_the_endpoint_by_host_and_a_failed_delivery_can_be_retried(
    api, client, owner, org_a, receiver, django_capture_on_commit_callbacks
):
    receiver.reply(Reply(status=404))
    job = run(webhook_trigger(org_a, receiver.url("/hook/s3cr3t-path")))
    _finish(job, "succeeded", django_capture_on_commit_callbacks)
    row = OutboxMessage.objects.get(job=job)
    [delivery] = api.as_user(owner).get(f"/api/orgs/acme/jobs/{job.pk}").json()["notifications"]
    host = receiver.base.removeprefix("http://")
    assert (delivery["provider"], delivery["channel"], delivery["status"]) == ("webhook", host, "failed")
    client.force_login(owner)
    page = client.get(f"/orgs/acme/jobs/{job.pk}")
    assert host.encode() in page.content and b"s3cr3t-path" not in page.content
    assert b'data-testid="retry-delivery"' in page.content
    with django_capture_on_commit_callbacks(execute=True):
        response = api.as_user(owner).post(f"/api/orgs/acme/jobs/{job.pk}/notifications/{row.pk}/retry")
    assert response.status_code == 202, response.content
    row.refresh_from_db()
    assert (row.status, len(receiver.received)) == ("sent", 2)


def test_a_corrected_result_is_posted_again_under_the_same_delivery_id(
    org_a, receiver, django_capture_on_commit_callbacks
):
    job = run(webhook_trigger(org_a, receiver.url()))
    _finish(job, "failed", django_capture_on_commit_callbacks, exit_code=None, error="agent lost")
    # The agent came back with the real result (triggers' late-result path; tested with chat in test_late_result).
    Job.objects.filter(pk=job.pk).update(status="succeeded", exit_code=0, error="")
    with django_capture_on_commit_callbacks(execute=True):
        assert services.deliveries_for_corrected_job(job_id=job.pk) == 1
    first, second = receiver.received
    assert (first.json()["status"], second.json()["status"]) == ("failed", "succeeded")
    assert second.json()["event"] == second.headers["x-deplite-event"] == "job.result_corrected"
    assert first.headers["x-deplite-delivery"] == second.headers["x-deplite-delivery"]
    assert OutboxMessage.objects.filter(job=job).count() == 1


def test_a_deleted_trigger_leaves_nothing_to_sign_with(org_a, receiver, django_capture_on_commit_callbacks):
    trigger = webhook_trigger(org_a, receiver.url())
    job = run(trigger)
    trigger_services.trigger_delete(trigger=trigger, actor=Actor.system("test"))
    job.refresh_from_db()
    _finish(job, "succeeded", django_capture_on_commit_callbacks)
    row = OutboxMessage.objects.get(job=job)
    assert (row.status, row.last_error) == ("failed", "trigger_deleted")
    assert receiver.received == []


def test_a_job_created_before_the_trigger_left_webhooks_still_delivers_to_its_url(
    org_a, receiver, django_capture_on_commit_callbacks
):
    trigger = webhook_trigger(org_a, receiver.url())
    secret = trigger.notify_secret
    job = run(trigger)
    trigger_services.trigger_update(trigger=trigger, actor=Actor.system("test"), notify_provider="", notify_url="")
    _finish(job, "succeeded", django_capture_on_commit_callbacks)
    [got] = receiver.received
    assert verify(secret, got.body, got.headers["x-deplite-signature"])


def test_an_https_endpoint_whose_certificate_is_not_trusted_is_not_sent_to(settings, tmp_path):
    settings.DEPLITE_ALLOW_PRIVATE_WEBHOOK_URLS = True
    receiver = Receiver(tls_cert=self_signed_cert(tmp_path))
    try:
        with pytest.raises(transport.TransportError) as refused:
            transport.post_event(url=receiver.url(), secret="whsec_x", body=b"{}", event="test", delivery_id="d1")
    finally:
        receiver.close()
    assert (refused.value.code, refused.value.permanent) == ("tls_error", False)
    assert receiver.received == []


def test_the_document_names_the_jobs_environment(org_a, receiver, django_capture_on_commit_callbacks):
    trigger = webhook_trigger(org_a, receiver.url())
    Trigger.objects.filter(pk=trigger.pk).update(
        environment=Environment.objects.create(org=org_a, name="staging", required_approvals=0)
    )
    trigger.refresh_from_db()
    job = run(trigger)
    _finish(job, "succeeded", django_capture_on_commit_callbacks)
    [got] = receiver.received
    assert got.json()["environment"] == "staging"
