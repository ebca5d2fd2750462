"""The one error every provider client raises, so callers decide retry vs. record in one way."""

from __future__ import annotations


class TransportError(Exception):
    """A provider call failed.

    `code`: short and stable (Slack's error code, `rate_limited`, `http_500`, …), stored on
    outbox rows and shown to users. `permanent`: retrying cannot help (revoked token, unknown
    channel). `retry_after`: seconds the provider asked us to wait (429).
    """

    def __init__(self, code: str, message: str = "", *, permanent: bool, retry_after: float | None = None):
        self.code = code[:64]
        self.message = message or code
        self.permanent = permanent
        self.retry_after = retry_after
        super().__init__(f"{code}: {message}" if message else code)


def seconds(value) -> float | None:
    """A provider's Retry-After (header or body field) as seconds, or None if unusable."""
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if result >= 0 else None
