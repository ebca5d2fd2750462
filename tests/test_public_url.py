"""`make run PORT=<port>` without DEPLITE_PUBLIC_URL: every link the product emits names that port.

The banner, the agent's install command and environment snippet, the agent's install.sh, the trigger's run URL and GitHub Actions
snippet, the run API's `url` and the invitation email are all read from the running
server, as a newcomer would read them, and each must reach it.
"""

import os
import re
import signal
import subprocess
import time

import pytest
import requests

from tests.agent_program.harness import wait_until
from tests.browser import CHROMIUM_ARGS, AccessibilityCheck, screenshot
from tests.conftest import CHROMIUM
from tests.test_newcomer import ROOT, _answers, _free_port


def _read_until(proc, marker: str, output: str, *, seconds: float) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and marker not in output:
        line = proc.stdout.readline()
        if not line:
            break
        output += line
    return output


def test_make_run_with_port_emits_links_to_that_port(tmp_path):
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "DEBUG", "DEPLITE_PUBLIC_URL", "PORT", "CSRF_TRUSTED_ORIGINS")
    }
    env.update(DEPLITE_VAR_DIR=str(tmp_path), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        ["make", "run", f"PORT={port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output = _read_until(proc, "API docs:", "", seconds=180)
        banner_links = re.findall(r"https?://[^\s/]+", output[output.index("Deplite is starting") :])
        assert banner_links and set(banner_links) == {base}, output
        email = re.search(r"email:\s+(\S+)", output).group(1)
        password = re.search(r"password:\s+(\S+)", output).group(1)
        wait_until(lambda: _answers(f"{base}/healthz"), timeout=20, interval=0.2, message="the server to answer")

        # `make run` built the agent at set-up (into DEPLITE_VAR_DIR/agent) and serves it, naming this port.
        script = requests.get(f"{base}/agent/install.sh", timeout=10)
        assert script.status_code == 200 and f"\nDEPLITE_SERVER={base}\n" in script.text
        wheel = re.search(r"\nAGENT_WHEEL=(\S+)\n", script.text).group(1)
        assert requests.get(f"{base}/agent/{wheel}", timeout=10).status_code == 200

        jwt = requests.post(f"{base}/api/auth/token", json={"email": email, "password": password}, timeout=10).json()
        auth = {"Authorization": f"Bearer {jwt['access']}"}
        trigger = requests.post(
            f"{base}/api/orgs/demo/triggers", json={"name": "web", "workflow": "deploy"}, headers=auth, timeout=10
        ).json()
        assert trigger["runUrl"] == f"{base}/triggers/{trigger['id']}/run"
        run = requests.post(trigger["runUrl"], json={"ref": "main"}, headers=auth, timeout=10)
        assert run.status_code == 202 and run.json()["url"].startswith(f"{base}/orgs/demo/jobs/")
        assert requests.get(run.json()["url"], timeout=10).status_code in (200, 302)  # it reaches this server

        invited = requests.post(
            f"{base}/api/orgs/demo/members", json={"email": "new@example.com"}, headers=auth, timeout=10
        )
        assert invited.status_code == 201
        # The console email backend prints the invitation on the server's output.
        output = _read_until(proc, f"accept the invitation at:\n{base}/", output, seconds=30)
        assert f"accept the invitation at:\n{base}/" in output
        assert ":8000" not in output

        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page()
            page.set_default_timeout(15000)
            accessibility = AccessibilityCheck(page)  # as browser_page has it (this page is not one)
            page.goto(f"{base}/accounts/login/")
            page.fill("input[name=login]", email)
            page.fill("input[name=password]", password)
            page.click("button[type=submit]")
            page.wait_for_load_state()

            page.goto(f"{base}/orgs/demo/agents/")
            page.fill("input[name=name]", "web-1")
            page.click("form.stacked button[type=submit]")
            install = page.get_by_test_id("agent-install").inner_text()
            assert install.startswith(f"curl -fsSL {base}/agent/install.sh | sh -s -- --agent-id ")
            screenshot(page, "agents-new-secret")
            page.click("text=Or configure an agent you installed yourself")
            snippet = page.get_by_test_id("agent-env").inner_text()
            assert f"export DEPLITE_URL={base}\n" in snippet

            page.goto(f"{base}/orgs/demo/triggers/{trigger['id']}/")
            assert page.text_content("#run-url") == f"{base}/triggers/{trigger['id']}/run"
            gha = page.get_by_test_id("gha-snippet").inner_text()
            assert f"curl -X POST {base}/triggers/" in gha
            assert ":8000" not in page.content()
            screenshot(page, "trigger")
            accessibility.assert_no_serious_violations()
            browser.close()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)


@pytest.mark.parametrize("public_url", ["https://deploy.example.com"])
def test_public_url_set_wins_over_port(public_url):
    out = subprocess.run(
        [str(ROOT / ".venv/bin/python"), "-c", "from django.conf import settings; print(settings.DEPLITE_PUBLIC_URL)"],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "deplite.settings",
            "PORT": "18900",
            "DEPLITE_PUBLIC_URL": public_url,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout.strip() == public_url
