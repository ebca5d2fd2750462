"""Issue #20 "never two at once": 50 concurrent runs of one environment (concurrency one) through 2 web
processes, with 4 real agents waiting, a worker and beat, on a PostgreSQL and a Redis of the drill's own.

What must hold, read from the job rows afterwards (and sampled while the drill runs):
- `fifo`: no two of the environment's jobs are ever claimed or running at once (their claimed_at →
  finished_at intervals do not overlap, nor do queued_at → finished_at), and they run in creation order
  (claimed_at order == created_at order);
- `newest`: at most one job waits at any moment, the last one created runs, and every other one either ran
  or ended cancelled "superseded by #<a later job>".
And the same with a web process SIGKILLed, then the worker SIGKILLed, then Redis down for 30 s, one after
the other mid-drill (FAULTS). Every wait is bounded in count and time; the module takes about 3 minutes.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

import psycopg
import pytest
import requests

from tests.agent_program.harness import AgentHome, wait_until
from tests.e2e.stack import _Process
from tests.s3_server import free_port

from .services import SEED, ServerProcess, WorkerProcess, drill_env, manage, run_django

pytestmark = [pytest.mark.drill, pytest.mark.postgres, pytest.mark.redis]

RUNS = 50
AGENTS = 4
REDIS_OUTAGE_SECONDS = 30

# The org (tests/drills/services.py SEED: an owner, trigger `drill` with its token, an agent), then its
# environment, the trigger pointed at it, and the other agents: one process, one Django start-up.
SETUP = SEED.replace(
    "print(json.dumps({",
    """
