"""The pages' isolation matrix: every page under /orgs/<slug>/, GET and POST, for a stranger.

Pages are read from the URLconf at collection time, so a page added later is covered
without anyone remembering it. An object named in a page URL (`<uuid:job_id>`…) is a
real object of org_a, made with tests.factories.VICTIM_FACTORIES.
"""

from __future__ import annotations

import hashlib
import re

import pytest
from django.apps import apps
from django.test import Client

from agents.models import Agent
from integrations.models import Installation, OutboxMessage
from storage.models import StorageBinding, StoredFile
from tests.factories import VICTIM_FACTORIES
from tests.urlconf import walk
from triggers.models import Environment, Job, Schedule, Trigger

PAGE_PREFIX = "orgs/<slug:org_slug>/"
# URL kwarg → the model whose id it names. A page with another kwarg fails below until added.
PAGE_OBJECTS = {
    "job_id": Job,
    "trigger_id": Trigger,
    "binding_id": StorageBinding,
    "file_id": StoredFile,
    "agent_id": Agent,
    "installation_id": Installation,
    "delivery_id": OutboxMessage,
    "environment_name": Environment,
    "schedule_id": Schedule,
}
# A kwarg that names its object by another field than its id (an environment by its name).
PAGE_OBJECT_FIELDS = {"environment_name": "name"}


PAGES = sorted({route for route, _, _ in walk() if route.startswith(PAGE_PREFIX)})

# A body that would write something if a page let it through.
INTRUDER_POST = {
    "name": "intruder",
    "workflow": "deploy",
    "type": "webhook",
    "endpoint": "https://s3.amazonaws.com",
    "bucket": "intruder-bucket",
    "access_key": "AKIAINTRUDER",
    "secret_key": "intruder-secret",
    "labels": "x",
    "email": "x@evil.test",
    "role": "owner",
    "scope_type": "org",
    "params": "A=1",
}


def _db_digest() -> str:
    h = hashlib.sha256()
    for model in sorted(apps.get_models(), key=lambda m: m._meta.label):
        if model._meta.label == "sessions.Session":
            continue
        h.update(model._meta.label.encode())
        h.update(repr(list(model._default_manager.order_by("pk").values_list())).encode())
    return h.hexdigest()


def _fill(route: str, org_slug: str, objects: dict) -> str:
    """`route` with each kwarg filled: `objects` maps a kwarg to its value, or to the object it names."""
    path = route.replace("<slug:org_slug>", org_slug)

    def sub(match: re.Match) -> str:
        name = match.group(1)
        assert name in objects, f"add {name} to PAGE_OBJECTS in {__name__}"
        value = objects[name]
        return value if isinstance(value, str) else str(getattr(value, PAGE_OBJECT_FIELDS.get(name, "pk")))

    return "/" + re.sub(r"<\w+:(\w+)>", sub, path)


def test_the_matrix_sees_the_pages():
    assert len(PAGES) >= 20, PAGES


@pytest.mark.parametrize("route", PAGES)
def test_strangers_get_nothing_from_any_page(route, org_a, org_b, owner, outsider):
    kwargs = re.findall(r"<\w+:(\w+)>", route)
    objects = {}
    for name in kwargs:
        if name == "org_slug":
            continue
        assert name in PAGE_OBJECTS, f"add {name} to PAGE_OBJECTS"
        victim = VICTIM_FACTORIES[PAGE_OBJECTS[name]](org_a)
        objects[name] = str(getattr(victim, PAGE_OBJECT_FIELDS.get(name, "pk")))
    url = _fill(route, org_a.slug, objects)
    secrets_of_a = {org_a.name, *objects.values()}
    stranger = Client()
    stranger.force_login(outsider)  # before the digest: logging in sets last_login
    before = _db_digest()

    anonymous = Client()
    for method in ("get", "post"):
        response = getattr(anonymous, method)(url, INTRUDER_POST if method == "post" else None)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), (method, url)

    targets = [(url, {404})]
    if objects:
        # Fully entitled in their own org, naming org_a's object through their own org's
        # URL. A method the page does not take is a 405 before any object is looked up.
        targets.append((_fill(route, org_b.slug, objects), {404, 405}))
    for target, expected in targets:
        for method in ("get", "post"):
            response = getattr(stranger, method)(target, INTRUDER_POST if method == "post" else None)
            assert response.status_code in expected, (method, target, response.status_code)
            body = response.content.decode(errors="replace")
            leaked = [s for s in secrets_of_a if s in body]
            assert not leaked, (method, target, leaked)
    assert _db_digest() == before, f"{route} changed the database for a stranger"
