"""Reads for storage bindings and files."""

from __future__ import annotations

import uuid

from orgs.models import Organization

from .models import StoredFile


def file_get(*, org: Organization, file_id: str | uuid.UUID) -> StoredFile | None:
    """The org's file with this id (binding joined), or None for an unknown id, a bad
    UUID or another org's file. No permission narrowing: callers (agents, triggers) check
    their own rights."""
    try:
        pk = file_id if isinstance(file_id, uuid.UUID) else uuid.UUID(str(file_id))
    except (ValueError, TypeError, AttributeError):
        return None
    return StoredFile.objects.select_related("binding").filter(org=org, pk=pk).first()
