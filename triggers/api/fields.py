"""The run and rerun body fields, with the schema of what `triggers.rules` accepts.

They are `RuleField`s (the rule sees the raw JSON value, so `{"ref": 5}` is refused rather
than turned into "5"); the schema below is built from the same regexes and limits as the rule.
"""

from __future__ import annotations

import re

from drf_spectacular.utils import extend_schema_field

from deplite.api.fields import NO_NUL_RE, RuleField, schema_pattern

from .. import rules


def _ref_schema(description: str) -> dict:
    return {
        "type": "string",
        "nullable": True,
        "maxLength": rules.MAX_REF,
        "pattern": schema_pattern(re.compile(rf"^\s*(?:{rules.REF_BODY})?\Z")),
        "description": description,
    }


@extend_schema_field(_ref_schema("Blank or null: the trigger's default ref."))
class RefField(RuleField):
    pass


@extend_schema_field(_ref_schema("Another ref to run at; absent, blank or null: the re-run job's own ref."))
class RerunRefField(RuleField):
    pass


@extend_schema_field(
    {
        # An empty string too: GitHub's head_commit is null on a manual dispatch, so the snippet sends "".
        "anyOf": [{"type": "string", "format": "date-time"}, {"type": "string", "enum": [""]}],
        "nullable": True,
        "description": "When the deployed commit was made (RFC 3339, with its offset), for lead time from "
        "commit to success; GitHub Actions has it as `github.event.head_commit.timestamp`. Empty or null: none.",
    }
)
class CommitTimeField(RuleField):
    def to_representation(self, value):
        return value.isoformat().replace("+00:00", "Z") if value is not None else None


@extend_schema_field(
    {
        "type": "object",
        "nullable": True,
        "maxProperties": rules.MAX_PARAMS,
        "additionalProperties": {
            "anyOf": [
                {"type": "string", "maxLength": rules.MAX_PARAM_VALUE, "pattern": schema_pattern(NO_NUL_RE)},
                {"type": "number"},
                {"type": "boolean"},
            ]
        },
        # OpenAPI 3.0 has no `propertyNames`: the name rule is stated in words (and pattern) instead.
        "description": "Workflow params: NAME → a string, number or boolean (passed as PARAMS_NAME). "
        f"A NAME matches `{schema_pattern(rules.PARAM_KEY_RE)}`, at most {rules.MAX_PARAM_KEY} characters.",
    }
)
class ParamsField(RuleField):
    pass
