"""Every operation's error answers in the schema: the one error shape, and which statuses it
may carry (Swagger UI lists them under each operation).

A post-processing hook rather than a decorator on every view: the statuses follow from what
an operation is (it takes a body → 400, it names an object → 404, it is authenticated → 401
and 403, it writes → 409), the same rules `deplite.api.errors` applies. A view that answers
another error status declares it (`extend_schema(responses={409: OpenApiResponse(...)})`,
e.g. an integration that is not configured); this hook gives it the error shape.
"""

from __future__ import annotations

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string", "example": "validation_error"},
                "message": {"type": "string", "example": "name: This field may not be blank."},
                "details": {"type": "object", "additionalProperties": True},
            },
        }
    },
}

_DESCRIPTIONS = {
    "400": "Bad input: `details.fields` names each bad field.",
    "401": "Not authenticated (no, expired or revoked credentials).",
    "403": "Authenticated, but this caller may not do this.",
    "404": "Not found, or another organization's object.",
    "409": "Conflicts with the current state (e.g. a job already finished, a name taken).",
    "413": "Too large.",
    "422": "Idempotency-Key reused with a different body.",
    "429": "Rate limited: retry later.",
}


def document_errors(result, generator, request, public):
    """drf-spectacular POSTPROCESSING_HOOKS entry."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    ref = {"$ref": "#/components/schemas/Error"}
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            statuses = set()
            if "requestBody" in operation or operation.get("parameters"):
                statuses.add("400")
            authenticated = operation.get("security") != [{}]
            if authenticated:
                statuses |= {"401", "403", "429"}
            if "{" in path:
                statuses.add("404")
            if authenticated and method in ("post", "patch", "put", "delete"):
                statuses.add("409")
            if "/run" in path:
                statuses.add("422")
            if "presign-upload" in path:
                statuses.add("413")
            for status in sorted(statuses):
                operation["responses"].setdefault(status, {"description": _DESCRIPTIONS[status]})
            for status, response in operation["responses"].items():
                if str(status).startswith("4") and not response.get("content"):
                    response.setdefault("description", _DESCRIPTIONS.get(str(status), ""))
                    response["content"] = {"application/json": {"schema": ref}}
    return result
