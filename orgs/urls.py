from deplite.api.routers import OrgRouter

from . import api

router = OrgRouter()
router.register("members", api.MemberViewSet, basename="members")
router.register("tokens", api.ApiTokenViewSet, basename="tokens")
router.register("audit", api.AuditEventViewSet, basename="audit")

# Mounted under api/orgs/<str:org_id>/ by deplite/urls.py.
org_urlpatterns = router.urls
