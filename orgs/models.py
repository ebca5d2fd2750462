from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.base_user import BaseUserManager
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone

from .actors import ActorKind


class ActorStamp(models.Model):
    """Who created the row, recorded one way (`Actor.stamp()`), like the audit log's actor:
    the kind (user, token, agent, system), its id and a label, which stay when the user or
    token is gone."""

    actor_kind = models.CharField(max_length=10, choices=ActorKind.choices, blank=True, default="")
    actor_id = models.CharField(max_length=64, blank=True, default="")
    actor_label = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        abstract = True


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create(self, email: str, password: str | None, **extra):
        if not email:
            raise ValueError("An email is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra):
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra):
        extra.update(is_staff=True, is_superuser=True)
        return self._create(email, password, **extra)


class User(AbstractUser):
    """A person. Logs in by email; belongs to organisations through Membership."""

    username = None
    email = models.EmailField("email address", unique=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    # Bumped by "log out everywhere" and a password change: web sessions and access tokens
    # carry the value they were issued under and stop working once it moves on.
    auth_epoch = models.PositiveIntegerField(default=0, editable=False)

    objects = UserManager()

    def __str__(self) -> str:
        return self.email

    def get_session_auth_hash(self) -> str:
        if not self.auth_epoch:
            return super().get_session_auth_hash()  # sessions from before the field stay valid
        from django.utils.crypto import salted_hmac

        return salted_hmac(
            "orgs.User.get_session_auth_hash", f"{self.password}:{self.auth_epoch}", algorithm="sha256"
        ).hexdigest()


class Organization(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    slug = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=100)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.slug


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"


class Membership(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["org", "user"], name="membership_unique_org_user")]
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.user} in {self.org} ({self.role})"


class Invitation(models.Model):
    """An email not yet registered, added as a member: becomes a Membership once that
    person signs up and the address is verified."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    invited_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    accepted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["org", "email"], condition=models.Q(accepted_at__isnull=True), name="invitation_open_unique"
            )
        ]
        ordering = ["created_at"]

    # Derived from the setting rather than stored, so shortening DEPLITE_INVITATION_EXPIRY_SECONDS
    # also ends the invitations already sent.
    @property
    def expires_at(self) -> datetime:
        return self.created_at + timedelta(seconds=settings.DEPLITE_INVITATION_EXPIRY_SECONDS)

    @property
    def is_expired(self) -> bool:
        return self.expires_at <= timezone.now()


class TokenScope(models.TextChoices):
    ORG = "org", "Organisation"
    STORAGE = "storage", "Storage"
    TRIGGER = "trigger", "Trigger"


class StoragePermission(models.TextChoices):
    READ = "read", "Read"
    WRITE = "write", "Write"
    DELETE = "delete", "Delete"


class ApiToken(models.Model):
    """A `tk_…` token for automation. Only its SHA-256 is stored; `prefix` is shown."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="api_tokens", db_index=True)
    name = models.CharField(max_length=100)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(max_length=16, editable=False)
    scope_type = models.CharField(max_length=10, choices=TokenScope.choices, default=TokenScope.ORG)
    binding_ids = models.JSONField(default=list, blank=True)
    storage_permissions = models.JSONField(default=list, blank=True)
    trigger_ids = models.JSONField(default=list, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        now = timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class AuditEvent(models.Model):
    """Who did what to which object, written by every service that changes state."""

    id = models.BigAutoField(primary_key=True)
    # Indexed by audit_org_created (org first): every service writes an audit row, so no second index.
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="audit_events", db_index=False)
    actor_kind = models.CharField(max_length=10, choices=ActorKind.choices)
    actor_id = models.CharField(max_length=64, blank=True)
    actor_label = models.CharField(max_length=255, blank=True)
    action = models.CharField(max_length=64)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    data = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["org", "-created_at"], name="audit_org_created")]

    def __str__(self) -> str:
        return f"{self.action} by {self.actor_label}"
