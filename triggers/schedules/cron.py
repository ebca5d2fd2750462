"""Cron expressions, through cronsim (healthchecks' own parser and iterator): the one place that
knows the library, so validation, fire times and the plain reading agree.

Times go in and out as aware datetimes in UTC; cronsim iterates in the schedule's timezone and
handles daylight-saving changes as Debian cron does (README "Schedules"): an expression with a
fixed minute and hour (`30 2 * * *`) fires once a day, at the first valid minute after a time that
does not exist (spring forward) and at the first of a time that happens twice (fall back); one
that repeats every minute or hour (`*/15 * * * *`) fires at every real instant it matches.
"""

from __future__ import annotations

import functools
import zoneinfo
from datetime import UTC, datetime, timedelta

from cronsim import CronSim, CronSimError

# Five fields, as GitHub, GitLab and crontab take them (cronsim would also take a sixth, seconds).
FIELDS = 5
MAX_CRON = 100


class CronInvalid(ValueError):
    """An expression or timezone a schedule cannot have; the message says what is wrong."""


@functools.cache
def _timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def clean_timezone(name: str) -> str:
    """An IANA timezone name, as `zoneinfo` knows it (`Europe/Berlin`, `UTC`)."""
    if not isinstance(name, str) or name not in _timezones():
        raise CronInvalid(f'"{str(name)[:64]}" is not an IANA timezone name, such as "Europe/Berlin" or "UTC".')
    return name


def clean_cron(expression: str) -> str:
    """The expression with single spaces between its five fields, or CronInvalid naming the problem."""
    if not isinstance(expression, str):
        raise CronInvalid("A cron expression is a string of five fields.")
    parts = expression.split()
    if len(parts) != FIELDS:
        raise CronInvalid(
            f"A cron expression has five fields (minute hour day-of-month month day-of-week); this one has {len(parts)}."
        )
    normal = " ".join(parts)
    if len(normal) > MAX_CRON:
        raise CronInvalid(f"A cron expression has at most {MAX_CRON} characters.")
    try:
        # Parsing happens in the constructor; one step more finds an expression that never fires.
        next(CronSim(normal, datetime.now(UTC)))
    except CronSimError as exc:
        raise CronInvalid(f"{exc} in the cron expression (minute hour day-of-month month day-of-week).") from None
    except StopIteration:
        raise CronInvalid("This cron expression never fires (no such date).") from None
    return normal


def _local(moment: datetime, tz: str) -> datetime:
    return moment.astimezone(zoneinfo.ZoneInfo(tz))


def fires_after(cron: str, tz: str, after: datetime, count: int) -> list[datetime]:
    """The next `count` fire times strictly after `after` (fewer if the expression runs out)."""
    out: list[datetime] = []
    iterator = CronSim(cron, _local(after, tz))
    for _ in range(count):
        try:
            out.append(next(iterator).astimezone(UTC))
        except StopIteration:
            break
    return out


def next_fire_after(cron: str, tz: str, after: datetime) -> datetime | None:
    found = fires_after(cron, tz, after, 1)
    return found[0] if found else None


def fires_between(cron: str, tz: str, start: datetime, end: datetime, limit: int) -> list[datetime]:
    """Fire times in [start, end], oldest first, at most `limit` of them."""
    # cronsim yields times strictly after its start; a second earlier includes `start` itself
    # (fire times are whole minutes).
    out: list[datetime] = []
    iterator = CronSim(cron, _local(start - timedelta(seconds=1), tz))
    for _ in range(limit):
        try:
            moment = next(iterator).astimezone(UTC)
        except StopIteration:
            break
        if moment > end:
            break
        out.append(moment)
    return out


def latest_fire_before(cron: str, tz: str, before: datetime) -> datetime | None:
    """The last fire time strictly before `before` (cronsim iterating backwards)."""
    try:
        return next(CronSim(cron, _local(before, tz), reverse=True)).astimezone(UTC)
    except StopIteration:
        return None


def describe(cron: str, tz: str) -> str:
    """A plain reading: "At 09:00 on Monday through Friday, Europe/Berlin" (cronsim's explain())."""
    return f"{CronSim(cron, datetime.now(UTC)).explain()}, {tz}"
