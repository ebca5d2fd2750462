from django.apps import AppConfig


class OrgsConfig(AppConfig):
    name = "orgs"
    verbose_name = "Organizations"

    def ready(self):
        from allauth.account.signals import email_confirmed, user_signed_up

        from . import receivers, schema  # noqa: F401

        email_confirmed.connect(receivers.accept_on_email_confirmed, dispatch_uid="orgs.accept_on_email_confirmed")
        user_signed_up.connect(receivers.accept_on_signup_if_verified, dispatch_uid="orgs.accept_on_signup_if_verified")
