"""What an environment's name and rules may be: plain functions raising `RuleViolation` with a
sentence a user can act on (the API's serializer names the field; a page would show it)."""

from __future__ import annotations

import re
from typing import Any

from ..rules import MAX_REF, RuleViolation

# A slug (`production`, `staging-eu`): it names the environment in URLs, triggers and chat commands.
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,49}\Z")
MAX_ALLOWED_REFS = 20
# A glob of refs: a ref's characters (no whitespace, no control characters), with * ? [ ] as fnmatch reads them.
REF_GLOB_RE = re.compile(r"^[^\s\x00-\x1f\x7f-][^\s\x00-\x1f\x7f]*\Z")
MIN_APPROVAL_TIMEOUT_SECONDS = 60
MAX_APPROVAL_TIMEOUT_SECONDS = 30 * 24 * 3600


def clean_name(value: Any) -> str:
    if not isinstance(value, str) or not NAME_RE.match(value):
        raise RuleViolation(
            "An environment's name is 1–50 lowercase letters, digits, '-' or '_', starting with a letter or digit."
        )
    return value


def clean_allowed_refs(value: Any) -> list[str]:
    """Glob patterns (`main`, `release/*`, `v[0-9]*`): an empty list allows every ref."""
    if not isinstance(value, list):
        raise RuleViolation('A list of ref patterns, such as ["main", "release/*"].')
    if len(value) > MAX_ALLOWED_REFS:
        raise RuleViolation(f"At most {MAX_ALLOWED_REFS} patterns.")
    patterns: list[str] = []
    for pattern in value:
        if not isinstance(pattern, str) or not pattern:
            raise RuleViolation("Each pattern is a non-empty string.")
        if len(pattern) > MAX_REF:
            raise RuleViolation(f"A pattern has no more than {MAX_REF} characters.")
        if not REF_GLOB_RE.match(pattern):
            raise RuleViolation(f"{pattern!r}: no whitespace or control characters, and no leading '-'.")
        if pattern.count("[") != pattern.count("]"):
            raise RuleViolation(f"{pattern!r}: unbalanced [ ].")
        if pattern not in patterns:
            patterns.append(pattern)
    return patterns
