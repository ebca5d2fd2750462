"""camelCase on the wire, snake_case in Python, through djangorestframework-camel-case.

Serializers, services and forms name things in snake_case; the JSON API speaks camelCase
(`agentLabels`, `details.fields.chatKeyword`). The library's renderer camelizes every response,
its `underscoreize` the keys of every body (in our parser, deplite.api.parsers, which also reads
JSON whatever the Content-Type), and drf-spectacular's hook for it names the schema's properties
as on the wire. Its options are `settings.JSON_CAMEL_CASE`: user data (a run's `params`, the
audit log's `data`, a presign's `headers`) passes through exactly as sent or stored.

What is left here is what the library has no option for:
- a dotted error key (`params.my_key`: a bad param, named as the user named it) converts only its
  head (`to_camel`, `field_names`);
- a body key that is not a wire name (`agent_labels`, `Ref`) is dropped like any unknown key, so
  the API keeps one spelling per field (`wire_names_only`).
"""

from __future__ import annotations

from typing import Any

from djangorestframework_camel_case import util
from djangorestframework_camel_case.settings import api_settings

OPTIONS: dict = api_settings.JSON_UNDERSCOREIZE
IGNORE_FIELDS = frozenset(OPTIONS.get("ignore_fields") or ())
IGNORE_KEYS = frozenset(OPTIONS.get("ignore_keys") or ())


def camelize(data: Any) -> Any:
    """Every key camelCase, recursively, except inside user data (the library, our options)."""
    return util.camelize(data, **OPTIONS)


def underscoreize(data: Any) -> Any:
    """Every key snake_case, recursively, except inside user data (the library, our options)."""
    return util.underscoreize(data, **OPTIONS)


def to_camel(name: Any) -> Any:
    """`agent_labels` → `agentLabels`; `params.my_key` → `params.my_key` (head only)."""
    if not isinstance(name, str) or name in IGNORE_KEYS:
        return name
    head, dot, rest = name.partition(".")
    return util.camelize_re.sub(util.underscore_to_camel, head) + dot + rest


def to_snake(name: Any) -> Any:
    """`agentLabels` → `agent_labels`; `params.someKey` → `params.someKey` (head only)."""
    if not isinstance(name, str):
        return name
    head, dot, rest = name.partition(".")
    return util.camel_to_underscore(head, **OPTIONS) + dot + rest


def field_names(fields: dict) -> dict:
    """An error's `details.fields` as on the wire: each name by `to_camel`, each value camelized
    unless it is user data. (The renderer leaves `fields` alone: `params.my_key` must stay.)"""
    return {to_camel(key): (value if key in IGNORE_FIELDS else camelize(value)) for key, value in fields.items()}


def _is_wire_name(key: Any) -> bool:
    return not isinstance(key, str) or to_camel(to_snake(key)) == key


def wire_names_only(data: Any) -> Any:
    """`data` without the keys no field is called on the wire (`agent_labels`), user data aside."""
    if isinstance(data, dict):
        return {
            key: (value if key in IGNORE_FIELDS else wire_names_only(value))
            for key, value in data.items()
            if _is_wire_name(key)
        }
    if isinstance(data, list):
        return [wire_names_only(item) for item in data]
    return data
