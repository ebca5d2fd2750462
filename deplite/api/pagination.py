from rest_framework import pagination


class PageNumberPagination(pagination.PageNumberPagination):
    """`?page=N&pageSize=M` → `{count, next, previous, results}`."""

    page_size_query_param = "pageSize"
    max_page_size = 200
