"""The chat command, shared by Slack and Discord: `<keyword> [ref=<ref>] [KEY=value …]`.

`@deplite deploy ref=feature/x ENV=prod` and `/deplite deploy ref=feature/x ENV=prod` both
reach `parse_command("deploy ref=feature/x ENV=prod")`. Every value is checked by the same
domain rules as the run endpoint (`triggers.rules`), so chat accepts exactly what the API
accepts.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from triggers.rules import RuleViolation, clean_keyword, clean_params, clean_ref

# Slack writes a mention of the bot as `<@U0BOT>` (or `<@U0BOT|deplite>`).
_MENTION_RE = re.compile(r"<@[A-Z0-9]+(?:\|[^>]*)?>")

USAGE = "Usage: `<keyword> [ref=<ref>] [KEY=value …]`, e.g. `deploy ref=main ENV=prod`."


class CommandError(ValueError):
    """The text is not a valid command; `message` says how to fix it."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class ParsedCommand:
    keyword: str
    ref: str | None = None
    params: dict[str, str] = field(default_factory=dict)


def strip_mentions(text: str) -> str:
    return _MENTION_RE.sub(" ", text or "").strip()


def _unescape_slack(text: str) -> str:
    # Slack escapes &, < and > in message text; a link is sent as <url|label> or <url>.
    text = re.sub(r"<((?:https?|mailto):[^>|]+)(?:\|[^>]*)?>", r"\1", text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def console_words(text: str) -> list[str]:
    """The command's words, mentions and Slack's escaping removed (`lock production release freeze`)."""
    return _unescape_slack(strip_mentions(text)).split()


def parse_command(text: str) -> ParsedCommand:
    """Parse the text after the mention / slash command name. Raises CommandError."""
    text = _unescape_slack(strip_mentions(text)).replace("\u201c", '"').replace("\u201d", '"')
    try:
        words = shlex.split(text)
    except ValueError:
        raise CommandError(f"Unbalanced quotes. {USAGE}") from None
    if not words:
        raise CommandError(f"Name a keyword. {USAGE}")
    head, rest = words[0], words[1:]
    if "=" in head:
        raise CommandError(f"Start with the trigger's keyword. {USAGE}")
    try:
        keyword = clean_keyword(head)
    except RuleViolation as exc:
        raise CommandError(f"`{head[:50]}` is not a keyword: {exc.message}") from None
    ref: str | None = None
    raw_params: dict[str, str] = {}
    for word in rest:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise CommandError(f"`{word[:50]}` is not KEY=value. {USAGE}")
        if key == "ref":
            if ref is not None:
                raise CommandError("ref is given twice.")
            try:
                ref = clean_ref(value)
            except RuleViolation as exc:
                raise CommandError(f"ref: {exc.message}") from None
            continue
        if key in raw_params:
            raise CommandError(f"{key[:64]} is given twice.")
        raw_params[key] = value
    try:
        params = clean_params(raw_params)
    except RuleViolation as exc:
        raise CommandError(exc.message) from None
    return ParsedCommand(keyword=keyword, ref=ref, params=params)
