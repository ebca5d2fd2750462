"""Middleware that keeps the API's promises outside DRF's reach.

- ApiBodyLimitMiddleware: a body over the limit is a 413 before anything reads it.
- ApiErrorMiddleware: Django's own 404/500 under /api/ leave in the API error shape,
  never as an HTML page or a stack trace.
- RequestContextMiddleware: a request id (X-Request-ID, echoed) and the log context of the
  request; one access-log line per request; the run endpoint's latency metric; the time
  Django spent on the request as `Server-Timing: app;dur=<ms>`.
- ProbeMiddleware: /healthz, /readyz and /metrics answered before host validation and the
  HTTPS redirect.
- SessionMiddleware, AuthenticationMiddleware, MessageMiddleware: Django's, except on an
  API call that carries its own credentials (API token, JWT, agent signature). The API
  never reads a session (DRF authenticates from the header), so a CI pipeline's run
  request skips the session, user and message machinery entirely.
- ContentSecurityPolicyMiddleware: a strict Content-Security-Policy on every page.
"""

import logging
import time

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.contrib.auth import middleware as auth_middleware
from django.contrib.messages import middleware as messages_middleware
from django.contrib.sessions import middleware as sessions_middleware
from django.http import HttpResponse
from django.utils.functional import SimpleLazyObject, empty

from deplite import logs, metrics
from deplite.api.errors import DATABASE_UNAVAILABLE, RETRY_AFTER_SECONDS, database_unavailable_response, error_response

logger = logging.getLogger("deplite.api")
request_logger = logging.getLogger("deplite.request")

REQUEST_ID_HEADER = "X-Request-ID"
# URL names whose latency is a metric (the run endpoint's two spellings).
RUN_URL_NAMES = frozenset({"trigger-run", "trigger-run-api"})


def _is_api(request) -> bool:
    return request.path.startswith("/api/") or request.path.startswith("/triggers/")


def is_machine_api_call(request) -> bool:
    """An API request that authenticates itself with a header, never with a session cookie."""
    meta = request.META
    return ("HTTP_AUTHORIZATION" in meta or "HTTP_X_AGENT_SIGNATURE" in meta) and _is_api(request)


class SessionMiddleware(sessions_middleware.SessionMiddleware):
    def __call__(self, request):
        if is_machine_api_call(request):
            return self.get_response(request)
        return super().__call__(request)


class AuthenticationMiddleware(auth_middleware.AuthenticationMiddleware):
    def __call__(self, request):
        if is_machine_api_call(request):
            return self.get_response(request)  # DRF sets request.user from the header
        return super().__call__(request)


class MessageMiddleware(messages_middleware.MessageMiddleware):
    def __call__(self, request):
        if is_machine_api_call(request):
            return self.get_response(request)
        return super().__call__(request)


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
        if isinstance(exception, DATABASE_UNAVAILABLE):
            # An outage, not a bug: a retryable 503 (the agent protocol and the API alike), never a 500.
            if _is_api(request):
                return database_unavailable_response()
            logger.warning("The database is unavailable; answering 503.", exc_info=True)
            page = HttpResponse(
                "Deplite is temporarily unavailable. Try again in a moment.",
                status=503,
                content_type="text/plain; charset=utf-8",
            )
            page["Retry-After"] = str(RETRY_AFTER_SECONDS)
            return page
        if not _is_api(request):
            return None
        logger.exception("Unhandled error on %s %s", request.method, request.path)
        return error_response(500, "server_error", "Something went wrong on our side. It has been logged.")


class RequestContextMiddleware(_SyncAndAsyncMiddleware):
    """First in the chain: every log line of the request carries its id, echoed in the response.

    Writes the request's access-log line at the end, with what the request bound on the way
    (org, user or token prefix, job id, agent id). Probes (/healthz, /readyz, /metrics) log at
    DEBUG only.
    """

    def before(self, request):
        request.request_id = logs.request_id_from(request.META.get("HTTP_X_REQUEST_ID"))
        logs.new_context(request_id=request.request_id)
        request._started = time.monotonic()
        return None

    def after(self, request, response):
        elapsed = time.monotonic() - request._started
        response[REQUEST_ID_HEADER] = request.request_id
        # The time Django spent on it (the standard header browsers' dev tools and `make bench` read).
        response["Server-Timing"] = f"app;dur={elapsed * 1000:.1f}"
        match = getattr(request, "resolver_match", None)
        if match is not None and match.url_name in RUN_URL_NAMES:
            metrics.RUN_REQUEST_SECONDS.labels(code=str(response.status_code)).observe(elapsed)
        level = logging.DEBUG if request.path in logs.QUIET_PATHS else logging.INFO
        if request_logger.isEnabledFor(level):
            # A session user is named only if the request already loaded it (never a query here,
            # nor a sync query from an async view); API callers are bound by their authentication.
            user = request.__dict__.get("user")
            if isinstance(user, SimpleLazyObject) and user._wrapped is empty:
                user = None
            if user is not None and getattr(user, "pk", None) and getattr(user, "is_authenticated", False):
                logs.bind(user=user.pk)
            request_logger.log(
                level,
                "%s %s %s %.1fms",
                request.method,
                request.get_full_path()[:500],
                response.status_code,
                elapsed * 1000,
            )
        logs.clear_context()
        return response


class ProbeMiddleware(_SyncAndAsyncMiddleware):
    """Answers /healthz, /readyz and /metrics ahead of the rest of the chain.

    A load balancer probes each instance by its address over plain HTTP, and Prometheus scrapes it
    the same way: ALLOWED_HOSTS would refuse that Host (400) and SECURE_SSL_REDIRECT would answer
    301, and an instance would never count as healthy. These endpoints read no host, session,
    cookie or CSRF token, so nothing below them is needed (and they stay cheap).
    """

    def before(self, request):
        from deplite import health, metrics_endpoint

        views = {"/healthz": health.healthz, "/readyz": health.readyz, "/metrics": metrics_endpoint.metrics_view}
        view = views.get(request.path_info)
        return view(request) if view is not None else None


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
