from django.apps import AppConfig


class OrgsConfig(AppConfig):
    name = "orgs"
    verbose_name = "Organizations"

    def ready(self):
        from django.db.models.signals import post_save, pre_delete, pre_save

        from . import receivers, schema  # noqa: F401
        from .models import User

        pre_save.connect(receivers.remember_previous_state, sender=User, dispatch_uid="orgs.user_previous_state")
        post_save.connect(
            receivers.end_access_of_deactivated_user_or_changed_password,
            sender=User,
            dispatch_uid="orgs.user_end_access",
        )
        pre_delete.connect(receivers.revoke_tokens_of_deleted_user, sender=User, dispatch_uid="orgs.user_deleted")
