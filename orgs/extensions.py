"""Every extension point of `orgs`: where an app above it plugs in what `orgs` shows or checks.

`orgs` knows no domain app (storage, triggers and agents depend on it, never the reverse), so
asking them directly would be an upward import. Each app registers here from its
`AppConfig.ready()`; an app that is not installed simply leaves its part out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.db.models import Model

# --- The Overview page: its getting-started checklist and panels -----------------------------------
# Filled by storage ("Link a bucket"), triggers (first trigger, recent jobs) and agents (agents
# online): the page lives in `orgs`, what it reports lives in those apps.


@dataclass(frozen=True)
class Step:
    order: int
    label: str
    done: bool
    url: str
    hint: str = ""


@dataclass(frozen=True)
class Panel:
    order: int
    template: str
    context: dict = field(default_factory=dict)


# (request, org) → the steps and panels an app adds; the request carries the principal, so an
# app shows only what the viewer may see.
OverviewContributor = Callable[..., Iterable[Step | Panel]]

_overview_contributors: list[OverviewContributor] = []


def register_overview(contributor: OverviewContributor) -> None:
    if contributor not in _overview_contributors:
        _overview_contributors.append(contributor)


def overview_for(request, org) -> tuple[list[Step], list[Panel]]:
    steps: list[Step] = []
    panels: list[Panel] = []
    for contributor in _overview_contributors:
        for item in contributor(request, org):
            (steps if isinstance(item, Step) else panels).append(item)
    return sorted(steps, key=lambda s: s.order), sorted(panels, key=lambda p: p.order)


# --- What a narrowed API token can name --------------------------------------------------------------
# Filled by storage (a `storage` token lists bindings) and triggers (a `trigger` token lists
# triggers): token creation checks that every id is an object of the org, and only the app that
# owns the model knows it.


@dataclass(frozen=True)
class TokenScopeTarget:
    model: type[Model]
    field: str  # the request field that lists the ids (for error details)


_token_scope_targets: dict[str, TokenScopeTarget] = {}


def register_token_scope(scope_type: str, model: type[Model], *, field: str) -> None:
    _token_scope_targets[scope_type] = TokenScopeTarget(model=model, field=field)


def token_scope_target(scope_type: str) -> TokenScopeTarget | None:
    return _token_scope_targets.get(scope_type)
