"""An S3-compatible server for tests: moto's server mode in its own process, over HTTP on a free
port, and a plain boto3 client for looking inside it. Shared by the storage tests and the
end-to-end tests (the fixtures `moto_url`, `s3_admin` and `bucket` live in tests/conftest.py)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import boto3
import pytest
import requests
from botocore.config import Config

ADMIN_KEY, ADMIN_SECRET = "moto-admin", "moto-admin-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto() -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(f"{url}/moto-api/", timeout=1)
            return proc, url
        except requests.ConnectionError:
            if proc.poll() is not None:
                break
            time.sleep(0.1)
    proc.kill()
    pytest.fail("moto server did not start")


def admin_client(url: str, service: str = "s3"):
    return boto3.client(
        service,
        endpoint_url=url,
        aws_access_key_id=ADMIN_KEY,
        aws_secret_access_key=ADMIN_SECRET,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}),
    )
