"""The README's "A local bucket" commands, as written: its Python makes a bucket with the CORS rule
the Files page's browser upload needs on a local S3 server (moto's, on loopback), and the bucket
links as the README says — only with DEPLITE_ALLOW_PRIVATE_STORAGE_ENDPOINTS, as it says."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import requests

README = Path(__file__).resolve().parent.parent / "README.md"

pytestmark = pytest.mark.django_db


def _local_bucket_section() -> str:
    text = README.read_text()
    start = text.index("### A local bucket")
    return text[start : text.index("\n## ", start)]


def _readme_commands() -> tuple[dict[str, str], str]:
    """The `export` line's variables and the Python run by `.venv/bin/python - <<'EOF'`."""
    section = _local_bucket_section()
    export = re.search(r"^export (S3_ENDPOINT=.*)$", section, re.M).group(1)
    env = dict(word.split("=", 1) for word in shlex.split(export))
    script = re.search(r"^\.venv/bin/python - <<'EOF'\n(.*?)^EOF$", section, re.M | re.S).group(1)
    return env, script


def test_readme_local_bucket_commands_make_a_bucket_the_browser_may_upload_to(moto_url):
    env, script = _readme_commands()
    assert env["S3_ENDPOINT"] == "http://127.0.0.1:9000"
    origin = env["DEPLITE_ORIGIN"]
    env["S3_ENDPOINT"] = moto_url  # the test's moto listens on a free port, not 9000
    done = subprocess.run(
        [sys.executable, "-"], input=script, env={**os.environ, **env}, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert origin in done.stdout  # it prints the rule the bucket now has

    def preflight(from_origin: str) -> requests.Response:
        return requests.options(
            f"{moto_url}/deplite-local/builds/app.tar.gz",
            headers={
                "Origin": from_origin,
                "Access-Control-Request-Method": "PUT",
                "Access-Control-Request-Headers": "content-type",
            },
            timeout=10,
        )

    allowed = preflight(origin)
    assert allowed.status_code == 200
    assert allowed.headers["Access-Control-Allow-Origin"] == origin
    assert allowed.headers["Access-Control-Expose-Headers"] == "ETag"  # the rule's, not a default answer
    assert preflight("http://elsewhere.example").status_code == 403


def test_readme_local_bucket_links_with_the_values_it_names(api, owner, org_a, moto_url, settings):
    env, script = _readme_commands()
    subprocess.run(
        [sys.executable, "-"],
        input=script,
        env={**os.environ, **env, "S3_ENDPOINT": moto_url},
        check=True,
        text=True,
        capture_output=True,
        timeout=60,
    )
    section = _local_bucket_section()
    for named in ("region `us-east-1`", "bucket\n`deplite-local`", "access key `local`", "secret key `local-secret`"):
        assert named in section
    body = {
        "name": "local",
        "endpoint": moto_url,
        "region": "us-east-1",
        "bucket": "deplite-local",
        "accessKey": env["S3_ACCESS_KEY"],
        "secretKey": env["S3_SECRET_KEY"],
        "pathStyle": True,
    }
    client = api.as_user(owner)

    settings.DEPLITE_ALLOW_PRIVATE_STORAGE_ENDPOINTS = False
    refused = client.post("/api/orgs/acme/storage/bindings", body, format="json")
    assert refused.status_code == 400, refused.content

    settings.DEPLITE_ALLOW_PRIVATE_STORAGE_ENDPOINTS = True
    created = client.post("/api/orgs/acme/storage/bindings", body, format="json")
    assert created.status_code == 201, created.content
    tested = client.post(f"/api/orgs/acme/storage/bindings/{created.json()['id']}/test")
    assert tested.json()["ok"] is True, tested.json()
