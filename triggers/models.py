"""Triggers (what may be run, and how it is asked for) and jobs (one run of a workflow).

A job never depends on its trigger staying as it was: the workflow, the agent labels and
the trigger's name are copied onto the job when it is created, so editing or deleting a
trigger does not change what a queued job runs or which agent may take it.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from deplite.crypto import EncryptedTextField
from deplite.links import absolute_url
from orgs.models import ActorStamp, Organization
from storage.models import StorageBinding, StoredFile

MAX_NOTIFY_URL = 1000  # a webhook URL's length limit (the trigger's target and the job's copy)


class TriggerType(models.TextChoices):
    WEBHOOK = "webhook", "Webhook"
    SLACK = "slack", "Slack"
    DISCORD = "discord", "Discord"


class ChatProvider(models.TextChoices):
    """The one list of chat providers: a trigger's chat and notify targets here, and in integrations
    (which imports it: triggers never imports integrations) installations, commands and the outbox."""

    SLACK = "slack", "Slack"
    DISCORD = "discord", "Discord"

    @property
    def team_noun(self) -> str:
        """What the provider calls the group a bot is installed in."""
        return "workspace" if self == ChatProvider.SLACK else "server"

    @property
    def team_word(self) -> str:
        """ "Slack workspace", "Discord server"."""
        return f"{self.label} {self.team_noun}"


class ChatRunPolicy(models.TextChoices):
    # Only chat users linked to a member of the org (`/deplite login`).
    MEMBERS = "members", "Linked members only"
    # Anyone in the channel of the installation's own workspace (harmless jobs).
    ANYONE_IN_CHANNEL = "anyone_in_channel", "Anyone in the channel"


class NotifyProvider(models.TextChoices):  # where results go: a chat channel, or any HTTP endpoint
    SLACK = "slack", "Slack"
    DISCORD = "discord", "Discord"
    WEBHOOK = "webhook", "Webhook"


class NotifyOn(models.TextChoices):
    ALWAYS = "always", "Always"
    FAILURE = "failure", "On failure"
    SUCCESS = "success", "On success"
    NONE = "none", "Never"


class Trigger(ActorStamp):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="triggers", db_index=True)
    name = models.CharField(max_length=100)
    type = models.CharField(max_length=10, choices=TriggerType.choices, default=TriggerType.WEBHOOK)
    workflow = models.CharField(max_length=100)
    agent_labels = models.JSONField(default=list, blank=True)
    default_ref = models.CharField(max_length=255, blank=True, default="main")
    enabled = models.BooleanField(default=True)
    # Optional: where the code lives, so a commit SHA ref links to `<repository_url>/commit/<sha>`.
    repository_url = models.URLField(max_length=300, blank=True, default="")

    chat_provider = models.CharField(max_length=10, choices=ChatProvider.choices, blank=True, default="")
    chat_team_id = models.CharField(max_length=64, blank=True, default="")
    chat_channel_id = models.CharField(max_length=64, blank=True, default="")
    chat_keyword = models.CharField(max_length=50, blank=True, default="")
    # Who may run it from chat; a user from outside the workspace never may.
    chat_run_policy = models.CharField(max_length=20, choices=ChatRunPolicy.choices, default=ChatRunPolicy.MEMBERS)

    notify_provider = models.CharField(max_length=10, choices=NotifyProvider.choices, blank=True, default="")
    notify_team_id = models.CharField(max_length=64, blank=True, default="")
    notify_channel_id = models.CharField(max_length=64, blank=True, default="")
    notify_on = models.CharField(max_length=10, choices=NotifyOn.choices, default=NotifyOn.ALWAYS)
    # notifyProvider "webhook": its URL (triggers.notify_url) and signing secret (server-made, shown once).
    notify_url = models.CharField(max_length=MAX_NOTIFY_URL, blank=True, default="")
    notify_secret = EncryptedTextField(blank=True, default="")
    # Set by a 410 Gone from the endpoint: nothing is sent to it until a new URL or a successful test.
    notify_disabled_at = models.DateTimeField(null=True, blank=True)
    notify_disabled_reason = models.CharField(max_length=300, blank=True, default="")

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    # The newest job, kept by the service that creates jobs, so lists show it with a join
    # instead of looking through all the trigger's jobs.
    # Not indexed: every run rewrites it, and an unindexed column keeps that update cheap (HOT);
    # only deleting jobs (rare: an org going away) looks it up.
    last_job = models.ForeignKey(
        "Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )

    # Where the files its jobs upload go (a binding of the same org); without it, the binding of
    # the job's input file, or the org's only binding (triggers.outputs.output_binding_for).
    output_binding = models.ForeignKey(
        StorageBinding, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Where its jobs deploy: the environment's rules gate them (triggers.environments.gate).
    # RESTRICT: an environment named by a trigger is not deleted from under it (deleting the whole org may).
    environment = models.ForeignKey(
        "Environment", null=True, blank=True, on_delete=models.RESTRICT, related_name="triggers"
    )

    # A `trigger` API token sees the triggers it lists (orgs.scoping.Principal.restrict).
    token_trigger_field = "pk"  # noqa: S105 (a lookup, not a secret)

    class Meta:
        ordering = ["name", "created_at"]
        constraints = [
            # A chat message in one channel must map to exactly one trigger of the org that
            # linked the team. Per org, not global: org B naming org A's channel id must
            # neither block org A's trigger nor learn that it exists (the command is routed
            # through the installation's org only).
            models.UniqueConstraint(
                fields=["org", "chat_provider", "chat_team_id", "chat_channel_id", "chat_keyword"],
                condition=~models.Q(chat_keyword=""),
                name="trigger_unique_chat_keyword_per_org",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.org})"


class JobStatus(models.TextChoices):
    # An environment's states, before a job may be claimed: waiting for its approvals, then
    # waiting its turn (behind another deploy of the environment, or held by its lock).
    PENDING_APPROVAL = "pending_approval", "Pending approval"
    WAITING = "waiting", "Waiting"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


FINAL_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})
_RAN = models.Q(status__in=["succeeded", "failed"])  # ran to an end (insights' partial indexes)
# Not claimable yet: an environment holds them.
GATED_STATUSES = frozenset({JobStatus.PENDING_APPROVAL, JobStatus.WAITING})


class JobSource(models.TextChoices):
    WEBHOOK = "webhook", "Webhook"
    API = "api", "API"
    SLACK = "slack", "Slack"
    DISCORD = "discord", "Discord"
    UI = "ui", "Web UI"
    SCHEDULE = "schedule", "Schedule"


class Job(ActorStamp):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # First 8 hex characters of the id, shown as `#abc12345` in chat and notifications.
    short_id = models.CharField(max_length=8, editable=False)  # indexed in Meta (no LIKE index)
    # org and trigger are indexed by the composite indexes in Meta that start with them: a
    # single-column index each would only cost every job INSERT an index entry more.
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="jobs", db_index=False)
    trigger = models.ForeignKey(
        Trigger, null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs", db_index=False
    )
    trigger_name = models.CharField(max_length=100)
    workflow = models.CharField(max_length=100)
    agent_labels = models.JSONField(default=list, blank=True)
    ref = models.CharField(max_length=255, blank=True, default="")
    params = models.JSONField(default=dict, blank=True)
    # [{"param", "fileId", "fileName", "size"}]: params whose value named one of the org's files.
    input_files = models.JSONField(default=list, blank=True)
    # True while an input file is still being verified: such a job is not claimable yet.
    waiting_for_files = models.BooleanField(default=False)

    status = models.CharField(max_length=20, choices=JobStatus.choices, default=JobStatus.QUEUED)
    # The agent is referenced by id, not FK: `agents` depends on `triggers`, never the reverse.
    agent_id = models.UUIDField(null=True, blank=True, db_index=True)
    agent_name = models.CharField(max_length=100, blank=True, default="")
    source = models.CharField(max_length=10, choices=JobSource.choices, default=JobSource.API)

    created_at = models.DateTimeField(default=timezone.now)
    # When its approvals completed (none needed: null), and when it became claimable (at creation
    # without an environment holding it): the reapers count a queued job's age from here.
    approved_at = models.DateTimeField(null=True, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    # A pending approval not given by then ends the job (`approval timed out`).
    approval_expires_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # When the deployed commit was made, if the run request said (`commitTime`): lead time from commit.
    commit_time = models.DateTimeField(null=True, blank=True)
    timeout_minutes = models.PositiveIntegerField(null=True, blank=True)
    exit_code = models.IntegerField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    # Where the result is announced, copied from the trigger at creation (like its name and
    # workflow): editing or deleting the trigger later does not redirect a running job's result.
    notify_provider = models.CharField(max_length=10, choices=NotifyProvider.choices, blank=True, default="")
    notify_team_id = models.CharField(max_length=64, blank=True, default="")
    notify_channel_id = models.CharField(max_length=64, blank=True, default="")
    notify_on = models.CharField(max_length=10, choices=NotifyOn.choices, default=NotifyOn.NONE)
    # A webhook's URL; not its secret: deliveries sign with the trigger's current one (integrations.webhook).
    notify_url = models.CharField(max_length=MAX_NOTIFY_URL, blank=True, default="")
    cancel_requested = models.BooleanField(default=False)
    # Who asked to cancel (an actor label: a user's email, a token's name), shown on the job page.
    cancelled_by = models.CharField(max_length=255, blank=True, default="")
    # The job this one repeats ("Re-run"): same trigger, ref and params unless new ones were given.
    rerun_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reruns", db_index=False
    )
    # The environment it deploys to (copied from its trigger at creation, with its name, which stays
    # when the environment is deleted); its rules gate the job (triggers.environments.gate).
    environment = models.ForeignKey(
        "Environment", null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs", db_index=False
    )
    environment_name = models.CharField(max_length=50, blank=True, default="")
    # The person behind the run (the user, an API token's creator): who may not approve it, whose
    # runs go through their own lock.
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    # A rollback: the deployment it rolls back (the environment's current one when it was asked for).
    rollback_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="rollbacks", db_index=False
    )
    # SHA-256 of the job's own credential (DEPLITE_JOB_TOKEN), issued to the agent with the claim; it reads the
    # job's input files while the job runs. Cleared when the job ends or goes back to the queue.
    job_token_hash = models.CharField(max_length=64, blank=True, default="", editable=False)

    # Agent events are idempotent by sequence number: anything at or below this is a resend.
    last_event_seq = models.PositiveIntegerField(default=0)
    log_seq = models.PositiveIntegerField(default=0)
    log_bytes = models.PositiveBigIntegerField(default=0)
    log_truncated = models.BooleanField(default=False)

    # A `trigger` API token sees the jobs of the triggers it lists.
    token_trigger_field = "trigger_id"  # noqa: S105 (a lookup, not a secret)

    class Meta:
        ordering = ["-created_at", "-id"]
        # The lists' keyset pagination walks (created_at, id) newest first, per org and per filter.
        indexes = [
            models.Index(fields=["short_id"], name="job_short_id"),
            models.Index(fields=["org", "-created_at", "-id"], name="job_org_created_id"),
            models.Index(fields=["trigger", "-created_at", "-id"], name="job_trigger_created_id"),
            models.Index(fields=["org", "status", "-created_at", "-id"], name="job_org_status_created_id"),
            models.Index(fields=["org", "created_at"], condition=models.Q(status="queued"), name="job_queued_by_org"),
            # The trigger page's "N queued" count: only the trigger's queued jobs, whatever else the table holds.
            models.Index(fields=["trigger"], condition=models.Q(status="queued"), name="job_queued_by_trigger"),
            models.Index(fields=["status", "created_at"], name="job_status_created"),
            # Indexed only where set (a running job's credential, a re-run's origin): a new job, written
            # by every run request, adds no entry to them.
            models.Index(fields=["job_token_hash"], condition=~models.Q(job_token_hash=""), name="job_token_live"),
            models.Index(fields=["rerun_of"], condition=models.Q(rerun_of__isnull=False), name="job_rerun_of"),
            models.Index(fields=["rollback_of"], condition=models.Q(rollback_of__isnull=False), name="job_rollback_of"),
            # An environment's live jobs (its queue and what runs): what the gate reads on every run and
            # every end; a finished job leaves it.
            models.Index(
                fields=["environment", "created_at", "id"],
                condition=models.Q(status__in=["pending_approval", "waiting", "queued", "running"]),
                name="job_env_live",
            ),
            # An environment's history, newest first (keyset pagination), and its current deployment.
            models.Index(
                fields=["environment", "-created_at", "-id"],
                condition=models.Q(environment__isnull=False),
                name="job_env_created_id",
            ),
            models.Index(
                fields=["status", "approval_expires_at"],
                condition=models.Q(status="pending_approval"),
                name="job_approval_expiry",
            ),
            # Insights (the insights app reads jobs): the runs that ran to an end of a trigger and of an
            # environment by finish, the org's finished jobs (the agents' day), an environment's rollbacks.
            models.Index(fields=["trigger", "-finished_at"], condition=_RAN, name="job_trigger_ran"),
            models.Index(
                fields=["org", "finished_at"], condition=models.Q(finished_at__isnull=False), name="job_org_finished"
            ),
            models.Index(fields=["environment", "finished_at"], condition=_RAN, name="job_env_ran"),
            models.Index(
                fields=["environment", "created_at"],
                condition=models.Q(rollback_of__isnull=False),
                name="job_env_rollbacks",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.short_id} {self.trigger_name} ({self.status})"

    def save(self, *args, **kwargs):
        self.fill_short_id()
        super().save(*args, **kwargs)

    def fill_short_id(self) -> None:
        """Set by save(); by hand for an insert that bypasses it (deplite.one_statement)."""
        if not self.short_id:
            self.short_id = self.id.hex[:8]

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def url(self) -> str:
        return absolute_url("job-detail", org_slug=self.org.slug, job_id=self.id)


class StepStatus(models.TextChoices):
    # Listed from the workflow the agent parsed (job_started), not started yet.
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"
    CANCELLED = "cancelled", "Cancelled"


class JobStep(models.Model):
    id = models.BigAutoField(primary_key=True)
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+", db_index=True)
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="steps")
    index = models.PositiveIntegerField()
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=10, choices=StepStatus.choices, default=StepStatus.RUNNING)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    exit_code = models.IntegerField(null=True, blank=True)
    # A failure the workflow allows (continue-on-error): the job went on. Shown "failed (allowed)".
    allowed_failure = models.BooleanField(default=False)

    token_trigger_field = "job__trigger_id"  # noqa: S105 (a lookup, not a secret)

    class Meta:
        ordering = ["job", "index"]
        constraints = [models.UniqueConstraint(fields=["job", "index"], name="jobstep_unique_job_index")]


class JobFileDirection(models.TextChoices):
    INPUT = "input", "Input"
    OUTPUT = "output", "Output"


class JobFile(models.Model):
    """A stored file a job used (an input-file param) or produced (an upload from a step)."""

    id = models.BigAutoField(primary_key=True)
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+", db_index=True)
    # Indexed by the unique (job, file) constraint, which starts with it.
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="files", db_index=False)
    file = models.ForeignKey(StoredFile, on_delete=models.CASCADE, related_name="+")
    direction = models.CharField(max_length=6, choices=JobFileDirection.choices)
    created_at = models.DateTimeField(default=timezone.now)

    token_trigger_field = "job__trigger_id"  # noqa: S105 (a lookup, not a secret)

    class Meta:
        ordering = ["job", "direction", "created_at", "id"]
        constraints = [models.UniqueConstraint(fields=["job", "file"], name="jobfile_unique_job_file")]


# Environments are modules of their own (triggers.environments); registered with this app here.
from .environments.models import ApprovalDecision, Concurrency, Environment, JobApproval, QueueOrder  # noqa: E402, F401

# The run endpoint's stored answers (triggers.idempotency_keys).
from .idempotency_keys import IdempotencyKey  # noqa: E402, F401

# A job's output, in numbered pieces (triggers.log_chunks).
from .log_chunks import JobLogChunk  # noqa: E402, F401

# Schedules live in their own package (triggers/schedules/); imported here so the app owns their tables.
from .schedules.models import CatchUp, Schedule, ScheduleFire  # noqa: E402, F401
