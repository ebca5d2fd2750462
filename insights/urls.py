from django.urls import path, re_path

from deplite.api.routers import OrgRouter

from . import api, views

router = OrgRouter()
router.register("triggers", api.TriggerInsightsViewSet, basename="trigger")

# Mounted under api/orgs/<org_id>/ by deplite/urls.py. The two summaries are one object each, not a
# list (a router's `list` would be documented as an array): mapped by hand, same optional slash.
org_urlpatterns = [
    re_path(r"^insights/?$", api.InsightsViewSet.as_view({"get": "summary"}), name="insights"),
    re_path(r"^insights/agents/?$", api.AgentsInsightsViewSet.as_view({"get": "summary"}), name="insights-agents"),
    *router.urls,
]

# Web pages, mounted under orgs/<slug:org_slug>/ by deplite/urls.py.
page_urlpatterns = [
    path("insights/", views.insights_page, name="insights-page"),
]
