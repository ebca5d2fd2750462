from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from tests.factories import JobFactory


@pytest.fixture
def now() -> datetime:
    # Whole seconds, so known answers are exact.
    return timezone.now().replace(microsecond=0)


def ran(trigger, *, finished: datetime, seconds: float, status: str = "succeeded", **fields):
    """A job of `trigger` that ran for `seconds` and finished at `finished`."""
    started = finished - timedelta(seconds=seconds)
    fields.setdefault("created_at", started - timedelta(seconds=1))
    return JobFactory(
        org=trigger.org,
        trigger=trigger,
        status=status,
        claimed_at=started,
        started_at=started,
        finished_at=finished,
        **fields,
    )


@pytest.fixture
def member_client(member) -> Client:
    client = Client()
    client.force_login(member)
    return client
