"""Django's WSGI handler served from the ASGI event loop, one thread hop per request.

The loop reads the request body (bounded in front by `deplite.asgi_body_limit`), a worker
thread runs Django on it and hands back the whole answer, the loop sends it. A generic bridge
(a2wsgi, asgiref) crosses between the thread and the loop for the body and again for the
status line, each chunk and the end of the answer, the thread blocking each time until the
loop has run. Each crossing waits for the interpreter lock, which the other request threads
hold up to a switch interval at a time: on 2 cores those waits were the run endpoint's slow
tail.

Streaming answers never let a slow reader hold one of the few threads for long:

- a file (static files, `FileResponse`) is read a batch at a time in the pool and sent from the
  loop, so while the client is slow to read, only the loop's coroutine waits, not a thread;
- any other stream (a generator, which may hold a database cursor of its thread's connection)
  is produced in its thread, chunk by chunk, each handed to the loop to send.

Either way a send that waits more than `send_timeout` seconds for the client to read ends the
answer and the connection (nginx's `send_timeout`), and memory stays at a batch or a chunk
per connection beyond the transport's buffer.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import io
import logging
import sys
from concurrent.futures import ThreadPoolExecutor

logger = logging.getLogger("deplite.web")

# Bytes of a file read per trip to the thread pool: few trips for a large file, little memory per
# slow reader.
FILE_BATCH_BYTES = 64 * 1024


def _latin1(text: str) -> str:
    """PEP 3333: a str holding the bytes of the UTF-8 form, one char per byte."""
    return text.encode("utf-8").decode("latin-1")


def _environ(scope: dict, body: bytes) -> dict:
    root = scope.get("root_path", "")
    path = scope["path"]
    if root and path.startswith(root):
        path = path[len(root) :]
    server = scope.get("server") or ("localhost", 80)
    environ = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": _latin1(root),
        "PATH_INFO": _latin1(path),
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1]) if server[1] is not None else "80",
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    client = scope.get("client")
    if client:
        environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = str(client[0]), str(client[1])
    # Repeated fields are joined once at the end: appending to the string each time was quadratic
    # in their number, on the event loop.
    repeated: dict[str, list[str]] = {}
    for raw_name, raw_value in scope.get("headers", ()):
        if b"_" in raw_name:
            continue  # would alias the hyphenated name (X_Forwarded_For as X-Forwarded-For), as gunicorn/nginx
        name = raw_name.decode("latin-1").upper().replace("-", "_")
        if name not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            name = f"HTTP_{name}"
        value = raw_value.decode("latin-1")
        if name in environ:
            repeated.setdefault(name, [environ[name]]).append(value)
        else:
            environ[name] = value
    for name, values in repeated.items():
        environ[name] = ("; " if name == "HTTP_COOKIE" else ",").join(values)
    # The whole body is here, however it was framed: a chunked one is handed over with its length.
    if body and "CONTENT_LENGTH" not in environ:
        environ["CONTENT_LENGTH"] = str(len(body))
    return environ


async def _read_body(receive) -> bytes | None:
    """The request body, or None if the client left before sending all of it."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


class _SendTimeout(Exception):
    """The client read nothing for `send_timeout` seconds."""


