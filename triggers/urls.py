from django.urls import re_path

from deplite.api.routers import OrgRouter

from . import api

router = OrgRouter()
router.register("triggers", api.TriggerViewSet, basename="triggers")
router.register("jobs", api.JobViewSet, basename="jobs")

# Mounted under api/orgs/<org_id>/ by deplite/urls.py.
org_urlpatterns = router.urls

# The run endpoint names no org; the docs use both spellings, one view serves them.
run_urlpatterns = [
    re_path(r"^api/triggers/(?P<trigger_id>[^/]+)/run/?$", api.TriggerRunView.as_view(), name="trigger-run-api"),
    re_path(r"^triggers/(?P<trigger_id>[^/]+)/run/?$", api.TriggerRunView.as_view(), name="trigger-run"),
]
