"""The run endpoint (and a re-run naming a ref) refuses a ref that is not a string or starts with '-' (git option
injection in workflows that pass $REF to git) — issue 11 item 8."""

from __future__ import annotations

import pytest
from django.test import Client

from triggers.models import Job

from ..factories import JobFactory, TriggerFactory


@pytest.mark.parametrize("prefix", ["", "/api"])
@pytest.mark.parametrize(
    "body",
    [
        '{"ref": 5}',
        '{"ref": 5.5}',
        '{"ref": true}',
        '{"ref": "-x"}',
        '{"ref": "--upload-pack=touch /tmp/pwned"}',
        '{"ref": "  -x"}',
    ],
)
def test_run_refuses_a_ref_that_is_not_a_plain_string(api, org_a, org_token, prefix, body):
    trigger = TriggerFactory(org=org_a)
    response = api.as_token(org_token[1]).generic(
        "POST", f"{prefix}/triggers/{trigger.id}/run", body, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "validation_error" and error["message"].startswith("ref")
    assert Job.objects.count() == 0


def test_run_still_takes_ordinary_refs(api, org_a, org_token):
    trigger = TriggerFactory(org=org_a)
    for ref in ("main", "v1.2.3", "feature/x-y", "3f2a9c1"):
        response = api.as_token(org_token[1]).post(f"/triggers/{trigger.id}/run", {"ref": ref}, format="json")
        assert response.status_code == 202, response.content
        assert response.json()["ref"] == ref


@pytest.mark.parametrize("blank", ["", "   ", None])
def test_a_blank_default_ref_from_the_api_means_main_as_on_the_form(api, org_a, org_token, owner, blank):
    """A trigger saved with `defaultRef: ""` used to keep "", and its runs without a ref got an empty $REF."""
    body = {"name": "deploy", "type": "webhook", "workflow": "deploy"}
    if blank is not None:
        body["defaultRef"] = blank
    created = api.as_user(owner).post(f"/api/orgs/{org_a.slug}/triggers", body, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["defaultRef"] == "main"
    run = api.as_token(org_token[1]).post(f"/triggers/{created.json()['id']}/run", {}, format="json")
    assert run.status_code == 202 and run.json()["ref"] == "main"


REFUSED_REFS = [
    '{"ref": 5}',
    '{"ref": true}',
    '{"ref": "-x"}',
    '{"ref": "--upload-pack=touch /tmp/pwned"}',
    '{"ref": "  -x"}',
]


@pytest.mark.parametrize("body", REFUSED_REFS)
def test_rerun_refuses_the_refs_a_run_refuses(api, org_a, member, body):
    job = JobFactory(org=org_a, ref="main")
    response = api.as_user(member).generic(
        "POST", f"/api/orgs/acme/jobs/{job.pk}/rerun", body, content_type="application/json"
    )
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "validation_error" and error["message"].startswith("ref")
    assert Job.objects.count() == 1


def test_the_rerun_form_refuses_a_ref_starting_with_a_dash_next_to_the_field(org_a, member):
    job = JobFactory(org=org_a, ref="main")
    client = Client()
    client.force_login(member)
    response = client.post(f"/orgs/acme/jobs/{job.pk}/rerun", {"ref": "--upload-pack=x", "params": ""})
    assert response.status_code == 400
    assert "A ref cannot start with" in response.content.decode()
    assert Job.objects.count() == 1
