"""A newcomer's first command: `make run` sets up, prints a login, and the login works."""

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import requests

from tests.agent_program.harness import wait_until

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(url: str, session=requests) -> requests.Response | None:
    """The server's answer (a Response is falsy unless 2xx/3xx: waiting on it waits for a success), or None
    while nothing listens yet."""
    try:
        return session.get(url, timeout=2)
    except requests.ConnectionError:
        return None


def test_make_run_prints_a_login_that_works(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DEBUG")}
    env.update(DEPLITE_VAR_DIR=str(tmp_path), DEPLITE_PUBLIC_URL=f"http://127.0.0.1:{port}", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        ["make", "run", f"PORT={port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output = ""
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and "password:" not in output:
            line = proc.stdout.readline()
            if not line:
                break
            output += line
        email = re.search(r"email:\s+(\S+)", output).group(1)
        password = re.search(r"password:\s+(\S+)", output).group(1)
        assert (tmp_path / "deplite.sqlite3").exists()  # the embedded default: SQLite under var/

        base = f"http://127.0.0.1:{port}"
        session = requests.Session()
        page = wait_until(
            lambda: _answers(f"{base}/accounts/login/", session),
            timeout=20,
            interval=0.2,
            message="the server to answer",
        )
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        response = session.post(
            f"{base}/accounts/login/",
            data={"csrfmiddlewaretoken": csrf, "login": email, "password": password},
            headers={"Referer": f"{base}/accounts/login/"},
            timeout=10,
        )
        assert response.status_code == 200
        assert response.url.endswith("/orgs/demo/")  # the only org opens directly
        assert "<h1>Demo</h1>" in response.text

        token = requests.post(
            f"{base}/api/auth/token", data=f'{{"email": "{email}", "password": "{password}"}}', timeout=10
        )
        assert token.status_code == 200 and token.json()["access"]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
