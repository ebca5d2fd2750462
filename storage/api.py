"""JSON API for storage bindings and files (thin views: input serializer → service → output)."""

from __future__ import annotations

import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from deplite.api.errors import NotFound, ValidationFailed
from deplite.api.fields import DocumentedPattern, StrictBooleanField, StrictCharField, rule
from orgs.permissions import Perm
from orgs.scoping import OrgScopedViewSet

from . import names, services
from .models import FileStatus, StorageBinding, StoredFile

# --- bindings ----------------------------------------------------------------------------------------


class StorageBindingOutput(serializers.ModelSerializer):
    """The secret key is write-only: it never appears here."""

    class Meta:
        model = StorageBinding
        fields = [
            "id",
            "name",
            "endpoint",
            "region",
            "bucket",
            "access_key",
            "path_style",
            "prefix",
            "output_retention_days",
            "created_at",
            "updated_at",
        ]


class StorageBindingInput(serializers.Serializer):
    name = StrictCharField(max_length=100)
    endpoint = StrictCharField(
        max_length=255,
        trim_whitespace=True,
        help_text="The bucket's S3 endpoint, an https:// URL of a public host (http:// and private hosts only where "
        "the server allows private storage endpoints); its host must resolve when the binding is saved.",
    )
    # Bucket, region and keys are taken as sent (no trimming): what the pattern says is what is accepted.
    region = StrictCharField(
        max_length=32,
        required=False,
        allow_blank=True,
        default="",
        trim_whitespace=False,
        validators=[DocumentedPattern(names.REGION_RE)],
    )
    bucket = StrictCharField(max_length=63, trim_whitespace=False, validators=[DocumentedPattern(names.BUCKET_RE)])
    access_key = StrictCharField(
        max_length=128, trim_whitespace=False, validators=[DocumentedPattern(names.ACCESS_KEY_RE)]
    )
    secret_key = StrictCharField(
        max_length=256, write_only=True, trim_whitespace=False, validators=[DocumentedPattern(names.SECRET_KEY_RE)]
    )
    path_style = StrictBooleanField(required=False, default=False)
    prefix = StrictCharField(
        max_length=200, required=False, allow_blank=True, default="", validators=[DocumentedPattern(names.PREFIX_RE)]
    )

    # Job outputs stored through the binding are removed this many days after upload; null keeps them.
    output_retention_days = serializers.IntegerField(
        required=False, allow_null=True, default=None, min_value=1, max_value=36500
    )

    validate_region = rule(names.clean_region)
    validate_bucket = rule(names.clean_bucket)
    validate_access_key = rule(names.clean_access_key)
    validate_secret_key = rule(names.clean_secret_key)
    validate_prefix = rule(names.clean_prefix)


# What Test connection depends on (besides the secret key, which is never read back to compare).
CONNECTION_FIELDS = ("endpoint", "region", "bucket", "access_key", "path_style")

# Check results that mean the binding's endpoint itself is wrong: a 400, not a 200 {ok: false}.
ENDPOINT_MISCONFIGURED = frozenset({"endpoint_redirect"})


class CheckResultOutput(serializers.Serializer):
    ok = serializers.BooleanField()
    code = StrictCharField()
    message = StrictCharField()


class StorageBindingCreated(StorageBindingOutput):
    """The new binding with the answer of Test connection, run right after the save as the page does:
    a client learns at once that the endpoint is unreachable or the bucket missing. A failed check
    does not undo the save (the fix may be on the bucket's side); `POST …/bindings/<id>/test` asks again."""

    check = CheckResultOutput(source="connection_check", read_only=True)

    class Meta(StorageBindingOutput.Meta):
        fields = [*StorageBindingOutput.Meta.fields, "check"]


