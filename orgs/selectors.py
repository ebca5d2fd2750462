"""Reads for organisations."""

from django.db.models import QuerySet

from .models import Invitation, Membership, User


def orgs_for_user(*, user: User) -> QuerySet[Membership]:
    return Membership.objects.select_related("org").filter(user=user).order_by("org__name")


def _verified_emails(user: User) -> list[str]:
    from allauth.account.models import EmailAddress

    return [e.lower() for e in EmailAddress.objects.filter(user=user, verified=True).values_list("email", flat=True)]


def invitations_open_for(*, user: User) -> list[Invitation]:
    """The open invitations addressed to one of `user`'s verified email addresses."""
    emails = _verified_emails(user)
    if not emails:
        return []
    return list(
        Invitation.objects.select_related("org", "invited_by")
        .filter(email__in=emails, accepted_at__isnull=True)
        .order_by("created_at")
    )
