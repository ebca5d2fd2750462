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
from django.http import HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_GET, require_POST

from deplite.api.errors import DepliteError, error_response, field_errors
from deplite.links import public_base_url
from orgs.pages import add_api_errors, call_service, org_page, page_object, render_page
from orgs.permissions import Perm

from . import services
from .api import PresignUploadInput, StorageBindingInput, StoredFileFilter
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
            messages.success(request, f"Storage binding {binding.name} created.")
            _check(request, binding)
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
            _check(request, saved)
            return redirect("binding-edit", org_slug=org.slug, binding_id=saved.pk)
    status = 400 if form.is_bound else 200
    context = {"form": form, "binding": binding, "check": request.session.pop(_check_key(binding), None)}
    return render_page(request, "storage/binding_form.html", context, status=status)


def _check_key(binding: StorageBinding) -> str:
    return f"storage.binding_check.{binding.pk}"


def _check(request, binding: StorageBinding) -> None:
    """Run Test connection (the service) and keep the answer for the binding's page, next to the binding.

    A failed check does not undo the save: the fix may be on the bucket's side.
    """
    result = services.binding_check(binding=binding)
    request.session[_check_key(binding)] = {
        "ok": result.ok,
        "text": f"Connection OK: {result.message}"
        if result.ok
        else f"Connection failed ({result.code}): {result.message}",
    }


@org_page(Perm.STORAGE_MANAGE)
@require_POST
def binding_test(request, org, binding_id: uuid.UUID):
    """Test connection (HeadBucket with the stored key); the answer shows on the binding's page."""
    binding = _binding(request, binding_id)
    _check(request, binding)
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
            "selected_job": request.GET.get("job", ""),
            "query": query.urlencode(),
            "upload_bindings": request.principal.restrict(StorageBinding.objects.all()).order_by("name")
            if request.principal.has(Perm.FILES_WRITE)
            else [],
            "public_origin": public_base_url(),
        },
    )


# --- browser uploads, downloads, deletes ------------------------------------------------------------
# The Files page uploads straight to the bucket: the page asks for a presigned PUT (the same
# service as `presign-upload`), the browser PUTs the bytes (XMLHttpRequest, for its progress
# events), then asks to complete. These answer JSON in the API's error shape.


def _json_error(exc: DepliteError) -> JsonResponse:
    return error_response(exc.status, exc.code, exc.message, exc.details)


def _file(request, file_id) -> StoredFile:
    return page_object(request.principal.restrict(StoredFile.objects.select_related("binding", "org")), file_id)


@org_page(Perm.FILES_WRITE)
@require_POST
def file_presign(request, org, binding_id: uuid.UUID):
    # The binding first: another org's (or a malformed id) is a 404 before anything is checked.
    binding = page_object(request.principal.restrict(StorageBinding.objects.all()), binding_id)
    data = PresignUploadInput(data={**request.POST.dict(), "binding_id": str(binding.pk)})
    if not data.is_valid():
        return error_response(
            400, "validation_error", "Check the file and the binding.", {"fields": field_errors(data.errors)}
        )
    v = data.validated_data
    try:
        file, upload_url, headers, expires_in = services.file_presign_upload(
            org=org,
            binding=binding,
            actor=request.principal.actor,
            file_name=v["file_name"],
            content_type=v["content_type"],
            size=v.get("size"),
        )
    except DepliteError as exc:
        return _json_error(exc)
    return JsonResponse(
        {
            "fileId": str(file.pk),
            "uploadUrl": upload_url,
            "method": "PUT",
            "headers": headers,
            "expiresInSeconds": expires_in,
        },
        status=201,
    )


@org_page(Perm.FILES_WRITE)
@require_POST
def file_complete(request, org, file_id: uuid.UUID):
    try:
        file = services.file_complete(file=_file(request, file_id), actor=request.principal.actor)
    except DepliteError as exc:
        return _json_error(exc)
    return JsonResponse({"fileId": str(file.pk), "status": file.status}, status=202)


@org_page(Perm.FILES_READ)
@require_GET
def file_status(request, org, file_id: uuid.UUID):
    file = _file(request, file_id)
    return JsonResponse(
        {"fileId": str(file.pk), "status": file.status, "size": file.size, "failureReason": file.failure_reason}
    )


@org_page(Perm.FILES_READ)
@require_GET
def file_download(request, org, file_id: uuid.UUID):
    """A short-lived presigned GET: the bytes come from the bucket, never through Deplite."""
    try:
        url, _ = services.file_download_url(file=_file(request, file_id))
    except DepliteError as exc:
        messages.error(request, exc.message)
        return redirect("file-list", org_slug=org.slug)
    return HttpResponseRedirect(url)


@org_page(Perm.FILES_DELETE)
@require_POST
def file_delete(request, org, file_id: uuid.UUID):
    file = _file(request, file_id)
    try:
        services.file_delete(file=file, actor=request.principal.actor)
    except DepliteError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"File {file.file_name} deleted.")
    return redirect("file-list", org_slug=org.slug)
