"""camelCase on the wire, snake_case in Python: the one place the two meet.

Serializers, services and forms name things in snake_case. The JSON API speaks camelCase
(`agentLabels`, `details.fields.chatKeyword`). `CamelJSONRenderer` camelizes the keys of
every response, the request parser (`deplite.api.parsers`) underscores the keys of every
body, and `camelize_schema` makes the OpenAPI document say what the wire says.

User data is never converted: the contents of `params` (a workflow's own names, such as
`my_key` or `someKey`) and of the audit log's `data` pass through exactly as sent or
stored. A dotted error key (`params.my_key`) converts only its head.
"""

from __future__ import annotations

import re
from typing import Any

from rest_framework.renderers import JSONRenderer

# Keys whose value is user data (or stored as given): kept exactly, keys and all.
OPAQUE_KEYS = frozenset({"params", "data", "headers"})
# DRF's name for errors of no one field: part of the documented error shape as is.
KEPT_KEYS = frozenset({"non_field_errors"})

_TO_CAMEL = re.compile(r"_([a-z0-9])")
_TO_SNAKE = re.compile(r"(?<=[a-z0-9])([A-Z])")


def to_camel(name: Any) -> Any:
    """`agent_labels` → `agentLabels`; `params.my_key` → `params.my_key` (head only)."""
    if not isinstance(name, str) or name in KEPT_KEYS:
        return name
    head, dot, rest = name.partition(".")
    return _TO_CAMEL.sub(lambda m: m.group(1).upper(), head) + dot + rest


def to_snake(name: Any) -> Any:
    """`agentLabels` → `agent_labels`; `params.someKey` → `params.someKey` (head only)."""
    if not isinstance(name, str):
        return name
    head, dot, rest = name.partition(".")
    return _TO_SNAKE.sub(lambda m: "_" + m.group(1).lower(), head) + dot + rest


def _convert(data: Any, rename, keep=lambda key: True) -> Any:
    if isinstance(data, dict):
        return {
            rename(key): (value if key in OPAQUE_KEYS else _convert(value, rename, keep))
            for key, value in data.items()
            if keep(key)
        }
    if isinstance(data, list | tuple):
        return [_convert(item, rename, keep) for item in data]
    return data


def _is_wire_name(key: Any) -> bool:
    return not (isinstance(key, str) and "_" in key)


def camelize(data: Any) -> Any:
    """Every key camelCase, recursively, except inside user data (`OPAQUE_KEYS`)."""
    return _convert(data, to_camel)


def underscore(data: Any) -> Any:
    """Every key snake_case, recursively, except inside user data (`OPAQUE_KEYS`).

    A key that is already snake_case (`agent_labels`) is not a wire name: it is dropped,
    as any unknown key is ignored, so the API keeps one spelling per field."""
    return _convert(data, to_snake, _is_wire_name)


class CamelJSONRenderer(JSONRenderer):
    def render(self, data, accepted_media_type=None, renderer_context=None):
        return super().render(camelize(data), accepted_media_type, renderer_context)


def _camelize_properties(node: Any) -> None:
    if isinstance(node, dict):
        props = node.get("properties")
        if isinstance(props, dict):
            node["properties"] = {to_camel(k): v for k, v in props.items()}
            if isinstance(node.get("required"), list):
                node["required"] = [to_camel(k) for k in node["required"]]
        for value in node.values():
            _camelize_properties(value)
    elif isinstance(node, list):
        for item in node:
            _camelize_properties(item)


def camelize_schema(result: dict, generator, request, public) -> dict:
    """drf-spectacular postprocessing hook: component properties named as on the wire."""
    _camelize_properties(result.get("components", {}).get("schemas", {}))
    return result
