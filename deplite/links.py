"""Absolute links the product emits (API `url` fields, chat messages, emails, snippets).

Built on `reverse()` so a moved URL moves its links, and on `DEPLITE_PUBLIC_URL` so the
host is the one users reach.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.urls import reverse


def public_base_url() -> str:
    return settings.DEPLITE_PUBLIC_URL.rstrip("/")


def absolute_url(viewname: str, /, query: dict[str, str] | None = None, **kwargs: object) -> str:
    """`absolute_url("job-page", slug=..., job_id=...)` → `https://host/orgs/…/jobs/…`."""
    url = public_base_url() + reverse(viewname, kwargs=kwargs or None)
    if query:
        url += "?" + urlencode(query)
    return url


def on_public_url(url: str) -> str:
    """`url`'s path, query and fragment on DEPLITE_PUBLIC_URL: for links a library built from the
    request's Host header, which the client chooses (a password-reset link must never point
    to a host a stranger named)."""
    parts = urlsplit(url)
    return public_base_url() + urlunsplit(("", "", parts.path, parts.query, parts.fragment))
