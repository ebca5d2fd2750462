"""The agent's secret stays with the agent: not in a step's environment, not in the job's log on the
server, not in the agent's own logs."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_agent_secret_is_in_no_step_environment_job_log_or_agent_log(e2e, tmp_path):
    needle = tmp_path / "needle"  # outside the agent's directory: the step searches for what it holds
    e2e.home.write_workflow(
        "dump",
        f"""
        name: dump
        steps:
          - name: Dump env
            run: |
              env | sort
              env > step-env.txt
          - name: Hunt for the agent secret
            run: |
              if env | grep -qF -f {needle}; then echo "FOUND in env"; exit 1; fi
              if grep -rlF -f {needle} "$DEPLITE_AGENT_DIR"; then echo "FOUND in dir"; exit 1; fi
              echo "not found"
        """,
    )
    trigger = e2e.create_trigger("dump")
    secret = e2e.create_agent()["secret"]
    assert len(secret) >= 32
    needle.write_text(secret + "\n")
    e2e.start_agent()

    job = e2e.wait_job(e2e.run(trigger, params={"actor": "octocat"})["jobId"])
    assert job["status"] == "succeeded"

    step_env = (e2e.home.root / "step-env.txt").read_text()
    names = {line.split("=", 1)[0] for line in step_env.splitlines() if "=" in line}
    # The dump is real: it holds what the agent sets for a step…
    assert f"DEPLITE_JOB_ID={job['id']}" in step_env.splitlines()
    assert "PARAMS_ACTOR=octocat" in step_env.splitlines()
    assert {"REF", "DEPLITE_AGENT_ID", "DEPLITE_URL", "DEPLITE_JOB_TOKEN"} <= names
    # …and not the secret, under any name, nor the path of a file holding it.
    assert "DEPLITE_AGENT_SECRET" not in names and "DEPLITE_AGENT_CONFIG" not in names
    assert secret not in step_env
    assert "not found" in e2e.log_text(job["id"])

    log = e2e.log_text(job["id"])
    assert f"DEPLITE_JOB_ID={job['id']}" in log
    assert secret not in log
    # Nothing had to be masked but the job's own token: the agent's secret was never there.
    assert log.count("***") == 1 and "DEPLITE_JOB_TOKEN=***" in log

    local = e2e.home.job_log(job["id"])
    assert f"DEPLITE_JOB_ID={job['id']}" in local
    assert secret not in local
    assert secret not in e2e.agent_output()
    assert secret not in e2e.stack.server.output()
    # Nothing the agent wrote under its directory holds it: no credentials file for steps exists any more.
    holders = [
        p.relative_to(e2e.home.root).as_posix()
        for p in e2e.home.root.rglob("*")
        if p.is_file() and secret.encode() in p.read_bytes()
    ]
    assert holders == []