class _Exchange:
    """One request's answer, built in the worker thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop, send, send_timeout: float):
        self.loop = loop
        self.send = send
        self.send_timeout = send_timeout
        self.status = 500
        self.headers: list[tuple[bytes, bytes]] = []
        self.started = False  # the status line has gone to the client (streaming)
        self.buffer: list[bytes] = []

    def start_response(self, status: str, headers, exc_info=None):
        if exc_info is not None and self.started:
            raise exc_info[1].with_traceback(exc_info[2])
        self.status = int(status.split(" ", 1)[0])
        self.headers = [(n.strip().lower().encode("latin-1"), v.strip().encode("latin-1")) for n, v in headers]
        return self.buffer.append  # PEP 3333's write(); Django never calls it

    def has_length(self) -> bool:
        return any(name == b"content-length" for name, _ in self.headers)

    def _send_now(self, message: dict) -> None:
        future = asyncio.run_coroutine_threadsafe(self.send(message), self.loop)
        try:
            future.result(self.send_timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise _SendTimeout from None

    def stream(self, chunks) -> None:
        self._send_now({"type": "http.response.start", "status": self.status, "headers": self.headers})
        self.started = True
        for chunk in (*self.buffer, *chunks):
            if chunk:
                self._send_now({"type": "http.response.body", "body": chunk, "more_body": True})
        self._send_now({"type": "http.response.body", "body": b""})


class _File:
    """A file answer for the loop to send, read in batches in the thread pool."""

    def __init__(self, iterable):
        self.iterable = iterable
        self.chunks = iter(iterable)

    def next_batch(self) -> bytes:
        batch: list[bytes] = []
        size = 0
        for chunk in self.chunks:
            batch.append(chunk)
            size += len(chunk)
            if size >= FILE_BATCH_BYTES:
                break
        return b"".join(batch)


def _close(iterable) -> None:
    close = getattr(iterable, "close", None)
    if close is not None:
        close()


class ThreadedWSGI:
    """An ASGI app running a WSGI app in a pool of `threads` threads."""

    def __init__(self, app, *, threads: int, send_timeout: float = 60.0):
        self.app = app
        self.send_timeout = send_timeout
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="wsgi")

    async def __call__(self, scope, receive, send) -> None:
        body = await _read_body(receive)
        if body is None:
            return  # nobody to answer
        loop = asyncio.get_running_loop()
        exchange = _Exchange(loop, send, self.send_timeout)
        run = contextvars.copy_context().run
        content = await loop.run_in_executor(self.executor, run, self._respond, _environ(scope, body), exchange)
        if isinstance(content, _File):
            await self._send_file(content, exchange, receive, send, run)
        elif content is not None:
            headers = exchange.headers
            if not exchange.has_length() and exchange.status not in (204, 304) and exchange.status >= 200:
                # With its length the answer is not chunked, which an HTTP/1.0 client cannot read.
                headers = [*headers, (b"content-length", str(len(content)).encode("latin-1"))]
            await send({"type": "http.response.start", "status": exchange.status, "headers": headers})
            await send({"type": "http.response.body", "body": content})

    def _respond(self, environ: dict, exchange: _Exchange) -> bytes | _File | None:
        """In a worker thread: the whole answer's body, a file for the loop to send, or None once it
        was streamed."""
        iterable = self.app(environ, exchange.start_response)
        if getattr(iterable, "file_to_stream", None) is not None and not exchange.buffer:
            return _File(iterable)  # closed by _send_file
        try:
            if getattr(iterable, "streaming", False):  # Django's streaming responses
                if environ["SERVER_PROTOCOL"] == "HTTP/1.0" and not exchange.has_length():
                    # No chunked encoding in HTTP/1.0: sent whole, with its length.
                    return b"".join((*exchange.buffer, *iterable))
                try:
                    exchange.stream(iterable)
                except _SendTimeout:
                    logger.warning("Streamed answer abandoned: the client read nothing for %ss.", self.send_timeout)
                return None
            return b"".join((*exchange.buffer, *iterable))
        finally:
            _close(iterable)

    async def _send_file(self, file: _File, exchange: _Exchange, receive, send, run) -> None:
        loop = asyncio.get_running_loop()
        # uvicorn's send() returns quietly once the client has gone; receive() says so.
        gone = asyncio.ensure_future(receive())
        try:
            await send({"type": "http.response.start", "status": exchange.status, "headers": exchange.headers})
            while not (gone.done() and gone.result()["type"] == "http.disconnect"):
                batch = await loop.run_in_executor(self.executor, run, file.next_batch)
                if not batch:
                    await send({"type": "http.response.body", "body": b""})
                    return
                await asyncio.wait_for(
                    send({"type": "http.response.body", "body": batch, "more_body": True}), self.send_timeout
                )
        except TimeoutError:
            logger.warning("File answer abandoned: the client read nothing for %ss.", self.send_timeout)
        finally:
            gone.cancel()
            await loop.run_in_executor(self.executor, run, _close, file.iterable)
