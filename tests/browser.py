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


# axe-core impacts that fail a browser test; "moderate" and "minor" findings are kept for a
# test to look at (`AccessibilityCheck.violations`) but do not fail it by themselves.
FAILING_IMPACTS = frozenset({"serious", "critical"})


# Runs in every document of the page before its own scripts (an init script, which the pages'
# Content-Security-Policy does not apply to). The top frame tells Python when a new document
# starts (the ones before it are gone, checked or not) and when it has loaded, then runs axe
# and hands over the result. Sub-frames only carry axe, which checks them from the top.
_AXE_RUNNER = """
if (window.top === window) {
  const report = window.__depliteAxeReport;
  const doc = Math.random().toString(36).slice(2);
  report({doc, phase: "start"});
  window.addEventListener("load", () => {
    const url = location.href;
    // Not about:blank, nor a text/plain answer (a raw log) that Chromium wraps in a page.
    if (!url.startsWith("http") || document.contentType !== "text/html") return;
    report({doc, phase: "loaded"});
    setTimeout(() => axe.run(document, {resultTypes: ["violations"]}).then(
      (result) => report({doc, phase: "done", url, violations: result.violations.map((v) => ({
        id: v.id, impact: v.impact, help: v.help,
        targets: v.nodes.slice(0, 5).map((node) => node.target.join(" ")),
      }))}),
      (error) => report({doc, phase: "done", url, error: String(error)}),
    ), 0);
  });
}
"""


class AccessibilityCheck:
    """Runs axe-core (the copy shipped by the `axe-playwright-python` package) on every HTML page
    the browser loads, after its `load` event, and keeps what it finds.

    The package's own `Axe.run(page)`, called from Python after the fact, races the test's next
    step (the next navigation replaces the page while axe reads it, and Playwright cannot
    evaluate in a page whose navigation is held). So axe runs inside each page by itself, and
    a navigation away from a loaded page whose check has not reported yet is held until it has:
    every page that loaded is checked, and a test sees no difference but the wait.
    The `browser_page` fixture attaches one to its page, and the suite fails a test whose pages
    had a violation of impact serious or critical (`tests/conftest.py`)."""

    TIMEOUT = 10.0  # seconds a navigation waits for the page it leaves (below a test's 15 s)

    def __init__(self, page) -> None:
        from axe_playwright_python.base import AXE_SCRIPT

        self._page = page
        self._running: set[str] = set()  # documents loaded whose check has not reported
        self.checked: list[str] = []
        self.found: list[tuple[str, dict]] = []  # (page URL, axe violation)
        self.errors: list[str] = []
        page.expose_binding("__depliteAxeReport", self._on_report)
        page.add_init_script(AXE_SCRIPT + "\n" + _AXE_RUNNER)
        page.route("**/*", self._on_request)

    def _on_report(self, source, report: dict) -> None:
        phase = report["phase"]
        if phase == "start":
            self._running.clear()
        elif phase == "loaded":
            self._running.add(report["doc"])
        elif report["doc"] in self._running:
            self._running.discard(report["doc"])
            if "error" in report:
                self.errors.append(f"{report['url']}: axe failed: {report['error']}")
                return
            self.checked.append(report["url"])
            self.found.extend((report["url"], violation) for violation in report["violations"])

    def _on_request(self, route) -> None:
        request = route.request
        if request.is_navigation_request() and request.frame == self._page.main_frame:
            self.wait()
        route.fallback()

    def wait(self) -> None:
        """Until the page that has loaded has reported."""
        import time

        deadline = time.monotonic() + self.TIMEOUT
        while self._running:
            if time.monotonic() > deadline:
                self.errors.append(f"{self._page.url}: axe did not report within {self.TIMEOUT:.0f} s")
                self._running.clear()
                return
            self._page.wait_for_timeout(20)

    def violations(self, *, impacts=None, rule: str | None = None) -> list[tuple[str, dict]]:
        self.wait()
        return [
            (url, v)
            for url, v in self.found
            if (impacts is None or v["impact"] in impacts) and (rule is None or v["id"] == rule)
        ]

    def take(self) -> list[tuple[str, dict]]:
        """Everything found so far, forgotten (for a test that provokes a violation on purpose)."""
        self.wait()
        found, self.found = self.found, []
        return found

    def report(self, found: list[tuple[str, dict]]) -> str:
        lines = []
        for url, v in found:
            nodes = "; ".join(v["targets"])
            lines.append(f"{url}: {v['id']} ({v['impact']}) {v['help']} — {nodes}")
        return "\n".join(lines)

    def assert_no_serious_violations(self) -> None:
        failing = self.violations(impacts=FAILING_IMPACTS)
        assert not failing, "axe-core found accessibility violations:\n" + self.report(failing)
        assert not self.errors, "\n".join(self.errors)
