"""What storage adds to the Overview: the "Bucket linked" step."""

from __future__ import annotations

from django.urls import reverse

from orgs.extensions import Step
from orgs.permissions import Perm

from .models import StorageBinding


def storage_overview(request, org):
    if not request.principal.has(Perm.STORAGE_READ):
        return
    linked = request.principal.restrict(StorageBinding.objects.all()).exists()
    url = reverse("binding-list" if linked else "binding-new", kwargs={"org_slug": org.slug})
    yield Step(10, "Link a bucket", linked, url, "Your own S3-compatible bucket holds the files jobs use.")
