from django.apps import AppConfig
from django.db.models.signals import post_delete


def _on_membership_deleted(sender, instance, **kwargs) -> None:
    """A member removed from an org takes their chat identities in it along (they can no longer act there)."""
    from .identities import identities_remove_for_member

    identities_remove_for_member(org_id=instance.org_id, user_id=instance.user_id)


class IntegrationsConfig(AppConfig):
    name = "integrations"

    def ready(self):
        from orgs.models import Membership
        from triggers import extensions as triggers_extensions

        from .services import linked_teams

        # `triggers` asks whether a chat trigger's team is linked without importing us.
        triggers_extensions.register_linked_teams_lookup(linked_teams)
        post_delete.connect(_on_membership_deleted, sender=Membership, dispatch_uid="integrations.identities.member")
