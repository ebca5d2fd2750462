"""A cursor for the hottest statements: bound and prepared by PostgreSQL, once per connection.

Django's cursors bind on the client (psycopg's ClientCursor): each statement goes to the server as
text with its values quoted in, and PostgreSQL parses and plans it every time. For the two
statements every run request sends (the API token's lookup and the run's one-statement write),
that was about half of PostgreSQL's work per request, and quoting ~60 values was a sixth of the
web process's. Through `prepared_cursor()` they are prepared on first use on a connection
(psycopg keeps the statement per connection) and afterwards only their values are sent.

The cursor is wrapped as Django wraps its own, so query logging and counting see these
statements. Everything else keeps Django's client-side binding.

Behind a transaction-mode pooler that cannot carry prepared statements (PgBouncer before 1.21,
or without `max_prepared_statements`), set `DATABASE_PREPARED_STATEMENTS=0`: the statements are
then still bound on the server but not prepared.
"""

from __future__ import annotations

import sys

from django.conf import settings
from django.db.backends.postgresql.base import ServerBindingCursor

# Django turns psycopg's preparing off (threshold None), and then even `prepare=True` is ignored.
# A threshold no statement reaches prepares exactly those asked for: only server-binding cursors
# (this one) can be prepared at all, Django's client-binding ones never are.
ONLY_WHEN_ASKED = sys.maxsize


class PreparedCursor(ServerBindingCursor):
    def execute(self, query, params=None, *, prepare=None, binary=None):
        if prepare is None:
            prepare = settings.DATABASE_PREPARED_STATEMENTS
        return super().execute(query, params, prepare=prepare, binary=binary)


class LoggedPreparedCursor(PreparedCursor):
    """When Django logs queries (DEBUG, tests): psycopg keeps no statement text on a cursor that
    ran a prepared one, and Django's log reads it from there."""

    def execute(self, query, params=None, **kwargs):
        result = super().execute(query, params, **kwargs)
        self._query = self._convert_query(query, params)
        return result


def prepared_cursor(connection):
    """A Django cursor on `connection` (PostgreSQL) whose statements are prepared."""
    connection.ensure_connection()
    raw = connection.connection
    if raw.prepare_threshold is None:
        raw.prepare_threshold = ONLY_WHEN_ASKED
    connection.validate_thread_sharing()
    if connection.queries_logged:
        with connection.wrap_database_errors:
            return connection.make_debug_cursor(LoggedPreparedCursor(raw))
    with connection.wrap_database_errors:
        return connection.make_cursor(PreparedCursor(raw))
