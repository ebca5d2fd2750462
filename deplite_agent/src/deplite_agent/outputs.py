"""Output files: a job hands files back to the org's bucket (`deplite-agent files upload` in a step, or the
workflow's `outputs:` after the steps).

The protocol (three calls, all with the job's own token, never the agent's secret):
1. `POST /api/agent/jobs/<jobId>/outputs` {name, size, sha256, contentType} → a presigned PUT and its headers;
2. the file is PUT straight to the bucket (the control plane never sees the bytes), streamed from disk;
3. `POST /api/agent/jobs/<jobId>/outputs/<fileId>/complete` → the server checks the object and records it.
The sha256 is computed before the upload and signed into the PUT, so the bucket refuses a body that differs.
"""

from __future__ import annotations

import glob
import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote

import requests

from .client import CONNECT_TIMEOUT, RetryableError, ServerError, job_token_call

DEFAULT_CONTENT_TYPE = "application/octet-stream"
# A file this big or bigger prints progress lines (every 10%) while it uploads.
PROGRESS_MIN_BYTES = 8 * 1024 * 1024
HASH_CHUNK = 1024 * 1024
# The PUT of a large file may take minutes; the read timeout only bounds the wait for the answer.
PUT_READ_TIMEOUT = 300
PUT_ATTEMPTS = 3
MAX_NAME_LENGTH = 255

# progress(done_bytes, total_bytes)
Progress = Callable[[int, int], None]


class OutputError(Exception):
    """An output that cannot be uploaded, with a message for a person (a bad path, a file that vanished)."""


@dataclass(frozen=True)
class UploadedFile:
    file_id: str
    name: str
    size: int
    sha256: str

    def line(self) -> str:
        """What `files upload` prints on stdout, one per file."""
        return f"{self.file_id}  {self.name}  {self.size} bytes  sha256:{self.sha256}"


def check_file_name(name: str) -> str:
    """The name the file gets on the server: a plain file name, as the server demands."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise OutputError(f"invalid file name {name!r}: a name, without a directory")
    if len(name) > MAX_NAME_LENGTH:
        raise OutputError(f"file name too long ({len(name)} characters, at most {MAX_NAME_LENGTH})")
    return name


def sha256_of(path: Path) -> str:
    """One streaming pass over the file: memory stays flat whatever its size."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def expand_paths(patterns: list[str], base: Path) -> list[Path]:
    """The command's arguments: each a path or a glob (`**` crosses directories), relative to `base`. A pattern
    matching no file is an error, so a typo never uploads nothing silently."""
    found: list[Path] = []
    for pattern in patterns:
        matches = _glob_files(pattern, base)
        if not matches:
            raise OutputError(
                f"{pattern}: no such file" if not glob.has_magic(pattern) else f"{pattern}: no file matches"
            )
        found.extend(m for m in matches if m not in found)
    return found


def _glob_files(pattern: str, base: Path) -> list[Path]:
    full = pattern if os.path.isabs(pattern) else os.path.join(glob.escape(str(base)), pattern)
    return [Path(p) for p in sorted(glob.glob(full, recursive=True)) if os.path.isfile(p)]


def declared_matches(pattern: str, workdir: Path) -> list[Path]:
    """A workflow's `outputs[].path`, relative to the job's working directory. Whatever escapes that directory
    (`..`, an absolute path elsewhere, a symlink pointing out) is refused: a workflow's outputs are its own
    files, not whatever the agent's user can read."""
    root = workdir.resolve()
    if ".." in Path(pattern).parts:
        raise OutputError(f"{pattern}: `..` is not allowed in an output path")
    matches = []
    for path in _glob_files(pattern, root):
        real = path.resolve()
        if real != root and root not in real.parents:
            raise OutputError(f"{pattern}: {path} points outside the job's directory ({root})")
        matches.append(path)
    return matches


class _ProgressReader:
    """The file as a request body: read in blocks by the HTTP library (never whole), counted for progress.
    `__len__` gives requests the Content-Length, which a presigned PUT needs (no chunked encoding)."""

    def __init__(self, f, size: int, progress: Progress | None):
        self._f = f
        self._size = size
        self._progress = progress
        self.done = 0

    def __len__(self) -> int:
        return self._size

    def read(self, amount: int = -1) -> bytes:
        data = self._f.read(amount)
        self.done += len(data)
        if self._progress is not None and data:
            self._progress(self.done, self._size)
        return data


