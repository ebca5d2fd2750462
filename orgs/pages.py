"""The plumbing every org web page shares (orgs, storage, triggers, agents).

- `org_page(perm)` resolves `/orgs/<slug>/…` with the same `principal_for_org` as the API
  and checks the same permission, so a page can never show or do more than the API.
- `page_object` fetches one row of an org-scoped queryset, 404 for anything else.
- `render_page` adds the org, principal and nav section to the context.
- `stash_secret` / `pop_secret`: a secret shown once after a Post/Redirect/Get.
- `add_api_errors`: errors of the API's own input serializers and domain exceptions,
  shown on a Django form, so pages validate with exactly the API's rules.
- `call_service`: a service call whose domain error becomes a form error.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from functools import wraps
from typing import TypeVar

from django import forms
from django.contrib.auth.decorators import login_required
from django.db.models import Model, QuerySet
from django.http import Http404, HttpResponseForbidden
from django.shortcuts import render

from deplite import crypto
from deplite.api.camel import to_camel, to_snake
from deplite.api.errors import DepliteError, NotFound

from .scoping import principal_for_org

T = TypeVar("T")


def org_page(perm: str):
    """Resolve `org_slug` to a Principal for the logged-in user and require `perm`.

    The view is called as `view(request, org, **kwargs)` with `request.principal` set.
    An org the user does not belong to is a 404; a permission the role lacks is a 403.
    """

    def decorator(view):
        @login_required
        @wraps(view)
        def wrapper(request, org_slug, *args, **kwargs):
            try:
                principal = principal_for_org(request, org_slug)
            except NotFound:
                raise Http404("Organization not found") from None
            if not principal.has(perm):
                return HttpResponseForbidden("You do not have permission to view this page.")
            request.principal = principal
            return view(request, principal.org, *args, **kwargs)

        return wrapper

    return decorator


def page_object(queryset: QuerySet, pk) -> Model:
    """One row of an already org-scoped queryset by id, or 404 (also for a malformed id)."""
    try:
        obj = queryset.filter(pk=uuid.UUID(str(pk))).first()
    except ValueError:
        obj = None
    if obj is None:
        raise Http404
    return obj


def render_page(request, template: str, context: Mapping, *, status: int = 200):
    principal = request.principal
    # /orgs/<slug>/<section>/…: the org nav marks the section (jobs, triggers, storage…).
    parts = request.path.split("/")
    section = parts[3] if len(parts) > 3 else ""
    base = {"org": principal.org, "principal": principal, "perms": principal.permissions, "section": section}
    return render(request, template, {**base, **context}, status=status)


# --- secrets shown once --------------------------------------------------------------------------


def stash_secret(request, key: str, *, obj_id, secret: str) -> None:
    """Keep `secret` for exactly the next page view (Post/Redirect/Get), so a reload cannot
    mint another one. It rides in the session encrypted, never in plaintext."""
    request.session[key] = {"id": str(obj_id), "secret": crypto.encrypt(secret)}


def pop_secret(request, key: str, queryset: QuerySet) -> tuple[Model, str] | None:
    """The stashed (object, secret), once, on a GET; the object re-read through `queryset`
    so a stash can only ever show an object of the org on screen."""
    stash = request.session.pop(key, None)
    if not stash or request.method != "GET":
        return None
    obj = queryset.filter(pk=stash["id"]).first()
    if obj is None:
        return None
    return obj, crypto.decrypt(stash["secret"])


# --- API validation on a form ---------------------------------------------------------------------


def _form_field(form: forms.Form, key) -> str | None:
    # "params.KEY" (a key inside a dict field) belongs to the "params" field; a service may
    # name a field as the wire does (chatKeyword), a serializer as the form does (chat_keyword).
    name = to_snake(str(key).split(".", 1)[0])
    return name if name in form.fields else None


def in_form_words(form: forms.Form, message: str) -> str:
    """An API message as the form's reader sees it: `chatKeyword` (the wire name) becomes the
    field's label, quoted ("A slack trigger needs “Keyword”.")."""
    names = {}
    for name, field in form.fields.items():
        # Only names of several words (chatKeyword): a one-word name ("workflow") is also prose.
        if field.label and to_camel(name) != name:
            names[to_camel(name)] = names[name] = f"“{field.label}”"
    if not names:
        return message
    pattern = re.compile(r"\b(" + "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True)) + r")\b")
    return pattern.sub(lambda m: names[m.group(1)], message)


def add_api_errors(form: forms.Form, errors) -> None:
    """Put the API's errors on `form`, each next to the field it names.

    `errors` is an API input serializer's `.errors` (its field names are the form's) or a
    DepliteError. Errors of fields the form does not show go on top.
    """
    if isinstance(errors, DepliteError):
        # A service's message is a whole sentence: show it once, by the field it names.
        fields = (errors.details or {}).get("fields") or {}
        name = next((n for key in fields if (n := _form_field(form, key))), None)
        form.add_error(name, in_form_words(form, errors.message))
        return
    for key, messages in errors.items():
        name = _form_field(form, key)
        if isinstance(messages, Mapping):  # a list or dict field: {index or key: [messages]}
            messages = [
                f"{f'item {int(k) + 1}' if str(k).isdigit() else k}: {m}"
                for k, v in messages.items()
                for m in (v if isinstance(v, list) else [v])
            ]
        elif isinstance(messages, str):
            messages = [messages]
        for message in messages:
            if name:
                form.add_error(name, in_form_words(form, str(message)))
            else:
                prefix = "" if key in ("non_field_errors", "__all__") else f"{to_camel(key)}: "
                form.add_error(None, prefix + in_form_words(form, str(message)))


def call_service(
    form: forms.Form,
    service: Callable[..., T],
    /,
    *,
    field_for: Mapping[str, str] | None = None,
    message_for: Mapping[str, str] | None = None,
    **kwargs,
) -> T | None:
    """`service(**kwargs)` for a page: a domain error it raises lands on `form` (next to the
    field it names, or the field `field_for[code]`, with `message_for[code]` if given) and
    the result is None. The one place pages turn a service's refusal into form errors."""
    try:
        return service(**kwargs)
    except DepliteError as exc:
        field = (field_for or {}).get(exc.code)
        message = (message_for or {}).get(exc.code)
        if field in form.fields or message:
            form.add_error(field if field in form.fields else None, message or exc.message)
        else:
            add_api_errors(form, exc)
        return None
