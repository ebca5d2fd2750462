"""The time spans insights are measured over: a window (7, 30 or 90 days up to now), the window
before it (for the trend), and the buckets a window's chart is drawn in.

Buckets are cut from the window's own start, not from calendar days: a calendar day depends on the
reader's timezone, which the server does not know (the page shows each bucket's start in the
browser's timezone instead).

A window ends at the end of the current UTC hour (a deploy that finished a minute ago is in it), so
every edge of it and of its buckets falls at a whole hour: the DORA rollup's hour rows then answer it
whole, with no job to read at an edge (insights.selectors.deploys_rollup).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from deplite.errors import ValidationFailed

#: window name → (its length, the length of one bucket of its chart).
WINDOWS: dict[str, tuple[timedelta, timedelta]] = {
    "7d": (timedelta(days=7), timedelta(days=1)),
    "30d": (timedelta(days=30), timedelta(days=1)),
    "90d": (timedelta(days=90), timedelta(days=7)),
}
DEFAULT_WINDOW = "30d"


@dataclass(frozen=True)
class Window:
    name: str
    end: datetime
    length: timedelta
    bucket: timedelta

    @property
    def start(self) -> datetime:
        return self.end - self.length

    @property
    def previous_start(self) -> datetime:
        return self.end - 2 * self.length

    @property
    def bucket_count(self) -> int:
        # 90 days in 7-day buckets: 13, the first one short (it starts at the window's start).
        return -(-self.length // self.bucket)

    def bucket_starts(self) -> list[datetime]:
        """Each bucket's start, oldest first; the first bucket may be shorter (it starts at `start`)."""
        count = self.bucket_count
        return [max(self.start, self.end - (count - i) * self.bucket) for i in range(count)]

    def bucket_of(self, at: datetime) -> int | None:
        """The bucket `at` falls in, or None outside the window."""
        if not self.start <= at < self.end:
            return None
        back = -(-(self.end - at) // self.bucket)  # buckets from the end, rounded up
        return self.bucket_count - back

    @property
    def days(self) -> int:
        return self.length.days


def window_parse(raw: str | None, *, now: datetime) -> Window:
    """`7d`, `30d` or `90d` (absent or blank: 30d) ending with `now`'s hour; anything else is a 400 naming `window`."""
    name = (raw or "").strip() or DEFAULT_WINDOW
    if name not in WINDOWS:
        choices = ", ".join(WINDOWS)
        raise ValidationFailed(f"window: one of {choices}.", details={"fields": {"window": [f"One of {choices}."]}})
    return window_ending(name, hour_end(now))


def window_ending(name: str, end: datetime) -> Window:
    """The window `name` ending at `end` exactly (window_parse's end with the hour; tests, any end)."""
    length, bucket = WINDOWS[name]
    return Window(name=name, end=end, length=length, bucket=bucket)


def hour_end(at: datetime) -> datetime:
    """The end of `at`'s hour (its next whole hour; `at` itself when it is one)."""
    start = at.replace(minute=0, second=0, microsecond=0)
    return start if start == at else start + timedelta(hours=1)
