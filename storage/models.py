"""The customer's own S3-compatible bucket (StorageBinding) and the files Deplite tracks in it."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from deplite.crypto import EncryptedTextField
from orgs.models import ActorStamp, ApiToken, Organization


class StorageBinding(models.Model):
    """Credentials and location of one bucket. The secret is encrypted at rest and write-only."""

    # A storage token's bindingIds name bindings directly (Principal.restrict).
    token_binding_field = "pk"  # noqa: S105 (a lookup name, not a secret)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="storage_bindings", db_index=True)
    name = models.CharField(max_length=100)
    endpoint = models.CharField(max_length=255)
    region = models.CharField(max_length=32, blank=True, default="")
    bucket = models.CharField(max_length=63)
    access_key = models.CharField(max_length=128)
    secret_key = EncryptedTextField()
    path_style = models.BooleanField(default=False)
    prefix = models.CharField(max_length=200, blank=True, default="")
    # Job outputs stored through this binding are removed this many days after their upload
    # (storage.services.retention); null keeps them. Input files are never expired by it.
    output_retention_days = models.PositiveIntegerField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["org", "name"], name="storage_binding_unique_org_name")]

    def __str__(self) -> str:
        return f"{self.name} ({self.bucket})"

    def __repr__(self) -> str:
        # Never let a debugger, log line or error report print the secret.
        return f"<StorageBinding {self.pk} {self.name!r}>"


class FileStatus(models.TextChoices):
    PENDING = "pending", "Pending upload"
    VERIFYING = "verifying", "Verifying"
    AVAILABLE = "available", "Available"
    FAILED = "failed", "Failed"
    EXPIRED = "expired", "Expired"
    DELETED = "deleted", "Deleted"


# A file in one of these states still has (or will have) its object in the bucket.
LIVE_STATUSES = (FileStatus.PENDING, FileStatus.VERIFYING, FileStatus.AVAILABLE)
# Statuses whose bucket object must go.
REMOVABLE_STATUSES = (FileStatus.FAILED, FileStatus.EXPIRED, FileStatus.DELETED)


class StoredFile(ActorStamp):
    """One object in a binding's bucket, from presigned upload to deletion."""

    # A storage token sees the files of its bindings only (Principal.restrict).
    token_binding_field = "binding_id"  # noqa: S105 (a lookup name, not a secret)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="stored_files", db_index=True)
    binding = models.ForeignKey(StorageBinding, on_delete=models.CASCADE, related_name="files")
    file_name = models.CharField(max_length=255)
    content_type = models.CharField(max_length=255)
    declared_size = models.BigIntegerField(null=True, blank=True)
    object_key = models.CharField(max_length=1024)
    status = models.CharField(max_length=10, choices=FileStatus.choices, default=FileStatus.PENDING)
    failure_reason = models.CharField(max_length=500, blank=True, default="")
    # What HeadObject found when the upload was verified.
    size = models.BigIntegerField(null=True, blank=True)
    etag = models.CharField(max_length=128, blank=True, default="")
    stored_content_type = models.CharField(max_length=255, blank=True, default="")
    # Hex SHA-256 of the content, when the uploader declared it and it was checked (job outputs);
    # blank for files uploaded before, or without one.
    sha256 = models.CharField(max_length=64, blank=True, default="")
    # The job that produced this file (an output), as a plain id: storage never imports triggers.
    # The link itself (input or output) is triggers.JobFile.
    job_id = models.UUIDField(null=True, blank=True, db_index=True)
    created_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by_token = models.ForeignKey(ApiToken, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    # A verification worker holds the file until this time; a lapsed lease on a file still
    # `verifying` means its task was lost, and the sweeper enqueues it again.
    verify_lease_until = models.DateTimeField(null=True, blank=True)
    verify_attempts = models.PositiveIntegerField(default=0)
    # Set once the bucket object of a deleted/expired/rejected file is gone.
    object_removed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["org", "-created_at"], name="storedfile_org_created"),
            models.Index(fields=["status", "created_at"], name="storedfile_status_created"),
        ]

    def __str__(self) -> str:
        return f"{self.file_name} ({self.status})"
