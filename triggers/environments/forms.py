"""Forms of the environment pages: the rules (new environment, edit), the lock, and a job's
approve/reject comment. They shape input for `triggers.environments.services`, which decides."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator, validate_slug

from orgs.models import Role

from .models import MAX_REQUIRED_APPROVALS, Concurrency, Environment, QueueOrder

# An approval nobody gives ends the job: at least a minute, at most 30 days.
MIN_APPROVAL_TIMEOUT = 60
MAX_APPROVAL_TIMEOUT = 30 * 24 * 3600
MAX_PATTERN = 200


def split_patterns(value: str) -> list[str]:
    """`main, release/*` or one per line: the allowed-refs globs."""
    return [p for p in re.split(r"[\s,]+", value or "") if p]


class EnvironmentForm(forms.Form):
    """An environment's rules; `name` only when creating it (names never change)."""

    name = forms.CharField(
        label="Name",
        max_length=50,
        validators=[validate_slug],
        widget=forms.TextInput(attrs={"placeholder": "production"}),
        help_text="Letters, digits, - and _. Fixed once created: triggers and the API name the environment by it.",
    )
    description = forms.CharField(label="Description", max_length=300, required=False)
    concurrency = forms.ChoiceField(
        label="Concurrency",
        choices=Concurrency.choices,
        initial=Concurrency.ONE,
        help_text="One at a time: the other jobs wait their turn.",
    )
    queue = forms.ChoiceField(
        label="Queue",
        choices=QueueOrder.choices,
        initial=QueueOrder.FIFO,
        help_text="Newest only: a newer waiting job cancels the older waiting ones.",
    )
    required_approvals = forms.IntegerField(
        label="Required approvals",
        initial=0,
        min_value=0,
        max_value=MAX_REQUIRED_APPROVALS,
        help_text=f"0 to {MAX_REQUIRED_APPROVALS}. A job waits for this many approvals before it may run.",
    )
    approver_role = forms.ChoiceField(
        label="Approvers: members with at least the role",
        choices=Role.choices,
        initial=Role.ADMIN,
    )
    approvers = forms.MultipleChoiceField(
        label="Or these members only",
        required=False,
        help_text="Named approvers replace the role.",
    )
    prevent_self_approval = forms.BooleanField(
        label="Whoever started a job may not approve it", required=False, initial=True
    )
    approval_timeout_seconds = forms.IntegerField(
        label="Approval timeout (seconds)",
        initial=24 * 3600,
        validators=[MinValueValidator(MIN_APPROVAL_TIMEOUT), MaxValueValidator(MAX_APPROVAL_TIMEOUT)],
        help_text="A job not approved by then ends cancelled.",
    )
    allowed_refs = forms.CharField(
        label="Allowed refs",
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "main, release/*"}),
        help_text="Glob patterns, comma-separated. Empty: any ref.",
    )

    def __init__(self, *args, members: list[tuple[int, str]] = (), creating: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["approvers"].choices = [(str(pk), email) for pk, email in members]
        if not creating:
            del self.fields["name"]

    @classmethod
    def initial_for(cls, environment: Environment) -> dict:
        return {
            "description": environment.description,
            "concurrency": environment.concurrency,
            "queue": environment.queue,
            "required_approvals": environment.required_approvals,
            "approver_role": environment.approver_role,
            "approvers": [str(pk) for pk in environment.approvers.values_list("pk", flat=True)],
            "prevent_self_approval": environment.prevent_self_approval,
            "approval_timeout_seconds": environment.approval_timeout_seconds,
            "allowed_refs": ", ".join(environment.allowed_refs or []),
        }

    def clean_allowed_refs(self) -> list[str]:
        patterns = split_patterns(self.cleaned_data.get("allowed_refs") or "")
        for pattern in patterns:
            if len(pattern) > MAX_PATTERN:
                raise forms.ValidationError(f"{pattern[:40]}…: at most {MAX_PATTERN} characters a pattern.")
        return patterns

    def service_kwargs(self) -> dict:
        """The rules as the services' keyword arguments (`approver_ids`: the named approvers)."""
        data = dict(self.cleaned_data)
        data["approver_ids"] = [int(pk) for pk in data.pop("approvers", [])]
        return data


class LockForm(forms.Form):
    reason = forms.CharField(
        label="Reason",
        max_length=500,
        widget=forms.TextInput(attrs={"placeholder": "release freeze"}),
    )
    expires_at = forms.DateTimeField(
        label="Unlocks by itself at (UTC, optional)",
        required=False,
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )

    def clean_expires_at(self) -> datetime | None:
        value = self.cleaned_data.get("expires_at")
        # The field says UTC, whatever the server's zone.
        return value.replace(tzinfo=UTC) if value is not None else None


class DecisionForm(forms.Form):
    comment = forms.CharField(label="Comment (optional)", max_length=1000, required=False)
