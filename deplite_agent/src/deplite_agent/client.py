"""The agent's HTTP client: every request signed (DESIGN §5), errors sorted into retry-or-not."""

from __future__ import annotations

import email.utils
import json
import random
import socket
import threading
import weakref
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote, urlencode

import requests
from requests.adapters import HTTPAdapter

from . import __version__
from .config import AgentConfig
from .signing import SIGNATURE_HEADER, signature_header

CONNECT_TIMEOUT = 10
READ_TIMEOUT = 30
USER_AGENT = f"deplite-agent/{__version__}"


class ServerError(Exception):
    """The server answered with an error it means (4xx other than 401/429)."""

    def __init__(self, status: int, code: str, message: str):
        self.status = status
        self.code = code
        self.message = message
        super().__init__(f"HTTP {status} {code}: {message}")


class AgentTooOld(ServerError):
    """The server no longer speaks this agent's protocol (`agent_too_old`): retrying cannot help, an upgrade
    can. Its message says how to upgrade."""


# The answer to an agent older than the oldest the server still speaks; the agent stops on it.
AGENT_TOO_OLD = "agent_too_old"


class RetryableError(Exception):
    """Worth retrying after a pause: the server is unreachable, overloaded (5xx, 429) or rejected the
    signature (401: a clock skew, a rotated secret, a revoked agent — retrying slowly never hurts)."""

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None):
        self.status = status
        # The server's own Retry-After (seconds, at most MAX_RETRY_AFTER_SECONDS), if it sent one.
        self.retry_after = retry_after
        super().__init__(message)

    def pause(self, backoff: Backoff) -> float:
        """How long to wait before the next try: the backoff's step, or longer when the server asked."""
        return max(backoff.next_delay(), self.retry_after or 0.0)


# The longest pause between retries of a retryable answer (503, 5xx, 429, connection errors). Short, so an
# agent is back within a few seconds of an outage ending; the jitter keeps a fleet from arriving in lockstep.
BACKOFF_CAP_SECONDS = 4.0
# A server's Retry-After is honoured beyond the cap (it knows its own load), but no longer than this: a
# misconfigured proxy asking for hours must not park the agent's reports for hours.
MAX_RETRY_AFTER_SECONDS = 300.0


