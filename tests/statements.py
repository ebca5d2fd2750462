"""Counting a request's SQL statements exactly, per database backend.

The hot paths cost fewer statements on PostgreSQL than on SQLite, by design: there the API
token's query carries the rows the view needs (orgs/authentication.py) and a run's or a
presign's writes go as one statement (deplite/one_statement.py); on SQLite, the embedded
default, the same reads and writes are made one by one. A count test states both numbers,
so it is exact on each backend instead of loose enough for both.
"""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext


def statements(ctx: CaptureQueriesContext) -> list[str]:
    """The statements a request sent, without the savepoints of the test's own transaction."""
    return [q["sql"] for q in ctx.captured_queries if "SAVEPOINT" not in q["sql"]]


def per_backend(*, postgresql: int, sqlite: int) -> int:
    return {"postgresql": postgresql, "sqlite": sqlite}[connection.vendor]
