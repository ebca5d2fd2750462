"""The wire is camelCase in one place (djangorestframework-camel-case, configured in settings and
deplite.api.camel); user data is never converted; serializers name every bad field at once; the
slug rule holds on create and update."""

from __future__ import annotations

import json

import pytest

from orgs.models import AuditEvent, Organization
from triggers.models import Job, Trigger

from ..factories import TriggerFactory

FORM = "application/x-www-form-urlencoded"  # what curl -d sends


@pytest.fixture
def trigger(org_a):
    return TriggerFactory(org=org_a, name="deploy-prod", workflow="deploy", agent_labels=["prod"])


def run(api, trigger, body: dict):
    return api.generic("POST", f"/api/triggers/{trigger.id}/run", json.dumps(body), content_type=FORM)


def test_params_keys_round_trip_exactly(api, member, trigger):
    response = run(api.as_user(member), trigger, {"params": {"my_key": 1, "someKey": 2}})
    assert response.status_code == 202, response.content
    assert response.json()["params"] == {"my_key": "1", "someKey": "2"}
    job = Job.objects.get()
    assert job.params == {"my_key": "1", "someKey": "2"}
    detail = api.get(f"/api/orgs/acme/jobs/{job.pk}").json()
    assert detail["params"] == {"my_key": "1", "someKey": "2"}
    assert "shortId" in detail and "short_id" not in detail


def test_every_bad_field_is_named_at_once(api, member, trigger):
    body = {"ref": "-x", "params": {"1BAD": "x", "K": [1, 2], "GOOD": "ok"}}
    response = run(api.as_user(member), trigger, body)
    assert response.status_code == 400
    fields = response.json()["error"]["details"]["fields"]
    assert set(fields) == {"ref", "params.1BAD", "params.K"}, fields
    assert not Job.objects.exists()


@pytest.mark.parametrize("ref", [5, "-x", "--upload-pack=touch /tmp/pwned"])
def test_a_ref_that_is_not_a_string_or_starts_with_a_dash_is_refused(api, member, trigger, ref):
    response = run(api.as_user(member), trigger, {"ref": ref})
    assert response.status_code == 400
    assert list(response.json()["error"]["details"]["fields"]) == ["ref"]
    assert response.json()["error"]["message"].startswith("ref")
    assert not Job.objects.exists()


def test_trigger_errors_collect_every_field_in_camel_case(api, admin_user):
    response = api.as_user(admin_user).post(
        "/api/orgs/acme/triggers",
        {"name": "t", "workflow": "../x", "agentLabels": ["ok", "bad label!"], "chatKeyword": "Two Words"},
        format="json",
    )
    assert response.status_code == 400
    fields = response.json()["error"]["details"]["fields"]
    assert {"workflow", "agentLabels", "chatKeyword"} <= set(fields), fields
    assert not Trigger.objects.exists()


def test_uuid_shaped_slug_is_refused_on_patch_as_on_create(api, owner, org_a):
    uuid_slug = "00000000-0000-0000-0000-000000000001"
    response = api.as_user(owner).patch("/api/orgs/acme", {"slug": uuid_slug}, format="json")
    assert response.status_code == 400
    assert "slug" in response.json()["error"]["details"]["fields"]
    org_a.refresh_from_db()
    assert org_a.slug == "acme"
    created = api.post("/api/orgs", {"name": "x", "slug": uuid_slug}, format="json")
    assert created.status_code == 400 and "slug" in created.json()["error"]["details"]["fields"]
    assert not Organization.objects.filter(slug=uuid_slug).exists()


def test_schema_shows_camel_case_properties(api, owner):
    response = api.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    schemas = json.loads(response.content)["components"]["schemas"]
    trigger = schemas["TriggerOutput"]["properties"]
    assert {"agentLabels", "chatKeyword", "runUrl", "createdAt"} <= set(trigger)
    assert not any("_" in name for name in trigger)
    assert "chatKeyword" in schemas["TriggerInputRequest"]["properties"]
    assert "bindingId" in schemas["PresignUploadInputRequest"]["required"]


def test_user_data_and_the_tail_of_a_dotted_error_key_are_never_converted(api, admin_user, member, org_a, trigger):
    """Params keys, audit data and an error naming a bad param keep the user's own names, both ways;
    the keys around them are converted."""
    response = run(api.as_user(member), trigger, {"ref": 5, "params": {"my_key": [1], "someKey": "ok"}})
    assert response.status_code == 400
    assert set(response.json()["error"]["details"]["fields"]) == {"ref", "params.my_key"}
    AuditEvent.objects.create(org=org_a, actor_kind="system", action="x.y", data={"scope_type": "org", "someKey": 1})
    [event] = api.as_user(admin_user).get("/api/orgs/acme/audit", {"action": "x.y"}).json()["results"]
    assert event["data"] == {"scope_type": "org", "someKey": 1}
    assert "actorKind" in event and "actor_kind" not in event


