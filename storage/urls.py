from django.urls import path

from deplite.api.routers import OrgRouter

from . import api, views

router = OrgRouter()
router.register("storage/bindings", api.StorageBindingViewSet, basename="storage-bindings")
router.register("files", api.StoredFileViewSet, basename="files")

# Mounted under api/orgs/<org_id>/ by deplite/urls.py.
org_urlpatterns = router.urls

# Web pages, mounted under orgs/<slug:org_slug>/ by deplite/urls.py (names unlike the API routers' "<basename>-list").
page_urlpatterns = [
    path("storage/", views.bindings_list, name="binding-list"),
    path("storage/new/", views.binding_new, name="binding-new"),
    path("storage/files/", views.files_list, name="file-list"),
    path("storage/<uuid:binding_id>/presign-upload", views.file_presign, name="file-presign"),
    path("storage/files/<uuid:file_id>/complete", views.file_complete, name="file-complete"),
    path("storage/files/<uuid:file_id>/status", views.file_status, name="file-status"),
    path("storage/files/<uuid:file_id>/download", views.file_download, name="file-download"),
    path("storage/files/<uuid:file_id>/delete", views.file_delete, name="file-delete"),
    path("storage/<uuid:binding_id>/", views.binding_edit, name="binding-edit"),
    path("storage/<uuid:binding_id>/test", views.binding_test, name="binding-test"),
    path("storage/<uuid:binding_id>/delete", views.binding_delete, name="binding-delete"),
]
