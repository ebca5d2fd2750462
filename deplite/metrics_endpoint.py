"""`GET /metrics`: the Prometheus text of deplite.metrics, for the bearer of DEPLITE_METRICS_TOKEN.

Kept apart from deplite.metrics, which services import: recording a metric needs no HTTP.
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from deplite import metrics
from deplite.api.errors import error_response


def _authorized(request: HttpRequest) -> bool:
    expected = settings.DEPLITE_METRICS_TOKEN
    if not expected:
        return False
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, given = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected.encode())


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """`GET /metrics`: Prometheus text, for `Authorization: Bearer <DEPLITE_METRICS_TOKEN>` only.

    Without the setting the endpoint is off (404), so a deployment never exposes it by accident.
    """
    if not settings.DEPLITE_METRICS_TOKEN:
        return error_response(404, "not_found", "Metrics are off: set DEPLITE_METRICS_TOKEN to enable /metrics.")
    if not _authorized(request):
        response = error_response(401, "not_authenticated", "A valid metrics bearer token is required.")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(metrics.registry()), content_type=CONTENT_TYPE_LATEST)