def retry_after_seconds(value: str | None) -> float | None:
    """A Retry-After header (delta-seconds or an HTTP date) as seconds from now, capped; None if absent or
    unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - datetime.now(timezone.utc)).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


class Backoff:
    """Exponential backoff with "equal jitter": never less than half the step, so a fleet of agents
    coming back after an outage does not arrive in lockstep nor hammer the server."""

    def __init__(self, base: float = 0.5, cap: float = BACKOFF_CAP_SECONDS):
        self.base = base
        self.cap = cap
        self.attempt = 0

    def next_delay(self) -> float:
        step = min(self.cap, self.base * (2**self.attempt))
        self.attempt = min(self.attempt + 1, 32)
        return step / 2 + random.uniform(0, step / 2)  # noqa: S311 (backoff jitter, not a secret)  # nosec B311

    def reset(self) -> None:
        self.attempt = 0

    def wait(self, stop: threading.Event, *, minimum: float = 0.0) -> bool:
        """Sleeps one step (interruptible); True when `stop` was set meanwhile."""
        return stop.wait(max(minimum, self.next_delay()))


class AbortableHTTPAdapter(HTTPAdapter):
    """An adapter whose requests another thread can cut short. requests has no cancel of its own, so this
    keeps the sockets its connections open and `abort()` shuts them down, which ends a blocked read at once.

    The agent sends its long-poll claims through one, so that a stop does not wait for a claim that may
    sit on the server for 30 s (longer than `docker stop` or many supervisors wait before SIGKILL). A
    closed connection also ends the server's wait, so it claims nothing more for this agent. After
    `abort()`, every new connection is shut down as soon as it is made: no request can start late."""

    def __init__(self, *args: Any, **kwargs: Any):
        # Set before HTTPAdapter.__init__, which builds the pool manager.
        self._sockets: weakref.WeakSet = weakref.WeakSet()
        self._sockets_lock = threading.Lock()
        self._aborted = False
        super().__init__(*args, **kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self._track(self.poolmanager)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any):
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        self._track(manager)
        return manager

    def abort(self) -> None:
        with self._sockets_lock:
            self._aborted = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)

    def _remember(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._sockets_lock:
            self._sockets.add(sock)
            aborted = self._aborted
        if aborted:
            _shut(sock)

    def _track(self, manager) -> None:
        adapter = self

        def tracking(pool_cls):
            if getattr(pool_cls, "_deplite_tracking", False):
                return pool_cls

            class TrackingConnection(pool_cls.ConnectionCls):
                def connect(self) -> None:
                    super().connect()
                    adapter._remember(self.sock)

            return type(
                pool_cls.__name__, (pool_cls,), {"ConnectionCls": TrackingConnection, "_deplite_tracking": True}
            )

        manager.pool_classes_by_scheme = {
            scheme: tracking(pool_cls) for scheme, pool_cls in manager.pool_classes_by_scheme.items()
        }


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed: nothing left to cut


def abortable_session() -> tuple[requests.Session, AbortableHTTPAdapter]:
    session = requests.Session()
    adapter = AbortableHTTPAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session, adapter


def _error_of(response: requests.Response) -> tuple:
    try:
        err = response.json().get("error") or {}
        return str(err.get("code") or "error"), str(err.get("message") or response.reason)
    except (ValueError, AttributeError):
        return "error", response.reason or f"HTTP {response.status_code}"


class ServerClient:
    def __init__(self, config: AgentConfig, *, session: requests.Session | None = None):
        config.require_server()
        self.config = config
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT

    def request(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        query: dict[str, Any] | None = None,
        read_timeout: float = READ_TIMEOUT,
    ) -> requests.Response:
        url = self.config.url + path + (("?" + urlencode(query)) if query else "")
        raw = b"" if body is None else json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        # The User-Agent names this agent's version on every request (the session's headers do not reach a
        # request prepared on its own), so the server can refuse a version it no longer speaks.
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if body is not None:
            headers["Content-Type"] = "application/json"
        prepared = requests.Request(method, url, data=raw or None, headers=headers).prepare()
        # Sign exactly what goes on the wire: the prepared path with its query, and the raw body bytes.
        prepared.headers[SIGNATURE_HEADER] = signature_header(
            agent_id=self.config.agent_id,
            secret=self.config.secret,
            method=method,
            path=prepared.path_url,
            body=raw,
        )
        try:
            response = self.session.send(prepared, timeout=(CONNECT_TIMEOUT, read_timeout))
        except requests.RequestException as exc:
            raise RetryableError(f"{method} {path}: server unreachable ({type(exc).__name__})")
        if response.status_code < 400:
            return response
        code, message = _error_of(response)
        if response.status_code in (401, 429) or response.status_code >= 500:
            raise RetryableError(
                f"{method} {path}: HTTP {response.status_code} {code}: {message}",
                response.status_code,
                retry_after_seconds(response.headers.get("Retry-After")),
            )
        if code == AGENT_TOO_OLD:
            raise AgentTooOld(response.status_code, code, message)
        raise ServerError(response.status_code, code, message)

    # -- the protocol -------------------------------------------------------------------------------------
    def heartbeat(
        self, *, hostname: str, workflows: list[str], running_jobs: list[str] | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"hostname": hostname, "version": __version__, "workflows": workflows}
        # runningJobs: the server gives back or fails the jobs it handed to this agent that are not listed.
        # Only the running agent knows what it holds: `check`, a separate process, must omit the key (None)
        # or it would disown the jobs of an agent running beside it.
        if running_jobs is not None:
            body["runningJobs"] = running_jobs
        return self.request("POST", "/api/agent/heartbeat", body=body).json()

    def claim(self, *, wait: int) -> dict[str, Any] | None:
        wait = max(0, min(30, int(wait)))
        response = self.request("POST", "/api/agent/jobs/claim", body={}, query={"wait": wait}, read_timeout=wait + 15)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def post_events(self, job_id: str, events: list[dict[str, Any]]) -> dict[str, Any]:
        return self.request("POST", f"/api/agent/jobs/{job_id}/events", body={"events": events}).json()

    def finish(self, job_id: str, *, status: str, exit_code: int | None, error: str | None) -> dict[str, Any]:
        body = {"status": status, "exitCode": exit_code, "error": error}
        return self.request("POST", f"/api/agent/jobs/{job_id}/finish", body=body).json()

    def file_download_url(self, file_id: str) -> dict[str, Any]:
        return self.request("GET", f"/api/agent/files/{file_id}/download-url").json()

    def download_file(
        self, file_id: str, destination: Path, *, progress: Callable[[int, int | None], None] | None = None
    ) -> dict[str, Any]:
        info = self.file_download_url(file_id)
        fetch_url(info["downloadUrl"], destination, size=info.get("size"), progress=progress)
        return info


def job_token_call(
    method: str, endpoint: str, *, job_token: str, body: dict[str, Any] | None = None, session: Any = None
) -> dict[str, Any]:
    """One call with the job's own credential (inside a step), not the agent's signature: the answer's
    JSON, or RetryableError (unreachable, 429, 5xx) / ServerError (the server's refusal, its message)."""
    headers = {"Authorization": f"Bearer {job_token}", "Accept": "application/json", "User-Agent": USER_AGENT}
    try:
        response = (session or requests).request(
            method, endpoint, json=body, headers=headers, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT)
        )
    except requests.RequestException as exc:
        raise RetryableError(f"{method} {endpoint}: server unreachable ({type(exc).__name__})")
    if response.status_code < 400:
        return response.json()
    code, message = _error_of(response)
    if response.status_code == 429 or response.status_code >= 500:
        raise RetryableError(f"HTTP {response.status_code} {code}: {message}", response.status_code)
    raise ServerError(response.status_code, code, message)


def job_file_download_url(*, url: str, job_token: str, file_id: str) -> dict[str, Any]:
    """`GET /api/agent/files/<fileId>/download-url` with the job's token: it only answers for the job's
    input files, and only while the job runs."""
    endpoint = f"{url.rstrip('/')}/api/agent/files/{quote(file_id, safe='')}/download-url"
    return job_token_call("GET", endpoint, job_token=job_token)


def fetch_url(
    url: str,
    destination: Path,
    *,
    size: int | None = None,
    progress: Callable[[int, int | None], None] | None = None,
) -> int:
    """Plain GET of a presigned URL into `destination` (it carries its own signature, and the agent's
    header must never reach the bucket). Returns the number of bytes written."""
    try:
        with requests.get(url, stream=True, timeout=(CONNECT_TIMEOUT, 60)) as response:
            if response.status_code >= 400:
                raise ServerError(response.status_code, "download_failed", f"storage answered {response.status_code}")
            total = size or (int(response.headers.get("Content-Length", 0)) or None)
            done = 0
            with open(destination, "wb") as out:
                for chunk in response.iter_content(chunk_size=256 * 1024):
                    out.write(chunk)
                    done += len(chunk)
                    if progress:
                        progress(done, total)
    except requests.RequestException as exc:
        raise RetryableError(f"download failed ({type(exc).__name__})")
    return done
