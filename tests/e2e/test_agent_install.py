"""The agent as a customer gets it: `curl -fsSL <server>/agent/install.sh | sh -s -- --agent-id <id>` on a
host with no checkout of this repository, from the real server over loopback HTTP. The installed agent
(the served wheel in its own virtualenv, its two dependencies from the package index as pip is
configured on this machine) then claims and runs a job. A server serving a newer agent flags it, and the
same command upgrades it in place. A wheel whose sha256 is not the published one is refused; an agent
older than the server accepts is refused with `agent_too_old`, and this agent stops."""

from __future__ import annotations

import functools
import hashlib
import os
import pty
import select
import shutil
import stat
import subprocess
import sys
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from agents import signing
from agents.distribution import AGENT_SOURCE, build_agent_release
from tests.s3_server import free_port

from .stack import ServerProcess

pytestmark = pytest.mark.django_db(transaction=True)

WORKFLOW = """\
name: deploy
steps:
  - name: Ship
    run: echo "the installed agent ran $REF from $(command -v deplite-agent || echo its venv)"
"""


def host_env() -> dict[str, str]:
    """A customer's host: nothing of this checkout (no virtualenv on PATH, no PYTHONPATH, no Deplite or
    Django settings); pip configured as this machine configures it (its index, its cache)."""
    venv_bin = Path(sys.executable).parent.resolve()
    path = [p for p in os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep) if p and Path(p).resolve() != venv_bin]
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DEPLITE_", "DATABASE_", "REDIS_", "DJANGO_", "PYTHON", "VIRTUAL_ENV"))
    }
    env["PATH"] = os.pathsep.join(path)
    return env


def read_pty(fd: int, until: str | None, *, seconds: float) -> str:
    """What the terminal shows, until `until` appears or the program closes it (bounded in time)."""
    seen = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the program ended and closed the terminal
            break
        if not chunk:
            break
        seen += chunk
        if until is not None and until.encode() in seen:
            break
    return seen.decode(errors="replace")


