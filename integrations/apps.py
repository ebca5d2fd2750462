from django.apps import AppConfig
from django.db.models.signals import post_delete


def _on_membership_deleted(sender, instance, **kwargs) -> None:
    """A member removed from an org takes their chat identities in it along (they can no longer act there)."""
    from .identities import identities_remove_for_member

    identities_remove_for_member(org_id=instance.org_id, user_id=instance.user_id)


def _on_job_awaiting_approval(sender, *, job_id, **kwargs) -> None:
    """A job waits for approval (sent after commit): post its card with the buttons."""
    from .cards import approval_requests_post

    approval_requests_post(job_id=job_id)


def _on_job_finished(sender, *, job_id, **kwargs) -> None:
    """A job ended (sent after commit): its cards show the end, and only Re-run and View job."""
    from django.db import transaction

    from .cards import cards_refresh

    with transaction.atomic():
        cards_refresh(job_id=job_id)


class IntegrationsConfig(AppConfig):
    name = "integrations"

    def ready(self):
        from orgs.models import Membership
        from triggers import extensions as triggers_extensions
        from triggers.signals import job_awaiting_approval, job_finished

        from .services import linked_teams

        # `triggers` asks whether a chat trigger's team is linked without importing us.
        triggers_extensions.register_linked_teams_lookup(linked_teams)
        post_delete.connect(_on_membership_deleted, sender=Membership, dispatch_uid="integrations.identities.member")
        job_awaiting_approval.connect(_on_job_awaiting_approval, dispatch_uid="integrations.cards.awaiting_approval")
        job_finished.connect(_on_job_finished, dispatch_uid="integrations.cards.finished")
