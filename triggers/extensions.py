"""Extension points other apps plug into, so `triggers` shows their data without importing them.

`notifications` (which depends on `triggers`, never the reverse) registers here in its
`AppConfig.ready()`: the `notifications` list of `GET …/jobs/<id>` and a section of the
job page. An app that is not installed simply leaves its entry out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: key in the job detail payload → function(job, principal) returning its JSON value.
_job_detail_fields: dict[str, Callable[..., Any]] = {}
#: template names included at the bottom of the job page, in registration order.
_job_page_sections: list[str] = []


def register_job_detail_field(key: str, build: Callable[..., Any]) -> None:
    _job_detail_fields[key] = build


def job_detail_field(key: str, job, *, default: Any = None, **context: Any) -> Any:
    build = _job_detail_fields.get(key)
    return default if build is None else build(job, **context)


def register_job_page_section(template_name: str) -> None:
    if template_name not in _job_page_sections:
        _job_page_sections.append(template_name)


def job_page_sections() -> list[str]:
    return list(_job_page_sections)
