"""A job as the agent sees it: what the claim hands over (`JobSpec`, its `InputFile`s), whom the
runner reports to (`Reporter`: the server's event stream, or the console for `exec`), and what it
came to (`JobResult`, a `StepResult` per step)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

FILE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
JOB_ID_RE = FILE_ID_RE

SUCCEEDED, FAILED, CANCELLED, SKIPPED = "succeeded", "failed", "cancelled", "skipped"


@dataclass(frozen=True)
class InputFile:
    param: str
    file_id: str
    file_name: str
    size: int | None


@dataclass(frozen=True)
class JobSpec:
    id: str
    workflow: str
    ref: str = ""
    params: dict[str, str] = field(default_factory=dict)
    short_id: str = ""
    trigger_id: str = ""
    trigger_name: str = ""
    input_files: tuple = ()
    created_at: str = ""
    # The job's own credential (claim answer's `jobToken`), given to its steps as DEPLITE_JOB_TOKEN.
    job_token: str = field(default="", repr=False)

    @classmethod
    def from_claim(cls, data: dict) -> JobSpec:
        """The body of a 200 from `POST /api/agent/jobs/claim`."""
        trigger = data.get("trigger") or {}
        files = tuple(
            InputFile(
                param=str(f.get("param", "")),
                file_id=str(f.get("fileId", "")),
                file_name=str(f.get("fileName", "")),
                size=f.get("size") if isinstance(f.get("size"), int) else None,
            )
            for f in (data.get("inputFiles") or [])
        )
        return cls(
            id=str(data["id"]),
            short_id=str(data.get("shortId") or ""),
            workflow=str(data.get("workflow") or ""),
            ref=str(data.get("ref") or ""),
            params={str(k): "" if v is None else str(v) for k, v in (data.get("params") or {}).items()},
            trigger_id=str(trigger.get("id") or ""),
            trigger_name=str(trigger.get("name") or ""),
            input_files=files,
            created_at=str(data.get("createdAt") or ""),
            job_token=str(data.get("jobToken") or ""),
        )


@dataclass
class StepResult:
    index: int
    name: str
    status: str
    exit_code: int | None


@dataclass
class JobResult:
    status: str
    exit_code: int | None
    error: str | None
    steps: list[StepResult] = field(default_factory=list)


class Reporter(Protocol):
    # `steps`: every step's name, once the workflow is parsed (the job page lists them from the start).
    def job_started(self, *, timeout_minutes: float, steps: list[str] | None = None) -> None: ...
    def step_started(self, *, step: int, name: str) -> None: ...
    # `stream`: "stdout" or "stderr" (the job page marks stderr lines).
    def log(self, *, step: int | None, data: str, stream: str = "stdout") -> None: ...
    # `allowed`: a failure the workflow allows (continue-on-error), shown as "failed (allowed)".
    def step_finished(
        self, *, step: int, name: str, status: str, exit_code: int | None, allowed: bool = False
    ) -> None: ...


# fetch_file(input_file, destination) downloads into `destination` (the caller checks the size).
FileFetcher = Callable[[InputFile, Path], None]
