"""The domain errors services raise, plain Python (no DRF): each carries the HTTP status,
a snake_case code, a human message and details. `deplite.api.errors` maps them (and
every other error) to the API's one shape; pages show their message on the form.
"""

from __future__ import annotations


class DepliteError(Exception):
    """Base of the domain errors services raise; views never build error bodies."""

    status = 400
    code = "bad_request"
    message = "The request could not be processed."

    def __init__(self, message: str | None = None, *, code: str | None = None, details: dict | None = None):
        self.message = message or self.message
        if code:
            self.code = code
        self.details = details or {}
        super().__init__(self.message)


class ValidationFailed(DepliteError):
    status = 400
    code = "validation_error"
    message = "The request is invalid."


class Unauthenticated(DepliteError):
    status = 401
    code = "not_authenticated"
    message = "Authentication credentials were not provided or are invalid."


class Forbidden(DepliteError):
    status = 403
    code = "forbidden"
    message = "You do not have permission to perform this action."


class NotFound(DepliteError):
    status = 404
    code = "not_found"
    message = "Not found."


class Conflict(DepliteError):
    status = 409
    code = "conflict"
    message = "The request conflicts with the current state."


class PayloadTooLarge(DepliteError):
    status = 413
    code = "payload_too_large"
    message = "The request body is too large."


class Unprocessable(DepliteError):
    status = 422
    code = "unprocessable"
    message = "The request cannot be processed."


class UpgradeRequired(DepliteError):
    """The client (an agent) is older than the oldest the server still speaks: retrying cannot help, upgrading can."""

    status = 426
    code = "upgrade_required"
    message = "This client is too old for this server; upgrade it."


class RateLimited(DepliteError):
    status = 429
    code = "rate_limited"
    message = "Too many requests. Try again later."


class ServiceUnavailable(DepliteError):
    """A dependency (Redis) is down: nothing was done, and the caller should retry."""

    status = 503
    code = "service_unavailable"
    message = "The service is temporarily unavailable. Try again shortly."
