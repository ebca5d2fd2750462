"""The one set of local stand-ins for Slack's Web API and Discord's REST API (pytest-httpserver),
for every test of integrations and notifications, spoken to by the real slack_sdk WebClient and
requests. They keep what they received so tests assert on what a channel would show, can be
told to refuse, rate-limit or hold a message, and give canned answers to the other calls
(OAuth exchanges, auth.test, command registration) with `answer()`."""

from __future__ import annotations

import base64
import itertools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qs

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

ANY = re.compile(r".*")


def _json(data: dict, status: int = 200, headers: dict | None = None) -> Response:
    return Response(json.dumps(data), status=status, headers=headers or {}, content_type="application/json")


@dataclass
class Call:
    method: str  # "post", "update", "get", or the API method / HTTP verb for other calls
    path: str
    body: dict  # the JSON or form fields, plus "_token" (Slack) / "_auth" (Discord)
    at: float  # time.time() when received
    headers: dict = field(default_factory=dict)
    raw: str = ""  # the body as sent (form-encoded OAuth exchanges are checked from it)
    json: object = None  # the JSON body as sent (a list for Discord's command registration)

    @property
    def auth_user(self) -> str:
        """The HTTP Basic user (OAuth client id), if the call used Basic auth."""
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return ""
        return base64.b64decode(header.removeprefix("Basic ")).decode().partition(":")[0]


def _record(request: Request) -> tuple[str, dict, object]:
    raw = request.get_data(cache=True, as_text=True)
    data = request.get_json(silent=True)
    body = data if isinstance(data, dict) else {**request.args.to_dict(), **parse_form(raw)}
    return raw, body, data


def parse_form(raw: str) -> dict:
    return {k: v[0] for k, v in parse_qs(raw).items()}


@dataclass
class Fake:
    server: HTTPServer
    calls: list[Call] = field(default_factory=list)
    messages: list[dict] = field(default_factory=list)
    # channel → error to answer every post with (Slack error code / Discord HTTP status)
    refuse: dict = field(default_factory=dict)
    # channel → number of 429s still to answer, and the wait they ask for
    rate_limit: dict = field(default_factory=dict)
    retry_after: float = 2
    # channel → number of HTTP 500s still to answer (a provider hiccup)
    server_errors: dict = field(default_factory=dict)
    # called with the message body before a post is answered (may block: a slow provider)
    hold: object = None
    # API method (Slack) / path (Discord) → canned answers, each used once: see `answer()`
    answers: dict = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, what: str, data, status: int = 200) -> None:
        """Answer the next call of `what` (Slack: an API method such as "oauth.v2.access";
        Discord: a path such as "/oauth2/token") with `data`, once."""
        self.answers.setdefault(what, []).append((data, status))

    def _canned(self, what: str) -> Response | None:
        with self.lock:
            queue = self.answers.get(what)
            if not queue:
                return None
            data, status = queue.pop(0)
        return Response(json.dumps(data), status=status, content_type="application/json")

    def posts(self, channel: str | None = None) -> list[Call]:
        return [c for c in self.calls if c.method == "post" and (channel is None or c.body.get("channel") == channel)]

    def in_channel(self, channel: str) -> list[dict]:
        return [m for m in self.messages if m["channel"] == channel]

    def wait_for(self, predicate, timeout: float = 20.0, interval: float = 0.05):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                result = predicate()
            if result:
                return result
            time.sleep(interval)
        raise AssertionError(f"timed out after {timeout}s; calls: {[(c.method, c.path) for c in self.calls]}")


