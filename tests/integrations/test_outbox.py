"""The outbox's own rules, apart from what a message says: copies of a scheduled message take
no send slot, and the sweeper re-sends a lost message without flooding the queue."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from integrations import outbox, pace, tasks
from integrations.models import MessageKind, MessageStatus, OutboxMessage
from tests.factories import JobFactory

from .conftest import CHANNEL

pytestmark = [pytest.mark.django_db, pytest.mark.redis]


@pytest.fixture
def message(org_a, slack_install, slack_api, django_capture_on_commit_callbacks) -> OutboxMessage:
    with django_capture_on_commit_callbacks(execute=False):  # its task is lost: nothing sent
        row = outbox.message_enqueue(
            org_id=org_a.pk,
            job_id=JobFactory(org=org_a).pk,
            kind=MessageKind.RESULT,
            provider="slack",
            installation=slack_install,
            channel=CHANNEL,
            content={"text": "[SUCCESS] Job #abc — deploy"},
        )
    return row


def test_a_copy_of_a_scheduled_message_takes_no_send_slot(message, slack_api, settings):
    # The message waits for its slot (a countdown task holds it); a copy arrives meanwhile
    # (a revision's enqueue, the sweeper): it must not push the channel's schedule back.
    OutboxMessage.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now() + timedelta(seconds=30))
    assert tasks.outbox_send(str(message.pk)) == "not_owed"
    assert pace.reserve_slot(provider="slack", channel=CHANNEL) == 0.0
    assert slack_api.calls == []
    assert OutboxMessage.objects.get(pk=message.pk).status == MessageStatus.PENDING


def test_the_sweeper_resends_a_lost_message_once_a_minute_not_at_every_sweep(message, monkeypatch):
    OutboxMessage.objects.filter(pk=message.pk).update(updated_at=timezone.now() - timedelta(seconds=30))
    sent = []
    monkeypatch.setattr(tasks, "enqueue_now", lambda task, *args: sent.append(args) or True)
    assert tasks.outbox_sweep() == 1
    # No worker took it (all down): the next sweeps leave it alone for a while…
    assert tasks.outbox_sweep() == 0
    OutboxMessage.objects.filter(pk=message.pk).update(swept_at=timezone.now() - outbox.RESWEEP_AFTER)
    # …then send it again, in case that task was lost too.
    assert tasks.outbox_sweep() == 1
    assert sent == [(str(message.pk),), (str(message.pk),)]
