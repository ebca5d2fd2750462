from django.urls import path, re_path

from deplite.api.routers import OrgRouter

from . import api, downloads, protocol, views

router = OrgRouter()
router.register("agents", api.AgentViewSet, basename="agents")

# Mounted under api/orgs/<org_id>/ by deplite/urls.py.
org_urlpatterns = router.urls

# The agent protocol, signed with X-Agent-Signature (no user auth).
agent_urlpatterns = [
    path("api/agent/heartbeat", protocol.HeartbeatView.as_view(), name="agent-heartbeat"),
    path("api/agent/jobs/claim", protocol.claim_view, name="agent-claim"),
    re_path(r"^api/agent/jobs/(?P<job_id>[^/]+)/events$", protocol.JobEventsView.as_view(), name="agent-job-events"),
    re_path(r"^api/agent/jobs/(?P<job_id>[^/]+)/finish$", protocol.JobFinishView.as_view(), name="agent-job-finish"),
    re_path(r"^api/agent/jobs/(?P<job_id>[^/]+)/outputs$", protocol.JobOutputsView.as_view(), name="agent-job-outputs"),
    re_path(
        r"^api/agent/jobs/(?P<job_id>[^/]+)/outputs/(?P<file_id>[^/]+)/complete$",
        protocol.JobOutputCompleteView.as_view(),
        name="agent-job-output-complete",
    ),
    re_path(
        r"^api/agent/files/(?P<file_id>[^/]+)/download-url$",
        protocol.FileDownloadUrlView.as_view(),
        name="agent-file-download-url",
    ),
]

# Web pages, mounted under orgs/<slug:org_slug>/ by deplite/urls.py (singular names: the
# API router owns "agents-list").
page_urlpatterns = [
    path("agents/", views.agents_list, name="agent-list"),
    path("agents/<uuid:agent_id>/rotate", views.agent_rotate, name="agent-rotate"),
    path("agents/<uuid:agent_id>/revoke", views.agent_revoke, name="agent-revoke"),
]

# The agent package and its installer, public (agents.downloads).
download_urlpatterns = [
    path("agent/install.sh", downloads.install_script_view, name="agent-install-script"),
    path("agent/version", downloads.version_view, name="agent-version"),
    re_path(r"^agent/(?P<filename>deplite_agent-[^/]+)$", downloads.download_view, name="agent-download"),
]
