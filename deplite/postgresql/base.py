"""Django's PostgreSQL backend, with a cheaper check of a pooled connection when it is handed out.

psycopg's pool checks a connection before handing it out when it is given a `check`. The stock
one (Django's with CONN_HEALTH_CHECKS) runs an empty query: a round trip on every request,
measured at about a third of the run endpoint's round trips and of PostgreSQL's work for it.

A connection PostgreSQL has left (restart, crash, `pg_terminate_backend`, idle timeout) is not
silent: the server sends its termination notice and closes, or its kernel closes the socket, so
the idle socket turns readable. A healthy idle connection has nothing to read (Deplite never
LISTENs). So: nothing to read → hand it out as it is; anything to read → run the full check,
which fails on a dead connection and the pool replaces it. A network that drops packets
without closing is caught by neither check in time, and stays the connect/statement
timeouts' job.

Django hands its pool either the stock check (CONN_HEALTH_CHECKS) or none, so this backend
(`ENGINE = "deplite.postgresql"`, set in settings) puts ours on the pool Django creates.
"""

from __future__ import annotations

import select

from django.db.backends.postgresql import base
from psycopg_pool import ConnectionPool


def check_pooled_connection(conn) -> None:
    if conn.closed:
        raise ConnectionError("the pooled connection is closed")
    poller = select.poll()
    poller.register(conn.pgconn.socket, select.POLLIN | select.POLLPRI)
    if poller.poll(0):  # data, EOF, error or hang-up waiting on an idle connection
        ConnectionPool.check_connection(conn)


class DatabaseWrapper(base.DatabaseWrapper):
    @property
    def pool(self):
        pool = super().pool
        if pool is not None:
            pool._check = check_pooled_connection  # where psycopg_pool keeps its `check` argument
        return pool
