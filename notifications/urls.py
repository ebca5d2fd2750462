from django.urls import path, re_path

from . import api, views

# Mounted under api/orgs/<org_id>/ by deplite/urls.py.
org_urlpatterns = [
    re_path(
        r"^jobs/(?P<job_id>[^/]+)/notifications/(?P<pk>[^/]+)/retry/?$",
        api.DeliveryViewSet.as_view({"post": "retry"}),
        name="notification-retry-api",
    ),
]

# Web pages, mounted under orgs/<slug:org_slug>/.
page_urlpatterns = [
    path(
        "jobs/<uuid:job_id>/notifications/<uuid:delivery_id>/retry",
        views.delivery_retry,
        name="notification-retry",
    ),
]
