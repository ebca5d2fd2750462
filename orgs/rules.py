"""Domain rules for organisations, as plain functions (see triggers/rules.py for the pattern).

The API serializers and the services both apply them, so creating and renaming an
organisation accept exactly the same slugs.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?$")


def clean_slug(value: Any) -> str:
    """A URL slug: lowercase letters, digits and hyphens. Never UUID-shaped: a path's
    `<orgId>` is read as a UUID first, so such a slug would name another org or none."""
    if not isinstance(value, str) or not SLUG_RE.match(value):
        raise ValueError("Use lowercase letters, digits and hyphens (1–50).")
    try:
        uuid.UUID(value)
    except ValueError:
        return value
    raise ValueError("A slug cannot look like a UUID.")
