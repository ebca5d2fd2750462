"""Copy buttons in headless Chromium: a secret shown once, an id and a snippet each go to the
clipboard exactly as shown."""

import pytest

from tests.browser import log_in

# navigator.clipboard.writeText is asynchronous: the click returns before the text is there, so a read
# right after it can still see the previous copy (it did, in a parallel run on a loaded machine).
CLIPBOARD_HOLDS = """async ([text, prefix]) => {
    const held = await navigator.clipboard.readText();
    return text !== null ? held === text : held.startsWith(prefix);
}"""


def copied(page, *, text=None, prefix=None) -> str:
    """What the clipboard holds once it holds `text` (or something starting with `prefix`), within 5 s."""
    page.wait_for_function(CLIPBOARD_HOLDS, arg=[text, prefix], timeout=5000)
    return page.evaluate("navigator.clipboard.readText()")


@pytest.mark.django_db(transaction=True)
def test_copy_buttons_put_secrets_ids_and_snippets_on_the_clipboard(browser_page, admin_user, org_a):
    page, base = browser_page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    log_in(page, base, "admin@acme.test", then="/orgs/acme/agents/")
    page.fill("input[name=name]", "web-1")
    page.click("form.stacked button[type=submit]")
    page.click("text=Or configure an agent you installed yourself")
    for target in ("agent-secret", "agent-id", "agent-install", "agent-install-systemd", "agent-env"):
        page.click(f"button[data-copy-from='#{target}']")
        shown = page.text_content(f"#{target}")
        assert copied(page, text=shown) == shown
        if target == "agent-install":
            assert page.evaluate("navigator.clipboard.readText()").startswith("curl -fsSL ")
    assert page.evaluate("navigator.clipboard.readText()").startswith("export DEPLITE_URL=")

    page.goto(f"{base}/orgs/acme/tokens/")
    page.click("button[type=submit] >> text=Create token")
    page.click("button[data-copy-from='#new-token']")
    assert copied(page, prefix="tk_") == page.text_content("#new-token")
