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


CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
SCREENSHOTS = __import__("pathlib").Path(__file__).resolve().parent.parent / "var" / "screenshots"


def screenshot(page, name: str) -> None:
    """Keep a full-page picture of what a test saw, under the git-ignored var/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def wait_for_js(page, expression: str, timeout: float = 30.0) -> None:
    """Wait until `expression` is truthy in the page.

    Playwright's `wait_for_function` compiles its expression inside the page, which the pages'
    Content-Security-Policy (no 'unsafe-eval') refuses; `evaluate` goes through the debugging
    protocol instead, so it is polled from here."""
    import time

    from playwright.sync_api import Error as PlaywrightError

    deadline = time.monotonic() + timeout
    while True:
        try:
            if page.evaluate(expression):
                return
        except PlaywrightError:
            pass  # the element is not there yet (or the page is navigating): look again
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {expression!r}")
        time.sleep(0.1)
