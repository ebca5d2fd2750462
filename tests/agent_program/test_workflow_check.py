"""Workflow validation and `deplite-agent check`."""

from pathlib import Path

import pytest
from deplite_agent.workflow import WorkflowError, find_workflow, parse_workflow_text


def test_check_reports_each_broken_file_with_its_line(home):
    home.write_workflow("good", "steps:\n  - name: a\n    run: echo a\n")
    home.write_workflow("typo", "name: typo\nsteps:\n  - name: a\n    runs: echo a\n")
    home.write_workflow("badyaml", "name: x\nsteps:\n  - name: a\n    run: [unclosed\n")
    home.write_workflow("badtimeout", "steps:\n  - name: a\n    run: echo\n    timeout-minutes: soon\n", suffix=".yml")
    result = home.run_cli("check", "--offline")
    assert result.returncode == 1
    assert "ok: workflows/good.yaml: 1 step(s)" in result.stdout
    assert "error: workflows/typo.yaml:4: step 1 has unknown key 'runs'" in result.stdout
    assert "error: workflows/badyaml.yaml:5: invalid YAML" in result.stdout
    assert 'error: workflows/badtimeout.yml:4: step "a" `timeout-minutes` must be a positive number' in result.stdout
    assert "3 problem(s)" in result.stdout


def test_check_passes_valid_workflows_offline(home):
    home.write_workflow("deploy", "name: deploy\ntimeout-minutes: 20\nsteps:\n  - name: a\n    run: echo a\n")
    result = home.run_cli("check", "--offline")
    assert result.returncode == 0, result.stdout
    assert "all good" in result.stdout


def test_check_verifies_connection_and_secret(home, fake_server, agent_credentials):
    home.write_workflow("deploy", "steps:\n  - name: a\n    run: echo a\n")
    ok = home.run_cli("check", **agent_credentials)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert f"ok: connected to {fake_server.url} as test-agent" in ok.stdout
    # A check beside a running agent reports this directory's workflows and claims to hold no job.
    assert fake_server.heartbeats[-1]["workflows"] == ["deploy"]
    assert "runningJobs" not in fake_server.heartbeats[-1]

    wrong = home.run_cli("check", **{**agent_credentials, "secret": "not-the-secret"})
    assert wrong.returncode == 1
    assert "rejected this agent's signature" in wrong.stdout
    assert "not-the-secret" not in wrong.stdout + wrong.stderr


def test_check_without_configuration_says_what_to_set(home):
    home.write_workflow("deploy", "steps:\n  - name: a\n    run: echo a\n")
    result = home.run_cli("check")
    assert result.returncode == 1
    assert "DEPLITE_URL" in result.stdout


@pytest.mark.parametrize("name", ["../etc/passwd", "a/b", "", ".hidden", "x y"])
def test_workflow_names_from_the_server_cannot_leave_the_workflows_dir(tmp_path, name):
    with pytest.raises(WorkflowError, match="invalid workflow name"):
        find_workflow(tmp_path, name)


def test_defaults_and_env_values_become_strings():
    wf = parse_workflow_text(
        "env:\n  N: 3\n  B: true\nsteps:\n  - name: s\n    run: echo\n    continue-on-error: true\n    env: {X: ''}\n",
        path=Path("w.yaml"),
    )
    assert wf.timeout_minutes == 60
    assert wf.env == {"N": "3", "B": "true"}
    assert wf.steps[0].continue_on_error is True
    assert wf.steps[0].env == {"X": ""}
