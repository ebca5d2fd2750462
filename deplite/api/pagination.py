from rest_framework import pagination
from rest_framework.exceptions import NotFound

from deplite.api.errors import ValidationFailed


class PageNumberPagination(pagination.PageNumberPagination):
    """`?page=N&pageSize=M` → `{count, next, previous, results}`."""

    page_size_query_param = "pageSize"
    max_page_size = 200


class KeysetPagination(pagination.CursorPagination):
    """`?cursor=…&pageSize=M` → `{next, previous, results}`, newest first.

    For tables that grow without bound (jobs): each page is an index range scan from the
    cursor's (created_at, id), so page 1 and page 2,000 cost the same, and no COUNT(*)
    of the whole table is made. The cursor is opaque: follow `next` / `previous`.
    """

    ordering = ("-created_at", "-id")
    cursor_query_param = "cursor"
    page_size_query_param = "pageSize"
    max_page_size = 200

    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except NotFound:
            raise ValidationFailed("cursor: not a cursor this list gave out.", code="invalid_cursor") from None
