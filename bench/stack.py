"""What every benchmark shares: the production environment, the web server as the Procfile
runs it, a Celery worker, seeding through `manage.py shell`, and measuring RSS.

The web server is started from the Procfile's own `web:` line (bound to loopback), so the
benchmarks always measure the one way the README tells people to run Deplite. It runs
with `bench.settings`: the product's settings and URLs plus the ceiling view, which the
product's own URLconf never imports.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
DB = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/deplite_bench")
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
# A 20 MB step is the log-ingest benchmark's subject: the cap must not cut it.
LOG_MAX_BYTES = 32 * 1024 * 1024
METRICS_TOKEN = "bench-metrics"  # noqa: S105 (a benchmark's own server, on loopback)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def production_env(**overrides: str) -> dict[str, str]:
    """Production settings (DEBUG off, fresh keys) on plain HTTP over loopback, bench database and Redis DB."""
    from cryptography.fernet import Fernet

    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL", "CI")}
    env.update(
        DJANGO_SETTINGS_MODULE="bench.settings",
        DATABASE_URL=DB,
        REDIS_URL=REDIS,
        DEBUG="0",
        SECRET_KEY="bench-" + Fernet.generate_key().decode(),
        DEPLITE_ENCRYPTION_KEYS=_bench_key(),
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="0",
        LOG_LEVEL="WARNING",
        DEPLITE_TOKEN_FAILURE_RATE="100000",
        DEPLITE_ALLOW_PRIVATE_STORAGE_ENDPOINTS="1",
        DEPLITE_JOB_LOG_MAX_BYTES=str(LOG_MAX_BYTES),
        DEPLITE_VAR_DIR=str(ROOT / "var" / "bench"),
        DEPLITE_METRICS_TOKEN=METRICS_TOKEN,
    )
    env.update(overrides)
    return env


def _bench_key() -> str:
    """One Fernet key kept for the bench database, so rows encrypted by an earlier run stay readable."""
    from cryptography.fernet import Fernet

    path = ROOT / "var" / "bench" / "fernet.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(Fernet.generate_key().decode())
        path.chmod(0o600)
    return path.read_text().strip()


def prepare_database(env) -> None:
    name = DB.rsplit("/", 1)[1]
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", name], capture_output=True, timeout=60)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True, timeout=300)


def shell(env, script: str, timeout: float = 600) -> dict:
    """Run Python in `manage.py shell`; the script prints one JSON line last."""
    out = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def procfile_command(name: str, port: int, workers: int) -> list[str]:
    """The Procfile's `<name>:` line with its ${VAR:-default}s filled in, bound to loopback."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith(f"{name}:"):
            command = line.split(":", 1)[1].strip()
            break
    else:
        raise SystemExit(f"Procfile has no {name}: line")
    values = {"PORT": str(port), "WEB_CONCURRENCY": str(workers)}
    command = re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: values.get(m.group(1), m.group(2)), command)
    command = command.replace("0.0.0.0:", "127.0.0.1:")
    args = shlex.split(command)
    if args[0] in ("gunicorn", "celery", "uvicorn"):
        args = [sys.executable, "-m", *args]
    return args


class Process:
    def __init__(self, args: list[str], env: dict, quiet: bool = True):
        self.args = args
        self.proc = subprocess.Popen(
            args,
            cwd=ROOT,
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL if quiet else None,
            stderr=subprocess.DEVNULL if quiet else None,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


def start_web(env: dict, *, workers: int = 2, extra: tuple[str, ...] = ()) -> tuple[Process, str]:
    port = free_port()
    web = Process([*procfile_command("web", port, workers), "--log-level", "warning", *extra], env, quiet=False)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(base + "/api/orgs", timeout=2).status_code < 500:
                return web, base
        except requests.RequestException:
            time.sleep(0.2)
    web.stop()
    raise SystemExit("the web server did not start")


def start_worker(env: dict) -> Process:
    worker = Process([*procfile_command("worker", 0, 1), "-c", "1", "--loglevel", "WARNING"], env)
    time.sleep(3)  # connected to the broker
    return worker


def agent_home(prefix: str, workflows: dict[str, str]) -> Path:
    """A temporary agent directory holding `workflows` (name → YAML); the caller removes it."""
    home = Path(tempfile.mkdtemp(prefix=prefix))
    (home / "workflows").mkdir()
    for name, text in workflows.items():
        (home / "workflows" / f"{name}.yaml").write_text(text)
    return home


def start_agent(base: str, agent_id: str, secret: str, home: Path) -> Process:
    """`deplite-agent run` (its default long poll) against `base` as agent `agent_id`, in `home`. The bench's
    own DEPLITE_* settings are not passed on: the agent reads only the ones given here."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DEPLITE_")},
        "DEPLITE_URL": base,
        "DEPLITE_AGENT_ID": agent_id,
        "DEPLITE_AGENT_SECRET": secret,
        "DEPLITE_AGENT_DIR": str(home),
    }
    return Process([str(Path(sys.executable).parent / "deplite-agent"), "run"], env)


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def web_rss(web: Process) -> dict:
    """RSS of the gunicorn master and each worker process, in MB."""
    return {"master": rss_mb(web.pid), "workers": [rss_mb(c) for c in children(web.pid)]}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def metric_total(base: str, name: str, **labels: str) -> float:
    """A counter's (or histogram's `_count`) total over every web worker, from `GET /metrics`."""
    from prometheus_client.parser import text_string_to_metric_families

    text = requests.get(f"{base}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def flush_redis() -> None:
    import redis

    redis.Redis.from_url(REDIS).flushdb()
