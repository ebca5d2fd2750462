"""A bucket endpoint that answers with redirects, and verification errors that are not
storage answers: a clear 4xx or a failed file, never a 500 or a crash loop (issue 11 item 6)."""

from __future__ import annotations

import re

import pytest
from pytest_httpserver import HTTPServer
from werkzeug.wrappers import Response

from storage import s3, services
from storage.models import FileStatus, StoredFile
from tests.factories import StorageBindingFactory, StoredFileFactory

from .conftest import assert_error_shape, bindings_url

pytestmark = pytest.mark.django_db


class Redirecting:
    status = 307

    def __init__(self, binding):
        self.binding = binding
        self.hits: list[str] = []


@pytest.fixture
def redirecting(httpserver: HTTPServer, org_a, allow_private):
    """A binding whose endpoint answers every request with a redirect; `hits` counts them."""
    state = Redirecting(StorageBindingFactory(org=org_a, endpoint=httpserver.url_for("/").rstrip("/"), path_style=True))

    def answer(request):
        state.hits.append(request.method)
        return Response("", status=state.status, headers={"Location": "http://169.254.169.254/latest/"})

    httpserver.expect_request(re.compile(".*")).respond_with_handler(answer)
    return state


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_test_connection_says_the_endpoint_redirects_with_a_400(api, owner, org_a, redirecting, status):
    redirecting.status = status
    binding, hits = redirecting.binding, redirecting.hits
    response = api.as_user(owner).post(bindings_url(org_a, binding.pk, "test"))
    error = assert_error_shape(response, 400)
    assert error["code"] == "endpoint_redirect"
    assert f"redirect (HTTP {status})" in error["message"]
    assert error["details"]["fields"]["endpoint"]
    assert len(hits) == 1  # asked once, never followed


def test_verification_fails_the_file_with_the_reason(redirecting, django_capture_on_commit_callbacks):
    redirecting.status = 307
    binding, hits = redirecting.binding, redirecting.hits
    file = StoredFileFactory(org=binding.org, binding=binding, status=FileStatus.VERIFYING)
    with django_capture_on_commit_callbacks(execute=True):
        services.file_verify(file_id=str(file.pk))
    file.refresh_from_db()
    assert file.status == FileStatus.FAILED
    assert "redirect (HTTP 307)" in file.failure_reason
    assert len(hits) == 1


def test_a_region_redirect_names_the_region(httpserver: HTTPServer, org_a, allow_private):
    httpserver.expect_request(re.compile(".*")).respond_with_response(
        Response("", status=301, headers={"x-amz-bucket-region": "eu-west-3"})
    )
    binding = StorageBindingFactory(org=org_a, endpoint=httpserver.url_for("/").rstrip("/"), path_style=True)
    result = s3.check_binding(binding)
    assert (result.ok, result.code) == (False, "wrong_region")
    assert "eu-west-3" in result.message


def test_every_verification_error_is_bounded_by_the_attempt_cap(binding, monkeypatch):
    def broken(**kwargs):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(s3, "head_object", broken)
    file = StoredFileFactory(org=binding.org, binding=binding, status=FileStatus.VERIFYING)
    for attempt in range(1, services.MAX_VERIFY_ATTEMPTS):
        with pytest.raises(RecursionError):
            services.file_verify(file_id=str(file.pk))
        row = StoredFile.objects.get(pk=file.pk)
        assert (row.status, row.verify_attempts, row.verify_lease_until) == (FileStatus.VERIFYING, attempt, None)
    services.file_verify(file_id=str(file.pk))
    row = StoredFile.objects.get(pk=file.pk)
    assert row.status == FileStatus.FAILED
    assert f"after {services.MAX_VERIFY_ATTEMPTS} tries" in row.failure_reason
    assert "RecursionError" in row.failure_reason


def test_a_file_whose_tries_all_died_silently_is_failed_at_the_next_claim(binding, monkeypatch):
    # A worker SIGKILLed mid-check leaves no exception behind, only the counted attempt.
    monkeypatch.setattr(s3, "head_object", lambda **kw: pytest.fail("must not try again"))
    file = StoredFileFactory(
        org=binding.org, binding=binding, status=FileStatus.VERIFYING, verify_attempts=services.MAX_VERIFY_ATTEMPTS
    )
    services.file_verify(file_id=str(file.pk))
    assert StoredFile.objects.get(pk=file.pk).status == FileStatus.FAILED
