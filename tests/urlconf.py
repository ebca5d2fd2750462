"""The URLconf as a list, for the tests that cover every route without naming them
(the isolation matrices, the query-count test)."""

from __future__ import annotations

from collections.abc import Iterator

from django.urls import URLPattern, URLResolver, get_resolver


def walk(patterns=None, prefix: str = "") -> Iterator[tuple[str, object, str | None]]:
    """(route, view callback, name) of every URL pattern, an include's prefix joined to its routes
    (regex routes keep their leading `^` only at the top level)."""
    for p in get_resolver().url_patterns if patterns is None else patterns:
        route = prefix + str(p.pattern).lstrip("^") if prefix else str(p.pattern)
        if isinstance(p, URLResolver):
            yield from walk(p.url_patterns, route.rstrip("$"))
        elif isinstance(p, URLPattern):
            yield route, p.callback, p.name
