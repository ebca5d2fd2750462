"""JSON API for storage bindings and files (thin views: input serializer → service → output)."""

from __future__ import annotations

import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from deplite.api.errors import NotFound, ValidationFailed
from orgs.permissions import Perm
from orgs.scoping import OrgScopedViewSet

from . import names, services
from .models import FileStatus, StorageBinding, StoredFile


def _field(clean):
    """A serializer validator from a storage.names rule (ValueError → field error)."""

    def validate(self, value):
        try:
            return clean(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None

    return validate


# --- bindings ----------------------------------------------------------------------------------------


class StorageBindingOutput(serializers.ModelSerializer):
    """The secret key is write-only: it never appears here."""

    accessKey = serializers.CharField(source="access_key")
    pathStyle = serializers.BooleanField(source="path_style")
    createdAt = serializers.DateTimeField(source="created_at")
    updatedAt = serializers.DateTimeField(source="updated_at")

    class Meta:
        model = StorageBinding
        fields = [
            "id",
            "name",
            "endpoint",
            "region",
            "bucket",
            "accessKey",
            "pathStyle",
            "prefix",
            "createdAt",
            "updatedAt",
        ]


class StorageBindingInput(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    endpoint = serializers.CharField(max_length=255, trim_whitespace=True)
    region = serializers.CharField(max_length=32, required=False, allow_blank=True, default="")
    bucket = serializers.CharField(max_length=63)
    accessKey = serializers.CharField(max_length=128)
    secretKey = serializers.CharField(max_length=256, write_only=True, trim_whitespace=False)
    pathStyle = serializers.BooleanField(required=False, default=False)
    prefix = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")

    validate_region = _field(names.clean_region)
    validate_bucket = _field(names.clean_bucket)
    validate_accessKey = _field(names.clean_access_key)
    validate_secretKey = _field(names.clean_secret_key)
    validate_prefix = _field(names.clean_prefix)

    def service_kwargs(self) -> dict:
        v = self.validated_data
        wire = {
            "name": "name",
            "endpoint": "endpoint",
            "region": "region",
            "bucket": "bucket",
            "accessKey": "access_key",
            "secretKey": "secret_key",
            "pathStyle": "path_style",
            "prefix": "prefix",
        }
        return {wire[k]: value for k, value in v.items()}


# Check results that mean the binding's endpoint itself is wrong: a 400, not a 200 {ok: false}.
ENDPOINT_MISCONFIGURED = frozenset({"endpoint_redirect"})


class CheckResultOutput(serializers.Serializer):
    ok = serializers.BooleanField()
    code = serializers.CharField()
    message = serializers.CharField()


class StorageBindingViewSet(OrgScopedViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    """`GET/POST …/storage/bindings`, `GET/PATCH/DELETE …/bindings/<id>`, `POST …/bindings/<id>/test`."""

    queryset = StorageBinding.objects.all()
    serializer_class = StorageBindingOutput
    permission_map = {
        "list": Perm.STORAGE_READ,
        "retrieve": Perm.STORAGE_READ,
        "create": Perm.STORAGE_MANAGE,
        "partial_update": Perm.STORAGE_MANAGE,
        "destroy": Perm.STORAGE_MANAGE,
        "test_connection": Perm.STORAGE_MANAGE,
    }

    def safely_get_queryset(self, queryset):
        return queryset.order_by("name")

    @extend_schema(request=StorageBindingInput, responses={201: StorageBindingOutput})
    def create(self, request, org_id):
        data = StorageBindingInput(data=request.data)
        data.is_valid(raise_exception=True)
        binding = services.binding_create(org=self.org, actor=self.actor, **data.service_kwargs())
        return Response(StorageBindingOutput(binding).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=StorageBindingInput(partial=True), responses={200: StorageBindingOutput})
    def partial_update(self, request, org_id, pk):
        binding = self.get_object()
        data = StorageBindingInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        binding = services.binding_update(binding=binding, actor=self.actor, **data.service_kwargs())
        return Response(StorageBindingOutput(binding).data)

    def destroy(self, request, org_id, pk):
        services.binding_delete(binding=self.get_object(), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={200: CheckResultOutput})
    @action(detail=True, methods=["post"], url_path="test")
    def test_connection(self, request, org_id, pk):
        result = services.binding_check(binding=self.get_object())
        if result.code in ENDPOINT_MISCONFIGURED:
            # Not a state of the bucket but a wrong endpoint, as a save would have refused it.
            raise ValidationFailed(result.message, code=result.code, details={"fields": {"endpoint": [result.message]}})
        return Response(CheckResultOutput(result).data)


# --- files ------------------------------------------------------------------------------------------------


class StoredFileOutput(serializers.ModelSerializer):
    bindingId = serializers.UUIDField(source="binding_id")
    fileName = serializers.CharField(source="file_name")
    contentType = serializers.CharField(source="content_type")
    declaredSize = serializers.IntegerField(source="declared_size")
    failureReason = serializers.CharField(source="failure_reason")
    createdBy = serializers.SerializerMethodField()
    createdAt = serializers.DateTimeField(source="created_at")
    updatedAt = serializers.DateTimeField(source="updated_at")
    completedAt = serializers.DateTimeField(source="completed_at")
    verifiedAt = serializers.DateTimeField(source="verified_at")
    deletedAt = serializers.DateTimeField(source="deleted_at")

    class Meta:
        model = StoredFile
        fields = [
            "id",
            "bindingId",
            "fileName",
            "contentType",
            "declaredSize",
            "size",
            "etag",
            "status",
            "failureReason",
            "createdBy",
            "createdAt",
            "updatedAt",
            "completedAt",
            "verifiedAt",
            "deletedAt",
        ]

    def get_createdBy(self, obj) -> dict | None:
        if obj.created_by_user_id:
            return {"kind": "user", "id": str(obj.created_by_user_id), "label": obj.created_by_user.email}
        if obj.created_by_token_id:
            token = obj.created_by_token
            return {"kind": "token", "id": str(token.pk), "label": f"{token.name} ({token.prefix}…)"}
        return None


class PresignUploadInput(serializers.Serializer):
    bindingId = serializers.UUIDField()
    fileName = serializers.CharField(max_length=1024, trim_whitespace=False)
    contentType = serializers.CharField(max_length=255, required=False, default="application/octet-stream")
    size = serializers.IntegerField(required=False, allow_null=True, min_value=0)

    validate_fileName = _field(names.clean_file_name)
    validate_contentType = _field(names.clean_content_type)


class PresignUploadOutput(serializers.Serializer):
    fileId = serializers.UUIDField()
    uploadUrl = serializers.CharField()
    method = serializers.CharField()
    headers = serializers.DictField(child=serializers.CharField())
    expiresInSeconds = serializers.IntegerField()


class FileStatusOutput(serializers.Serializer):
    fileId = serializers.UUIDField(source="id")
    status = serializers.CharField()


class DownloadUrlOutput(serializers.Serializer):
    downloadUrl = serializers.CharField()
    expiresInSeconds = serializers.IntegerField()


class StoredFileFilter(django_filters.FilterSet):
    bindingId = django_filters.UUIDFilter(field_name="binding_id")
    status = django_filters.ChoiceFilter(choices=FileStatus.choices)

    class Meta:
        model = StoredFile
        fields: list[str] = []


class StoredFileViewSet(OrgScopedViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    """Files: list/get, `presign-upload`, `<id>/complete`, `<id>/download-url`, delete."""

    queryset = StoredFile.objects.all()
    serializer_class = StoredFileOutput
    filterset_class = StoredFileFilter
    permission_map = {
        "list": Perm.FILES_READ,
        "retrieve": Perm.FILES_READ,
        "download_url": Perm.FILES_READ,
        "presign_upload": Perm.FILES_WRITE,
        "complete": Perm.FILES_WRITE,
        "destroy": Perm.FILES_DELETE,
    }

    def safely_get_queryset(self, queryset):
        queryset = queryset.select_related("binding", "created_by_user", "created_by_token")
        if self.action == "list" and "status" not in self.request.query_params:
            # Deleted files are history; list them only when asked (?status=deleted).
            queryset = queryset.exclude(status=FileStatus.DELETED)
        return queryset.order_by("-created_at", "-id")

    @extend_schema(request=PresignUploadInput, responses={201: PresignUploadOutput})
    @action(detail=False, methods=["post"], url_path="presign-upload")
    def presign_upload(self, request, org_id):
        data = PresignUploadInput(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        # Through org_objects: a storage token for binding A cannot name binding B.
        binding = self.org_objects(StorageBinding).filter(pk=v["bindingId"]).first()
        if binding is None:
            raise NotFound("Storage binding not found.", code="binding_not_found")
        file, upload_url, headers, expires_in = services.file_presign_upload(
            org=self.org,
            binding=binding,
            actor=self.actor,
            file_name=v["fileName"],
            content_type=v["contentType"],
            size=v.get("size"),
        )
        out = {
            "fileId": file.pk,
            "uploadUrl": upload_url,
            "method": "PUT",
            "headers": headers,
            "expiresInSeconds": expires_in,
        }
        return Response(PresignUploadOutput(out).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={202: FileStatusOutput})
    @action(detail=True, methods=["post"])
    def complete(self, request, org_id, pk):
        file = services.file_complete(file=self.get_object(), actor=self.actor)
        return Response(FileStatusOutput(file).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses={200: DownloadUrlOutput})
    @action(detail=True, methods=["get"], url_path="download-url")
    def download_url(self, request, org_id, pk):
        url, expires_in = services.file_download_url(file=self.get_object())
        return Response(DownloadUrlOutput({"downloadUrl": url, "expiresInSeconds": expires_in}).data)

    def destroy(self, request, org_id, pk):
        services.file_delete(file=self.get_object(), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)
