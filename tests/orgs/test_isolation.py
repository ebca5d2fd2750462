"""The isolation matrix: every endpoint under /api/orgs/<orgId>/, every method, every
kind of stranger → 401/403/404, no data of the org in the body, nothing changed.

Endpoints are read from the URLconf at collection time, so an endpoint added later is
covered without anyone remembering to add it here. A detail route's victim object is
made with tests.factories.VICTIM_FACTORIES for the model of the view's queryset.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.apps import apps
from django.utils import timezone

from orgs.models import ApiToken, TokenScope
from orgs.permissions import token_permissions
from orgs.scoping import OrgScopedViewSet
from tests.factories import VICTIM_FACTORIES, make_token
from tests.urlconf import walk

ORG_GROUP = "(?P<org_id>[^/]+)"
METHODS = ("get", "post", "patch", "put", "delete")


@dataclass(frozen=True)
class Endpoint:
    regex: str
    view: type
    method: str
    action: str | None

    @property
    def id(self) -> str:
        return f"{self.method.upper()} {self.regex}"


def org_endpoints() -> list[Endpoint]:
    found = []
    for regex, callback, _ in walk():
        if ORG_GROUP not in regex:
            continue
        view = getattr(callback, "cls", None)
        actions = getattr(callback, "actions", None)
        if actions:
            for method, action in actions.items():
                if method in METHODS:
                    found.append(Endpoint(regex, view, method, action))
        elif view is not None:
            for method in METHODS:
                if hasattr(view, method):
                    found.append(Endpoint(regex, view, method, None))
    return found


ENDPOINTS = org_endpoints()


def test_every_org_endpoint_derives_from_the_scoping_base():
    assert ENDPOINTS, "no endpoint found under /api/orgs/<orgId>/"
    strays = sorted({e.regex for e in ENDPOINTS if not issubclass(e.view, OrgScopedViewSet)})
    assert strays == []


def _lookup(view) -> tuple[str, str]:
    """(URL kwarg, model field) naming a view's object: `pk`, or a name unique in the org (environments)."""
    field = getattr(view, "lookup_field", "pk")
    return (getattr(view, "lookup_url_kwarg", None) or field), field


def _concrete(regex: str, org_slug: str, pk: str | None, kwarg: str = "pk") -> str:
    path = regex.replace(ORG_GROUP, org_slug)
    path = re.sub(rf"\(\?P<{kwarg}>[^)]*\)", pk or str(uuid.uuid4()), path)
    # Another object named on the way (jobs/<job_id>/notifications/<pk>): strangers never get that far.
    path = re.sub(r"\(\?P<\w+_id>[^)]*\)", str(uuid.uuid4()), path)
    leftover = re.findall(r"\(\?P<(\w+)>", path)
    assert not leftover, f"the matrix does not know how to fill {leftover} in {regex}"
    return "/" + path.lstrip("^").rstrip("$").replace("/?", "")


def _db_digest() -> str:
    """A fingerprint of every row of every model: any write shows."""
    h = hashlib.sha256()
    for model in sorted(apps.get_models(), key=lambda m: m._meta.label):
        if model._meta.label in ("sessions.Session",):
            continue
        rows = list(model._default_manager.order_by("pk").values_list())
        h.update(model._meta.label.encode())
        h.update(repr(rows).encode())
    return h.hexdigest()


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[e.id for e in ENDPOINTS])
def test_strangers_are_kept_out(endpoint: Endpoint, api, org_a, org_b, owner, outsider):
    # The victim object behind a detail URL (named by its pk, or by a name: an environment's).
    pk = victim_id = None
    kwarg, field = _lookup(endpoint.view)
    if f"(?P<{kwarg}>" in endpoint.regex:
        model = endpoint.view.queryset.model
        assert model in VICTIM_FACTORIES, f"register {model.__name__} in tests.factories.VICTIM_FACTORIES"
        victim = VICTIM_FACTORIES[model](org_a)
        pk, victim_id = str(getattr(victim, field)), str(victim.pk)
    url = _concrete(endpoint.regex, org_a.slug, pk, kwarg)

    perm = endpoint.view.permission_map.get(endpoint.action)
    _, revoked = make_token(org_a, revoked_at=timezone.now())
    _, expired = make_token(org_a, expires_at=timezone.now() - timedelta(minutes=1))
    _, other_org_token = make_token(org_b)
    narrowed = []
    for scope, fields in (
        (TokenScope.TRIGGER, {"trigger_ids": [str(uuid.uuid4())]}),
        (TokenScope.STORAGE, {"binding_ids": [str(uuid.uuid4())], "storage_permissions": ["read", "write", "delete"]}),
    ):
        token, raw = make_token(org_a, scope_type=scope, **fields)
        narrowed.append((token, raw))
    # Tokens are used once a minute at most for last_used_at: mark them fresh so that
    # "nothing changed" is about the endpoint, not the bookkeeping.
    ApiToken.objects.update(last_used_at=timezone.now())

    secrets_of_a = {str(org_a.id), org_a.name}
    if pk:
        secrets_of_a |= {pk, victim_id}
    body = json.dumps({"name": "intruder", "role": "owner", "email": "x@evil.test"})

    callers = [
        ("anonymous", lambda: api.anonymous(), {401}),
        ("user of another org", lambda: api.as_user(outsider), {404}),
        ("token of another org", lambda: api.as_token(other_org_token), {404}),
        ("revoked token", lambda: api.as_token(revoked), {401}),
        ("expired token", lambda: api.as_token(expired), {401}),
    ]
    for token, raw in narrowed:
        label = f"{token.scope_type} token for other objects"
        if perm not in token_permissions(token):
            callers.append((f"{token.scope_type} token (wrong scope)", (lambda r=raw: api.as_token(r)), {403}))
        elif endpoint.method == "get":
            # The scope allows the action, but the token was given none of org_a's objects.
            callers.append((label, (lambda r=raw: api.as_token(r)), {404}))

    before = _db_digest()
    for label, become, expected in callers:
        become()
        response = api.generic(endpoint.method.upper(), url, body, content_type="application/json")
        text = response.content.decode()
        if response.status_code == 200 and endpoint.action == "list" and label.endswith("other objects"):
            # A narrowed token may list, but sees nothing of what it was not given.
            leaked = [s for s in secrets_of_a if s in text]
            assert not leaked, f"{label} saw {leaked} in {url}"
            continue
        assert response.status_code in expected, f"{label}: {endpoint.id} → {response.status_code} {text[:200]}"
        assert response.json()["error"]["code"], text
        leaked = [s for s in secrets_of_a if s in text]
        assert not leaked, f"{label} saw {leaked} in the body of {url}"
    if pk:
        # The subtle one: a stranger fully entitled in *their* org, naming this org's
        # object through their own org's URL.
        for label, become, expected in (
            ("owner of another org", lambda: api.as_user(outsider), {404}),
            # An org token may lack the permission outright (members, tokens): 403 first.
            ("org token of another org", lambda: api.as_token(other_org_token), {403, 404}),
        ):
            become()
            response = api.generic(
                endpoint.method.upper(),
                _concrete(endpoint.regex, org_b.slug, pk, kwarg),
                body,
                content_type="application/json",
            )
            assert response.status_code in expected, (
                f"{label} via own org URL: {response.status_code} {response.content[:200]}"
            )
    assert _db_digest() == before, f"{endpoint.id} changed the database for a stranger"
