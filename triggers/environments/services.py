"""Environments' writes: rules, locks, approvals and rollback. Each is a person's act, audited
in its transaction; each decision is taken holding the environment's lock (gate's order)."""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from deplite.errors import Conflict, Forbidden, NotFound, ValidationFailed
from orgs.actors import Actor
from orgs.models import Membership, Organization, Role
from orgs.services import audit_record

from ..models import FINAL_STATUSES, ApprovalDecision, Environment, Job, JobApproval, JobStatus
from . import gate

# What a rule edit may change; `name` is fixed once created.
RULE_FIELDS = (
    "description",
    "concurrency",
    "queue",
    "required_approvals",
    "approver_role",
    "prevent_self_approval",
    "approval_timeout_seconds",
    "allowed_refs",
    "approval_provider",
    "approval_team_id",
    "approval_channel_id",
)
_ROLE_RANK = {Role.MEMBER: 0, Role.ADMIN: 1, Role.OWNER: 2}


def _person(actor: Actor, what: str):
    """Approving, rejecting, locking and editing rules are a person's acts: never an API token's."""
    if actor.user is None:
        raise Forbidden(f"Only a signed-in person may {what}; an API token may not.", code="person_required")
    return actor.user


def environment_create(*, org: Organization, actor: Actor, name: str, approver_ids=None, **rules) -> Environment:
    _person(actor, "create an environment")
    environment = Environment(org=org, name=name, **{k: v for k, v in rules.items() if k in RULE_FIELDS})
    try:
        with transaction.atomic():
            environment.save(force_insert=True)
            if approver_ids is not None:
                environment.approvers.set(_members(org, approver_ids))
            audit_record(
                org=org, actor=actor, action="environment.created", target=environment, data=_rules(environment)
            )
    except IntegrityError:
        raise Conflict(f"An environment named {name} already exists.", code="environment_exists") from None
    return environment


def environment_update(*, environment: Environment, actor: Actor, approver_ids=None, **rules) -> Environment:
    """Change the given rules (`approver_ids`: the named approvers, when given). Nothing changed,
    nothing written: no save, no audit event, the environment as it is. A change is audited once,
    naming the changed fields (and their new values: an environment's rules hold no secret)."""
    _person(actor, "edit an environment's rules")
    # Checked first, changed or not: a request naming a non-member is refused as it always was.
    approvers = _members(environment.org, approver_ids) if approver_ids is not None else None
    rules = {k: v for k, v in rules.items() if k in RULE_FIELDS}
    if not _rule_changes(environment, rules, approvers):
        return environment
    with transaction.atomic():
        locked = gate.environment_for_update(environment.pk)
        # Against the locked row: an edit that committed meanwhile may already have made them so.
        changed = _rule_changes(locked, rules, approvers)
        if not changed:
            return locked
        for field in changed.keys() & set(RULE_FIELDS):
            setattr(locked, field, rules[field])
        locked.save()
        if "approvers" in changed:
            locked.approvers.set(approvers)
        audit_record(
            org=locked.org,
            actor=actor,
            action="environment.updated",
            target=locked,
            data={"name": locked.name, "fields": sorted(changed), "changed": changed},
        )
        # `unlimited` or fewer approvals may free waiting jobs at once.
        gate.environment_advance(environment=locked)
    return locked


def _rule_changes(environment: Environment, rules: dict, approvers: list | None) -> dict:
    """What `rules` and `approvers` would change: {field: new value}, `approvers` as emails."""
    changed = {k: v for k, v in rules.items() if getattr(environment, k) != v}
    if approvers is not None:
        if {u.pk for u in approvers} != set(environment.approvers.values_list("pk", flat=True)):
            changed["approvers"] = sorted(u.email for u in approvers)
    return changed


def environment_delete(*, environment: Environment, actor: Actor) -> None:
    _person(actor, "delete an environment")
    with transaction.atomic():
        locked = gate.environment_for_update(environment.pk)
        if locked is None:
            return
        if locked.triggers.exists():
            names = ", ".join(locked.triggers.values_list("name", flat=True)[:5])
            raise Conflict(
                f"Triggers still deploy to {locked.name} ({names}): point them elsewhere first.",
                code="environment_in_use",
            )
        if Job.objects.filter(environment=locked, status__in=gate.LIVE_STATUSES).exists():
            raise Conflict(f"Jobs of {locked.name} are still waiting or running.", code="environment_in_use")
        audit_record(
            org=locked.org, actor=actor, action="environment.deleted", target=locked, data={"name": locked.name}
        )
        locked.delete()


