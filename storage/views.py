"""Web pages for storage bindings and files, on the same `org_page` resolver as every org page.

The binding form is validated by the API's `StorageBindingInput` and saved by the same
services (which check the endpoint and require the secret again when the key would be
pointed elsewhere). The secret key is write-only: no page ever renders it.
"""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.shortcuts import redirect
from django.views.decorators.http import require_GET, require_POST

from deplite.api.errors import DepliteError
from orgs.pages import add_api_errors, call_service, org_page, page_object, render_page
from orgs.permissions import Perm

from . import services
from .api import StorageBindingInput, StoredFileFilter
from .forms import StorageBindingForm
from .models import FileStatus, StorageBinding, StoredFile

FILES_PER_PAGE = 50


@org_page(Perm.STORAGE_READ)
@require_GET
def bindings_list(request, org):
    bindings = (
        request.principal.restrict(StorageBinding.objects.all())
        .annotate(live_files=Count("files", filter=Q(files__status__in=services.LIVE_STATUSES)))
        .order_by("name")
    )
    return render_page(request, "storage/bindings_list.html", {"bindings": bindings})


def _binding(request, binding_id) -> StorageBinding:
    return page_object(request.principal.restrict(StorageBinding.objects.select_related("org")), binding_id)


def _save(request, form: StorageBindingForm) -> StorageBinding | None:
    if not form.is_valid():
        return None
    binding = form.binding
    data = StorageBindingInput(data=form.wire_data(), partial=binding is not None)
    if not data.is_valid():
        add_api_errors(form, data.errors)
        return None
    actor, fields = request.principal.actor, data.validated_data
    taken = {"name_taken": "name"}
    if binding is None:
        return call_service(
            form, services.binding_create, field_for=taken, org=request.principal.org, actor=actor, **fields
        )
    return call_service(form, services.binding_update, field_for=taken, binding=binding, actor=actor, **fields)


@org_page(Perm.STORAGE_MANAGE)
def binding_new(request, org):
    form = StorageBindingForm()
    if request.method == "POST":
        form = StorageBindingForm(request.POST)
        binding = _save(request, form)
        if binding is not None:
            messages.success(request, f"Storage binding {binding.name} created. Test the connection to check the key.")
            return redirect("binding-edit", org_slug=org.slug, binding_id=binding.pk)
    status = 400 if form.is_bound else 200
    return render_page(request, "storage/binding_form.html", {"form": form, "binding": None}, status=status)


@org_page(Perm.STORAGE_MANAGE)
def binding_edit(request, org, binding_id: uuid.UUID):
    binding = _binding(request, binding_id)
    form = StorageBindingForm(binding=binding)
    if request.method == "POST":
        form = StorageBindingForm(request.POST, binding=binding)
        saved = _save(request, form)
        if saved is not None:
            messages.success(request, f"Storage binding {saved.name} saved.")
            return redirect("binding-edit", org_slug=org.slug, binding_id=saved.pk)
    status = 400 if form.is_bound else 200
    return render_page(request, "storage/binding_form.html", {"form": form, "binding": binding}, status=status)


@org_page(Perm.STORAGE_MANAGE)
@require_POST
def binding_test(request, org, binding_id: uuid.UUID):
    """Test connection (HeadBucket with the stored key); the answer shows on the binding's page."""
    binding = _binding(request, binding_id)
    result = services.binding_check(binding=binding)
    if result.ok:
        messages.success(request, f"Connection OK: {result.message}")
    else:
        messages.error(request, f"Connection failed ({result.code}): {result.message}")
    return redirect("binding-edit", org_slug=org.slug, binding_id=binding.pk)


@org_page(Perm.STORAGE_MANAGE)
@require_POST
def binding_delete(request, org, binding_id: uuid.UUID):
    binding = _binding(request, binding_id)
    name = binding.name
    try:
        services.binding_delete(binding=binding, actor=request.principal.actor)
    except DepliteError as exc:
        messages.error(request, f"{name}: {exc.message}")
    else:
        messages.success(request, f"Storage binding {name} deleted. The objects in the bucket were left alone.")
    return redirect("binding-list", org_slug=org.slug)


@org_page(Perm.FILES_READ)
@require_GET
def files_list(request, org):
    files = request.principal.restrict(
        StoredFile.objects.select_related("binding", "created_by_user", "created_by_token")
    )
    if "status" not in request.GET or not request.GET["status"]:
        # As in the API: deleted files are history, listed only when asked for.
        files = files.exclude(status=FileStatus.DELETED)
    filterset = StoredFileFilter(request.GET, queryset=files.order_by("-created_at", "-id"))
    filtered = filterset.qs if filterset.is_valid() else files.none()
    page = Paginator(filtered, FILES_PER_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render_page(
        request,
        "storage/files_list.html",
        {
            "page": page,
            "filter_errors": filterset.errors,
            "bindings": request.principal.restrict(StorageBinding.objects.all()).order_by("name"),
            "statuses": FileStatus.choices,
            "selected_binding": request.GET.get("bindingId", ""),
            "selected_status": request.GET.get("status", ""),
            "query": query.urlencode(),
        },
    )
