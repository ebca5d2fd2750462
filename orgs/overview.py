"""The Overview page's getting-started checklist and panels, contributed by each app.

`orgs` knows no domain app (storage, triggers and agents depend on it, never the reverse), so
each app registers, in its AppConfig.ready(), a function that tells what it adds for an org:
checklist steps ("Bucket linked", done or not, with a link) and panels (recent jobs, agents
online) rendered from the app's own template.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field


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
Contributor = Callable[..., Iterable[Step | Panel]]

_contributors: list[Contributor] = []


def register(contributor: Contributor) -> None:
    if contributor not in _contributors:
        _contributors.append(contributor)


def overview_for(request, org) -> tuple[list[Step], list[Panel]]:
    steps: list[Step] = []
    panels: list[Panel] = []
    for contributor in _contributors:
        for item in contributor(request, org):
            (steps if isinstance(item, Step) else panels).append(item)
    return sorted(steps, key=lambda s: s.order), sorted(panels, key=lambda p: p.order)
