"""API calls that carry their own credentials skip the session, user and messages middleware."""

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_a_token_api_call_does_no_session_or_messages_work(org_a, org_token):
    response = Client().get(f"/api/orgs/{org_a.slug}", HTTP_AUTHORIZATION=f"Bearer {org_token[1]}")
    assert response.status_code == 200
    request = response.wsgi_request
    assert not hasattr(request, "session") and not hasattr(request, "_messages")
    assert "sessionid" not in response.cookies


def test_a_jwt_api_call_does_no_session_work(api, member, org_a):
    api.as_user(member)
    response = api.get(f"/api/orgs/{org_a.slug}")
    assert response.status_code == 200
    assert not hasattr(response.wsgi_request, "session")


def test_pages_keep_the_session_and_messages(member, org_a):
    client = Client()
    client.force_login(member)
    response = client.get(f"/orgs/{org_a.slug}/jobs/")
    assert response.status_code == 200
    assert response.wsgi_request.user == member
    assert hasattr(response.wsgi_request, "_messages")


def test_an_api_call_without_credentials_is_still_a_401_in_the_error_shape(org_a):
    response = Client().get(f"/api/orgs/{org_a.slug}")
    assert response.status_code == 401
    assert "error" in response.json()
