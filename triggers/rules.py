"""Domain rules for triggers and runs, as plain functions.

One place for what a ref, a param, an agent label, a workflow name or a chat keyword may
be. The API serializers, the page forms and the chat command parser all call these, so a
value accepted by one door is accepted by every door. Each `clean_*` returns the
normalised value or raises `RuleViolation` with a sentence a user can act on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

MAX_REF = 255
MAX_PARAMS = 50
MAX_PARAM_KEY = 64
MAX_PARAM_VALUE = 4096
MAX_LABELS = 20
MAX_KEYWORD = 50

# Workflow names become a file name on the agent (./workflows/<name>.yaml): no paths.
WORKFLOW_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,49}$")
KEYWORD_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,49}$")
# A keyword as typed: any case (stored lowercased).
KEYWORD_INPUT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,49}\Z")
CHAT_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
PARAM_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Refs become an environment variable on the agent; control characters have no business there.
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
# What clean_ref accepts besides blank (the trigger's default), as a pattern for the API schema:
# text without control characters whose first non-blank character is not '-'.
REF_BODY = r"[^\s\x00-\x1f\x7f-][^\x00-\x1f\x7f]*"
REF_RE = re.compile(rf"^\s*{REF_BODY}\Z")


class RuleViolation(ValueError):
    """A value breaks a domain rule. `errors` maps sub-fields (e.g. `params.ENV`) to messages."""

    def __init__(self, message: str, *, errors: dict[str, list[str]] | None = None):
        super().__init__(message)
        self.message = message
        self.errors = errors or {}


def clean_ref(value: Any) -> str | None:
    """A git ref or any name the workflow understands; None/blank means the trigger's default."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise RuleViolation("A ref is a string, e.g. main or v1.2.3.")
    value = value.strip()
    if not value:
        return None
    if len(value) > MAX_REF:
        raise RuleViolation(f"A ref has no more than {MAX_REF} characters.")
    if CONTROL_RE.search(value):
        raise RuleViolation("Control characters are not allowed.")
    # Workflows pass $REF to git: a leading '-' would be read as an option.
    if value.startswith("-"):
        raise RuleViolation("A ref cannot start with '-'.")
    return value


DEFAULT_REF = "main"

# The commit's own time, as GitHub Actions gives it (github.event.head_commit.timestamp): RFC 3339,
# so with an offset. Empty or null is no commit time (head_commit is null on a manual dispatch, and
# the snippet then sends "").
COMMIT_TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})\Z")


def clean_commit_time(value: Any) -> datetime | None:
    """When the deployed commit was made (lead time from commit to success); None when absent or blank."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise RuleViolation("commitTime is an RFC 3339 timestamp string, e.g. 2026-12-07T09:30:00Z.")
    if value == "":
        return None
    if not COMMIT_TIME_RE.match(value):
        raise RuleViolation("commitTime must be an RFC 3339 timestamp with its offset, e.g. 2026-12-07T09:30:00Z.")
    date_part, time_part = value[:10], value[11:]
    # Python reads at most microseconds: a nanosecond fraction is cut, not refused.
    time_part = re.sub(r"\.(\d{6})\d+", r".\1", time_part)
    try:
        parsed = datetime.fromisoformat(f"{date_part}T{time_part.upper().replace('Z', '+00:00')}")
    except ValueError:
        raise RuleViolation("commitTime is not a real date and time (RFC 3339).") from None
    return parsed.astimezone(UTC)


def clean_default_ref(value: Any) -> str:
    """A trigger's default ref: a ref, and blank means `main` (a run naming no ref needs one)."""
    return clean_ref(value) or DEFAULT_REF


# Param messages follow their name (`params.KEY: a param name is …`), hence lowercase.


def clean_param_name(key: Any) -> str:
    if not isinstance(key, str) or not PARAM_KEY_RE.match(key) or len(key) > MAX_PARAM_KEY:
        raise RuleViolation(
            f"a param name is letters, digits and '_', does not start with a digit and is at most {MAX_PARAM_KEY} characters."
        )
    return key


def clean_param_value(raw: Any) -> str:
    """Params reach the workflow as environment variables: scalars only, as text."""
    if isinstance(raw, bool):
        text = "true" if raw else "false"
    elif isinstance(raw, str | int | float):
        text = str(raw)
    else:
        raise RuleViolation("a param value is a string, number or boolean.")
    if len(text) > MAX_PARAM_VALUE:
        raise RuleViolation(f"a param value is at most {MAX_PARAM_VALUE} characters.")
    if "\x00" in text:
        raise RuleViolation("a param value cannot contain a NUL character.")
    return text


def clean_params(raw: Mapping[str, Any] | None) -> dict[str, str]:
    """All params checked at once; every bad one is named in `errors` as `params.<KEY>`."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise RuleViolation("params is an object of names to values.")
    if len(raw) > MAX_PARAMS:
        raise RuleViolation(f"At most {MAX_PARAMS} params.")
    out: dict[str, str] = {}
    errors: dict[str, list[str]] = {}
    for key, value in raw.items():
        label = f"params.{str(key)[:MAX_PARAM_KEY]}"
        try:
            out[clean_param_name(key)] = clean_param_value(value)
        except RuleViolation as exc:
            errors.setdefault(label, []).append(exc.message)
    if errors:
        first = next(iter(errors))
        raise RuleViolation(f"{first}: {errors[first][0]}", errors=errors)
    return out


def clean_labels(values: Iterable[Any]) -> list[str]:
    values = list(values)
    if len(values) > MAX_LABELS:
        raise RuleViolation(f"At most {MAX_LABELS} labels.")
    for value in values:
        if not isinstance(value, str) or not LABEL_RE.match(value):
            raise RuleViolation(
                "A label is letters, digits, '.', '_', ':', '/' or '-', starts with a letter or digit, at most 50 characters."
            )
    return sorted(set(values))


def clean_workflow(value: Any) -> str:
    if not isinstance(value, str) or not WORKFLOW_RE.match(value):
        raise RuleViolation("Use letters, digits, '.', '_' or '-' (a workflow file name).")
    return value


def clean_keyword(value: Any) -> str:
    """A chat keyword: one lowercase word (`@deplite deploy`). Blank means none."""
    if not isinstance(value, str):
        raise RuleViolation("A keyword is one word.")
    value = value.strip()
    if value and not KEYWORD_INPUT_RE.match(value):
        raise RuleViolation("Use one word: lowercase letters, digits, '.', '_' or '-'.")
    return value.lower()


def clean_chat_id(value: Any) -> str:
    """A Slack team/channel id or a Discord guild/channel id. Blank means none."""
    if not isinstance(value, str):
        raise RuleViolation("An id is text such as T0123 or C0123.")
    value = value.strip()
    if value and not CHAT_ID_RE.match(value):
        raise RuleViolation("Use letters, digits, '_' or '-' (a Slack or Discord id).")
    return value
