"""Storage bindings: an org's S3-compatible bucket and the key the server uses for it."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from deplite.errors import Conflict, ValidationFailed
from orgs.actors import Actor
from orgs.models import Organization
from orgs.services import audit_record

from .. import endpoints, s3
from ..models import LIVE_STATUSES, StorageBinding, StoredFile

CREDENTIAL_FIELDS = ("endpoint", "region", "bucket", "access_key")
BINDING_FIELDS = (
    "name",
    "endpoint",
    "region",
    "bucket",
    "access_key",
    "secret_key",
    "path_style",
    "prefix",
    "output_retention_days",
)


def binding_create(
    *,
    org: Organization,
    actor: Actor,
    name: str,
    endpoint: str,
    bucket: str,
    access_key: str,
    secret_key: str,
    region: str = "",
    path_style: bool = False,
    prefix: str = "",
    output_retention_days: int | None = None,
) -> StorageBinding:
    """Create a binding. The endpoint must be one the server may connect to (storage.endpoints)."""
    endpoint = endpoints.validate_endpoint(endpoint)
    try:
        with transaction.atomic():
            binding = StorageBinding.objects.create(
                org=org,
                name=name,
                endpoint=endpoint,
                region=region,
                bucket=bucket,
                access_key=access_key,
                secret_key=secret_key,
                path_style=path_style,
                prefix=prefix,
                output_retention_days=output_retention_days,
                created_by=actor.user,
            )
            audit_record(
                org=org,
                actor=actor,
                action="storage_binding.created",
                target=binding,
                data={"name": name, "endpoint": endpoint, "bucket": bucket, "region": region},
            )
    except IntegrityError:
        raise Conflict("A storage binding with this name already exists.", code="name_taken") from None
    return binding


def binding_update(*, binding: StorageBinding, actor: Actor, **changes: Any) -> StorageBinding:
    """Change a binding. Pointing the stored key somewhere else (endpoint, bucket, region,
    access key) needs the secret sent again: a stolen session must not be able to send the
    stored secret to an endpoint of its choice."""
    unknown = set(changes) - set(BINDING_FIELDS)
    if unknown:
        raise ValueError(f"binding_update got unknown fields {sorted(unknown)}")
    if "endpoint" in changes:
        changes["endpoint"] = endpoints.validate_endpoint(changes["endpoint"])
    changed = {k: v for k, v in changes.items() if k == "secret_key" or getattr(binding, k) != v}
    if not changed:
        return binding
    moved = [k for k in CREDENTIAL_FIELDS if k in changed]
    if moved and "secret_key" not in changed:
        what = ", ".join(k.replace("_", " ") for k in moved)
        raise ValidationFailed(
            f"To change the {what}, send the secret key again.",
            code="secret_required",
            details={"fields": {"secret_key": [f"Required when changing the {what}."]}},
        )
    try:
        with transaction.atomic():
            for key, value in changed.items():
                setattr(binding, key, value)
            binding.updated_at = timezone.now()
            binding.save(update_fields=[*changed, "updated_at"])
            audit_record(
                org=binding.org,
                actor=actor,
                action="storage_binding.updated",
                target=binding,
                # Field names only: values may include the secret.
                data={"fields": sorted(changed)},
            )
    except IntegrityError:
        raise Conflict("A storage binding with this name already exists.", code="name_taken") from None
    return binding


def binding_delete(*, binding: StorageBinding, actor: Actor) -> None:
    """Delete a binding that no live file uses (the bucket's objects are the customer's)."""
    with transaction.atomic():
        if StoredFile.objects.filter(binding=binding, status__in=LIVE_STATUSES).exists():
            raise Conflict(
                "This binding still has files; delete them first.",
                code="binding_in_use",
            )
        audit_record(
            org=binding.org,
            actor=actor,
            action="storage_binding.deleted",
            target=binding,
            data={"name": binding.name, "bucket": binding.bucket},
        )
        binding_id = binding.pk
        binding.delete()
        transaction.on_commit(lambda: s3.forget(binding_id))


def binding_check(*, binding: StorageBinding) -> s3.CheckResult:
    """Test the binding against its bucket (HeadBucket). Network, so never inside a transaction."""
    return s3.check_binding(binding)
