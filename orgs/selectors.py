"""Reads for organisations."""

from django.db.models import QuerySet

from .models import Membership, User


def orgs_for_user(*, user: User) -> QuerySet[Membership]:
    return Membership.objects.select_related("org").filter(user=user).order_by("org__name")