class OutputUploader:
    """Uploads files as outputs of one job, with that job's token. One session: the control-plane calls and
    the PUTs reuse their connections."""

    def __init__(self, *, url: str, job_id: str, job_token: str, session: requests.Session | None = None):
        self.base = f"{url.rstrip('/')}/api/agent/jobs/{quote(job_id, safe='')}/outputs"
        self.job_token = job_token
        self.session = session or requests.Session()

    def _call(self, url: str, body: dict[str, Any] | None) -> dict[str, Any]:
        return job_token_call("POST", url, job_token=self.job_token, body=body, session=self.session)

    def upload(
        self, path: Path, *, name: str | None = None, content_type: str | None = None, progress: Progress | None = None
    ) -> UploadedFile:
        """The whole protocol for one file. Raises OutputError (local), ServerError (the server's answer, its
        message for a person) or RetryableError (the server or the bucket unreachable)."""
        name = check_file_name(name or path.name)
        try:
            size = path.stat().st_size
            digest = sha256_of(path)
        except OSError as exc:
            raise OutputError(f"{path}: cannot be read: {exc.strerror}")
        body = {"name": name, "size": size, "sha256": digest, "contentType": content_type or DEFAULT_CONTENT_TYPE}
        slot = self._call(self.base, body)
        self._put(path, size, slot, progress)
        done = self._call(f"{self.base}/{quote(str(slot['fileId']), safe='')}/complete", None)
        return UploadedFile(str(done.get("fileId") or slot["fileId"]), str(done.get("name") or name), size, digest)

    def _put(self, path: Path, size: int, slot: dict[str, Any], progress: Progress | None) -> None:
        method = str(slot.get("method") or "PUT")
        # Exactly the headers the server signed: the bucket checks them (the checksum among them).
        headers = {str(k): str(v) for k, v in (slot.get("headers") or {}).items()}
        for attempt in range(1, PUT_ATTEMPTS + 1):
            with open(path, "rb") as f:
                reader = _ProgressReader(f, size, progress)
                try:
                    response = self.session.request(
                        method,
                        slot["uploadUrl"],
                        data=reader if size else b"",
                        headers=headers,
                        timeout=(CONNECT_TIMEOUT, PUT_READ_TIMEOUT),
                    )
                except requests.RequestException as exc:
                    failure: Exception = RetryableError(f"upload to storage failed ({type(exc).__name__})")
                else:
                    if response.status_code < 300:
                        return
                    failure = _storage_error(response)
                    if response.status_code < 500:
                        raise failure  # the bucket refused the body or the signature: trying again cannot help
            if attempt < PUT_ATTEMPTS:
                time.sleep(attempt)
        raise failure


def _storage_error(response: requests.Response) -> ServerError:
    # S3 answers in XML: its <Code> is the useful part (BadDigest, SignatureDoesNotMatch, …).
    text = response.text or ""
    start, end = text.find("<Code>"), text.find("</Code>")
    code = text[start + 6 : end] if 0 <= start < end else "storage_error"
    return ServerError(response.status_code, code, f"storage refused the upload (HTTP {response.status_code} {code})")


class ProgressLines:
    """Progress of a large upload as whole lines, every 10% (the step log is line-based, not a terminal)."""

    def __init__(self, label: str, write: Callable[[str], None]):
        self.label = label
        self.write = write
        self.next_percent = 10

    def __call__(self, done: int, total: int) -> None:
        if total < PROGRESS_MIN_BYTES:
            return
        percent = done * 100 // total
        if percent >= self.next_percent:
            self.next_percent = percent - percent % 10 + 10
            self.write(f"{self.label}: {done / 1048576:.1f} / {total / 1048576:.1f} MiB ({percent}%)")


def upload_declared(
    declared: tuple,
    *,
    workdir: Path,
    uploader: OutputUploader | None,
    steps_succeeded: bool,
    note: Callable[[str], None],
    cancelled: Callable[[], bool] = lambda: False,
) -> list[str]:
    """The workflow's `outputs:` after its steps: each entry whose `when` fits the outcome is uploaded, with a
    line in the job log per file. Returns the errors that fail the job: a required output matching nothing
    or not uploaded. Anything else going wrong is a warning line, since the steps' outcome stands. A cancel
    stops before the next file (one being uploaded finishes: a PUT cannot be cut cleanly)."""
    errors = []
    for output in declared:
        if output.when != "always" and (output.when == "success") != steps_succeeded:
            continue
        label = f'output "{output.path}"'
        try:
            paths = declared_matches(output.path, workdir)
            if not paths:
                raise OutputError(f"{label} matched no file in {workdir}")
            if output.name and len(paths) > 1:
                raise OutputError(f"{label} has a `name` but matched {len(paths)} files")
        except OutputError as exc:
            message = str(exc) if str(exc).startswith(label) else f"{label}: {exc}"
            note(("error: " if output.required else "warning: ") + message)
            if output.required:
                errors.append(message)
            continue
        for path in paths:
            if cancelled():
                note("cancel requested: the remaining outputs are not uploaded")
                return errors
            shown = _relative_to(path, workdir)
            if uploader is None:
                note(f"{label}: {shown} not uploaded (no server: the job runs locally)")
                continue
            try:
                uploaded = uploader.upload(path, name=output.name, progress=ProgressLines(f"uploading {shown}", note))
            except (OutputError, RetryableError, ServerError) as exc:
                message = f"{label}: {shown} could not be uploaded: {exc}"
                note(("error: " if output.required else "warning: ") + message)
                if output.required:
                    errors.append(message)
                continue
            note(f"uploaded {shown} as output {uploaded.line()}")
    return errors


def _relative_to(path: Path, base: Path) -> str:
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)
