""" "Send test": a sample event POSTed now to a trigger's webhook, through the one webhook client.

Synchronous and bounded (the client's connect, read and total limits): the person who pressed
the button sees the endpoint's answer. It is not an outbox row: nothing is owed, nothing is
retried. A 2xx lifts a disabled target (the endpoint says it wants events again).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.db import transaction

from deplite.errors import Conflict, RateLimited
from orgs import ratelimit
from orgs.actors import Actor
from orgs.services import audit_record
from triggers import services as trigger_services
from triggers.models import NotifyProvider, Trigger

from ..transport import TransportError
from . import events, transport

# Tests per trigger: each makes the server itself POST somewhere, synchronously, in a web request.
TEST_RATE = (10, 60)


@dataclass(frozen=True)
class TestDelivery:
    delivered: bool
    # The endpoint's HTTP status (None when it never answered: refused URL, timeout, no connection).
    status: int | None
    elapsed_ms: int | None
    error_code: str = ""
    error: str = ""
    # The target had been disabled (410) and this success enabled it again.
    reenabled: bool = False


def webhook_test_send(*, trigger: Trigger, actor: Actor) -> TestDelivery:
    """POST a sample `test` event to the trigger's webhook, signed with its secret; report the answer."""
    if trigger.notify_provider != NotifyProvider.WEBHOOK or not trigger.notify_url:
        raise Conflict("This trigger does not notify a webhook.", code="not_a_webhook_target")
    if ratelimit.is_limited("webhook-test", str(trigger.pk), TEST_RATE):
        raise RateLimited(f"At most {TEST_RATE[0]} test events a minute per trigger; try again shortly.")
    ratelimit.hit("webhook-test", str(trigger.pk), TEST_RATE)
    body = transport.encode(events.sample_event(trigger))
    try:
        answer = transport.post_event(
            url=trigger.notify_url,
            secret=trigger.notify_secret,
            body=body,
            event=events.TEST,
            delivery_id=str(uuid.uuid4()),
        )
    except TransportError as exc:
        status = int(exc.code[5:]) if exc.code.startswith("http_") and exc.code[5:].isdigit() else None
        status = 410 if exc.code == transport.GONE else 429 if exc.code == "rate_limited" else status
        result = TestDelivery(False, status, None, exc.code, exc.message)
    else:
        result = TestDelivery(True, answer.status, answer.elapsed_ms)
    with transaction.atomic():
        reenabled = result.delivered and trigger_services.trigger_notify_enable(trigger=trigger, actor=actor)
        audit_record(
            org=trigger.org,
            actor=actor,
            action="trigger.notify_tested",
            target=trigger,
            data={"delivered": result.delivered, "status": result.status, "error": result.error_code},
        )
    return TestDelivery(**{**result.__dict__, "reenabled": reenabled})
