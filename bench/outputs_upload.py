"""An output file's upload by the agent against a direct boto3 upload of the same file, in one run.

The local S3 server (moto's server mode over HTTP, as the tests use it) receives a BENCH_OUTPUT_MB
(200) MiB file of random bytes, alternately:
- through the agent: the real `deplite-agent files upload` in its own process (the whole command:
  start-up, the SHA-256 pass, the presign call, the streamed PUT, the complete call), against a small
  control plane here that presigns with boto3 exactly as the server does (ContentType and
  ChecksumSHA256 signed) and HEADs the object on complete;
- directly with boto3 in this process: `put_object` (one PUT, the agent's shape) and `upload_file`
  (boto3's managed transfer: multipart, threads).
BENCH_OUTPUT_ROUNDS (3) rounds of each, at most BENCH_OUTPUT_SECONDS (300) in all. The agent's RSS is
sampled every 20 ms from /proc while it uploads. Prints the median MiB/s of each, the ratio agent /
boto3, and the agent's RSS (median, peak).

    .venv/bin/python bench/outputs_upload.py
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.s3_server import admin_client, start_moto  # noqa: E402

SIZE_MB = int(os.environ.get("BENCH_OUTPUT_MB", "200"))
ROUNDS = int(os.environ.get("BENCH_OUTPUT_ROUNDS", "3"))
BUDGET_SECONDS = float(os.environ.get("BENCH_OUTPUT_SECONDS", "300"))
BUCKET = "bench-outputs"
JOB_ID, JOB_TOKEN = str(uuid.uuid4()), "djt_" + uuid.uuid4().hex


def control_plane(s3) -> ThreadingHTTPServer:
    """The two agent endpoints, presigning against moto the way the server presigns against a binding."""
    pending: dict[str, dict] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            data = json.loads(self.rfile.read(length) or b"{}")
            assert self.headers.get("Authorization") == f"Bearer {JOB_TOKEN}"
            parts = self.path.strip("/").split("/")
            if parts[-1] == "outputs":
                file_id = str(uuid.uuid4())
                checksum = base64.b64encode(bytes.fromhex(data["sha256"])).decode()
                params = {
                    "Bucket": BUCKET,
                    "Key": f"outputs/{file_id}/{data['name']}",
                    "ContentType": data["contentType"],
                    "ChecksumSHA256": checksum,
                }
                pending[file_id] = {**data, "key": params["Key"]}
                url = s3.generate_presigned_url("put_object", Params=params, ExpiresIn=900)
                headers = {"Content-Type": data["contentType"], "x-amz-checksum-sha256": checksum}
                answer = {"fileId": file_id, "uploadUrl": url, "method": "PUT", "headers": headers}
                status = 201
            else:
                record = pending[parts[-2]]
                head = s3.head_object(Bucket=BUCKET, Key=record["key"])
                assert head["ContentLength"] == record["size"], head
                answer = {"fileId": parts[-2], "name": record["name"], "size": record["size"]}
                answer.update(sha256=record["sha256"], status="available")
                status = 200
            raw = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def agent_upload(path: Path, url: str) -> tuple[float, list[int]]:
    """Seconds for the whole `files upload` command, and its RSS samples (KiB)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEPLITE_")}
    env.update(
        PYTHONPATH=str(ROOT / "deplite_agent" / "src"),
        DEPLITE_URL=url,
        DEPLITE_JOB_ID=JOB_ID,
        DEPLITE_JOB_TOKEN=JOB_TOKEN,
    )
    samples: list[int] = []
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "deplite_agent", "files", "upload", str(path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    status = Path(f"/proc/{proc.pid}/status")
    while proc.poll() is None and time.perf_counter() - started < 120:
        try:
            rss = next(line for line in status.read_text().splitlines() if line.startswith("VmRSS"))
            samples.append(int(rss.split()[1]))
        except (OSError, StopIteration):
            pass
        time.sleep(0.02)
    out, err = proc.communicate(timeout=120)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"deplite-agent files upload failed ({proc.returncode}): {err}")
    assert out.split()[3] == "bytes" and out.split()[4] == f"sha256:{sha256_of(path)}", out
    return elapsed, samples


_digests: dict[Path, str] = {}


def sha256_of(path: Path) -> str:
    if path not in _digests:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        _digests[path] = digest.hexdigest()
    return _digests[path]


def main() -> None:
    deadline = time.monotonic() + BUDGET_SECONDS
    moto, moto_url = start_moto()
    try:
        s3 = admin_client(moto_url)
        s3.create_bucket(Bucket=BUCKET)
        server = control_plane(s3)
        url = f"http://127.0.0.1:{server.server_address[1]}"
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "output.bin"
            with open(path, "wb") as f:
                for _ in range(SIZE_MB):
                    f.write(os.urandom(1 << 20))
            size = path.stat().st_size
            times: dict[str, list[float]] = {"agent files upload": [], "boto3 put_object": [], "boto3 upload_file": []}
            rss: list[list[int]] = []
            for _ in range(ROUNDS):
                if time.monotonic() > deadline:
                    break
                elapsed, samples = agent_upload(path, url)
                times["agent files upload"].append(elapsed)
                rss.append(samples)
                started = time.perf_counter()
                with open(path, "rb") as f:
                    s3.put_object(Bucket=BUCKET, Key="direct/put_object", Body=f)
                times["boto3 put_object"].append(time.perf_counter() - started)
                started = time.perf_counter()
                s3.upload_file(str(path), BUCKET, "direct/upload_file")
                times["boto3 upload_file"].append(time.perf_counter() - started)
        print(f"{SIZE_MB} MiB to moto's S3 server over HTTP, {len(rss)} round(s), median of each:")
        rates = {}
        for name, values in times.items():
            rates[name] = size / 1048576 / statistics.median(values)
            print(f"  {name:20} {statistics.median(values):6.2f} s  {rates[name]:7.1f} MiB/s")
        for baseline in ("boto3 put_object", "boto3 upload_file"):
            print(f"  ratio agent / {baseline}: {rates['agent files upload'] / rates[baseline]:.2f}")
        # The first samples catch the process before its imports: the median is the steady state.
        every = sorted(v for s in rss for v in s)
        print(
            f"  agent RSS: median {statistics.median(every) / 1024:.0f} MiB, peak {every[-1] / 1024:.0f} MiB "
            f"({len(every)} samples; the file is {SIZE_MB} MiB)"
        )
    finally:
        moto.kill()
        moto.wait()


if __name__ == "__main__":
    main()