def environment_lock(
    *, environment: Environment, actor: Actor, reason: str, expires_at: datetime | None = None
) -> Environment:
    """Lock: new runs by anyone else are refused; their queued and waiting jobs wait (the holder's go on)."""
    user = _person(actor, "lock an environment")
    now = timezone.now()
    if expires_at is not None and expires_at <= now:
        raise ValidationFailed("expiresAt: must be in the future.", details={"fields": {"expiresAt": ["in the past"]}})
    with transaction.atomic():
        locked = gate.environment_for_update(environment.pk)
        if locked.is_locked(now) and locked.locked_by_id != user.pk:
            raise gate.environment_locked_error(locked)
        locked.locked_by, locked.locked_by_label = user, user.email
        locked.lock_reason, locked.locked_at, locked.lock_expires_at = reason, now, expires_at
        locked.save(
            update_fields=["locked_by", "locked_by_label", "lock_reason", "locked_at", "lock_expires_at", "updated_at"]
        )
        # Not claimed yet: back to waiting, with the lock as their reason.
        held = (
            Job.objects.filter(environment=locked, status=JobStatus.QUEUED)
            .exclude(requested_by_id=user.pk)
            .update(status=JobStatus.WAITING, queued_at=None)
        )
        audit_record(
            org=locked.org,
            actor=actor,
            action="environment.locked",
            target=locked,
            data={
                "name": locked.name,
                "reason": reason,
                "expiresAt": expires_at.isoformat() if expires_at else None,
                "held": held,
            },
        )
    return locked


def environment_unlock(*, environment: Environment, actor: Actor, role: str | None = None) -> Environment:
    """Unlock, by the holder or an owner/admin (`role`: the caller's role in the org)."""
    user = _person(actor, "unlock an environment")
    with transaction.atomic():
        locked = gate.environment_for_update(environment.pk)
        if locked.locked_at is None:
            return locked
        if locked.locked_by_id != user.pk and _ROLE_RANK.get(role, -1) < _ROLE_RANK[Role.ADMIN]:
            raise Forbidden(
                f"Only {locked.locked_by_label or 'its holder'} or an owner or admin may unlock {locked.name}.",
                code="not_lock_holder",
            )
        _clear_lock(locked, actor=actor, why="unlocked")
    return locked


def _clear_lock(environment: Environment, *, actor: Actor, why: str) -> None:
    data = {
        "name": environment.name,
        "lockedBy": environment.locked_by_label,
        "reason": environment.lock_reason,
        "why": why,
    }
    environment.locked_by, environment.locked_by_label, environment.lock_reason = None, "", ""
    environment.locked_at = environment.lock_expires_at = None
    environment.save(
        update_fields=["locked_by", "locked_by_label", "lock_reason", "locked_at", "lock_expires_at", "updated_at"]
    )
    audit_record(org=environment.org, actor=actor, action="environment.unlocked", target=environment, data=data)
    gate.environment_advance(environment=environment)


def may_approve(*, environment: Environment, user, role: str | None) -> bool:
    """Eligible to approve `environment`'s jobs: named, or (none named) at least its approver role."""
    named = list(environment.approvers.values_list("pk", flat=True))
    if named:
        return user.pk in named and role is not None
    return _ROLE_RANK.get(role, -1) >= _ROLE_RANK.get(environment.approver_role, 1)


def approvers_description(environment: Environment) -> str:
    named = list(environment.approvers.values_list("email", flat=True))
    if named:
        return ", ".join(named)
    return {Role.MEMBER: "members", Role.ADMIN: "owners and admins", Role.OWNER: "owners"}[environment.approver_role]


