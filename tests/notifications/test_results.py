"""Which results are announced (notifyOn × final status) and exactly what they say, through the real
finishing services, the real Slack/Discord clients and local fake APIs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from integrations.models import MessageKind, MessageStatus, OutboxMessage
from notifications import rendering, services
from orgs.actors import Actor
from tests.factories import JobFactory
from triggers import services as trigger_services
from triggers.models import Job, JobStatus
from triggers.signals import job_finished

from .conftest import CHANNEL_A, CHANNEL_B, GUILD_A, finish, run, slack_trigger

FINALS = ["succeeded", "failed", "cancelled", "timed_out"]
EXPECTED = {
    "always": {"succeeded", "failed", "cancelled", "timed_out"},
    "failure": {"failed", "cancelled", "timed_out"},
    "success": {"succeeded"},
    "none": set(),
}
HEAD = {"succeeded": "[SUCCESS]", "failed": "[FAILED]", "cancelled": "[CANCELLED]", "timed_out": "[FAILED]"}


@pytest.mark.parametrize("notify_on", list(EXPECTED))
@pytest.mark.parametrize("final", FINALS)
def test_notify_on_matrix_gives_exactly_the_expected_deliveries(
    notify_on, final, org_a, slack_a, fake_slack, django_capture_on_commit_callbacks
):
    trigger = slack_trigger(org_a, notify_on=notify_on)
    job = run(trigger)
    with django_capture_on_commit_callbacks(execute=True):
        job = finish(job, final, exit_code=0 if final == "succeeded" else 1)
    expected = final in EXPECTED[notify_on]
    rows = OutboxMessage.objects.filter(job=job)
    messages = fake_slack.in_channel("C0456")
    if not expected:
        assert rows.count() == 0
        assert messages == []
        return
    assert [(r.status, r.provider_message_id) for r in rows] == [(MessageStatus.SENT, messages[0]["ts"])]
    assert len(messages) == 1
    assert messages[0]["text"].startswith(f"{HEAD[final]} Job #{job.short_id} — deploy-prod\n")
    assert messages[0]["token"] == "xoxb-acme-token"


def test_a_result_is_announced_once_however_often_the_signal_fires(
    org_a, slack_a, fake_slack, django_capture_on_commit_callbacks
):
    job = run(slack_trigger(org_a))
    with django_capture_on_commit_callbacks(execute=True):
        finish(job, "succeeded")
    with django_capture_on_commit_callbacks(execute=True):
        assert services.deliveries_for_finished_job(job_id=job.pk) == []
        job_finished.send(sender=Job, job_id=job.pk, org_id=job.org_id, status="succeeded")
    assert OutboxMessage.objects.filter(job=job).count() == 1
    assert len(fake_slack.posts()) == 1


def test_the_target_is_copied_onto_the_job_so_editing_or_deleting_the_trigger_changes_nothing(
    org_a, slack_a, fake_slack, django_capture_on_commit_callbacks
):
    trigger = slack_trigger(org_a, notify_on="failure", channel="C0456")
    edited, deleted = run(trigger), run(trigger)
    assert (edited.notify_provider, edited.notify_team_id, edited.notify_channel_id, edited.notify_on) == (
        "slack",
        "T0123",
        "C0456",
        "failure",
    )
    trigger_services.trigger_update(trigger=trigger, actor=Actor.system(), notify_channel_id="C0777", notify_on="none")
    with django_capture_on_commit_callbacks(execute=True):
        finish(edited, "failed", exit_code=1, error="boom")
    trigger_services.trigger_delete(trigger=trigger, actor=Actor.system())
    with django_capture_on_commit_callbacks(execute=True):
        finish(deleted, "failed", exit_code=2, error="boom")
    assert len(fake_slack.in_channel("C0456")) == 2
    assert fake_slack.in_channel("C0777") == []


def test_a_trigger_without_a_notify_target_sends_nothing(
    org_a, slack_a, fake_slack, django_capture_on_commit_callbacks
):
    job = run(slack_trigger(org_a, notify_on="always").__class__.objects.create(org=org_a, name="quiet", workflow="w"))
    with django_capture_on_commit_callbacks(execute=True):
        finish(job, "failed", exit_code=1)
    assert job.notify_on == "none"
    assert OutboxMessage.objects.count() == 0
    assert fake_slack.calls == []


# --- the docs' two examples, character for character ---------------------------------------------

SUCCESS_TEXT = "[SUCCESS] Job #abc — deploy-prod\nRef: main · Duration: 2m 34s · Exit Code: 0"
FAILED_TEXT = (
    "[FAILED] Job #def — deploy-prod\nRef: feature/x · Duration: 12s · Exit Code: 1\n"
    'Error: timeout exceeded in step "Push"'
)


def _finished_job(org, *, short_id, ref, seconds, status, exit_code, error=""):
    end = timezone.now()
    return JobFactory(
        org=org,
        short_id=short_id,
        trigger__name="deploy-prod",
        ref=ref,
        status=status,
        started_at=end - timedelta(seconds=seconds),
        finished_at=end,
        exit_code=exit_code,
        error=error,
        notify_provider="slack",
        notify_team_id="T0123",
        notify_channel_id="C0456",
        notify_on="always",
    )


def test_the_docs_examples_are_rendered_exactly(org_a, slack_a, fake_slack, django_capture_on_commit_callbacks):
    ok = _finished_job(org_a, short_id="abc", ref="main", seconds=154, status="succeeded", exit_code=0)
    bad = _finished_job(
        org_a,
        short_id="def",
        ref="feature/x",
        seconds=12,
        status="failed",
        exit_code=1,
        error='timeout exceeded in step "Push"',
    )
    assert rendering.result_text(ok) == SUCCESS_TEXT
    assert rendering.result_text(bad) == FAILED_TEXT
    with django_capture_on_commit_callbacks(execute=True):
        services.deliveries_for_finished_job(job_id=ok.pk)
        services.deliveries_for_finished_job(job_id=bad.pk)
    texts = [m["text"] for m in fake_slack.in_channel("C0456")]
    assert texts == [SUCCESS_TEXT, FAILED_TEXT]
    # Block Kit: coloured by result, with the "View job" link on DEPLITE_PUBLIC_URL.
    first = fake_slack.in_channel("C0456")[0]["attachments"][0]
    assert first["color"] == rendering.COLOURS["succeeded"]
    button = first["blocks"][0]["elements"][0]
    assert button["text"]["text"] == "View job #abc"
    assert button["url"] == f"http://testserver.deplite/orgs/acme/jobs/{ok.pk}" or button["url"].endswith(
        f"/orgs/acme/jobs/{ok.pk}"
    )
    assert fake_slack.in_channel("C0456")[1]["attachments"][0]["color"] == rendering.COLOURS["failed"]


def test_a_result_names_the_files_the_job_uploaded_with_a_link_to_them(
    org_a, slack_a, fake_slack, django_capture_on_commit_callbacks
):
    from storage.models import FileStatus
    from triggers.models import JobFile

    from ..factories import StoredFileFactory

    job = _finished_job(org_a, short_id="abc", ref="main", seconds=154, status="succeeded", exit_code=0)
    for name, status in (
        ("report.html", FileStatus.AVAILABLE),
        ("dump.sql.gz", FileStatus.AVAILABLE),
        ("broken.bin", FileStatus.FAILED),
    ):
        stored = StoredFileFactory(org=org_a, file_name=name, status=status, job_id=job.pk)
        JobFile.objects.create(org=org_a, job=job, file=stored, direction="output")
    with django_capture_on_commit_callbacks(execute=True):
        services.deliveries_for_finished_job(job_id=job.pk)
    [text] = [m["text"] for m in fake_slack.in_channel("C0456")]
    first, files = text.split("\n")[0], text.split("\n")[-1]
    assert first == "[SUCCESS] Job #abc — deploy-prod"
    assert files.startswith("Files: 2 files (report.html, dump.sql.gz) — ")
    assert files.endswith(f"/orgs/acme/jobs/{job.pk}#files")


def test_durations_read_like_the_docs(org_a):
    for seconds, text in ((12, "12s"), (154, "2m 34s"), (3900, "1h 5m"), (0, "0s")):
        job = _finished_job(org_a, short_id="x", ref="main", seconds=seconds, status="succeeded", exit_code=0)
        assert rendering.duration(job) == text


def test_the_link_is_on_the_public_url(org_a, settings):
    settings.DEPLITE_PUBLIC_URL = "https://app.deplite.example"
    job = _finished_job(org_a, short_id="abc", ref="main", seconds=1, status="succeeded", exit_code=0)
    assert rendering.render(job).link == f"https://app.deplite.example/orgs/acme/jobs/{job.pk}"


def test_user_text_in_a_slack_result_is_escaped_so_it_pings_nobody(
    org_a, slack_a, fake_slack, django_capture_on_commit_callbacks
):
    # Trigger names and errors are users' text; Slack would read `<!channel>` as a mention.
    job = _finished_job(
        org_a, short_id="abc", ref="main", seconds=1, status="failed", exit_code=1, error="boom <!channel> & <@U1>"
    )
    job.trigger_name = "deploy <!here>"
    job.save()
    with django_capture_on_commit_callbacks(execute=True):
        services.deliveries_for_finished_job(job_id=job.pk)
    [message] = fake_slack.in_channel("C0456")
    assert message["text"] == (
        "[FAILED] Job #abc — deploy &lt;!here&gt;\nRef: main · Duration: 1s · Exit Code: 1\n"
        "Error: boom &lt;!channel&gt; &amp; &lt;@U1&gt;"
    )


# --- Discord -----------------------------------------------------------------------------------------


def test_discord_gets_the_same_text_and_a_coloured_embed(
    org_a, discord_a, fake_discord, django_capture_on_commit_callbacks
):
    job = _finished_job(org_a, short_id="abc", ref="main", seconds=154, status="succeeded", exit_code=0)
    job.notify_provider, job.notify_team_id, job.notify_channel_id = "discord", GUILD_A, CHANNEL_A
    job.save()
    with django_capture_on_commit_callbacks(execute=True):
        services.deliveries_for_finished_job(job_id=job.pk)
    [message] = fake_discord.in_channel(CHANNEL_A)
    assert message["content"] == SUCCESS_TEXT
    # Discord shows the text as is (no Slack escaping) and pings nobody, whatever it says.
    [post] = [c for c in fake_discord.calls if c.method == "post"]
    assert post.body["allowed_mentions"] == {"parse": []}
    assert message["embeds"][0]["color"] == 0x2EB67D
    assert message["embeds"][0]["url"].endswith(f"/orgs/acme/jobs/{job.pk}")
    row = OutboxMessage.objects.get(job=job)
    assert (row.status, row.provider_message_id) == ("sent", message["id"])


def test_a_discord_channel_of_another_guild_is_never_posted_to(
    org_a, discord_a, fake_discord, django_capture_on_commit_callbacks
):
    job = _finished_job(org_a, short_id="abc", ref="main", seconds=1, status="failed", exit_code=1)
    # The org's own guild id, but a channel that lives in another guild.
    job.notify_provider, job.notify_team_id, job.notify_channel_id = "discord", GUILD_A, CHANNEL_B
    job.save()
    with django_capture_on_commit_callbacks(execute=True):
        services.deliveries_for_finished_job(job_id=job.pk)
    row = OutboxMessage.objects.get(job=job)
    assert (row.status, row.last_error) == ("failed", "not_connected")
    assert fake_discord.messages == []
    assert [c.method for c in fake_discord.calls] == ["get"]


def test_kind_of_a_plain_result_is_result(org_a, slack_a, fake_slack, django_capture_on_commit_callbacks):
    job = run(slack_trigger(org_a))
    with django_capture_on_commit_callbacks(execute=True):
        finish(job, "succeeded")
    assert OutboxMessage.objects.get(job=job).kind == MessageKind.RESULT
    assert JobStatus.SUCCEEDED == job.__class__.objects.get(pk=job.pk).status
