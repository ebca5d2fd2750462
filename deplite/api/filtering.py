"""The API's filter backend: django-filter, but a filter value it cannot use is a 400.

django-filter skips a filter whose value is empty (`?status=`) and reads a boolean it does
not recognise (`?enabled=maybe`) as "no filter", so a caller's typo silently answers the
whole list. The pages keep that forgiving behaviour (their GET forms send empty fields);
the API says what it did not understand, as the schema documents (an enum, a UUID, a boolean).
Free-text filters (`CharFilter`, e.g. `q`) take any string, the empty one included.
"""

from __future__ import annotations

from django_filters import filters
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework.exceptions import ValidationError

_BOOLEANS = {"true", "false"}


class StrictFilterBackend(DjangoFilterBackend):
    def filter_queryset(self, request, queryset, view):
        filterset_class = self.get_filterset_class(view, queryset)
        if filterset_class is not None:
            errors: dict[str, list[str]] = {}
            for name, filter_ in filterset_class.base_filters.items():
                if name not in request.query_params or isinstance(filter_, filters.CharFilter):
                    continue
                value = request.query_params.get(name)
                if value == "":
                    errors[name] = ["must not be empty (leave the parameter out for no filter)."]
                elif isinstance(filter_, filters.BooleanFilter) and value not in _BOOLEANS:
                    errors[name] = ["must be true or false."]
            if errors:
                raise ValidationError(errors)
        return super().filter_queryset(request, queryset, view)
