"""Helpers for the headless Chromium tests (the `browser_page` fixture is in conftest)."""

from __future__ import annotations

PASSWORD = "correct-horse-battery"  # noqa: S105 (tests.factories.UserFactory's password)


def log_in(page, base: str, email: str, *, then: str) -> None:
    """Log in through the real login form and open `then` (a path)."""
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    page.goto(f"{base}{then}")
