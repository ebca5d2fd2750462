"""Storage fixtures: a real S3-compatible server (moto's server mode, in its own process,
over HTTP on a free port), a recorder of outbound connections, and bindings pointed at
the server."""

from __future__ import annotations

import sys

import pytest
import requests

from tests.factories import StorageBindingFactory
from tests.s3_server import admin_client, start_moto

# --- outbound connections ------------------------------------------------------------------------
# An audit hook sees every socket.connect() the process makes (Python-level sockets: boto3,
# requests, redis; libpq's PostgreSQL sockets are C and invisible). Hooks cannot be
# removed, so one is installed for the session and records only while a test asks.
_recording: list[tuple] | None = None


def _audit(event: str, args: tuple) -> None:
    if event == "socket.connect" and _recording is not None:
        address = args[1]
        if isinstance(address, tuple):
            _recording.append(address)


sys.addaudithook(_audit)


class Outbound(list):
    def to_port(self, port: int) -> list[tuple]:
        return [a for a in self if len(a) >= 2 and a[1] == port]


@pytest.fixture
def outbound():
    """Every (host, port) this process connects to during the test."""
    global _recording
    seen = Outbound()
    _recording = seen
    yield seen
    _recording = None


# --- moto ---------------------------------------------------------------------------------------------
# The plain server (`moto_url`, `s3_admin`, `bucket`) is in tests/conftest.py: the end-to-end tests use it too.


@pytest.fixture(scope="session")
def moto_auth():
    """A second moto server that checks keys and signatures like S3 (IAM auth on).

    The first 4 requests run unauthenticated: they create an IAM user, its key, an
    allow-all policy and a bucket. Every later request is authenticated.
    """
    proc, url = start_moto()
    requests.post(f"{url}/moto-api/reset-auth", data=b"4", timeout=5).raise_for_status()
    iam = admin_client(url, "iam")
    iam.create_user(UserName="deplite")
    key = iam.create_access_key(UserName="deplite")["AccessKey"]
    iam.put_user_policy(
        UserName="deplite",
        PolicyName="all",
        PolicyDocument='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}',
    )
    admin_client(url).create_bucket(Bucket="authed-bucket")
    yield {
        "url": url,
        "access_key": key["AccessKeyId"],
        "secret_key": key["SecretAccessKey"],
        "bucket": "authed-bucket",
    }
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def allow_private(settings):
    settings.DEPLITE_ALLOW_PRIVATE_STORAGE_ENDPOINTS = True
    # As the environment variable does at start-up: pages may then talk to http:// buckets too.
    settings.DEPLITE_CONTENT_SECURITY_POLICY = settings.DEPLITE_CONTENT_SECURITY_POLICY.replace(
        "connect-src 'self' https:;", "connect-src 'self' https: http:;"
    )
    return settings


@pytest.fixture
def binding(org_a, moto_url, bucket, allow_private):
    """org_a's binding to a fresh bucket on the moto server."""
    return StorageBindingFactory(
        org=org_a,
        name="prod-artifacts",
        endpoint=moto_url,
        region="ap-northeast-2",
        bucket=bucket,
        access_key="AKIADEPLITETEST",
        secret_key="moto-secret",
        path_style=True,
    )


def files_url(org, *parts: str) -> str:
    tail = "/".join(str(p) for p in parts)
    return f"/api/orgs/{org.slug}/files" + (f"/{tail}" if tail else "")


def bindings_url(org, *parts: str) -> str:
    tail = "/".join(str(p) for p in parts)
    return f"/api/orgs/{org.slug}/storage/bindings" + (f"/{tail}" if tail else "")


def assert_error_shape(response, status: int | None = None) -> dict:
    if status is not None:
        assert response.status_code == status, (response.status_code, response.content[:500])
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert isinstance(body["error"]["code"], str) and body["error"]["message"]
    return body["error"]
