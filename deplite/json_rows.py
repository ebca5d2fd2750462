"""A model instance from a `row_to_json()` object, so one query can carry another table's row.

The run endpoint's API token query carries its trigger, the presign's carries its binding:
the row arrives as JSON text and is turned back into an instance here, each column through
the field's own conversion (an encrypted column is decrypted as if it had been read plainly).
"""

from __future__ import annotations

from django.db import connection, models


def json_row_sql(model: type[models.Model], *, where: str) -> str:
    """`SELECT row_to_json(r)::text FROM <model's table> r WHERE <where>` (values as %s parameters)."""
    return f'SELECT row_to_json(r)::text FROM "{model._meta.db_table}" r WHERE {where}'  # noqa: S608 (the table name comes from the model; values are %s parameters)  # nosec B608


def instance_from_json_row(model: type[models.Model], row: dict, **related) -> models.Model:
    fields = model._meta.concrete_fields
    values = []
    for field in fields:
        value = row[field.column]
        # JSON columns arrive decoded already; others convert as when read from a cursor.
        if value is not None and hasattr(field, "from_db_value") and not isinstance(field, models.JSONField):
            value = field.from_db_value(value, None, connection)
        values.append(field.to_python(value))
    instance = model.from_db("default", [f.attname for f in fields], values)
    for name, obj in related.items():
        setattr(instance, name, obj)
    return instance