class StorageBindingUpdated(StorageBindingOutput):
    """The binding with Test connection's answer when the change moved its key (endpoint, region,
    bucket, access or secret key, path style); null when nothing the connection depends on changed."""

    check = CheckResultOutput(source="connection_check", read_only=True, allow_null=True)

    class Meta(StorageBindingOutput.Meta):
        fields = [*StorageBindingOutput.Meta.fields, "check"]


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

    @extend_schema(request=StorageBindingInput, responses={201: StorageBindingCreated})
    def create(self, request, org_id):
        data = StorageBindingInput(data=request.data)
        data.is_valid(raise_exception=True)
        binding = services.binding_create(org=self.org, actor=self.actor, **data.validated_data)
        # Outside the save's transaction: a network call (short timeouts, no retries).
        binding.connection_check = services.binding_check(binding=binding)
        return Response(StorageBindingCreated(binding).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=StorageBindingInput(partial=True), responses={200: StorageBindingUpdated})
    def partial_update(self, request, org_id, pk):
        binding = self.get_object()
        data = StorageBindingInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        before = {field: getattr(binding, field) for field in CONNECTION_FIELDS}
        binding = services.binding_update(binding=binding, actor=self.actor, **data.validated_data)
        moved = "secret_key" in data.validated_data or any(
            getattr(binding, field) != value for field, value in before.items()
        )
        binding.connection_check = services.binding_check(binding=binding) if moved else None
        return Response(StorageBindingUpdated(binding).data)

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
    binding_id = serializers.UUIDField()
    created_by = serializers.SerializerMethodField()
    job_id = serializers.UUIDField(allow_null=True, help_text="The job that uploaded it (an output file), or null.")

    class Meta:
        model = StoredFile
        fields = [
            "id",
            "binding_id",
            "file_name",
            "content_type",
            "declared_size",
            "size",
            "etag",
            "sha256",
            "job_id",
            "status",
            "failure_reason",
            "created_by",
            "created_at",
            "updated_at",
            "completed_at",
            "verified_at",
            "deleted_at",
        ]

    def get_created_by(self, obj) -> dict | None:
        if obj.created_by_user_id:
            return {"kind": "user", "id": str(obj.created_by_user_id), "label": obj.created_by_user.email}
        if obj.created_by_token_id:
            token = obj.created_by_token
            return {"kind": "token", "id": str(token.pk), "label": f"{token.name} ({token.prefix}…)"}
        if obj.actor_kind == "agent":  # a job's output, uploaded from its step
            return {"kind": "agent", "id": obj.actor_id, "label": obj.actor_label}
        return None


class PresignUploadInput(serializers.Serializer):
    binding_id = serializers.UUIDField()
    file_name = StrictCharField(
        max_length=1024, trim_whitespace=False, validators=[DocumentedPattern(names.FILE_NAME_RE)]
    )
    content_type = StrictCharField(
        max_length=255,
        required=False,
        default="application/octet-stream",
        validators=[DocumentedPattern(names.CONTENT_TYPE_RE)],
    )
    size = serializers.IntegerField(required=False, allow_null=True, min_value=0)

    validate_file_name = rule(names.clean_file_name)
    validate_content_type = rule(names.clean_content_type)


class PresignUploadOutput(serializers.Serializer):
    file_id = serializers.UUIDField()
    upload_url = StrictCharField()
    method = StrictCharField()
    headers = serializers.DictField(child=StrictCharField())
    expires_in_seconds = serializers.IntegerField()


class FileStatusOutput(serializers.Serializer):
    file_id = serializers.UUIDField(source="id")
    status = StrictCharField()


class DownloadUrlOutput(serializers.Serializer):
    download_url = StrictCharField()
    expires_in_seconds = serializers.IntegerField()


class StoredFileFilter(django_filters.FilterSet):
    bindingId = django_filters.UUIDFilter(field_name="binding_id")
    status = django_filters.ChoiceFilter(choices=FileStatus.choices)
    # The files a job uploaded (its outputs; storage keeps the job as a plain id).
    job = django_filters.UUIDFilter(field_name="job_id", label="The files this job uploaded")

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
        # Through the principal's view: a storage token for binding A cannot name B.
        binding = self.org_objects(StorageBinding).filter(pk=v["binding_id"]).first()
        if binding is None:
            raise NotFound("Storage binding not found.", code="binding_not_found")
        file, upload_url, headers, expires_in = services.file_presign_upload(
            org=self.org,
            binding=binding,
            actor=self.actor,
            file_name=v["file_name"],
            content_type=v["content_type"],
            size=v.get("size"),
        )
        out = {
            "file_id": file.pk,
            "upload_url": upload_url,
            "method": "PUT",
            "headers": headers,
            "expires_in_seconds": expires_in,
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
        return Response(DownloadUrlOutput({"download_url": url, "expires_in_seconds": expires_in}).data)

    def destroy(self, request, org_id, pk):
        services.file_delete(file=self.get_object(), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)
