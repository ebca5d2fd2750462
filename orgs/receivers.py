"""Reactions to changes of a user that can happen on any path (the admin, allauth's
pages, a shell), so they cannot live in one service call.

- A user deactivated or deleted: the API tokens they created are revoked.
- A password changed (or a user deactivated): every login of theirs ends — refresh
  tokens blacklisted, access tokens and other web sessions invalid.

Invitations are not accepted here: the invited person accepts one explicitly, logged in
with the address verified (`services.invitation_accept`).

Connected in OrgsConfig.ready() with a dispatch_uid, like every receiver in the project.
"""

from . import services
from .actors import Actor
from .models import User


def remember_previous_state(sender, instance: User, raw=False, **kwargs):
    instance._previous = None
    update_fields = kwargs.get("update_fields")
    if update_fields is not None and not {"is_active", "password"} & set(update_fields):
        return  # e.g. last_login on every login: nothing to compare
    if instance.pk and not raw:
        instance._previous = User.objects.filter(pk=instance.pk).values("is_active", "password").first()


def end_access_of_deactivated_user_or_changed_password(sender, instance: User, created=False, raw=False, **kwargs):
    previous = getattr(instance, "_previous", None)
    if created or raw or previous is None:
        return
    if previous["is_active"] and not instance.is_active:
        services.user_deactivated(user=instance)
    elif previous["password"] != instance.password:
        services.user_sessions_end(user=instance)


def revoke_tokens_of_deleted_user(sender, instance: User, **kwargs):
    # Tokens outlive their creator's row (created_by is SET_NULL): revoke them first.
    services.tokens_revoke_created_by(user=instance, actor=Actor.system("user deleted"), reason="user deleted")
