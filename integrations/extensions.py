"""Sections other apps add to the Integrations page, so `integrations` shows their data
without importing them (`notifications` depends on `integrations`, never the reverse)."""

from __future__ import annotations

#: template names included at the bottom of the Integrations page (context: `org`).
_page_sections: list[str] = []


def register_page_section(template_name: str) -> None:
    if template_name not in _page_sections:
        _page_sections.append(template_name)


def page_sections() -> list[str]:
    return list(_page_sections)
