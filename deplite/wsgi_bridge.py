"""Django's WSGI handler served from the ASGI event loop, one thread hop per request.

The loop reads the request body (bounded in front by `deplite.asgi_body_limit`), a worker
thread runs Django on it and hands back the whole answer, the loop sends it. A generic bridge
(a2wsgi, asgiref) crosses between the thread and the loop for the body and again for the
status line, each chunk and the end of the answer, the thread blocking each time until the
loop has run. Each crossing waits for the interpreter lock, which the other request threads
hold up to a switch interval at a time: on 2 cores those waits were the run endpoint's slow
tail.

Streaming answers (`StreamingHttpResponse`, static files) still go out chunk by chunk: the
thread hands each chunk to the loop and waits for it to be sent, so a slow reader holds back
the thread, not the process's memory.
"""

from __future__ import annotations

import asyncio
import contextvars
import io
import sys
from concurrent.futures import ThreadPoolExecutor


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
    for raw_name, raw_value in scope.get("headers", ()):
        name = raw_name.decode("latin-1").upper().replace("-", "_")
        if name not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            name = f"HTTP_{name}"
        value = raw_value.decode("latin-1")
        if name in environ:
            value = environ[name] + ("; " if name == "HTTP_COOKIE" else ",") + value
        environ[name] = value
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


class _Exchange:
    """One request's answer, built in the worker thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop, send):
        self.loop = loop
        self.send = send
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

    def _send_now(self, message: dict) -> None:
        asyncio.run_coroutine_threadsafe(self.send(message), self.loop).result()

    def stream(self, chunks) -> None:
        self._send_now({"type": "http.response.start", "status": self.status, "headers": self.headers})
        self.started = True
        for chunk in (*self.buffer, *chunks):
            if chunk:
                self._send_now({"type": "http.response.body", "body": chunk, "more_body": True})
        self._send_now({"type": "http.response.body", "body": b""})


class ThreadedWSGI:
    """An ASGI app running a WSGI app in a pool of `threads` threads."""

    def __init__(self, app, *, threads: int):
        self.app = app
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="wsgi")

    async def __call__(self, scope, receive, send) -> None:
        body = await _read_body(receive)
        if body is None:
            return  # nobody to answer
        loop = asyncio.get_running_loop()
        exchange = _Exchange(loop, send)
        run = contextvars.copy_context().run
        content = await loop.run_in_executor(self.executor, run, self._respond, _environ(scope, body), exchange)
        if content is not None:
            await send({"type": "http.response.start", "status": exchange.status, "headers": exchange.headers})
            await send({"type": "http.response.body", "body": content})

    def _respond(self, environ: dict, exchange: _Exchange) -> bytes | None:
        """In a worker thread: the whole answer's body, or None once it was streamed."""
        iterable = self.app(environ, exchange.start_response)
        try:
            if getattr(iterable, "streaming", False):  # Django's streaming responses
                exchange.stream(iterable)
                return None
            return b"".join((*exchange.buffer, *iterable))
        finally:
            close = getattr(iterable, "close", None)
            if close is not None:
                close()
