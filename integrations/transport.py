"""What every provider transport raises, so tasks decide retry vs. record in one way."""

from __future__ import annotations


class TransportError(Exception):
    """A provider call failed. `permanent`: retrying cannot help (revoked token, unknown
    channel); otherwise the task retries with backoff. `retry_after`: seconds the provider
    asked us to wait (429)."""

    def __init__(self, message: str, *, permanent: bool, retry_after: float | None = None):
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.retry_after = retry_after
