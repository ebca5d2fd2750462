from django.urls import path

from deplite.api.routers import OrgRouter

from . import api, views

router = OrgRouter()
# Before "insights": its route is "insights/?$", which "insights/agents" does not match either way.
router.register("insights/agents", api.AgentsInsightsViewSet, basename="insights-agents")
router.register("insights", api.InsightsViewSet, basename="insights")
router.register("triggers", api.TriggerInsightsViewSet, basename="trigger")

# Mounted under api/orgs/<org_id>/ by deplite/urls.py.
org_urlpatterns = router.urls

# Web pages, mounted under orgs/<slug:org_slug>/ by deplite/urls.py.
page_urlpatterns = [
    path("insights/", views.insights_page, name="insights-page"),
]
