"""The request-body limit at the ASGI door, before Django reads anything.

Django's ASGI handler reads the whole body (spooling it to disk past 2.5 MB) before any
middleware runs, and a chunked body has no Content-Length for `ApiBodyLimitMiddleware` to
check. So under uvicorn a client could stream gigabytes into every request. This wrapper
answers 413 in the API's error shape:

- at once when the Content-Length is over the limit (nothing is read);
- for a body without one (chunked), as soon as the bytes received pass the limit.

A body under the limit is handed to Django unchanged (chunked ones from a small buffer).
"""

from __future__ import annotations

import json

from django.conf import settings


def _too_large_body(limit: int) -> bytes:
    return json.dumps(
        {
            "error": {
                "code": "payload_too_large",
                "message": "The request body is too large.",
                "details": {"maxBytes": limit},
            }
        }
    ).encode()


class BodyLimit:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = int(settings.DEPLITE_MAX_API_BODY_BYTES)
        length = None
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    length = None
                break
        if length is not None:
            if length > limit:
                return await self._refuse(send, limit)
            return await self.app(scope, receive, send)  # framed by Content-Length: Django reads it
        # No Content-Length (chunked, or no body at all): read up to the limit first.
        buffered, size = [], 0
        while True:
            message = await receive()
            buffered.append(message)
            if message["type"] != "http.request":
                break  # http.disconnect: let the app see it
            size += len(message.get("body", b""))
            if size > limit:
                return await self._refuse(send, limit)
            if not message.get("more_body", False):
                break

        async def replay():
            if buffered:
                return buffered.pop(0)
            return await receive()

        return await self.app(scope, replay, send)

    @staticmethod
    async def _refuse(send, limit: int) -> None:
        body = _too_large_body(limit)
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
