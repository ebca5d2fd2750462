"""`/agent/…`: the agent's wheel, its sha256, version.json and install.sh, served to anyone from what
`manage.py build_agent` built, with this server's address filled in."""

from __future__ import annotations

import hashlib
import io
import re
import subprocess
import zipfile
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client

from agents.distribution import load_release

AGENT_INIT = Path(__file__).resolve().parents[2] / "deplite_agent" / "src" / "deplite_agent" / "__init__.py"


def _source_version() -> str:
    return re.search(r'^__version__ = "([^"]+)"$', AGENT_INIT.read_text(), re.M).group(1)


@pytest.fixture
def anonymous():
    return Client()


def _body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_the_wheel_is_served_with_its_sha256_and_version_to_anyone(anonymous, served_agent):
    version = _source_version()
    assert served_agent.version == version
    wheel_name = f"deplite_agent-{version}-py3-none-any.whl"

    wheel = anonymous.get(f"/agent/{wheel_name}")
    assert wheel.status_code == 200
    data = _body(wheel)
    digest = hashlib.sha256(data).hexdigest()
    assert "immutable" in wheel["Cache-Control"] and "public" in wheel["Cache-Control"]
    # The package inside is the agent of this checkout, at the version the source names.
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        metadata = zf.read(f"deplite_agent-{version}.dist-info/METADATA").decode()
        assert f"Version: {version}\n" in metadata
        assert f'__version__ = "{version}"' in zf.read("deplite_agent/__init__.py").decode()

    sha = anonymous.get(f"/agent/{wheel_name}.sha256")
    assert sha.status_code == 200
    assert sha.content.decode() == f"{digest}  {wheel_name}\n"  # `sha256sum -c` reads it as is

    info = anonymous.get("/agent/version").json()
    assert info["version"] == version and info["sha256"] == digest and info["size"] == len(data)
    assert info["wheelUrl"] == f"http://127.0.0.1:8000/agent/{wheel_name}"
    assert info["installScriptUrl"] == "http://127.0.0.1:8000/agent/install.sh"
    assert info["minimumVersion"] == "0.1.0"

    latest = anonymous.get("/agent/deplite_agent-latest-py3-none-any.whl")
    assert latest.status_code == 302 and latest["Location"] == f"/agent/{wheel_name}"
    assert (
        anonymous.get("/agent/deplite_agent-latest-py3-none-any.whl.sha256")["Location"]
        == f"/agent/{wheel_name}.sha256"
    )

    # A cache that holds the wheel asks again with its ETag and gets a 304.
    assert anonymous.get(f"/agent/{wheel_name}", HTTP_IF_NONE_MATCH=f'"{digest}"').status_code == 304


def test_install_sh_carries_this_servers_url_version_and_sha256_and_is_valid_sh_and_bash(
    anonymous, served_agent, settings
):
    settings.DEPLITE_PUBLIC_URL = "https://deplite.example.com"
    response = anonymous.get("/agent/install.sh")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/x-shellscript")
    assert "max-age=300" in response["Cache-Control"]
    script = response.content.decode()
    assert script.startswith("#!/bin/sh\n")
    assert "\nDEPLITE_SERVER=https://deplite.example.com\n" in script
    assert f"\nAGENT_VERSION={served_agent.version}\n" in script
    assert f"\nAGENT_WHEEL={served_agent.wheel}\n" in script
    assert f"\nAGENT_SHA256={served_agent.sha256}\n" in script
    assert "@DEPLITE_SERVER@" not in script
    for shell in ("sh", "bash"):  # sh is dash here
        checked = subprocess.run([shell, "-n"], input=script, capture_output=True, text=True)
        assert checked.returncode == 0, (shell, checked.stderr)
    # --help runs without a server, a terminal or any option.
    helped = subprocess.run(["sh", "-s", "--", "--help"], input=script, capture_output=True, text=True)
    assert helped.returncode == 0 and "--secret-file FILE" in helped.stdout
    assert "https://deplite.example.com/agent/install.sh" in helped.stdout


def test_a_version_this_server_does_not_serve_is_a_404_naming_the_one_it_does(anonymous, served_agent):
    response = anonymous.get("/agent/deplite_agent-0.0.1-py3-none-any.whl")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "not_found" and served_agent.wheel in error["message"]


def test_a_server_that_never_built_the_agent_says_so_instead_of_a_500(anonymous):
    for path in ("/agent/install.sh", "/agent/version", "/agent/deplite_agent-latest-py3-none-any.whl"):
        response = anonymous.get(path)
        assert response.status_code == 503, path
        error = response.json()["error"]
        assert error["code"] == "agent_not_built" and "manage.py build_agent" in error["message"]


def test_the_agent_downloads_take_only_reads(anonymous, served_agent):
    response = anonymous.post("/agent/install.sh")
    assert response.status_code == 405
    assert anonymous.head(f"/agent/{served_agent.wheel}").status_code == 200


def test_two_builds_of_the_same_source_publish_the_same_sha256(agent_release, tmp_path):
    """Each web host may build at release: they must all publish the bytes install.sh verifies."""
    call_command("build_agent", dest=str(tmp_path), stdout=io.StringIO())
    again = load_release(tmp_path)
    assert (again.version, again.sha256) == (agent_release.version, agent_release.sha256)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [again.wheel, f"{again.wheel}.sha256", "install.sh", "version.json"]
    )


def test_install_sh_refuses_a_python_older_than_3_9_before_asking_for_anything(anonymous, served_agent, tmp_path):
    old_python = tmp_path / "python3.8"
    old_python.write_text('#!/bin/sh\n[ "$1" = -V ] && echo "Python 3.8.18" && exit 0\nexit 1\n')
    old_python.chmod(0o755)
    script = anonymous.get("/agent/install.sh").content.decode()
    done = subprocess.run(
        [
            "sh",
            "-s",
            "--",
            "--agent-id",
            "3f1c6a4e-0000-4000-8000-000000000001",
            "--python",
            str(old_python),
            "--prefix",
            str(tmp_path / "prefix"),
        ],
        input=script,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "Python 3.9 or newer is needed; " + str(old_python) + " is Python 3.8.18" in done.stderr
    assert not (tmp_path / "prefix").exists()


def test_install_sh_refuses_a_prefix_it_cannot_create_before_asking_for_the_secret(anonymous, served_agent, tmp_path):
    (tmp_path / "a-file").write_text("")
    script = anonymous.get("/agent/install.sh").content.decode()
    done = subprocess.run(
        [
            "sh",
            "-s",
            "--",
            "--agent-id",
            "3f1c6a4e-0000-4000-8000-000000000001",
            "--prefix",
            str(tmp_path / "a-file" / "agent"),
        ],
        input=script,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert f"cannot write {tmp_path / 'a-file' / 'agent'}: run it as root" in done.stderr
    assert "Secret of agent" not in done.stdout + done.stderr
