"""Reactions to changes of a user that can happen on any path (the admin, allauth's
pages, a shell), so they cannot live in one service call.

- A user deactivated or deleted: the API tokens they created are revoked.

Invitations are not accepted here: the invited person accepts one explicitly, logged in
with the address verified (`services.invitation_accept`).
"""

from django.db.models.signals import post_save, pre_delete, pre_save
from django.dispatch import receiver

from . import services
from .models import User
from .scoping import Actor


@receiver(pre_save, sender=User)
def remember_previous_state(sender, instance: User, raw=False, **kwargs):
    instance._was_active = None
    if instance.pk and not raw:
        previous = User.objects.filter(pk=instance.pk).values("is_active").first()
        if previous is not None:
            instance._was_active = previous["is_active"]


@receiver(post_save, sender=User)
def revoke_tokens_of_deactivated_user(sender, instance: User, created=False, raw=False, **kwargs):
    if not created and not raw and getattr(instance, "_was_active", None) and not instance.is_active:
        services.user_deactivated(user=instance)


@receiver(pre_delete, sender=User)
def revoke_tokens_of_deleted_user(sender, instance: User, **kwargs):
    # Tokens outlive their creator's row (created_by is SET_NULL): revoke them first.
    services.tokens_revoke_created_by(user=instance, actor=Actor.system("user deleted"), reason="user deleted")