def test_one_command_installs_the_agent_on_a_fresh_host_and_the_installed_agent_runs_a_job(
    e2e, tmp_path, agent_release
):
    host = tmp_path / "host"
    prefix, home, unit = host / "opt" / "deplite-agent", host / "agent-home", host / "deplite-agent.service"
    (home / "workflows").mkdir(parents=True)
    (home / "workflows" / "deploy.yaml").write_text(WORKFLOW)
    created = e2e.create_agent("web-installed")
    secret_file = host / "agent-secret"
    secret_file.write_text(created["secret"] + "\n")
    secret_file.chmod(0o600)
    trigger = e2e.create_trigger("deploy")
    env = host_env()

    command = (
        f"curl -fsSL {e2e.url}/agent/install.sh | sh -s -- --agent-id {created['agent_id']}"
        f" --secret-file {secret_file} --prefix {prefix} --dir {home} --systemd --unit-file {unit}"
    )
    done = subprocess.run(["sh", "-c", command], cwd=host, env=env, capture_output=True, text=True, timeout=300)
    said = done.stdout + done.stderr
    assert done.returncode == 0, said
    version = agent_release.version
    assert f"sha256 verified: {agent_release.sha256}" in done.stdout
    assert f"Installed deplite-agent {version} in {prefix}/venv" in done.stdout
    # It ran `deplite-agent check`, which validated the workflow and made a signed request to the server.
    assert "ok: workflows/deploy.yaml: 1 step(s)" in done.stdout
    assert f"ok: connected to {e2e.url} as web-installed ({created['agent_id']})" in done.stdout
    assert created["secret"] not in said

    env_file = prefix / "agent.env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    settings_written = env_file.read_text()
    for line in (
        f"DEPLITE_URL='{e2e.url}'",
        f"DEPLITE_AGENT_ID='{created['agent_id']}'",
        f"DEPLITE_AGENT_SECRET='{created['secret']}'",
        f"DEPLITE_AGENT_DIR='{home}'",
    ):
        assert f"\n{line}\n" in settings_written
    unit_text = unit.read_text()
    for line in (
        f"ExecStart={prefix}/venv/bin/deplite-agent run",
        f"EnvironmentFile={env_file}",
        f"WorkingDirectory={home}",
        "KillMode=mixed",
        "RestartPreventExitStatus=3",
    ):
        assert f"\n{line}\n" in unit_text

    # The agent in the virtualenv is the served wheel's, not this checkout's sources.
    where = subprocess.run(
        [str(prefix / "venv/bin/python"), "-c", "import deplite_agent; print(deplite_agent.__file__)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert where.startswith(str(prefix / "venv")), where

    with open(host / "agent-output.txt", "w") as out:
        agent = subprocess.Popen(
            [str(prefix / "bin/deplite-agent"), "run", "--once"],
            cwd=host,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            job = e2e.wait_job(e2e.run(trigger, ref="v9.1")["jobId"], timeout=60)
            assert agent.wait(timeout=60) == 0
        finally:
            if agent.poll() is None:
                agent.kill()
                agent.wait()
    assert job["status"] == "succeeded", (host / "agent-output.txt").read_text()
    assert "the installed agent ran v9.1" in e2e.log_text(job["id"])
    listed = e2e.api("GET", f"/agents/{created['agent_id']}")
    assert listed["version"] == version and listed["updateAvailable"] is False

    # Again, now with bash and neither id nor secret: an upgrade in place keeps the agent's id, secret and home.
    again = subprocess.run(
        ["bash", "-c", f"curl -fsSL {e2e.url}/agent/install.sh | bash -s -- --prefix {prefix}"],
        cwd=host,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"deplite-agent {version} was already installed in {prefix}/venv: up to date" in again.stdout
    assert f"ok: connected to {e2e.url} as web-installed" in again.stdout
    assert env_file.read_text() == settings_written
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600


@pytest.fixture(scope="module")
def newer_release(tmp_path_factory, agent_release):
    """The same agent one version later (`<version>.post1`), built as `manage.py build_agent` builds it."""
    source = tmp_path_factory.mktemp("newer-agent") / "deplite_agent"
    shutil.copytree(AGENT_SOURCE, source, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    init = source / "src" / "deplite_agent" / "__init__.py"
    version = f"{agent_release.version}.post1"
    init.write_text(init.read_text().replace(f'"{agent_release.version}"', f'"{version}"'))
    release = build_agent_release(source=source, dest=tmp_path_factory.mktemp("newer-dist"))
    assert release.version == version
    return release


def test_a_server_serving_a_newer_agent_flags_the_installed_one_and_the_same_command_upgrades_it_in_place(
    e2e, tmp_path, agent_release, newer_release
):
    host, prefix = tmp_path / "host", tmp_path / "host" / "deplite-agent"
    host.mkdir()
    created = e2e.create_agent("web-upgraded")
    (host / "secret").write_text(created["secret"])
    env = host_env()
    install = f"curl -fsSL {e2e.url}/agent/install.sh | sh -s -- --agent-id {created['agent_id']} --secret-file {host / 'secret'} --prefix {prefix}"
    assert subprocess.run(["sh", "-c", install], cwd=host, env=env, capture_output=True, timeout=300).returncode == 0
    settings_before = (prefix / "agent.env").read_text()

    newer = ServerProcess(
        port=free_port(),
        env={**e2e.stack.server.env, "DEPLITE_AGENT_DIST_DIR": str(newer_release.directory)},
        log_path=tmp_path / "newer-server.log",
    ).start()
    try:

        def listed() -> dict:
            response = requests.get(
                f"{newer.url}/api/orgs/{e2e.org.slug}/agents/{created['agent_id']}",
                headers={"Authorization": f"Bearer {e2e.jwt}"},
                timeout=10,
            )
            assert response.status_code == 200, response.text
            return response.json()

        before = listed()
        command = f"curl -fsSL {newer.url}/agent/install.sh | sh -s -- --agent-id {created['agent_id']}"
        assert (before["version"], before["updateAvailable"], before["updateCommand"]) == (
            agent_release.version,
            True,
            command,
        )

        # The command the server shows, as is (no secret: the installed agent's is kept).
        upgraded = subprocess.run(
            ["bash", "-c", f"{command.replace('| sh ', '| bash ')} --prefix {prefix}"],
            cwd=host,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
        assert (
            f"Upgraded deplite-agent {agent_release.version} -> {newer_release.version} in {prefix}/venv"
            in upgraded.stdout
        )
        assert f"ok: connected to {newer.url} as web-upgraded" in upgraded.stdout
        installed = subprocess.run(
            [str(prefix / "bin/deplite-agent"), "version"], env=env, capture_output=True, text=True, check=True
        )
        assert installed.stdout.strip() == newer_release.version
        after = listed()
        assert (after["version"], after["updateAvailable"], after["updateCommand"]) == (
            newer_release.version,
            False,
            None,
        )
        # Same agent, secret and home; only the server it was installed from (this one) is named.
        assert (prefix / "agent.env").read_text() == settings_before.replace(e2e.url, newer.url)
        assert stat.S_IMODE((prefix / "agent.env").stat().st_mode) == 0o600
    finally:
        newer.stop()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def test_a_wheel_whose_sha256_is_not_the_published_one_is_refused_and_nothing_is_installed(
    e2e, tmp_path, agent_release
):
    """The script from the server names the wheel's sha256; a mirror (or anything on the way) that hands out
    other bytes is refused before anything is installed. The secret is typed at the terminal (/dev/tty)."""
    mirror = tmp_path / "mirror"
    (mirror / "agent").mkdir(parents=True)
    tampered = bytearray(agent_release.wheel_path.read_bytes())
    tampered[len(tampered) // 2] ^= 0xFF
    (mirror / "agent" / agent_release.wheel).write_bytes(bytes(tampered))
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(mirror)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    mirror_url = f"http://127.0.0.1:{server.server_address[1]}"

    host, prefix = tmp_path / "host", tmp_path / "host" / "deplite-agent"
    host.mkdir()
    created = e2e.create_agent("web-mirror")
    command = (
        f"curl -fsSL {e2e.url}/agent/install.sh | sh -s -- --agent-id {created['agent_id']}"
        f" --prefix {prefix} --url {mirror_url}"
    )
    pid, terminal = pty.fork()
    if pid == 0:  # the child: sh with this pty as its terminal, as in a customer's ssh session
        os.chdir(host)
        os.execvpe("sh", ["sh", "-c", command], host_env())  # noqa: S606 (the customer's own command line)
    try:
        shown = read_pty(terminal, "typing is hidden): ", seconds=60)
        assert f"Secret of agent {created['agent_id']}" in shown, shown
        os.write(terminal, created["secret"].encode() + b"\n")
        shown += read_pty(terminal, None, seconds=120)
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(terminal)
        server.shutdown()
    assert os.waitstatus_to_exitcode(status) == 1, shown
    assert (
        f"the downloaded {agent_release.wheel} has sha256 {hashlib.sha256(tampered).hexdigest()}, "
        f"but the server published {agent_release.sha256}: refusing to install it"
    ) in shown
    assert created["secret"] not in shown  # the terminal did not echo it
    assert not prefix.exists()  # nothing installed, no settings written


def test_an_agent_older_than_the_server_accepts_is_refused_with_agent_too_old_and_this_agent_stops(
    e2e, deplite_stack, tmp_path
):
    strict = ServerProcess(
        port=free_port(),
        env={**deplite_stack.server.env, "DEPLITE_AGENT_MIN_VERSION": "99.0"},
        log_path=tmp_path / "strict-server.log",
    ).start()
    try:
        created = e2e.create_agent("web-old")
        e2e.home.write_workflow("deploy", WORKFLOW)
        started = time.monotonic()
        with e2e.home.start_agent(url=strict.url, agent_id=created["agent_id"], secret=created["secret"]) as agent:
            status = agent.wait(timeout=30)
            output = agent.output()
        # It printed the server's answer, which says how to upgrade, and stopped at once with its own exit status.
        assert status == 3, output
        assert time.monotonic() - started < 20
        assert "the server refuses this agent version (agent_too_old)" in output
        assert "is older than the oldest version this server accepts (99.0)" in output
        assert f"{strict.url}/agent/install.sh | sh -s -- --agent-id {created['agent_id']}" in output
        assert output.count("agent_too_old") == 1  # no retry loop

        # An agent of the first release names its version only in its heartbeat; it gets the same answer there
        # and on its claims, and logs it with each retry.
        for path, body in (
            ("/api/agent/heartbeat", b'{"hostname": "old", "version": "0.1.0"}'),
            ("/api/agent/jobs/claim?wait=0", b"{}"),
        ):
            header = signing.signature_header(
                agent_id=created["agent_id"], secret=created["secret"], method="POST", path=path, body=body
            )
            old = requests.post(
                strict.url + path,
                data=body,
                headers={"X-Agent-Signature": header, "Content-Type": "application/json"},
                timeout=10,
            )
            assert old.status_code == 426, (path, old.text)
            assert old.json()["error"]["code"] == "agent_too_old"
    finally:
        strict.stop()
