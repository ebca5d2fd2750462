"""The WSGI bridge's contract with the ASGI server (deplite/wsgi_bridge.py): the messages it sends and
the environ it builds. Over real HTTP in tests/e2e/test_wsgi_bridge.py."""

from __future__ import annotations

import asyncio

from deplite.wsgi_bridge import ThreadedWSGI


def _call(app, *, path="/", headers=(), body_parts=(b"",), root_path="", query=b""):
    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "root_path": root_path,
        "query_string": query,
        "headers": [(n.encode(), v.encode()) for n, v in headers],
        "client": ("127.0.0.9", 5555),
        "server": ("127.0.0.1", 8000),
    }
    incoming = [
        {"type": "http.request", "body": part, "more_body": i < len(body_parts) - 1}
        for i, part in enumerate(body_parts)
    ]
    sent = []

    async def receive():
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    async def main():
        await ThreadedWSGI(app, threads=2)(scope, receive, send)

    asyncio.run(main())
    return sent


def _seen_environ():
    seen = {}

    def app(environ, start_response):
        seen.update(environ, body=environ["wsgi.input"].read())
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    return seen, app


def test_a_whole_answer_goes_out_as_one_start_and_one_body_with_its_length():
    def app(environ, start_response):
        start_response("201 Created", [("Content-Type", "application/json"), ("X-Two", "2")])
        return [b'{"a":', b" 1}"]

    sent = _call(app)
    assert sent == [
        {
            "type": "http.response.start",
            "status": 201,
            "headers": [(b"content-type", b"application/json"), (b"x-two", b"2"), (b"content-length", b"8")],
        },
        {"type": "http.response.body", "body": b'{"a": 1}'},
    ]


def test_a_streaming_answer_goes_out_chunk_by_chunk():
    class Streaming(list):
        streaming = True
        closed = False

        def close(self):
            self.closed = True

    answer = Streaming([b"one", b"", b"two"])

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return answer

    sent = _call(app)
    assert [(m["type"], m.get("body"), m.get("more_body")) for m in sent] == [
        ("http.response.start", None, None),
        ("http.response.body", b"one", True),
        ("http.response.body", b"two", True),
        ("http.response.body", b"", None),
    ]
    assert answer.closed


def test_a_body_in_parts_without_a_length_is_handed_over_whole_with_its_length():
    seen, app = _seen_environ()
    _call(app, headers=[("Content-Type", "application/json")], body_parts=[b'{"name":', b' "x"}'])
    assert seen["body"] == b'{"name": "x"}'
    assert seen["CONTENT_LENGTH"] == "13" and seen["CONTENT_TYPE"] == "application/json"


def test_a_client_gone_before_its_body_ended_reaches_no_app():
    called = []

    def app(environ, start_response):
        called.append(environ)
        start_response("200 OK", [])
        return [b""]

    async def main():
        # The body says more is coming, then the client disconnects.
        messages = [{"type": "http.request", "body": b'{"half', "more_body": True}, {"type": "http.disconnect"}]
        out = []

        async def receive():
            return messages.pop(0)

        async def send(message):
            out.append(message)

        await ThreadedWSGI(app, threads=1)(
            {"type": "http", "method": "POST", "path": "/", "query_string": b"", "headers": []}, receive, send
        )
        return out

    assert asyncio.run(main()) == []
    assert called == []


def test_the_environ_follows_pep_3333():
    seen, app = _seen_environ()
    _call(
        app,
        path="/mount/api/é",
        root_path="/mount",
        query=b"q=a%20b",
        headers=[("Cookie", "a=1"), ("Cookie", "b=2"), ("Accept", "text/html"), ("Accept", "application/json")],
    )
    assert seen["SCRIPT_NAME"] == "/mount"
    assert seen["PATH_INFO"] == "/api/é".encode().decode("latin-1")  # UTF-8 bytes, one char each
    assert seen["QUERY_STRING"] == "q=a%20b"
    assert seen["HTTP_COOKIE"] == "a=1; b=2"
    assert seen["HTTP_ACCEPT"] == "text/html,application/json"
    assert (seen["REMOTE_ADDR"], seen["SERVER_NAME"], seen["SERVER_PORT"]) == ("127.0.0.9", "127.0.0.1", "8000")
    assert (seen["REQUEST_METHOD"], seen["wsgi.url_scheme"], seen["SERVER_PROTOCOL"]) == ("POST", "http", "HTTP/1.1")
    assert "CONTENT_LENGTH" not in seen and seen["body"] == b""
