from rest_framework import pagination
from rest_framework.exceptions import NotFound, ValidationError

from deplite.api.errors import ValidationFailed

MAX_PAGE_SIZE = 200


def _positive_int(raw: str) -> bool:
    return raw.isascii() and raw.isdigit() and int(raw) >= 1


class StrictPageSize:
    """`pageSize` is a positive integer, or a 400 (DRF falls back to the default page size for
    `pageSize=abc` or `0`, answering something the caller did not ask for). Sizes over the
    maximum are capped, as the schema says."""

    page_size_query_param = "pageSize"
    max_page_size = MAX_PAGE_SIZE

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is not None and not _positive_int(raw):
            raise ValidationError({self.page_size_query_param: ["must be a positive integer."]})
        return super().get_page_size(request)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1}
                parameter["description"] = f"Results per page (at most {MAX_PAGE_SIZE}; larger sizes are capped)."
        return parameters


class PageNumberPagination(StrictPageSize, pagination.PageNumberPagination):
    """`?page=N&pageSize=M` → `{count, next, previous, results}`. `page` is a positive integer
    (a 400 otherwise; DRF would read `?page=` as page 1); a page past the last is a 404."""

    last_page_strings = ()

    def get_page_number(self, request, paginator):
        raw = request.query_params.get(self.page_query_param)
        if raw is not None and not _positive_int(raw):
            raise ValidationError({self.page_query_param: ["must be a positive integer."]})
        return super().get_page_number(request, paginator)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1}
        return parameters


class KeysetPagination(StrictPageSize, pagination.CursorPagination):
    """`?cursor=…&pageSize=M` → `{next, previous, results}`, newest first.

    For tables that grow without bound (jobs): each page is an index range scan from the
    cursor's (created_at, id), so page 1 and page 2,000 cost the same, and no COUNT(*)
    of the whole table is made. The cursor is opaque: follow `next` / `previous`.
    """

    ordering = ("-created_at", "-id")
    cursor_query_param = "cursor"

    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except NotFound:
            raise ValidationFailed("cursor: not a cursor this list gave out.", code="invalid_cursor") from None