def job_decide(*, job: Job, actor: Actor, decision: str, comment: str = "") -> Job:
    """Approve or reject a job waiting for approval.

    Approving twice counts once; the approval completing the count moves the job on (waiting,
    then queued if its turn) in this transaction; a rejection ends it cancelled. An approval
    that arrives after the job moved on (two approvers at once) is recorded and audited, and
    changes nothing more.
    """
    user = _person(actor, "approve or reject a job")
    if job.environment_id is None:
        raise Conflict("This job needs no approval.", code="job_not_pending_approval")
    role = Membership.objects.filter(org_id=job.org_id, user=user).values_list("role", flat=True).first()
    with transaction.atomic():
        environment = gate.environment_for_update(job.environment_id)
        current = Job.objects.select_for_update().filter(pk=job.pk).first()
        if current is None:
            raise NotFound("Job not found.")
        if environment is None or not may_approve(environment=environment, user=user, role=role):
            who = approvers_description(environment) if environment else "approvers"
            raise Forbidden(
                f"Only {who} of {job.org.name} may approve or reject {job.environment_name} deploys.",
                code="not_an_approver",
            )
        if environment.prevent_self_approval and current.requested_by_id == user.pk:
            raise Forbidden("You started this job: another approver must decide on it.", code="self_approval")
        pending = current.status == JobStatus.PENDING_APPROVAL
        if not pending and (decision == ApprovalDecision.REJECTED or current.status in FINAL_STATUSES):
            raise Conflict(
                f"This job is no longer waiting for approval (it is {current.status}).",
                code="job_not_pending_approval",
                details={"status": current.status},
            )
        if not pending and current.approvals.filter(user=user).exists():
            return current  # a second click of an approval that already counted
        approval, created = JobApproval.objects.get_or_create(
            job=current,
            user=user,
            defaults={
                "org_id": current.org_id,
                "user_label": user.email,
                "decision": decision,
                "comment": comment[:1000],
            },
        )
        if not created and approval.decision == decision:
            return current  # approving twice counts once
        if not created:
            approval.decision, approval.comment, approval.created_at = decision, comment[:1000], timezone.now()
            approval.save(update_fields=["decision", "comment", "created_at"])
        audit_record(
            org=current.org,
            actor=actor,
            action=f"job.{decision}",
            target=current,
            data={"shortId": current.short_id, "environment": environment.name, "comment": comment[:1000]},
        )
        if pending and decision == ApprovalDecision.REJECTED:
            from ..services.lifecycle import job_end_gated

            reason = f"rejected by {user.email}: {comment}" if comment else f"rejected by {user.email}"
            job_end_gated(job_id=current.pk, error=reason, environment=environment)
            gate.environment_advance(environment=environment)
        elif pending:
            count = current.approvals.filter(decision=ApprovalDecision.APPROVED).count()
            if count >= environment.required_approvals:
                Job.objects.filter(pk=current.pk, status=JobStatus.PENDING_APPROVAL).update(
                    status=JobStatus.WAITING, approved_at=timezone.now()
                )
                gate.environment_advance(environment=environment)
    job.refresh_from_db()
    return job


def environment_rollback(*, environment: Environment, actor: Actor, source: str):
    """A new job from the previous succeeded deployment's trigger, ref and params, through the
    same rules, linked to the deployment it rolls back (`rollback_of`)."""
    from ..services import trigger_run
    from .selectors import environment_deployments_succeeded

    current, previous = (list(environment_deployments_succeeded(environment)[:2]) + [None, None])[:2]
    if current is None or previous is None:
        raise Conflict(
            f"{environment.name} has no earlier successful deployment to roll back to.", code="nothing_to_roll_back"
        )
    trigger = previous.trigger
    if trigger is None:
        raise Conflict(
            f"The trigger of #{previous.short_id} was deleted, so it cannot be deployed again.", code="trigger_deleted"
        )
    if trigger.environment_id != environment.pk:
        raise Conflict(
            f"The trigger {trigger.name} of #{previous.short_id} no longer deploys to {environment.name}.",
            code="trigger_moved",
        )
    return trigger_run(
        trigger=trigger, actor=actor, source=source, ref=previous.ref, params=dict(previous.params), rollback_of=current
    )


def environments_sweep(*, now: datetime | None = None, limit: int = 500) -> dict:
    """Beat: expired locks unlock, approvals past their time end the job, and every environment
    with waiting jobs is moved on (a lost release, a crash between commit and wake-up)."""
    from ..services.lifecycle import job_end_gated

    now = now or timezone.now()
    system = Actor.system("lock expiry")
    done = {"unlocked": 0, "timedOut": 0, "advanced": 0}
    for environment_id in Environment.objects.filter(lock_expires_at__lte=now).values_list("pk", flat=True)[:limit]:
        with transaction.atomic():
            locked = gate.environment_for_update(environment_id)
            if locked is not None and locked.locked_at is not None and not locked.is_locked(now):
                _clear_lock(locked, actor=system, why="expired")
                done["unlocked"] += 1
    expired = Job.objects.filter(status=JobStatus.PENDING_APPROVAL, approval_expires_at__lte=now)
    for job_id in expired.values_list("pk", flat=True)[:limit]:
        with transaction.atomic():
            done["timedOut"] += job_end_gated(job_id=job_id, error="approval timed out")
    stuck = Job.objects.filter(status=JobStatus.WAITING).values_list("environment_id", flat=True).distinct()
    for environment_id in list(stuck[:limit]):
        with transaction.atomic():
            locked = gate.environment_for_update(environment_id)
            if locked is not None:
                done["advanced"] += len(gate.environment_advance(environment=locked))
    return done


def _members(org: Organization, user_ids) -> list:
    ids = set(user_ids or [])
    members = list(Membership.objects.filter(org=org, user_id__in=ids).select_related("user"))
    if len(members) != len(ids):
        raise ValidationFailed("approvers: every approver must be a member of this organization.")
    return [m.user for m in members]


def _rules(environment: Environment) -> dict:
    return {field: getattr(environment, field) for field in RULE_FIELDS}
