"""One boto3 client per binding per process: built under a lock, cached (at most MAX_CACHED_CLIENTS),
rebuilt when the binding's connection settings or credentials change."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from storages.backends.s3 import S3Storage

from ..models import StorageBinding
from .guard import install_connect_guard, refuse_redirects

CONNECT_TIMEOUT = 5
READ_TIMEOUT = 30
MAX_ATTEMPTS = 3
# "Test connection" answers a person waiting on a page: fail fast, no retries.
TEST_CONNECT_TIMEOUT = 3
TEST_READ_TIMEOUT = 5
MAX_CACHED_CLIENTS = 256


class BindingStorage(S3Storage):
    """django-storages' S3 backend on the binding's shared, guarded boto3 resource."""

    def __init__(self, *, binding: StorageBinding, resource):
        super().__init__(
            bucket_name=binding.bucket,
            endpoint_url=binding.endpoint,
            region_name=_region(binding),
            location="",
            file_overwrite=True,
            querystring_auth=True,
            default_acl=None,
        )
        self._resource = resource

    @property
    def connection(self):
        return self._resource


@dataclass(frozen=True)
class _Entry:
    fingerprint: str
    resource: Any
    storage: BindingStorage

    @property
    def client(self):
        return self.resource.meta.client


_lock = threading.Lock()
_cache: OrderedDict[Any, _Entry] = OrderedDict()


def _region(binding: StorageBinding) -> str:
    return binding.region or "us-east-1"


def _fingerprint(binding: StorageBinding) -> str:
    # A digest, so the cache never holds a second copy of the plaintext secret in a key.
    parts = [binding.endpoint, binding.region, binding.bucket, binding.access_key, binding.secret_key]
    parts.append("path" if binding.path_style else "virtual")
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


def build(
    binding: StorageBinding, *, connect_timeout: float, read_timeout: float, max_attempts: int
):  # -> boto3 S3 ServiceResource
    config = Config(
        signature_version="s3v4",
        region_name=_region(binding),
        s3={"addressing_style": "path" if binding.path_style else "virtual"},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"mode": "standard", "max_attempts": max_attempts},
    )
    session = boto3.session.Session(
        aws_access_key_id=binding.access_key,
        aws_secret_access_key=binding.secret_key,
        region_name=_region(binding),
    )
    resource = session.resource("s3", endpoint_url=binding.endpoint, config=config)
    install_connect_guard(resource.meta.client)
    resource.meta.client.meta.events.register_first("needs-retry.s3", refuse_redirects)
    return resource


def _entry(binding: StorageBinding) -> _Entry:
    fingerprint = _fingerprint(binding)
    entry = _cache.get(binding.pk)
    if entry is not None and entry.fingerprint == fingerprint:
        return entry
    with _lock:
        entry = _cache.get(binding.pk)
        if entry is None or entry.fingerprint != fingerprint:
            resource = build(
                binding, connect_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT, max_attempts=MAX_ATTEMPTS
            )
            entry = _Entry(fingerprint, resource, BindingStorage(binding=binding, resource=resource))
            _cache[binding.pk] = entry
        _cache.move_to_end(binding.pk)
        while len(_cache) > MAX_CACHED_CLIENTS:
            _cache.popitem(last=False)
        return entry


def client_for(binding: StorageBinding):
    """The binding's shared boto3 S3 client (thread-safe)."""
    return _entry(binding).client


def storage_for(binding: StorageBinding) -> BindingStorage:
    return _entry(binding).storage


def forget(binding_id) -> None:
    """Drop a binding's cached client (after delete; a change of settings rebuilds by itself)."""
    with _lock:
        _cache.pop(binding_id, None)
