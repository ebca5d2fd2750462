"""The server refuses storage endpoints that reach loopback, private, link-local or metadata
addresses — on save and again at connect time — without opening a connection."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

import pytest
import requests

from deplite.api.errors import ValidationFailed
from orgs.actors import Actor
from storage import endpoints, s3, services
from storage.endpoints import validate_endpoint
from storage.models import FileStatus, StorageBinding
from tests.factories import StoredFileFactory

from .conftest import assert_error_shape, bindings_url

pytestmark = pytest.mark.django_db

REFUSED = [
    "http://s3.amazonaws.com",  # plain http
    "https://127.0.0.1",
    "https://127.0.0.1:9000",
    "https://127.1",  # short form of loopback
    "https://2130706433",  # decimal 127.0.0.1
    "https://0x7f000001",  # hex
    "https://017700000001",  # octal
    "https://0x7f.0.0.1",
    "https://10.0.0.5",
    "https://172.16.3.4",
    "https://192.168.1.10",
    "https://169.254.169.254",  # cloud metadata
    "https://169.254.10.10",  # link-local
    "https://100.100.100.200",  # Alibaba metadata
    "https://[::1]",  # IPv6 loopback
    "https://[::ffff:127.0.0.1]",  # IPv4-mapped loopback
    "https://[fd00:ec2::254]",  # AWS IMDS over IPv6
    "https://[fe80::1]",  # IPv6 link-local
    "https://0.0.0.0",
    "https://localhost",  # a name that resolves to 127.0.0.1
    "https://localhost.",
    "https://user:pw@s3.amazonaws.com",
    "https://s3.amazonaws.com/bucket",
    "https://s3.amazonaws.com?x=1",
    "ftp://s3.amazonaws.com",
    "s3.amazonaws.com",
    "https://",
    "https://exa mple.com",
    "https://-bad-.example.com",
]


def _create_body(endpoint: str) -> dict:
    return {
        "name": "b",
        "endpoint": endpoint,
        "region": "us-east-1",
        "bucket": "my-bucket",
        "accessKey": "AKIA1",
        "secretKey": "s",
    }


@pytest.mark.parametrize("endpoint", REFUSED)
def test_unsafe_endpoint_is_refused_without_any_connection(api, owner, org_a, endpoint, outbound):
    response = api.as_user(owner).post(bindings_url(org_a), _create_body(endpoint), format="json")
    error = assert_error_shape(response, 400)
    assert error["code"] in ("endpoint_not_allowed", "validation_error")
    assert StorageBinding.objects.count() == 0
    assert outbound == []


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://169.254.169.254",
        "http://169.254.169.254",
        "https://2130706433",
        "https://[fd00:ec2::254]",
        "http://0.0.0.0",
    ],
)
def test_metadata_and_odd_numeric_hosts_stay_refused_when_private_endpoints_are_allowed(
    api, owner, org_a, endpoint, allow_private, outbound
):
    response = api.as_user(owner).post(bindings_url(org_a), _create_body(endpoint), format="json")
    assert_error_shape(response, 400)
    assert outbound == []


def test_private_endpoint_with_http_is_accepted_when_allowed(api, owner, org_a, allow_private, moto_url):
    response = api.as_user(owner).post(bindings_url(org_a), _create_body(moto_url), format="json")
    assert response.status_code == 201, response.content
    assert response.json()["endpoint"] == moto_url


def test_every_resolved_address_must_be_public(monkeypatch):
    monkeypatch.setattr(
        endpoints,
        "resolve",
        lambda host, port: [ipaddress.ip_address("93.184.216.34"), ipaddress.ip_address("10.1.2.3")],
    )
    with pytest.raises(endpoints.EndpointNotAllowed, match="public addresses only") as refused:
        endpoints.check_connect_addresses("two-faced.example", 443, allow_private=False)
    assert "10.1.2.3" not in str(refused.value)


@pytest.mark.parametrize(
    "answer",
    [
        [ipaddress.ip_address("10.20.30.40")],
        [ipaddress.ip_address("127.0.0.1")],
        [ipaddress.ip_address("169.254.169.254")],
        [ipaddress.ip_address("fd12::7")],
        None,  # does not resolve at all
    ],
)
def test_a_refused_host_name_never_reveals_what_it_resolves_to(api, owner, org_a, monkeypatch, answer):
    """Otherwise the check is an oracle for the server's internal DNS: every refusal of a
    name reads the same, whether it is private, loopback, metadata or unknown."""

    def resolve(host, port):
        if answer is None:
            raise OSError("Name or service not known")
        return answer

    monkeypatch.setattr(endpoints, "resolve", resolve)
    response = api.as_user(owner).post(bindings_url(org_a), _create_body("https://db.internal.example"), format="json")
    error = assert_error_shape(response, 400)
    text = response.content.decode()
    for leak in (
        "10.20.30.40",
        "127.0.0.1",
        "169.254",
        "fd12",
        "private address",
        "loopback address",
        "metadata",
        "does not resolve",
        "link-local",
    ):
        assert leak not in text.replace("(private and loopback addresses are not allowed)", ""), leak
    assert error["message"] == (
        "endpoint: not allowed: the host 'db.internal.example' must resolve, from this server, to public addresses "
        "only (private and loopback addresses are not allowed); for self-hosted storage on a private network, the "
        "server needs DEPLITE_ALLOW_PRIVATE_STORAGE_ENDPOINTS=true."
    )


@pytest.mark.parametrize(
    ("address", "embedded"),
    [
        ("2002:7f00:1::1", "127.0.0.1"),  # 6to4 of loopback
        ("2002:a00:5::", "10.0.0.5"),  # 6to4 of a private address
        ("2002:a9fe:a9fe::1", "169.254.169.254"),  # 6to4 of the metadata service
        ("64:ff9b::a00:5", "10.0.0.5"),  # NAT64 of a private address
        ("64:ff9b::7f00:1", "127.0.0.1"),  # NAT64 of loopback
        ("64:ff9b::a9fe:a9fe", "169.254.169.254"),  # NAT64 of the metadata service
        ("2001:0:4136:e378:8000:63bf:f5ff:fffa", "10.0.0.5"),  # Teredo, client 10.0.0.5
        ("::ffff:10.0.0.5", "10.0.0.5"),  # IPv4-mapped
    ],
)
def test_ipv6_forms_embedding_a_private_ipv4_are_refused(api, owner, org_a, monkeypatch, outbound, address, embedded):
    assert str(endpoints.embedded_ipv4(ipaddress.ip_address(address))[-1]) == embedded
    # As a literal in the URL…
    response = api.as_user(owner).post(bindings_url(org_a), _create_body(f"https://[{address}]"), format="json")
    assert_error_shape(response, 400)
    # …and as what a name resolves to, at save and at connect time.
    monkeypatch.setattr(endpoints, "resolve", lambda host, port: [ipaddress.ip_address(address)])
    response = api.as_user(owner).post(bindings_url(org_a), _create_body("https://sneaky.example"), format="json")
    assert_error_shape(response, 400)
    with pytest.raises(endpoints.EndpointNotAllowed):
        endpoints.check_connect_addresses("sneaky.example", 443, allow_private=False)
    assert StorageBinding.objects.count() == 0
    assert outbound == []


def test_ipv6_forms_embedding_a_public_ipv4_are_judged_by_it(monkeypatch):
    for address in ("2002:34db:3801::1", "64:ff9b::34db:3801"):  # 52.219.56.1
        monkeypatch.setattr(endpoints, "resolve", lambda host, port, a=address: [ipaddress.ip_address(a)])
        assert endpoints.check_connect_addresses("s3.example", 443, allow_private=False)


def test_public_https_endpoint_is_accepted(monkeypatch):
    monkeypatch.setattr(endpoints, "resolve", lambda host, port: [ipaddress.ip_address("52.219.56.1")])
    assert endpoints.validate_endpoint("HTTPS://S3.AP-Northeast-2.amazonaws.com/") == (
        "https://s3.ap-northeast-2.amazonaws.com"
    )


# --- connect time ----------------------------------------------------------------------------------------


def test_test_connection_rechecks_the_endpoint_at_connect_time(
    api, owner, org_a, binding, settings, outbound, moto_url
):
    # Saved while private endpoints were allowed; the operator has since turned that off.
    settings.DEPLITE_ALLOW_PRIVATE_STORAGE_ENDPOINTS = False
    response = api.as_user(owner).post(bindings_url(org_a, binding.pk, "test"))
    assert response.status_code == 200
    assert response.json()["ok"] is False
    assert response.json()["code"] == "endpoint_not_allowed"
    assert outbound.to_port(urlsplit(moto_url).port) == []


def test_verification_rechecks_the_endpoint_at_connect_time(binding, settings, outbound, moto_url):
    file = StoredFileFactory(org=binding.org, binding=binding, status=FileStatus.VERIFYING)
    settings.DEPLITE_ALLOW_PRIVATE_STORAGE_ENDPOINTS = False
    services.file_verify(file_id=str(file.pk))
    file.refresh_from_db()
    assert file.status == FileStatus.FAILED
    assert "not allowed" in file.failure_reason
    assert outbound.to_port(urlsplit(moto_url).port) == []


def test_dns_rebinding_after_save_is_refused_at_connect_time(org_a, monkeypatch, outbound):
    """The name resolved to a public address when saved and to loopback when connecting."""
    answers = {"now": [ipaddress.ip_address("52.219.56.1")]}
    monkeypatch.setattr(endpoints, "resolve", lambda host, port: answers["now"])
    binding = services.binding_create(
        org=org_a,
        actor=Actor.system(),
        name="rebind",
        endpoint="https://rebind.example",
        bucket="my-bucket",
        access_key="AKIA1",
        secret_key="s",
    )
    answers["now"] = [ipaddress.ip_address("127.0.0.1")]
    result = s3.check_binding(binding)
    assert (result.ok, result.code) == (False, "endpoint_not_allowed")
    assert outbound == []


def test_guarded_client_connects_to_the_checked_address(binding, s3_admin):
    """The guard does not break ordinary use: the shared client reaches the allowed server."""
    s3_admin.put_object(Bucket=binding.bucket, Key="k", Body=b"abc")
    info = s3.head_object(binding=binding, key="k")
    assert info is not None and info.size == 3


def test_presigned_urls_still_work_for_the_client_side(binding):
    url = s3.presign_put(binding=binding, key="direct", size=None, expires_in=60)
    assert requests.put(url, data=b"x", timeout=10).status_code == 200


def test_a_refused_private_endpoint_names_the_setting_that_allows_it(settings):
    settings.DEPLITE_ALLOW_PRIVATE_STORAGE_ENDPOINTS = False
    for raw in ("https://127.0.0.1:9000", "https://10.0.0.5", "http://minio.internal"):
        with pytest.raises(ValidationFailed) as exc:
            validate_endpoint(raw)
        assert "DEPLITE_ALLOW_PRIVATE_STORAGE_ENDPOINTS=true" in exc.value.message, raw
    with pytest.raises(ValidationFailed) as exc:
        validate_endpoint("https://169.254.169.254")  # a metadata address: no setting allows it
    assert "DEPLITE_ALLOW_PRIVATE_STORAGE_ENDPOINTS" not in exc.value.message
