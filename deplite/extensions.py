"""Every extension point of the project package `deplite`: where an app plugs into operations.

`deplite`'s operational modules sit below every app (the apps record their counters through
`deplite.metrics`), so reading an app's rows from there would be an upward import. Each app
registers here from its `AppConfig.ready()`. (`deplite.serving.web_process_started` is the
signal a web process sends once it serves.)
"""

from __future__ import annotations

from collections.abc import Callable

# --- Gauges of state in /metrics and `manage.py deplite_status` ------------------------------------
# Filled by triggers (queued jobs, the oldest one's age) and agents (agents online): the app that
# owns the rows reads them from the database at scrape time, in one query per reader.

#: gauge name (without `deplite_`) → its help text.
_metrics_state_help: dict[str, str] = {}
_metrics_state_readers: list[Callable[[], dict[str, float]]] = []


def register_metrics_state(read: Callable[[], dict[str, float]], helps: dict[str, str]) -> None:
    """Add gauges `deplite_<name>` whose values `read()` returns at scrape time."""
    if read not in _metrics_state_readers:
        _metrics_state_readers.append(read)
    _metrics_state_help.update(helps)


def metrics_state() -> dict[str, float]:
    """Every registered state value (DatabaseError if the database cannot be read)."""
    values: dict[str, float] = {}
    for read in _metrics_state_readers:
        values.update(read())
    return values


def metrics_state_help(name: str) -> str:
    return _metrics_state_help.get(name, name)
