from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from agents.urls import agent_urlpatterns
from agents.urls import download_urlpatterns as agent_download_urls
from agents.urls import org_urlpatterns as agents_org_urls
from agents.urls import page_urlpatterns as agents_pages
from deplite import health, metrics_endpoint
from insights.urls import org_urlpatterns as insights_org_urls
from insights.urls import page_urlpatterns as insights_pages
from integrations.urls import org_urlpatterns as integrations_org_urls
from integrations.urls import page_urlpatterns as integrations_pages
from integrations.urls import public_urlpatterns as integrations_public_urls
from notifications.urls import org_urlpatterns as notifications_org_urls
from notifications.urls import page_urlpatterns as notifications_pages
from orgs import api as orgs_api
from orgs import views as orgs_views
from orgs.urls import org_urlpatterns as orgs_org_urls
from orgs.urls import page_urlpatterns as orgs_pages
from storage.urls import org_urlpatterns as storage_org_urls
from storage.urls import page_urlpatterns as storage_pages
from triggers.urls import org_urlpatterns as triggers_org_urls
from triggers.urls import page_urlpatterns as triggers_pages
from triggers.urls import run_urlpatterns as triggers_run_urls

# Every app's org-scoped API is mounted here, under one prefix: the isolation matrix
# test walks this prefix to prove each endpoint keeps other orgs out.
org_api_urls = [
    *orgs_org_urls,
    *storage_org_urls,
    *triggers_org_urls,
    *agents_org_urls,
    *integrations_org_urls,
    *notifications_org_urls,
    *insights_org_urls,
]

# Web pages of one organisation, under /orgs/<slug>/.
org_page_urls = [
    *orgs_pages,
    *triggers_pages,
    *storage_pages,
    *agents_pages,
    *integrations_pages,
    *notifications_pages,
    *insights_pages,
]

urlpatterns = [
    # Operations: load-balancer probes and Prometheus (deplite/health.py, deplite/metrics_endpoint.py).
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics_endpoint.metrics_view, name="metrics"),
    path("api/auth/token", orgs_api.TokenObtainView.as_view(), name="auth-token"),
    path("api/auth/token/refresh", orgs_api.RefreshView.as_view(), name="auth-token-refresh"),
    path("api/auth/logout-everywhere", orgs_api.LogoutEverywhereView.as_view(), name="auth-logout-everywhere"),
    path("accounts/logout-everywhere/", orgs_views.logout_everywhere, name="logout-everywhere"),
    path("api/invitations", orgs_api.MyInvitationListView.as_view(), name="my-invitations"),
    path(
        "api/invitations/<str:invitation_id>/accept",
        orgs_api.InvitationAcceptView.as_view(),
        name="invitation-accept-api",
    ),
    path("invitations/<str:invitation_id>/accept", orgs_views.invitation_accept, name="invitation-accept"),
    re_path(r"^api/orgs/?$", orgs_api.OrganizationListView.as_view(), name="org-list"),
    re_path(
        r"^api/orgs/(?P<org_id>[^/]+)/?$",
        orgs_api.OrganizationViewSet.as_view({"get": "retrieve", "patch": "partial_update"}),
        name="org-detail",
    ),
    re_path(r"^api/orgs/(?P<org_id>[^/]+)/", include(org_api_urls)),
    *triggers_run_urls,
    *agent_urlpatterns,
    *agent_download_urls,
    *integrations_public_urls,
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves its init script as a file (?script): no inline script for the CSP to refuse.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("orgs/<slug:org_slug>/", include(org_page_urls)),
    path("", orgs_views.dashboard, name="dashboard"),
]
