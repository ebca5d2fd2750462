"""Middleware that keeps the API's promises outside DRF's reach.

- ApiBodyLimitMiddleware: a body over the limit is a 413 before anything reads it.
- ApiErrorMiddleware: Django's own 404/500 under /api/ leave in the API error shape,
  never as an HTML page or a stack trace.
- ContentSecurityPolicyMiddleware: a strict Content-Security-Policy on every page.
"""

import logging

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings

from deplite.api.errors import error_response

logger = logging.getLogger("deplite.api")


def _is_api(request) -> bool:
    return request.path.startswith("/api/") or request.path.startswith("/triggers/")


class _SyncAndAsyncMiddleware:
    """Runs natively in both modes. A sync-only middleware would make Django run every
    async view (the agents' long-poll claim) through a thread held for the whole request,
    which is exactly what the async view exists to avoid."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self._acall(request)
        early = self.before(request)
        return early if early is not None else self.after(request, self.get_response(request))

    async def _acall(self, request):
        early = self.before(request)
        return early if early is not None else self.after(request, await self.get_response(request))

    def before(self, request):
        return None

    def after(self, request, response):
        return response


class ApiBodyLimitMiddleware(_SyncAndAsyncMiddleware):
    def before(self, request):
        if _is_api(request):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                return error_response(400, "malformed_request", "The Content-Length header is invalid.")
            if length > settings.DEPLITE_MAX_API_BODY_BYTES:
                return error_response(
                    413,
                    "payload_too_large",
                    "The request body is too large.",
                    {"maxBytes": settings.DEPLITE_MAX_API_BODY_BYTES},
                )
        return None


class ApiErrorMiddleware(_SyncAndAsyncMiddleware):
    def after(self, request, response):
        if not _is_api(request) or response.get("Content-Type", "").startswith("application/json"):
            return response
        if response.status_code == 404:
            return error_response(404, "not_found", "Not found.")
        if response.status_code == 405:
            return error_response(405, "method_not_allowed", "Method not allowed.")
        if response.status_code == 400:
            return error_response(400, "bad_request", "The request could not be processed.")
        if response.status_code >= 500:
            return error_response(500, "server_error", "Something went wrong on our side. It has been logged.")
        return response

    def process_exception(self, request, exception):
        if not _is_api(request):
            return None
        logger.exception("Unhandled error on %s %s", request.method, request.path)
        return error_response(500, "server_error", "Something went wrong on our side. It has been logged.")


class ContentSecurityPolicyMiddleware(_SyncAndAsyncMiddleware):
    """A strict Content-Security-Policy on HTML pages (settings.DEPLITE_CONTENT_SECURITY_POLICY).

    Every script and style is a static file of this origin (htmx and Swagger UI are served
    locally), so the policy allows no inline code and no other origin: an injected
    `<script>` or `on…=` attribute does not run."""

    def after(self, request, response):
        policy = settings.DEPLITE_CONTENT_SECURITY_POLICY
        if policy and "Content-Security-Policy" not in response:
            content_type = response.get("Content-Type", "")
            if content_type.startswith("text/html") or not content_type:
                response["Content-Security-Policy"] = policy
        return response
