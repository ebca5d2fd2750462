"""What the job page shows of a job's environment: its name, why it waits, its approvals and
whether the viewer may approve or reject it, and the deployment a rollback rolls back.

Part of the job page's live context (the summary follows a job from `pending_approval` through
`waiting` to `running`); a job without an environment costs no query here."""

from __future__ import annotations

from orgs.permissions import Perm

from ..environments import services as env_services
from ..environments.selectors import waiting_reason
from ..models import ApprovalDecision, Job, JobStatus


def job_environment_context(request, job: Job) -> dict:
    rollback_of = (
        request.principal.restrict(Job.objects.filter(pk=job.rollback_of_id)).only("id", "short_id").first()
        if job.rollback_of_id
        else None
    )
    context = {"rollback_of": rollback_of, "approvals": [], "waiting_reason": "", "can_decide": False}
    environment = job.environment if job.environment_id else None
    if environment is None:
        return context
    approvals = list(job.approvals.order_by("created_at", "id"))
    approved = sum(1 for a in approvals if a.decision == ApprovalDecision.APPROVED)
    context.update(
        approvals=approvals,
        approved_count=approved,
        required_approvals=environment.required_approvals,
        waiting_reason=waiting_reason(job),
    )
    if job.status == JobStatus.PENDING_APPROVAL and request.principal.has(Perm.TRIGGERS_RUN):
        user = request.user
        eligible = env_services.may_approve(environment=environment, user=user, role=request.principal.role)
        own = environment.prevent_self_approval and job.requested_by_id == user.pk
        context.update(
            approvers=env_services.approvers_description(environment),
            can_decide=eligible and not own,
            own_job=eligible and own,
        )
    return context
