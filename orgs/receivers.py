"""Invitations become memberships once the invited address is proven to be the user's.

Accepting at the moment of signup alone would let anyone who signs up with someone
else's address join that person's organisations; so the link is the verified address.

Connected in OrgsConfig.ready() with a dispatch_uid, like every receiver in the project.
"""

from . import services


def accept_on_email_confirmed(sender, request, email_address, **kwargs):
    if email_address.user.email.lower() == email_address.email.lower():
        services.invitations_accept(user=email_address.user)


def accept_on_signup_if_verified(sender, request, user, **kwargs):
    from allauth.account.models import EmailAddress

    if EmailAddress.objects.filter(user=user, email__iexact=user.email, verified=True).exists():
        services.invitations_accept(user=user)