class FakeSlack(Fake):
    """Slack's Web API at `url` (SLACK_API_URL): chat.postMessage, chat.update, conversations.history/replies,
    and canned answers (`answer()`) for the rest. `tokens`: the bot tokens it accepts (None: any)."""

    def __init__(self, server: HTTPServer, *, tokens: set[str] | None):
        super().__init__(server=server)
        self.tokens = tokens
        self.history_error = ""  # e.g. "missing_scope": a bot installed without channels:history
        self.next_ts: list[str] = []  # the ts of the next posts, when a test needs to know them
        self.ephemerals: list[dict] = []  # chat.postEphemeral: seen by one user, never in the channel
        self._ts = itertools.count(1)
        server.expect_request(ANY).respond_with_handler(self.handle)

    def requests(self, api_method: str) -> list[dict]:
        """The fields of each call of a Web API method, with "_auth" (the Authorization header)."""
        return [
            {**{k: v for k, v in c.body.items() if k != "_token"}, "_auth": c.headers.get("Authorization", "")}
            for c in self.calls
            if c.path.rsplit("/", 1)[-1] == api_method
        ]

    @property
    def url(self) -> str:
        return self.server.url_for("/api/")

    def handle(self, request: Request) -> Response:
        method = request.path.rsplit("/", 1)[-1]
        raw, body, data = _record(request)
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        kind = {"chat.postMessage": "post", "chat.update": "update"}.get(method, method)
        call = Call(kind, request.path, {**body, "_token": token}, time.time(), dict(request.headers), raw, data)
        with self.lock:
            self.calls.append(call)
        canned = self._canned(method)
        if canned is not None:
            return canned
        if self.tokens is not None and token not in self.tokens:
            return _json({"ok": False, "error": "invalid_auth"})
        channel = body.get("channel", "")
        if method == "chat.postMessage":
            with self.lock:
                if channel in self.refuse:
                    return _json({"ok": False, "error": self.refuse[channel]})
                if self.server_errors.get(channel):
                    self.server_errors[channel] -= 1
                    return Response("upstream error", status=500)
                if self.rate_limit.get(channel):
                    self.rate_limit[channel] -= 1
                    return _json(
                        {"ok": False, "error": "ratelimited"}, 429, {"Retry-After": str(int(self.retry_after))}
                    )
            if callable(self.hold):
                self.hold(body)
            with self.lock:
                ts = self.next_ts.pop(0) if self.next_ts else f"{int(time.time())}.{next(self._ts):06d}"
                message = {
                    "ts": ts,
                    "channel": channel,
                    "text": body.get("text"),
                    "attachments": body.get("attachments"),
                    "blocks": body.get("blocks"),
                    "thread_ts": body.get("thread_ts"),
                    "metadata": body.get("metadata"),
                    "token": token,
                    "received_at": time.time(),
                    "edits": [],
                }
                self.messages.append(message)
            return _json({"ok": True, "channel": channel, "ts": ts, "message": {"text": message["text"]}})
        if method == "chat.postEphemeral":
            with self.lock:
                ts = f"{int(time.time())}.{next(self._ts):06d}"
                self.ephemerals.append(
                    {
                        "ts": ts,
                        "channel": channel,
                        "user": body.get("user"),
                        "text": body.get("text"),
                        "blocks": body.get("blocks"),
                        "thread_ts": body.get("thread_ts"),
                    }
                )
            return _json({"ok": True, "message_ts": ts})
        if method == "chat.update":
            with self.lock:
                found = [m for m in self.messages if m["channel"] == channel and m["ts"] == body.get("ts")]
                if not found:
                    return _json({"ok": False, "error": "message_not_found"})
                found[0]["edits"].append(found[0]["text"])
                found[0]["text"] = body.get("text")
                found[0]["attachments"] = body.get("attachments")
                found[0]["blocks"] = body.get("blocks")
            return _json({"ok": True, "channel": channel, "ts": body.get("ts")})
        if method in ("conversations.history", "conversations.replies") and self.history_error:
            return _json({"ok": False, "error": self.history_error})
        if method in ("conversations.history", "conversations.replies"):
            oldest = float(body.get("oldest") or 0)
            with self.lock:
                found = [
                    {"ts": m["ts"], "text": m["text"], "metadata": m["metadata"]}
                    for m in self.messages
                    if m["channel"] == channel
                    and float(m["ts"].split(".")[0]) >= int(oldest)
                    and (method == "conversations.history" or m["thread_ts"] == body.get("ts"))
                ]
            return _json({"ok": True, "messages": list(reversed(found)), "has_more": False})
        return _json({"ok": False, "error": "unknown_method"})


