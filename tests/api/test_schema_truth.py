"""What the schema fuzz run (test_schema_fuzz.py) found, pinned one by one: the schema states the
server's own validation patterns, statuses and nullable fields, and the server refuses what the
schema says is not valid (a number for a string, 0 for a boolean, an unusable page size or filter)."""

from __future__ import annotations

import re

import pytest

from storage import names
from triggers import rules

from ..factories import AgentFactory, JobFactory, StorageBindingFactory, TriggerFactory

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


def _validate(schema: dict, component: str, instance) -> None:
    """`instance` against a component of the served schema, $refs resolved within it."""
    from openapi_schema_validator import OAS30Validator

    OAS30Validator({"$ref": f"#/components/schemas/{component}", "components": schema["components"]}).validate(instance)


def test_the_agent_claim_is_in_the_schema_as_claim_view_answers_it(schema, org_a, settings):
    """`POST /api/agent/jobs/claim` is a plain async view that drf-spectacular does not list by
    itself (agents/schema.py adds it): what the schema states is what the real claim answers."""
    from tests.agents.signed import SignedAgent

    claim = schema["paths"]["/api/agent/jobs/claim"]["post"]
    assert claim["security"] == [{"agentSignature": []}]
    assert "requestBody" not in claim
    (wait,) = claim["parameters"]
    assert (wait["in"], wait["name"], wait["schema"]) == (
        "query",
        "wait",
        {"type": "integer", "minimum": 0, "maximum": settings.DEPLITE_AGENT_MAX_WAIT_SECONDS},
    )
    assert {"200", "204", "400", "401"} <= set(claim["responses"])
    assert "content" not in claim["responses"]["204"]

    agent = AgentFactory(org=org_a, labels=["prod"])
    trigger = TriggerFactory(org=org_a, agent_labels=["prod"])
    file_id = "0b9a3c8e-6f0e-4f3b-9d0a-2a1b3c4d5e6f"
    JobFactory(
        org=org_a,
        trigger=trigger,
        params={"FILE": file_id},
        input_files=[{"param": "FILE", "fileId": file_id, "fileName": "app.tar.gz", "size": 10}],
    )
    signed = SignedAgent(agent)
    answer = signed.claim()
    assert answer.status_code == 200, answer.content
    body = answer.json()
    _validate(schema, "ClaimOutput", body)
    # Every field the claim sends is stated, and every stated field is sent.
    component = schema["components"]["schemas"]
    assert set(body) == set(component["ClaimOutput"]["properties"])
    assert set(body["trigger"]) == set(component["ClaimTrigger"]["properties"])
    assert set(body["inputFiles"][0]) == set(component["ClaimInputFile"]["properties"])
    none = signed.claim(wait=0)
    assert (none.status_code, none.content) == (204, b"")
    bad = signed.claim(wait=settings.DEPLITE_AGENT_MAX_WAIT_SECONDS + 1)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "validation_error"
