"""The one place that maps every error (the domain errors of deplite.errors, DRF's, Django's)
to the API's shape:

{"error": {"code": "<snake_case>", "message": "<human sentence>", "details": {...}}}
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import InterfaceError as DatabaseInterfaceError
from django.db import OperationalError as DatabaseOperationalError
from django.http import Http404, JsonResponse
from rest_framework import exceptions as drf
from rest_framework.response import Response

from deplite.errors import (  # noqa: F401 (the HTTP layer imports the errors from here too)
    Conflict,
    DepliteError,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServiceUnavailable,
    Unauthenticated,
    Unprocessable,
    UpgradeRequired,
    ValidationFailed,
)

from .camel import field_names

logger = logging.getLogger(__name__)


# Retry-After (seconds) on every 503: a dependency is down, nothing was done, and the call may be repeated.
RETRY_AFTER_SECONDS = 5
# The database unreachable (down, restarting, the pool timed out): a retryable outage, not a bug.
DATABASE_UNAVAILABLE = (DatabaseOperationalError, DatabaseInterfaceError)


def database_unavailable_response() -> JsonResponse:
    logger.warning("The database is unavailable; answering 503.", exc_info=True)
    response = error_response(
        503, "service_unavailable", "The service is temporarily unavailable (database). Try again shortly."
    )
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def error_body(code: str, message: str, details: dict | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def error_response(status: int, code: str, message: str, details: dict | None = None) -> JsonResponse:
    return JsonResponse(error_body(code, message, details), status=status)


_DRF_CODES = {
    drf.NotAuthenticated: "not_authenticated",
    drf.AuthenticationFailed: "authentication_failed",
    drf.PermissionDenied: "forbidden",
    drf.NotFound: "not_found",
    drf.MethodNotAllowed: "method_not_allowed",
    drf.NotAcceptable: "not_acceptable",
    drf.UnsupportedMediaType: "unsupported_media_type",
    drf.Throttled: "rate_limited",
    drf.ParseError: "malformed_request",
}


def _first_message(detail: Any) -> str:
    if isinstance(detail, dict):
        for key, value in detail.items():
            inner = _first_message(value)
            return inner if key == "non_field_errors" else f"{key}: {inner}"
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    return str(detail)


def _is_keyed_errors(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and bool(value)
        and all(
            isinstance(k, str) and isinstance(v, list) and all(isinstance(m, str) for m in v) for k, v in value.items()
        )
    )


def field_errors(detail: dict) -> dict:
    """A serializer's errors as `details.fields`: wire (camelCase) names, and the errors of a
    dict field such as `params` one entry per key (`params.KEY`), so every bad key is named."""
    out: dict = {}
    for key, value in detail.items():
        if _is_keyed_errors(value):
            for sub, messages in value.items():
                out[f"{key}.{sub}"] = messages
        else:
            out[key] = value
    return field_names(out)


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF's EXCEPTION_HANDLER: every API error leaves in the documented shape."""
    if isinstance(exc, DepliteError):
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if exc.status == 503 else None
        details = exc.details
        if isinstance((details or {}).get("fields"), dict):  # a service's names (secret_key) as on the wire
            details = {**details, "fields": field_names(details["fields"])}
        return Response(error_body(exc.code, exc.message, details), status=exc.status, headers=headers)
    if isinstance(exc, DATABASE_UNAVAILABLE):
        return database_unavailable_response()
    if isinstance(exc, Http404):
        return Response(error_body("not_found", "Not found."), status=404)
    if isinstance(exc, DjangoPermissionDenied):
        return Response(error_body("forbidden", Forbidden.message), status=403)
    if isinstance(exc, drf.ValidationError):
        detail = field_errors(exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail})
        return Response(
            error_body("validation_error", _first_message(detail), {"fields": detail}),
            status=400,
        )
    if isinstance(exc, drf.APIException):
        code = next((c for cls, c in _DRF_CODES.items() if isinstance(exc, cls)), "error")
        headers = {}
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if isinstance(exc, drf.Throttled) and exc.wait:
            headers["Retry-After"] = str(int(exc.wait))
        message = exc.detail if isinstance(exc.detail, str) else _first_message(exc.detail)
        return Response(error_body(code, str(message)), status=exc.status_code, headers=headers)
    return None  # an unexpected error: ApiErrorMiddleware logs it and answers a generic 500
