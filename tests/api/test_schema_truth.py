"""What the schema fuzz run (test_schema_fuzz.py) found, pinned one by one: the schema states the
server's own validation patterns, statuses and nullable fields, and the server refuses what the
schema says is not valid (a number for a string, 0 for a boolean, an unusable page size or filter)."""

from __future__ import annotations

import re

import pytest

from storage import names
from triggers import rules

from ..factories import AgentFactory, StorageBindingFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(api, owner):
    return api.as_user(owner).get("/api/schema/?format=json").json()


def _ecma(regex: re.Pattern) -> str:
    """What drf-spectacular writes for a Python regex."""
    return regex.pattern.replace(r"\x", r"\u00").replace(r"\Z", "$")


def _field(schema, component, field):
    spec = schema["components"]["schemas"][component]["properties"][field]
    # A field that may be blank is written as oneOf [the field, a blank string].
    return spec["oneOf"][0] if "oneOf" in spec else spec


@pytest.mark.parametrize(
    "component,field,regex",
    [
        ("StorageBindingInputRequest", "bucket", names.BUCKET_RE),
        ("StorageBindingInputRequest", "region", names.REGION_RE),
        ("StorageBindingInputRequest", "accessKey", names.ACCESS_KEY_RE),
        ("StorageBindingInputRequest", "prefix", names.PREFIX_RE),
        ("PresignUploadInputRequest", "fileName", names.FILE_NAME_RE),
        ("PresignUploadInputRequest", "contentType", names.CONTENT_TYPE_RE),
        ("TriggerInputRequest", "workflow", rules.WORKFLOW_RE),
        ("TriggerInputRequest", "chatKeyword", rules.KEYWORD_INPUT_RE),
        ("TriggerInputRequest", "chatTeamId", rules.CHAT_ID_RE),
        ("TriggerInputRequest", "defaultRef", rules.REF_RE),
    ],
)
def test_schema_states_the_rules_own_pattern(schema, component, field, regex):
    assert _field(schema, component, field)["pattern"] == _ecma(regex)


def test_schema_states_param_names_and_values(schema):
    params = schema["components"]["schemas"]["RunInputRequest"]["properties"]["params"]
    assert _ecma(rules.PARAM_KEY_RE) in params["description"]  # OpenAPI 3.0 has no propertyNames
    assert params["maxProperties"] == rules.MAX_PARAMS
    kinds = {branch["type"] for branch in params["additionalProperties"]["anyOf"]}
    assert kinds == {"string", "number", "boolean"}


def test_schema_documents_statuses_the_server_answers(schema):
    paths = schema["paths"]
    assert "401" in paths["/api/auth/token"]["post"]["responses"]
    revoke = paths["/api/orgs/{org_id}/tokens/{id}/"]["delete"]["responses"]
    assert "200" in revoke and "204" not in revoke
    too_old = paths["/api/agent/heartbeat"]["post"]["responses"]["426"]
    assert too_old["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert "agent_too_old" in too_old["description"]
    install = paths["/api/orgs/{org_id}/slack/install-url/"]["get"]["responses"]["409"]
    assert install["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert schema["components"]["schemas"]["ApiTokenOutput"]["properties"]["createdBy"]["nullable"] is True


def test_the_rules_patterns_agree_with_the_rules(settings):
    """The patterns are documentation of the rules; spot-check they accept and refuse alike."""
    for value in ["my-bucket", "a.b_c", "ab", "-ab", "abc-", "a" * 64, "Bucket1"]:
        assert bool(names.BUCKET_RE.match(value)) == _accepts(names.clean_bucket, value), value
    for value in ["main", "v1.2.3", " main", "-x", "a\x01", "refs/heads/x"]:
        assert bool(rules.REF_RE.match(value)) == _accepts(rules.clean_ref, value), value
    for value in ["deploy", "Deploy", "de ploy", "-x", "x" * 50, "x" * 51]:
        assert bool(rules.KEYWORD_INPUT_RE.match(value)) == _accepts(rules.clean_keyword, value), value
    assert not names.SECRET_KEY_RE.match("secret\n") and not names.ACCESS_KEY_RE.match("AKIA\n")


def _accepts(clean, value) -> bool:
    try:
        clean(value)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize(
    "method,path,body",
    [
        ("post", "/api/orgs", {"name": "x", "slug": 5}),
        ("post", "/api/orgs/acme/agents", {"name": "web", "labels": [0]}),
        ("post", "/api/orgs/acme/agents", {"name": 7}),
        ("post", "/api/orgs/acme/triggers", {"name": "t", "workflow": "deploy", "enabled": 1}),
    ],
)
def test_a_number_is_not_a_string_and_0_is_not_a_boolean(api, owner, method, path, body):
    response = getattr(api.as_user(owner), method)(path, body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "validation_error"


def test_binding_path_style_takes_only_true_or_false(api, owner, org_a):
    binding = StorageBindingFactory(org=org_a)
    url = f"/api/orgs/acme/storage/bindings/{binding.pk}"
    response = api.as_user(owner).patch(url, {"pathStyle": "yes"}, format="json")
    assert response.status_code == 400 and "pathStyle" in response.json()["error"]["details"]["fields"]
    binding.refresh_from_db()
    assert binding.path_style is True


def test_agent_list_refuses_an_unusable_page_size(api, owner, org_a):
    AgentFactory(org=org_a)
    api.as_user(owner)
    assert api.get("/api/orgs/acme/agents?pageSize=null").status_code == 400
    assert api.get("/api/orgs/acme/agents?pageSize=1").json()["count"] == 1
