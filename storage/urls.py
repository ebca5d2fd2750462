from deplite.api.routers import OrgRouter

from . import api

router = OrgRouter()
router.register("storage/bindings", api.StorageBindingViewSet, basename="storage-bindings")
router.register("files", api.StoredFileViewSet, basename="files")

# Mounted under api/orgs/<org_id>/ by deplite/urls.py.
org_urlpatterns = router.urls
