"""The agent's secret stays with the agent: not in a step's environment, not in the job's log on the
server, not in the agent's own logs."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_agent_secret_is_in_no_step_environment_job_log_or_agent_log(e2e):
    e2e.home.write_workflow(
        "dump",
        """
        name: dump
        steps:
          - name: Dump env
            run: |
              env | sort
              env > step-env.txt
        """,
    )
    trigger = e2e.create_trigger("dump")
    secret = e2e.create_agent()["secret"]
    assert len(secret) >= 32
    e2e.start_agent()

    job = e2e.wait_job(e2e.run(trigger, params={"actor": "octocat"})["jobId"])
    assert job["status"] == "succeeded"

    step_env = (e2e.home.root / "step-env.txt").read_text()
    names = {line.split("=", 1)[0] for line in step_env.splitlines() if "=" in line}
    # The dump is real: it holds what the agent sets for a step…
    assert f"DEPLITE_JOB_ID={job['id']}" in step_env.splitlines()
    assert "PARAMS_ACTOR=octocat" in step_env.splitlines()
    assert {"REF", "DEPLITE_AGENT_ID", "DEPLITE_URL"} <= names
    # …and not the secret, under any name.
    assert "DEPLITE_AGENT_SECRET" not in names
    assert secret not in step_env

    log = e2e.log_text(job["id"])
    assert f"DEPLITE_JOB_ID={job['id']}" in log
    assert secret not in log
    assert "***" not in log  # nothing had to be masked: the secret was never there

    local = e2e.home.job_log(job["id"])
    assert f"DEPLITE_JOB_ID={job['id']}" in local
    assert secret not in local
    assert secret not in e2e.agent_output()
    assert secret not in e2e.stack.server.output()
    # Nothing the agent wrote under its directory holds it, except its private credentials file (0600),
    # which is how `deplite-agent files download` signs from inside a step.
    private = e2e.home.root / "logs" / "private"
    holders = [
        p.relative_to(e2e.home.root).as_posix()
        for p in e2e.home.root.rglob("*")
        if p.is_file() and secret.encode() in p.read_bytes()
    ]
    assert holders in ([], ["logs/private/agent-config.yaml"])
    if holders:
        assert (private / "agent-config.yaml").stat().st_mode & 0o077 == 0
