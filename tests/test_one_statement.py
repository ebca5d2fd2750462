"""deplite.one_statement: several writes in one round trip, all or none."""

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from deplite import one_statement
from orgs.models import AuditEvent
from triggers.models import IdempotencyKey, Trigger

from .factories import JobFactory, TriggerFactory

pytestmark = pytest.mark.django_db


def _key(trigger, key="k1"):
    return IdempotencyKey(
        org=trigger.org, trigger=trigger, key=key, request_hash="h", response_status=202, response_body={"a": [1]}
    )


def test_inserts_and_an_update_go_as_one_statement_and_all_land(org_a):
    trigger = TriggerFactory(org=org_a)
    job = JobFactory(org=org_a, trigger=trigger)
    audit = AuditEvent(org=org_a, actor_kind="system", action="job.created", data={"x": "y"}, ip="127.0.0.1")
    with CaptureQueriesContext(connection) as ctx:
        one_statement.execute(
            one_statement.insert(_key(trigger)),
            one_statement.update(Trigger.objects.filter(pk=trigger.pk), last_job=job),
            one_statement.insert(audit),
        )
    if connection.vendor == "postgresql":  # (in a savepoint here: the test runs in a transaction)
        assert [q["sql"][:4] for q in ctx.captured_queries if "SAVEPOINT" not in q["sql"]] == ["WITH"]
    stored = IdempotencyKey.objects.get(trigger=trigger, key="k1")
    assert stored.response_body == {"a": [1]} and stored.created_at is not None
    assert Trigger.objects.get(pk=trigger.pk).last_job_id == job.pk
    assert AuditEvent.objects.get(action="job.created").data == {"x": "y"}


def test_a_failing_part_leaves_none_of_the_others(org_a):
    trigger = TriggerFactory(org=org_a)
    job = JobFactory(org=org_a, trigger=trigger)
    _key(trigger).save()
    with pytest.raises(IntegrityError), transaction.atomic():
        one_statement.execute(
            one_statement.update(Trigger.objects.filter(pk=trigger.pk), last_job=job),
            one_statement.insert(_key(trigger)),  # the same (trigger, key) again
        )
    assert Trigger.objects.get(pk=trigger.pk).last_job_id is None
    assert IdempotencyKey.objects.filter(trigger=trigger).count() == 1