class FakeDiscord(Fake):
    """Discord's REST API at `url` (DISCORD_API_URL): channel lookup, channel messages, interaction edits."""

    def __init__(self, server: HTTPServer, *, bot_token: str, app_id: str, channel_guilds: dict[str, str]):
        super().__init__(server=server)
        self.bot_token = bot_token
        self.app_id = app_id
        self.channel_guilds = channel_guilds
        self.interactions: dict[str, dict] = {}  # interaction token → original response
        self._ids = itertools.count(1000)
        server.expect_request(ANY).respond_with_handler(self.handle)

    @property
    def url(self) -> str:
        return self.server.url_for("/api/v10")

    def handle(self, request: Request) -> Response:
        path = request.path.removeprefix("/api/v10")
        raw, body, data = _record(request)
        auth = request.headers.get("Authorization", "")
        kind = {"POST": "post", "PATCH": "update", "GET": "get"}.get(request.method, request.method)
        call = Call(kind, path, {**body, "_auth": auth}, time.time(), dict(request.headers), raw, data)
        with self.lock:
            self.calls.append(call)
        canned = self._canned(path)
        if canned is not None:
            return canned
        hook = re.fullmatch(r"/webhooks/(\w+)/([\w.-]+)/messages/@original", path)
        if hook and request.method == "PATCH":
            if hook.group(1) != self.app_id or hook.group(2) not in self.interactions:
                return _json({"message": "Unknown Webhook", "code": 10015}, 404)
            with self.lock:
                original = self.interactions[hook.group(2)]
                original["edits"].append(original.get("content"))
                original.update(
                    content=body.get("content"), embeds=body.get("embeds"), components=body.get("components")
                )
            return _json({"id": original["id"], "content": original["content"]})
        if auth != f"Bot {self.bot_token}":
            return _json({"message": "401: Unauthorized", "code": 0}, 401)
        match = re.fullmatch(r"/channels/(\d+)(/messages(?:/(\d+))?)?", path)
        if not match:
            return _json({"message": "404: Not Found", "code": 0}, 404)
        channel, messages, message_id = match.groups()
        if channel not in self.channel_guilds:
            return _json({"message": "Unknown Channel", "code": 10003}, 404)
        if not messages and request.method == "GET":
            return _json({"id": channel, "guild_id": self.channel_guilds[channel], "type": 0})
        if request.method == "POST" and not message_id:
            with self.lock:
                if channel in self.refuse:
                    return _json({"message": "Missing Access", "code": 50001}, int(self.refuse[channel]))
                if self.rate_limit.get(channel):
                    self.rate_limit[channel] -= 1
                    return _json(
                        {"message": "You are being rate limited.", "retry_after": self.retry_after, "global": False},
                        429,
                    )
                nonce = body.get("nonce")
                if body.get("enforce_nonce") and nonce:
                    same = [m for m in self.messages if m["channel"] == channel and m["nonce"] == nonce]
                    if same:
                        return _json({"id": same[0]["id"], "channel_id": channel, "content": same[0]["content"]})
            if callable(self.hold):
                self.hold(body)
            with self.lock:
                message = {
                    "id": str(next(self._ids)),
                    "channel": channel,
                    "content": body.get("content"),
                    "embeds": body.get("embeds"),
                    "components": body.get("components"),
                    "nonce": body.get("nonce"),
                    "received_at": time.time(),
                    "edits": [],
                }
                self.messages.append(message)
            return _json({"id": message["id"], "channel_id": channel, "content": message["content"]})
        if request.method == "PATCH" and message_id:
            with self.lock:
                found = [m for m in self.messages if m["channel"] == channel and m["id"] == message_id]
                if not found:
                    return _json({"message": "Unknown Message", "code": 10008}, 404)
                found[0]["edits"].append(found[0]["content"])
                found[0].update(
                    content=body.get("content"), embeds=body.get("embeds"), components=body.get("components")
                )
            return _json({"id": message_id, "channel_id": channel})
        return _json({"message": "405: Method Not Allowed", "code": 0}, 405)
