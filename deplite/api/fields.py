"""Serializer pieces that apply the domain rules (`triggers.rules`, `storage.names`, `orgs.rules`).

The rules are plain functions raising `ValueError` (`RuleViolation` is one) with a sentence
a user can act on; these adapt them to DRF so a serializer names the field and collects
every field's error at once instead of stopping at the first.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from django.core.validators import RegexValidator
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers


def _message(exc: ValueError) -> str:
    return getattr(exc, "message", None) or str(exc)


def rule(clean: Callable[[Any], Any]):
    """A `validate_<field>` method from a rule: its ValueError becomes that field's error."""

    def validate(self, value):
        try:
            return clean(value)
        except ValueError as exc:
            raise serializers.ValidationError(_message(exc)) from None

    return validate


class RuleField(serializers.Field):
    """A field whose whole check is a rule, given the raw JSON value (so `{"ref": 5}` is
    refused rather than turned into "5"). A rule's per-key errors (`params.KEY`) become
    this field's errors keyed by KEY, which the error handler reports as `params.KEY`."""

    def __init__(self, clean: Callable[[Any], Any], **kwargs):
        self.clean = clean
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        try:
            return self.clean(data)
        except ValueError as exc:
            errors = getattr(exc, "errors", None)
            if errors:
                prefix = f"{self.field_name}."
                raise serializers.ValidationError(
                    {key.removeprefix(prefix): list(messages) for key, messages in errors.items()}
                ) from None
            raise serializers.ValidationError(_message(exc)) from None

    def to_representation(self, value):
        return value


@extend_schema_field(OpenApiTypes.STR)
class TextRuleField(RuleField):
    pass


@extend_schema_field({"type": "object", "additionalProperties": {}})
class ObjectRuleField(RuleField):
    pass


class DocumentedPattern(RegexValidator):
    """A domain rule's regex, for the schema: drf-spectacular writes a field's RegexValidator
    as its `pattern`, so generated clients (and the schema fuzz test) know what the rule
    accepts. The rule itself (the field's `validate_<name>`, or `RuleField`) still does the
    checking, with its own message and normalisation; this adds no second check. (On a field
    that allows blank, drf-spectacular documents blank beside the pattern: the pattern itself
    need not, and must not, match it.)"""

    def __call__(self, value):
        return None


def schema_pattern(regex: re.Pattern[str]) -> str:
    """A Python regex as a schema `pattern`, escaped and anchored the way drf-spectacular writes a
    validator's (for schemas written by hand: a header, a RuleField's `extend_schema_field`)."""
    return regex.pattern.replace(r"\x", r"\u00").replace(r"\Z", "$").replace(r"\A", "^")


# DRF refuses a NUL character in every CharField; a field without a pattern of its own says so.
NO_NUL_RE = re.compile(r"^[^\x00]*\Z")


class _JsonStringOnly:
    """A JSON string and only that. DRF's CharField also takes a number (`{"slug": 5}` → "5"),
    which the schema (`type: string`) says is not a valid body."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictCharField(_JsonStringOnly, serializers.CharField):
    """A string field that takes JSON strings only. The schema also learns that NUL is refused
    (the first pattern given wins; a rule's excludes NUL too)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.validators.append(DocumentedPattern(NO_NUL_RE))


class StrictRegexField(_JsonStringOnly, serializers.RegexField):
    """`StrictCharField`, for a RegexField (agent labels)."""


class StrictBooleanField(serializers.BooleanField):
    """A JSON `true` or `false` and only that. DRF's BooleanField also reads 0, 1, "yes",
    "off"…, which the schema (`type: boolean`) says are not valid bodies."""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer and only that. DRF's IntegerField also reads "3", 3.0 and true, which the
    schema (`type: integer`) says are not valid bodies."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)
