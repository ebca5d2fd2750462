"""The web process's gunicorn worker: uvicorn's, with gunicorn's request limits applied to its parser.

uvicorn's httptools protocol takes any number of header fields of any size and hands them all to the
application, which only sees them once the whole head has been parsed on the event loop. Its h11
protocol bounds the head (`h11_max_incomplete_event_size`), but parses every request in Python, many
times the cost of httptools on the hot paths (README, Performance). So the httptools protocol is kept
and checked as it parses, with gunicorn's own settings and defaults (`--limit-request-line` 4094,
`--limit-request-fields` 100, `--limit-request-field_size` 8190), the way gunicorn's sync workers and
nginx do:

- a request line over the limit: 414; more fields or a larger field: 431; the head is also cut off
  once it has grown past what those limits allow, so a client never makes the parser buffer more;
- a request line without an HTTP version (HTTP/0.9), or any version other than 1.0 and 1.1: 400;
- a field name with an underscore is dropped (gunicorn and nginx do the same): WSGI and Django spell
  `X-Forwarded-For` and `X_Forwarded_For` alike, so the second would slip past a proxy that strips
  or sets the first.

This overrides parser callbacks of `HttpToolsProtocol` (uvicorn's, not a documented extension point);
tests/ops/test_web_abuse.py runs each case against the production process shape.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn_worker import UvicornWorker


class _Refused(Exception):
    """Stops the parser once the refusal has been written."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    # Set per worker from gunicorn's configuration (Worker below); 0 means no limit, as in gunicorn.
    max_line = 4094
    max_fields = 100
    max_field_size = 8190

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True
        self._head_bytes = 0
        self._fields = 0
        self._refused = False
        if self.max_line and self.max_fields and self.max_field_size:
            # Request line, every field at its largest with its ": " and CRLF, the blank line.
            self._max_head = self.max_line + self.max_fields * (self.max_field_size + 4) + 4
        else:
            self._max_head = 0

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._in_head and self._max_head and self._head_bytes > self._max_head and not self._refused:
            self._write_refusal(431, "Request header fields too large.")

    def send_400_response(self, msg: str) -> None:
        if not self._refused:  # a refusal raised in a callback reaches uvicorn as a parser error
            super().send_400_response(msg)

    def _refuse(self, status: int, message: str) -> None:
        self._write_refusal(status, message)
        raise _Refused(message)

    def _write_refusal(self, status: int, message: str) -> None:
        self._refused = True
        body = message.encode("ascii")
        self.transport.write(
            b"".join(
                [
                    STATUS_LINE[status],
                    b"content-type: text/plain; charset=utf-8\r\n",
                    b"content-length: %d\r\n" % len(body),
                    b"connection: close\r\n\r\n",
                    body,
                ]
            )
        )
        self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._fields = 0

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if self.max_line and len(self.url) > self.max_line:
            self._refuse(414, "Request line too long.")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._fields += 1
        if self.max_fields and self._fields > self.max_fields:
            self._refuse(431, "Too many request header fields.")
        if self.max_field_size and len(name) + len(value) + 2 > self.max_field_size:
            self._refuse(431, "Request header field too large.")
        if b"_" in name:
            return
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if self.parser.get_http_version() not in ("1.0", "1.1"):
            self._refuse(400, "Unsupported or missing HTTP version.")
        self._in_head = False
        self._head_bytes = 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True


class Worker(UvicornWorker):
    """`-k deplite.web_worker.Worker` in the Procfile."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.config.http = type(
            "GunicornLimitedHttpToolsProtocol",
            (BoundedHttpToolsProtocol,),
            {
                "max_line": self.cfg.limit_request_line,
                "max_fields": self.cfg.limit_request_fields,
                "max_field_size": self.cfg.limit_request_field_size,
            },
        )
