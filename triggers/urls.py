from django.urls import path, re_path

from deplite.api.routers import OrgRouter

from . import api, views
from .schedules import api as schedules_api
from .schedules import views as schedules_views

router = OrgRouter()
router.register("triggers", api.TriggerViewSet, basename="triggers")
router.register("jobs", api.JobViewSet, basename="jobs")
router.register(r"triggers/(?P<trigger_id>[^/.]+)/schedules", schedules_api.ScheduleViewSet, basename="schedules")
router.register("environments", api.EnvironmentViewSet, basename="environments")

# Mounted under api/orgs/<org_id>/ by deplite/urls.py.
org_urlpatterns = router.urls

# The run endpoint names no org; the docs use both spellings, one view serves them.
run_urlpatterns = [
    re_path(r"^api/triggers/(?P<trigger_id>[^/]+)/run/?$", api.TriggerRunView.as_view(), name="trigger-run-api"),
    re_path(r"^triggers/(?P<trigger_id>[^/]+)/run/?$", api.TriggerRunView.as_view(), name="trigger-run"),
]

# Web pages, mounted under orgs/<slug:org_slug>/ by deplite/urls.py. Names are singular
# ("job-list"): the API routers already own "jobs-list", "jobs-cancel", "triggers-detail".
# `jobs/<id>` has no trailing slash: it is the job `url` the run endpoint and notifications
# hand out.
page_urlpatterns = [
    path("jobs/", views.jobs_list, name="job-list"),
    path("jobs/rows", views.jobs_rows, name="job-rows"),
    path("jobs/<uuid:job_id>", views.job_detail, name="job-detail"),
    path("jobs/<uuid:job_id>/live", views.job_live, name="job-live"),
    path("jobs/<uuid:job_id>/log.txt", views.job_log_raw, name="job-log-raw"),
    path("jobs/<uuid:job_id>/cancel", views.job_cancel, name="job-cancel"),
    path("jobs/<uuid:job_id>/rerun", views.job_rerun, name="job-rerun"),
    path("jobs/<uuid:job_id>/approve", views.job_approve, name="job-approve"),
    path("jobs/<uuid:job_id>/reject", views.job_reject, name="job-reject"),
    path("environments/", views.environments_list, name="environment-list"),
    path("environments/<slug:environment_name>/", views.environment_detail, name="environment-detail"),
    path("environments/<slug:environment_name>/queue", views.environment_queue_live, name="environment-queue"),
    path("environments/<slug:environment_name>/edit", views.environment_edit, name="environment-edit"),
    path("environments/<slug:environment_name>/delete", views.environment_delete, name="environment-delete"),
    path("environments/<slug:environment_name>/lock", views.environment_lock, name="environment-lock"),
    path("environments/<slug:environment_name>/unlock", views.environment_unlock, name="environment-unlock"),
    path("environments/<slug:environment_name>/rollback", views.environment_rollback, name="environment-rollback"),
    path("triggers/", views.triggers_list, name="trigger-list"),
    path("triggers/new/", views.trigger_new, name="trigger-new"),
    path("triggers/<uuid:trigger_id>/", views.trigger_detail, name="trigger-detail"),
    path("triggers/<uuid:trigger_id>/edit/", views.trigger_edit, name="trigger-edit"),
    path("triggers/<uuid:trigger_id>/run", views.trigger_run, name="trigger-run-form"),
    path("triggers/<uuid:trigger_id>/delete", views.trigger_delete, name="trigger-delete"),
    path("triggers/<uuid:trigger_id>/schedules/new", schedules_views.schedule_new, name="schedule-new"),
    path(
        "triggers/<uuid:trigger_id>/schedules/<uuid:schedule_id>/edit",
        schedules_views.schedule_edit,
        name="schedule-edit",
    ),
    path(
        "triggers/<uuid:trigger_id>/schedules/<uuid:schedule_id>/toggle",
        schedules_views.schedule_toggle,
        name="schedule-toggle",
    ),
    path(
        "triggers/<uuid:trigger_id>/schedules/<uuid:schedule_id>/delete",
        schedules_views.schedule_delete,
        name="schedule-delete",
    ),
    path(
        "triggers/<uuid:trigger_id>/rotate-notify-secret",
        views.trigger_rotate_notify_secret,
        name="trigger-rotate-notify-secret",
    ),
]