def test_a_service_s_field_names_are_camel_case_on_the_wire(api, admin_user, org_a, trigger):
    """A service names a field as Python does (`chat_keyword`); the error says the wire's name."""
    body = {"name": "t2", "type": "slack", "workflow": "deploy", "chatTeamId": "T1", "chatChannelId": "C1"}
    first = api.as_user(admin_user).post("/api/orgs/acme/triggers", {**body, "chatKeyword": "go"}, format="json")
    assert first.status_code == 201, first.content
    again = api.as_user(admin_user).post(
        "/api/orgs/acme/triggers", {**body, "name": "t3", "chatKeyword": "go"}, format="json"
    )
    assert again.status_code == 409, again.content
    details = again.json()["error"]["details"]
    assert list(details["fields"]) == ["chatKeyword"] and details["triggerName"] == "t2"


def test_a_snake_case_body_key_is_not_a_second_spelling(api, admin_user, org_a):
    trigger = TriggerFactory(org=org_a, agent_labels=["prod"], default_ref="main")
    response = api.as_user(admin_user).patch(
        f"/api/orgs/acme/triggers/{trigger.pk}", {"default_ref": "release", "agent_labels": ["x"]}, format="json"
    )
    assert response.status_code == 200
    trigger.refresh_from_db()
    assert trigger.default_ref == "main" and trigger.agent_labels == ["prod"]


def test_run_page_shows_every_bad_param_next_to_the_params_field(client, member, trigger):
    client.force_login(member)
    response = client.post(f"/orgs/acme/triggers/{trigger.pk}/run", {"ref": "-x", "params": "1X=a\nY_OK=b\nZ-Z=c"})
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert len(errors["params"]) == 2 and "1X" in errors["params"][0] and "Z-Z" in errors["params"][1], errors
    assert "ref" in errors
    assert not Job.objects.exists()


def test_schema_documents_the_error_shape_and_tags_operations(api, member):
    schema = api.as_user(member).get("/api/schema/?format=json").json()
    error = schema["components"]["schemas"]["Error"]
    assert set(error["properties"]["error"]["properties"]) == {"code", "message", "details"}
    rerun = schema["paths"]["/api/orgs/{org_id}/jobs/{id}/rerun/"]["post"]
    assert rerun["tags"] == ["jobs"]
    for status in ("400", "401", "403", "404", "409"):
        assert rerun["responses"][status]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Error"
        }
    assert schema["paths"]["/api/orgs/{org_id}/storage/bindings/"]["get"]["tags"] == ["storage"]


def test_schema_documents_request_bodies_as_json_only(api, member):
    schema = api.as_user(member).get("/api/schema/?format=json").json()
    bodies = {
        f"{method.upper()} {path}": sorted(operation["requestBody"]["content"])
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if isinstance(operation, dict) and "requestBody" in operation
    }
    assert len(bodies) >= 15, bodies
    assert {k: v for k, v in bodies.items() if v != ["application/json"]} == {}
    patch = schema["paths"]["/api/orgs/{org_id}/members/{id}/"]["patch"]["requestBody"]["content"]
    assert patch["application/json"]["schema"] == {"$ref": "#/components/schemas/PatchedMemberUpdateInputRequest"}


def test_schema_marks_what_can_be_null_and_documents_the_orgs_list_as_a_page(api, member):
    schema = api.as_user(member).get("/api/schema/?format=json").json()
    schemas = schema["components"]["schemas"]
    for name, field in [
        ("JobOutput", "triggerId"),
        ("JobDetailOutput", "triggerId"),
        ("JobStepOutput", "startedAt"),
        ("JobStepOutput", "finishedAt"),
        ("JobStepOutput", "exitCode"),
    ]:
        assert schemas[name]["properties"][field].get("nullable") is True, (name, field)
    orgs = schema["paths"]["/api/orgs/"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    page = schemas[orgs["$ref"].rsplit("/", 1)[1]]
    assert set(page["properties"]) == {"count", "next", "previous", "results"}
    listed = api.get("/api/orgs").json()
    assert set(listed) == set(page["properties"])
