"""JSON API for logging in (`auth.py`), organisations (`organizations.py`), members and invitations
(`members.py`), API tokens (`tokens.py`) and the audit log (`audit.py`).

Thin views: an input serializer validates, a service writes, an output serializer answers.
"""

from .audit import AuditEventViewSet
from .auth import LogoutEverywhereView, RefreshView, TokenObtainView
from .members import InvitationAcceptView, InvitationViewSet, MemberViewSet, MyInvitationListView
from .organizations import OrganizationListView, OrganizationViewSet
from .tokens import ApiTokenCreateInput, ApiTokenViewSet

__all__ = [
    "ApiTokenCreateInput",
    "ApiTokenViewSet",
    "AuditEventViewSet",
    "InvitationAcceptView",
    "InvitationViewSet",
    "LogoutEverywhereView",
    "MemberViewSet",
    "MyInvitationListView",
    "OrganizationListView",
    "OrganizationViewSet",
    "RefreshView",
    "TokenObtainView",
]
