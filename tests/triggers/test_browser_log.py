"""The job log in headless Chromium: every step listed once the agent parsed the workflow,
a section per step with its status, duration and exit code, passed steps folded and the
failing one open, time stamps, stderr marked, "failed (allowed)", and the raw log download."""

import uuid

import pytest

from tests.browser import log_in, screenshot, wait_for_js
from triggers import services
from triggers.models import JobStatus

from ..factories import JobFactory

STATUS = "document.querySelector('#step-head-{i} [data-testid=step-status]')?.textContent === '{text}'"


def _claim(org):
    return services.job_claim_next(org_id=org.pk, agent_id=uuid.uuid4(), agent_name="web-1", agent_labels=[])


@pytest.mark.django_db(transaction=True)
def test_the_log_reads_step_by_step_and_opens_at_the_failing_step(browser_page, member, org_a):
    page, base = browser_page
    job = JobFactory(org=org_a)
    claimed = _claim(org_a)
    log_in(page, base, "member@acme.test", then=f"/orgs/acme/jobs/{job.pk}")
    page.wait_for_selector("[data-testid=no-steps]")

    events = [
        {
            "type": "job_started",
            "timeoutMinutes": 5,
            "steps": [{"name": n} for n in ("checkout", "lint", "deploy", "notify")],
        },
        {"type": "step_started", "step": 0, "name": "checkout"},
        {"type": "log", "step": 0, "data": "cloned\n"},
    ]
    services.job_record_events(job=claimed, events=[{"seq": i, **e} for i, e in enumerate(events, start=1)])
    # Every step is listed at once, the ones not started as pending.
    wait_for_js(page, STATUS.format(i=3, text="Pending"))
    assert page.locator("#job-log details.step:not(.setup)").count() == 4
    assert page.locator("#step-0").get_attribute("open") is not None  # the running step is open
    page.wait_for_selector("[data-testid=no-steps]", state="hidden")

    more = [
        {"type": "step_finished", "step": 0, "name": "checkout", "status": "succeeded", "exitCode": 0},
        {"type": "step_started", "step": 1, "name": "lint"},
        {"type": "log", "step": 1, "stream": "stderr", "data": "warning: unused import\n"},
        {"type": "step_finished", "step": 1, "name": "lint", "status": "failed", "exitCode": 3, "allowed": True},
        {"type": "step_started", "step": 2, "name": "deploy"},
        {"type": "log", "step": 2, "data": "uploading\n"},
        {"type": "log", "step": 2, "stream": "stderr", "data": "error: disk full\n"},
        {"type": "step_finished", "step": 2, "name": "deploy", "status": "failed", "exitCode": 7},
        {"type": "step_finished", "step": 3, "name": "notify", "status": "skipped", "exitCode": None},
    ]
    services.job_record_events(job=claimed, events=[{"seq": i, **e} for i, e in enumerate(more, start=4)])
    services.job_finish(job=claimed, status=JobStatus.FAILED, exit_code=7, error='step "deploy" exited with code 7')

    wait_for_js(page, STATUS.format(i=2, text="Failed"))
    wait_for_js(page, STATUS.format(i=1, text="Failed (allowed)"))
    wait_for_js(page, STATUS.format(i=3, text="Skipped"))
    wait_for_js(page, "!document.querySelector('#step-0').open")  # passed: folded
    wait_for_js(page, "!document.querySelector('#step-1').open")  # allowed failure: folded
    wait_for_js(page, "document.querySelector('#step-2').open")  # the failing step: open
    assert "exit code 7" in page.inner_text("#step-head-2")
    assert "exit code 3" in page.inner_text("#step-head-1")
    deploy = page.locator("#step-log-2")
    assert deploy.locator(".ln").count() == 2
    assert deploy.locator(".ln.err").inner_text().strip().endswith("error: disk full")
    assert "stderr" in deploy.locator(".ln.err .stream").inner_text()
    assert deploy.locator(".ln").first.locator("time").inner_text().count(":") == 2  # HH:MM:SS
    screenshot(page, "job-log-failed")

    # The reader may open a folded step, and it stays open.
    page.click("#step-head-0")
    assert page.locator("#step-log-0").inner_text().strip().endswith("cloned")

    raw = page.request.get(base + page.get_attribute("[data-testid=raw-log]", "href"))
    assert raw.status == 200
    assert raw.headers["content-disposition"] == f'attachment; filename="job-{job.short_id}.log"'
    assert raw.text() == "cloned\nwarning: unused import\nuploading\nerror: disk full\n"


@pytest.mark.django_db(transaction=True)
def test_without_a_step_list_steps_appear_as_they_start(browser_page, member, org_a):
    page, base = browser_page
    job = JobFactory(org=org_a)
    claimed = _claim(org_a)
    log_in(page, base, "member@acme.test", then=f"/orgs/acme/jobs/{job.pk}")
    events = [
        {"type": "job_started", "timeoutMinutes": 5},
        {"type": "log", "data": "[deplite-agent] downloading input file\n"},
        {"type": "step_started", "step": 0, "name": "build"},
        {"type": "log", "step": 0, "data": "compiling\n"},
    ]
    services.job_record_events(job=claimed, events=[{"seq": i, **e} for i, e in enumerate(events, start=1)])
    wait_for_js(page, STATUS.format(i=0, text="Running"))
    assert "downloading input file" in page.locator("#step-log-setup").text_content()
    services.job_record_events(
        job=claimed,
        events=[
            {"seq": 5, "type": "step_finished", "step": 0, "name": "build", "status": "succeeded", "exitCode": 0},
            {"seq": 6, "type": "step_started", "step": 1, "name": "push"},
            {"seq": 7, "type": "log", "step": 1, "data": "pushed\n"},
        ],
    )
    wait_for_js(page, STATUS.format(i=1, text="Running"))
    wait_for_js(page, "document.querySelector('#step-log-1').textContent.includes('pushed')")
    wait_for_js(page, "!document.querySelector('#step-0').open")
    assert page.locator("#step-log-0").text_content().count("compiling") == 1
