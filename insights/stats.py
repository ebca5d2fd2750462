"""Small statistics over the values a selector already holds (at most a few thousand)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """The `fraction` percentile (0–1) with linear interpolation between ranks, as PostgreSQL's
    percentile_cont computes it; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = fraction * (len(ordered) - 1)
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def change(current: float | None, previous: float | None) -> float | None:
    """The trend against the previous window as a fraction (+0.25 = 25 % more); None when either is
    unknown or the previous one was zero (no base to compare with)."""
    if current is None or previous is None or previous == 0:
        return None
    return (current - previous) / previous
