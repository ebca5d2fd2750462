"""Jobs run by the real agent against the real server: success, failure, continue-on-error."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db(transaction=True)


def _steps(job: dict) -> list[tuple]:
    return [(s["index"], s["name"], s["status"], s["exitCode"]) for s in job["steps"]]


def test_a_workflow_that_passes_ends_succeeded_with_exit_code_0_and_every_step_succeeded(e2e):
    e2e.home.write_workflow(
        "deploy",
        """
        name: deploy
        steps:
          - name: Build
            run: echo "building $REF for $PARAMS_ENV"
          - name: Ship
            run: |
              echo "job $DEPLITE_JOB_SHORT_ID of $DEPLITE_TRIGGER"
              test "$DEPLITE_WORKFLOW" = deploy
        """,
    )
    trigger = e2e.create_trigger("deploy", name="deploy-prod")
    e2e.start_agent()

    queued = e2e.run(trigger, ref="v1.2.3", params={"env": "prod"})
    job = e2e.wait_job(queued["jobId"])

    assert job["status"] == "succeeded", job
    assert job["exitCode"] == 0
    assert job["error"] == ""
    assert _steps(job) == [(0, "Build", "succeeded", 0), (1, "Ship", "succeeded", 0)]
    log = e2e.log_text(job["id"])
    assert "building v1.2.3 for prod\n" in log
    assert f"job {queued['shortId']} of deploy-prod\n" in log


def test_a_failing_step_fails_the_job_with_its_exit_code_and_skips_the_rest(e2e):
    e2e.home.write_workflow(
        "migrate",
        """
        name: migrate
        steps:
          - name: Prepare
            run: echo ready
          - name: Migrate
            run: |
              echo "applying migrations"
              exit 3
              echo "never printed"
          - name: Restart
            run: echo "must not run" > restarted.txt
        """,
    )
    trigger = e2e.create_trigger("migrate")
    e2e.start_agent()

    job = e2e.wait_job(e2e.run(trigger)["jobId"])

    assert job["status"] == "failed"
    assert job["exitCode"] == 3
    assert job["error"] == 'step "Migrate" exited with code 3'
    assert _steps(job) == [
        (0, "Prepare", "succeeded", 0),
        (1, "Migrate", "failed", 3),
        (2, "Restart", "skipped", None),
    ]
    log = e2e.log_text(job["id"])
    assert "applying migrations\n" in log and "never printed" not in log
    assert not (e2e.home.root / "restarted.txt").exists()


def test_a_pipeline_failure_inside_a_step_fails_it_under_pipefail(e2e):
    e2e.home.write_workflow(
        "pipe",
        """
        name: pipe
        steps:
          - name: Pipe
            run: |
              false | cat
              echo "after the pipe"
        """,
    )
    trigger = e2e.create_trigger("pipe")
    e2e.start_agent()

    job = e2e.wait_job(e2e.run(trigger)["jobId"])

    assert (job["status"], job["exitCode"], job["error"]) == ("failed", 1, 'step "Pipe" exited with code 1')
    assert "after the pipe" not in e2e.log_text(job["id"])


def test_a_step_with_continue_on_error_fails_alone_and_the_job_goes_on_to_succeed(e2e):
    e2e.home.write_workflow(
        "notify",
        """
        name: notify
        steps:
          - name: Deploy
            run: echo deployed
          - name: Post to Slack
            continue-on-error: true
            run: |
              echo "webhook down"
              exit 7
          - name: Cleanup
            run: echo cleaned
        """,
    )
    trigger = e2e.create_trigger("notify")
    e2e.start_agent()

    job = e2e.wait_job(e2e.run(trigger)["jobId"])

    assert job["status"] == "succeeded"
    assert job["exitCode"] == 0
    assert job["error"] == ""
    assert _steps(job) == [
        (0, "Deploy", "succeeded", 0),
        (1, "Post to Slack", "failed", 7),
        (2, "Cleanup", "succeeded", 0),
    ]
    assert [s["allowedFailure"] for s in job["steps"]] == [False, True, False]  # "failed (allowed)"
    assert "cleaned\n" in e2e.log_text(job["id"])


def test_the_agent_lists_every_step_first_and_marks_stderr(e2e):
    e2e.home.write_workflow(
        "streams",
        """
        name: streams
        steps:
          - name: Speak
            run: |
              echo "to stdout"
              echo "to stderr" >&2
          - name: Fail
            run: exit 2
          - name: Never
            run: echo never
        """,
    )
    trigger = e2e.create_trigger("streams")
    e2e.start_agent()

    job = e2e.wait_job(e2e.run(trigger)["jobId"])

    assert _steps(job) == [(0, "Speak", "succeeded", 0), (1, "Fail", "failed", 2), (2, "Never", "skipped", None)]
    chunks = e2e.logs(job["id"])
    assert [c["stream"] for c in chunks if "to stderr" in c["data"]] == ["stderr"]
    assert all(c["stream"] == "stdout" for c in chunks if "to stdout" in c["data"])
    from triggers.models import JobStep

    # The first report named all three steps: each row was created by job_started, before any ran.
    first_created = min(JobStep.objects.filter(job_id=job["id"]).values_list("id", flat=True))
    assert list(JobStep.objects.filter(job_id=job["id"]).order_by("index").values_list("id", flat=True)) == [
        first_created,
        first_created + 1,
        first_created + 2,
    ]


def test_a_workflow_the_agent_does_not_have_fails_the_job_with_an_error_naming_it(e2e):
    e2e.home.write_workflow("other", "name: other\nsteps:\n  - name: x\n    run: 'true'\n")
    trigger = e2e.create_trigger("not-on-this-host")
    e2e.start_agent()

    job = e2e.wait_job(e2e.run(trigger)["jobId"])

    assert job["status"] == "failed"
    assert "not-on-this-host" in job["error"]
    assert job["steps"] == []
