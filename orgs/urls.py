from django.urls import path

from deplite.api.routers import OrgRouter

from . import api, views

router = OrgRouter()
router.register("members", api.MemberViewSet, basename="members")
router.register("invitations", api.InvitationViewSet, basename="invitations")
router.register("tokens", api.ApiTokenViewSet, basename="tokens")
router.register("audit", api.AuditEventViewSet, basename="audit")

# Mounted under api/orgs/<str:org_id>/ by deplite/urls.py.
org_urlpatterns = router.urls

# Web pages, mounted under orgs/<slug:org_slug>/ by deplite/urls.py.
page_urlpatterns = [
    path("", views.org_home, name="org-home"),
    path("members/", views.members_page, name="org-members"),
    path("tokens/", views.tokens_page, name="org-tokens"),
    path("audit/", views.audit_page, name="org-audit"),
]
