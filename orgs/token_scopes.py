"""What a narrowed API token can name, registered by the app that owns it.

A `storage` token lists bindings and a `trigger` token lists triggers, but `orgs` knows
neither model: each domain app registers its model for its scope in its AppConfig.ready()
(`register(TokenScope.STORAGE, StorageBinding, field="bindingIds")`), and token creation
asks here which model an id must belong to.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Model


@dataclass(frozen=True)
class ScopeTarget:
    model: type[Model]
    field: str  # the request field that lists the ids (for error details)


_TARGETS: dict[str, ScopeTarget] = {}


def register(scope_type: str, model: type[Model], *, field: str) -> None:
    _TARGETS[scope_type] = ScopeTarget(model=model, field=field)


def target(scope_type: str) -> ScopeTarget | None:
    return _TARGETS.get(scope_type)
