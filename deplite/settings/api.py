"""The JSON API (DRF, drf-spectacular) and the web process serving it: body limits, threads."""

from __future__ import annotations

# Plain data (no Django import), so settings may read it.
from deplite.api.schema_tags import TAGS as API_TAGS

from .base import env

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "orgs.authentication.ApiTokenAuthentication",
        "orgs.authentication.JWTAuthentication",
        # The logged-in browser session (CSRF enforced on writes): Swagger UI's "Try it out".
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["deplite.api.parsers.JSONAnyContentTypeParser"],
    "DEFAULT_RENDERER_CLASSES": ["djangorestframework_camel_case.render.CamelCaseJSONRenderer"],
    "DEFAULT_PAGINATION_CLASS": "deplite.api.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "deplite.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["deplite.api.filtering.StrictFilterBackend"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
# camelCase on the wire (djangorestframework-camel-case, deplite/api/camel.py): its renderer, its
# `underscoreize` in our parser and drf-spectacular's hook for it read these options.
JSON_CAMEL_CASE = {
    "JSON_UNDERSCOREIZE": {
        # Kept exactly, keys and all: user data (a run's params, the audit log's data, a presign's
        # headers), and an error's details.fields, named as on the wire by deplite.api.errors.
        "ignore_fields": ("params", "data", "headers", "fields"),
        # DRF's name for errors of no one field: part of the documented error shape as is.
        "ignore_keys": ("non_field_errors",),
        # `sha256`, `s3Key`: no underscore before a digit, as the serializers name them.
        "no_underscore_before_number": True,
    },
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Deplite API",
    "DESCRIPTION": "Control plane for deployment workflows that run on your own servers.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # One name per choice set where several apps have a `status` or `type` field.
    "ENUM_NAME_OVERRIDES": {
        "ChatProviderEnum": "triggers.models.ChatProvider",
        "JobStatusEnum": "triggers.models.JobStatus",
        "StepStatusEnum": "triggers.models.StepStatus",
        "FileStatusEnum": "storage.models.FileStatus",
        "TriggerTypeEnum": "triggers.models.TriggerType",
    },
    # The agent's long-poll claim is an async Django view, which drf-spectacular does not list by itself.
    "PREPROCESSING_HOOKS": ["agents.schema.document_claim"],
    # Serializers are snake_case; the wire (and so the schema) is camelCase.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "deplite.api.schema_tags.tag_operations",
        "deplite.api.schema_errors.document_errors",
        "deplite.api.schema_bodies.json_request_bodies",
        "drf_spectacular.contrib.djangorestframework_camel_case.camelize_serializer_fields",
    ],
    "TAGS": API_TAGS,
}
# Largest JSON body the API reads; larger ones get a 413 before anything is parsed.
DEPLITE_MAX_API_BODY_BYTES = env.int("DEPLITE_MAX_API_BODY_BYTES", default=1024 * 1024)
# Threads per web process serving sync requests (deplite/asgi.py); each holds at most one pooled
# database connection, so keep it at or below DATABASE_POOL_MAX. More threads than this contend for
# the interpreter lock: on 2 cores, with the one-hop bridge (deplite/wsgi_bridge.py), the run's p99 at
# 16 connections was 64 ms (median round) with 3 threads against 69-70 ms with 4, at the same
# throughput (before the bridge, 8 did worse than 4). Fewer would leave too little room for a
# request waiting on a slow bucket endpoint.
WEB_THREADS = env.int("WEB_THREADS", default=3)
# A streamed answer (a static file, a log download) whose client reads nothing for this long is
# abandoned and its connection closed, as nginx's send_timeout; see deplite/wsgi_bridge.py.
WEB_SEND_TIMEOUT_SECONDS = env.float("WEB_SEND_TIMEOUT_SECONDS", default=60.0)
DATA_UPLOAD_MAX_MEMORY_SIZE = DEPLITE_MAX_API_BODY_BYTES