from triggers.models import Environment, Trigger
environment = Environment.objects.create(org=org, name="production", concurrency="one", queue=sys.argv[2])
Trigger.objects.filter(pk=trigger.pk).update(environment=environment)
agents = [agent] + [AgentFactory(org=org, name=f"drill-agent-{i}") for i in range(1, int(sys.argv[3]))]
print(json.dumps({
    "environment": str(environment.pk), "agents": [[str(a.pk), a.secret] for a in agents],""",
)


class BeatProcess(_Process):
    def __init__(self, *, env, log_path, schedule):
        command = [sys.executable, "-m", "celery", "-A", "deplite", "beat", "--loglevel=INFO", f"--schedule={schedule}"]
        super().__init__(command=command, env=env, log_path=log_path)

    def start(self):
        self._spawn()
        return self


@dataclass
class Row:
    id: str
    short_id: str
    status: str
    error: str
    created_at: datetime
    queued_at: datetime | None
    claimed_at: datetime | None
    finished_at: datetime | None
    agent_name: str


class DrillStack:
    """The production shape, shared by the module's drills: 2 web processes, a worker and beat on the drill's
    own PostgreSQL and Redis. A drill that kills one starts it again; `revive` restarts what a failed one left
    down."""

    def __init__(self, *, pg, redis, tmp):
        self.pg, self.redis = pg, redis
        self.env = drill_env(
            database_url=pg.url,
            redis_url=redis.url,
            DEPLITE_SERVER_PULSE_SECONDS="1",
            # A claim whose answer a killed web process never sent is taken back at the agent's next
            # heartbeat after this grace (the agents here beat every 2 s).
            DEPLITE_CLAIM_CONFIRM_GRACE_SECONDS="3",
            # The worker's unacknowledged task is back in the queue soon after it is killed.
            CELERY_VISIBILITY_TIMEOUT="3",
            DATABASE_POOL_MIN="2",
            DATABASE_POOL_MAX="8",
        )
        manage(self.env, "migrate", "--noinput")
        self.webs = [ServerProcess(port=free_port(), env=self.env, log_path=tmp / f"web-{n}.log") for n in "ab"]
        self.worker = WorkerProcess(env=self.env, log_path=tmp / "worker.log")
        self.beat = BeatProcess(env=self.env, log_path=tmp / "beat.log", schedule=tmp / "celerybeat-schedule")

    def revive(self) -> None:
        if self.redis.proc.poll() is not None:
            self.redis.start()
        if not self.worker.running():
            self.worker.start()
        if not self.beat.running():
            self.beat.start()
        for web in self.webs:
            if not web.running():
                web.start()

    def stop(self) -> None:
        for process in (*self.webs, self.worker, self.beat):
            process.stop()


class EnvironmentDrill:
    """One drill on the stack: a new org, its environment (concurrency one, `queue`), its trigger, and 4 real
    agents (one job each), two on each web process."""

    def __init__(self, *, stack: DrillStack, tmp, queue: str):
        self.stack, self.pg, self.redis = stack, stack.pg, stack.redis
        self.webs, self.worker = stack.webs, stack.worker
        name = f"envdrill-{uuid.uuid4().hex[:8]}"
        self.seed = json.loads(run_django(stack.env, SETUP, name, queue, str(AGENTS)).strip().splitlines()[-1])
        self.environment_id = self.seed["environment"]
        self.agents = []
        self.tmp = tmp
        self.queue = queue
        self.answered = 0
        self._answered_lock = threading.Lock()
        self.max_active = 0
        self.max_waiting = 0
        self._sampling = threading.Event()
        self._sampler: threading.Thread | None = None

    def start(self) -> None:
        for i, (agent_id, secret) in enumerate(self.seed["agents"]):
            web = self.webs[i % len(self.webs)]  # two agents on each web process
            home = AgentHome(self.tmp / f"agent-{i}")  # an agent's directory is its own (it refuses a second)
            home.write_workflow("drill", 'steps:\n  - name: echo\n    run: echo "deploying $DEPLITE_JOB_ID"\n')
            self.agents.append(
                home.start_agent(
                    "--poll-wait", "10", "--heartbeat-interval", "2", url=web.url, agent_id=agent_id, secret=secret
                )
            )
        self._sampling.set()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def stop(self) -> None:
        self._sampling.clear()
        if self._sampler is not None:
            self._sampler.join(10)
        for agent in self.agents:
            agent.__exit__(None, None, None)

    # -- observing ------------------------------------------------------------------------------------
    def _connect(self):
        return psycopg.connect(self.pg.url.replace("postgres://", "postgresql://"), autocommit=True, connect_timeout=5)

    def _sample(self) -> None:
        """Every 20 ms, what the environment's committed state is: jobs claimable or claimed, jobs waiting."""
        deadline = time.monotonic() + 600
        with self._connect() as db:
            while self._sampling.is_set() and time.monotonic() < deadline:
                active, waiting = db.execute(
                    "SELECT count(*) FILTER (WHERE status IN ('queued', 'running')),"
                    " count(*) FILTER (WHERE status = 'waiting') FROM triggers_job WHERE environment_id = %s",
                    (self.environment_id,),
                ).fetchone()
                self.max_active, self.max_waiting = max(self.max_active, active), max(self.max_waiting, waiting)
                time.sleep(0.02)

    def rows(self) -> list[Row]:
        with self._connect() as db:
            found = db.execute(
                "SELECT id::text, short_id, status, error, created_at, queued_at, claimed_at, finished_at, agent_name"
                " FROM triggers_job WHERE environment_id = %s ORDER BY created_at, id",
                (self.environment_id,),
            ).fetchall()
        return [Row(*row) for row in found]

    def ended(self) -> int:
        return sum(1 for r in self.rows() if r.status in ("succeeded", "failed", "cancelled"))

    # -- acting ---------------------------------------------------------------------------------------
    def progress(self) -> int:
        return self.ended() if self.queue == "fifo" else self.answered

    def run(self, n: int) -> int:
        """One run, sent to web process n % 2; a refused connection or a 5xx (a killed web process) is retried
        on the other one with the same Idempotency-Key, so each run makes one job however often it is sent."""
        key = f"drill-{n}-{uuid.uuid4().hex[:8]}"
        deadline = time.monotonic() + 60
        for attempt in range(40):
            web = self.webs[(n + attempt) % len(self.webs)]
            try:
                response = requests.post(
                    f"{web.url}/triggers/{self.seed['trigger']}/run",
                    headers={"Authorization": f"Bearer {self.seed['token']}", "Idempotency-Key": key},
                    data=b'{"ref": "main"}',
                    timeout=20,
                )
                if response.status_code == 202:
                    with self._answered_lock:
                        self.answered += 1
                    return 202
                if response.status_code < 500 and response.status_code != 409:
                    return response.status_code  # a refusal the drill reports
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
        return 0

    def fault(self, kind: str) -> None:
        if kind == "web_killed":
            self.webs[0].kill()  # SIGKILL
            time.sleep(2)
            self.webs[0].start()
        elif kind == "worker_killed":
            self.worker.kill()  # SIGKILL
            time.sleep(2)
            self.worker.start()
        elif kind == "redis_down":
            self.redis.kill()
            time.sleep(REDIS_OUTAGE_SECONDS)
            self.redis.start()

    def drain(self, *, faults: tuple[tuple[int, str], ...], send) -> list[int]:
        """Send the runs (`send`); strike each fault once its threshold of progress is reached (`progress`:
        jobs ended for `fifo`, runs answered for `newest`); then wait for every job of the environment to end."""
        with ThreadPoolExecutor(1) as sender:
            answers = sender.submit(send)
            for threshold, kind in faults:
                wait_until(lambda t=threshold: self.progress() >= t, timeout=90, interval=0.1, message="progress")
                self.fault(kind)
            codes = answers.result(timeout=180)
        wait_until(
            lambda: len(self.rows()) >= RUNS and self.ended() == len(self.rows()),
            timeout=180,
            interval=0.25,
            message="every job of the environment to end",
        )
        return codes

    def concurrent_runs(self) -> list[int]:
        """50 runs at once, half to each web process."""
        barrier = threading.Barrier(RUNS)

        def one(n):
            barrier.wait(30)
            return self.run(n)

        with ThreadPoolExecutor(RUNS) as pool:
            return list(pool.map(one, range(RUNS)))

    def streamed_runs(self) -> list[int]:
        """50 runs from 5 senders, each sending its next run 0.8 s after the last one was answered: new runs
        keep arriving while the environment works (what `newest` is for), for 8 s or more."""

        def sender(s: int) -> list[int]:
            codes = []
            for i in range(RUNS // 5):
                codes.append(self.run(s + 5 * i))
                time.sleep(0.8)
            return codes

        with ThreadPoolExecutor(5) as pool:
            return [code for codes in pool.map(sender, range(5)) for code in codes]

    def logs(self) -> str:
        tails = [f"--- {p.log_path.name} ---\n{p.output()[-2000:]}" for p in (*self.webs, self.worker)]
        return "\n".join(tails + [f"--- agent ---\n{a.output()[-1500:]}" for a in self.agents])


def _no_overlap(intervals: list[tuple[datetime, datetime]]) -> list[tuple]:
    ordered = sorted(intervals)
    return [(a, b) for a, b in zip(ordered, ordered[1:], strict=False) if b[0] < a[1]]


# One after the other, mid-drill: a web process SIGKILLed (back 2 s later), the worker SIGKILLed (back 2 s
# later), Redis down for 30 s. Each once this much progress is made: jobs ended (fifo: all 50 runs are sent
# at once, the queue drains) or runs answered (newest: the runs keep coming, some of them during the outage).
FAULTS = {
    "fifo": ((5, "web_killed"), (15, "worker_killed"), (25, "redis_down")),
    "newest": ((10, "web_killed"), (20, "worker_killed"), (30, "redis_down")),
}
SCENARIOS = ["calm", "faults"]


@pytest.fixture(scope="module")
def drill_stack(own_postgres, own_redis, tmp_path_factory):
    stack = DrillStack(pg=own_postgres, redis=own_redis, tmp=tmp_path_factory.mktemp("envdrill"))
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def drill_world(drill_stack, tmp_path, request):
    drill_stack.revive()  # starts it the first time; after a failed drill, whatever it left down
    world = EnvironmentDrill(stack=drill_stack, tmp=tmp_path, queue=request.param)
    try:
        world.start()
        yield world
    finally:
        world.stop()


@pytest.mark.parametrize("drill_world", ["fifo"], indirect=True)
@pytest.mark.parametrize("fault", SCENARIOS)
def test_fifo_runs_one_at_a_time_in_creation_order(drill_world, fault):
    world = drill_world
    codes = world.drain(faults=FAULTS["fifo"] if fault == "faults" else (), send=world.concurrent_runs)
    rows = world.rows()

    assert codes == [202] * RUNS, codes
    assert len(rows) == RUNS, len(rows)  # one job per run (Idempotency-Key on every retry)
    assert [r.status for r in rows] == ["succeeded"] * RUNS, (
        [(r.short_id, r.status, r.error) for r in rows if r.status != "succeeded"],
        world.logs(),
    )
    assert _no_overlap([(r.claimed_at, r.finished_at) for r in rows]) == []
    assert _no_overlap([(r.queued_at, r.finished_at) for r in rows]) == []
    by_claim = [r.short_id for r in sorted(rows, key=lambda r: r.claimed_at)]
    assert by_claim == [r.short_id for r in rows], "claimed out of creation order"
    assert world.max_active == 1, world.max_active
    assert len({r.agent_name for r in rows}) > 1  # the waiting agents took turns: each job was up for grabs
    print(f"fifo/{fault}: {RUNS} jobs from {rows[0].created_at:%T} to {rows[-1].finished_at:%T}")
    for web in world.webs:
        assert " 500 " not in web.output()


@pytest.mark.parametrize("drill_world", ["newest"], indirect=True)
@pytest.mark.parametrize("fault", SCENARIOS)
def test_newest_keeps_at_most_one_waiting_and_runs_the_last(drill_world, fault):
    world = drill_world
    codes = world.drain(faults=FAULTS["newest"] if fault == "faults" else (), send=world.streamed_runs)
    rows = world.rows()

    assert codes == [202] * RUNS, codes
    assert len(rows) == RUNS, len(rows)
    by_short_id = {r.short_id: r for r in rows}
    ran = [r for r in rows if r.status == "succeeded"]
    superseded = [r for r in rows if r.status != "succeeded"]
    assert rows[-1].status == "succeeded", (rows[-1], world.logs())  # the last one created runs
    waits = []
    for r in superseded:
        match = re.fullmatch(r"superseded by #(\w+)", r.error)
        assert r.status == "cancelled" and match, (r.short_id, r.status, r.error)
        newer = by_short_id[match.group(1)]
        assert newer.created_at > r.created_at
        waits.append((r.created_at, newer.created_at))  # it waited until the newer one came
    for r in ran:
        if r.queued_at > r.created_at:  # it waited for the one before it to end
            waits.append((r.created_at, r.queued_at))
    assert _no_overlap(waits) == [], "two jobs waited at once"
    assert _no_overlap([(r.claimed_at, r.finished_at) for r in ran]) == []
    assert [r.short_id for r in sorted(ran, key=lambda r: r.claimed_at)] == [r.short_id for r in ran]
    assert world.max_waiting <= 1 and world.max_active == 1, (world.max_waiting, world.max_active)
    print(f"newest/{fault}: {len(ran)} of {RUNS} ran, {len(superseded)} superseded")
    for web in world.webs:
        assert " 500 " not in web.output()
