"""Swagger UI groups operations by tag: one tag per part of the product, read from the path.

drf-spectacular would tag every operation `api` (the paths' common first segment); this
post-processing hook tags each by what it is about instead.
"""

from __future__ import annotations

import re

# First match wins: (path pattern, tag).
_TAG_RULES = [
    (r"^/api/orgs/\{[^}]+\}/(members|tokens|audit)\b", "orgs"),
    (r"^/api/orgs/\{[^}]+\}/(storage|files)\b", "storage"),
    (r"^/api/orgs/\{[^}]+\}/triggers\b|^/(api/)?triggers/", "triggers"),
    (r"^/api/orgs/\{[^}]+\}/jobs\b", "jobs"),
    (r"^/api/orgs/\{[^}]+\}/environments\b", "environments"),
    (r"^/api/orgs/\{[^}]+\}/agents\b", "agents"),
    (r"^/api/agent/", "agent protocol"),
    (r"^/api/orgs/\{[^}]+\}/(integrations|slack|discord)\b|^/integrations/", "integrations"),
    (r"^/api/auth/", "auth"),
    (r"^/api/orgs/?(\{[^}]+\}/?)?$", "orgs"),
]

TAGS = [
    {"name": "auth", "description": "Log in for a JWT (`POST /api/auth/token`), or use an API token."},
    {"name": "orgs", "description": "Organizations, members, API tokens and the audit log."},
    {"name": "storage", "description": "Storage bindings to your own bucket, and the files in it."},
    {"name": "triggers", "description": "Triggers, and the run endpoint that queues a job."},
    {"name": "jobs", "description": "Jobs: status, steps, logs, cancel, re-run, approve and reject."},
    {
        "name": "environments",
        "description": "Environments: rules (concurrency, queue, approvals, allowed refs), locks, history, rollback.",
    },
    {"name": "agents", "description": "Agents that run workflows on your servers."},
    {"name": "integrations", "description": "Slack and Discord workspaces linked to the org."},
    {"name": "agent protocol", "description": "What `deplite-agent` calls, signed with its secret (not for people)."},
]


def tag_for(path: str) -> str | None:
    for pattern, tag in _TAG_RULES:
        if re.search(pattern, path):
            return tag
    return None


def tag_operations(result, generator, request, public):
    """drf-spectacular POSTPROCESSING_HOOKS entry: retag every operation by its path."""
    for path, operations in result.get("paths", {}).items():
        tag = tag_for(path)
        if tag is None:
            continue
        for operation in operations.values():
            if isinstance(operation, dict):
                operation["tags"] = [tag]
    return result
