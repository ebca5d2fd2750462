"""Fault drill: the web tier is stopped for longer than DEPLITE_AGENT_LOST_AFTER_SECONDS while the agent runs
a job to success. The reaper must not fail the job for a silence the server caused, and once the web tier is
back the agent delivers everything it buffered: the job ends succeeded with its full log."""

from __future__ import annotations

import time

import pytest

from agents.tasks import agents_reap_lost
from tests.agent_program.harness import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.drill]

LINES = 100
# Above the 10 s at which the server refreshes an agent's last-seen time from its reports (agents.signing),
# so an agent that talks is never found silent; the outage below lasts longer than this.
LOST_AFTER = 15


def test_a_web_outage_longer_than_the_lost_timeout_fails_no_job_and_loses_no_log(e2e, settings):
    settings.DEPLITE_AGENT_LOST_AFTER_SECONDS = LOST_AFTER
    settings.DEPLITE_SERVER_PULSE_SECONDS = 1  # as the stack's server pulses (tests/e2e/stack.py)
    e2e.home.write_workflow(
        "steady",
        f"""
        name: steady
        steps:
          - name: Count
            run: for i in $(seq 1 {LINES}); do echo "line $i"; sleep 0.3; done
          - name: Done
            run: echo done
        """,
    )
    trigger = e2e.create_trigger("steady")
    e2e.start_agent()
    job_id = e2e.run(trigger)["jobId"]
    wait_until(lambda: "line 2\n" in e2e.log_text(job_id), message="the step's output on the server")

    server = e2e.stack.server
    server.stop()  # the web tier is down: the agent runs on and buffers its events
    try:
        outage_started = time.monotonic()
        reaped = []
        while time.monotonic() - outage_started < LOST_AFTER + 3:  # longer than the lost timeout
            time.sleep(1.5)
            reaped.append(agents_reap_lost())  # the beat, run here on the same database
        assert reaped == [0] * len(reaped)  # nobody is judged while the server itself is down
    finally:
        server.start()
    assert agents_reap_lost() == 0  # just back: the agent's silence has only begun to count

    job = e2e.wait_job(job_id, timeout=45)
    assert (job["status"], job["error"]) == ("succeeded", ""), job
    text = e2e.log_text(job_id)
    assert text == "".join(f"line {i}\n" for i in range(1, LINES + 1)) + "done\n"
    assert agents_reap_lost() == 0
