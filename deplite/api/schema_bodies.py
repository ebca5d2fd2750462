"""Request bodies are documented as `application/json`, which is what the API reads.

The parser (deplite.api.parsers) accepts any Content-Type so the docs' `curl -d` snippets work
verbatim, and drf-spectacular documents its `*/*` as the body's media type; a generated client
would then send anything. This post-processing hook documents the one format actually read.
"""

from __future__ import annotations

METHODS = ("get", "put", "post", "patch", "delete", "options", "head", "trace")


def json_request_bodies(result, generator, request, public):
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            if method not in METHODS:
                continue
            content = operation.get("requestBody", {}).get("content")
            if content and "*/*" in content:
                media = content.pop("*/*")
                content.setdefault("application/json", media)
    return result
