"""Several row writes sent to PostgreSQL as ONE statement (data-modifying WITH clauses).

For the hottest write path only (a trigger run: its Idempotency-Key, the trigger's
last-job pointer and the audit row). Each write is compiled by Django's own SQL compilers
from a model instance or a queryset update, so field conversion, defaults and column
names stay Django's; only the round trips go. The statement is atomic on its own and
fails whole (a unique violation in one part leaves none of the others).

Elsewhere (SQLite, the embedded default) the writes are simply executed one by one.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

from django.db import connections, transaction
from django.db.models import Model, QuerySet, sql


@dataclass(frozen=True)
class Write:
    sql: str
    params: tuple
    run_alone: object  # a callable doing this write by itself through the ORM


# INSERT text per (model, columns, database): compiled once, since only the values change.
_insert_sql: dict[tuple, str] = {}


def insert(obj: Model, using: str = "default") -> Write:
    """INSERT `obj` (its database-generated primary key is not read back)."""
    meta = obj._meta
    fields = [f for f in meta.local_concrete_fields if not getattr(f, "generated", False)]
    if obj.pk is None:  # as Model.save(): the database numbers it
        fields = [f for f in fields if f is not meta.auto_field]
    connection = connections[using]
    # As Django's insert compiler prepares each value (pre_save fills auto_now and the like).
    params = tuple(f.get_db_prep_save(f.pre_save(obj, True), connection=connection) for f in fields)
    cache_key = (type(obj), tuple(f.attname for f in fields), using)
    text = _insert_sql.get(cache_key)
    if text is None:
        query = sql.InsertQuery(type(obj))
        query.insert_values(fields, [obj])
        [(text, compiled_params)] = query.get_compiler(using=using).as_sql()
        if len(compiled_params) != len(params):  # a field with its own placeholder: do not cache
            return Write(text, tuple(compiled_params), lambda: obj.save(force_insert=True, using=using))
        _insert_sql[cache_key] = text
    return Write(text, params, lambda: obj.save(force_insert=True, using=using))


def insert_all(objs: list[Model], using: str = "default") -> Write | None:
    """INSERT every one of `objs` (one model) as one multi-row INSERT, so the count of rows costs no
    round trips on either backend; None when there are none."""
    if len(objs) <= 1:
        return insert(objs[0], using) if objs else None
    model = type(objs[0])
    meta = model._meta
    fields = [f for f in meta.local_concrete_fields if not getattr(f, "generated", False)]
    if objs[0].pk is None:
        fields = [f for f in fields if f is not meta.auto_field]
    query = sql.InsertQuery(model)
    query.insert_values(fields, objs)
    [(text, params)] = query.get_compiler(using=using).as_sql()
    return Write(text, tuple(params), lambda: model._default_manager.using(using).bulk_create(objs))


def update(queryset: QuerySet, **values) -> Write:
    """UPDATE the rows of `queryset` (a plain filter, no joins) with `values`."""
    query = queryset.query.chain(sql.UpdateQuery)
    query.add_update_values(values)
    text, params = query.get_compiler(queryset.db).as_sql()
    return Write(text, tuple(params), lambda: queryset.update(**values))


def execute(*writes: Write | None, using: str = "default", savepoint: bool = True) -> None:
    """Run the writes, all or none: one statement on PostgreSQL, one after the other elsewhere.

    One statement is atomic on its own, so outside a transaction none is opened (BEGIN and
    COMMIT would be two more round trips); inside one, a savepoint keeps a failing write
    (a unique violation the caller handles) from breaking the caller's transaction.
    """
    parts = tuple(w for w in writes if w is not None)
    connection = connections[using]
    if connection.vendor != "postgresql":
        with transaction.atomic(using=using, savepoint=savepoint):
            for write in parts:
                write.run_alone()
        return
    text = f"WITH {', '.join(f'w{i} AS ({w.sql})' for i, w in enumerate(parts))} SELECT 1"
    params = [p for w in parts for p in w.params]
    # savepoint=False: the caller's transaction is to fail whole with it (two queries fewer).
    with transaction.atomic(using=using, savepoint=savepoint) if connection.in_atomic_block else nullcontext():
        with connection.cursor() as cursor:
            cursor.execute(text, params)
