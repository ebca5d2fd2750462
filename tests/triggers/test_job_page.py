"""The job page the run endpoint's `url` points to."""

from __future__ import annotations

from django.test import Client

from triggers.models import JobLogChunk, JobStatus

from ..factories import JobFactory


def test_member_sees_the_job_page_at_the_run_url(member, org_a):
    job = JobFactory(org=org_a, trigger__name="deploy-prod", status=JobStatus.FAILED, error="agent lost")
    JobLogChunk.objects.create(org=org_a, job=job, seq=1, data="<script>alert(1)</script>")
    client = Client()
    client.force_login(member)
    path = job.url.removeprefix("http://127.0.0.1:8000")
    response = client.get(path)
    assert response.status_code == 200
    html = response.content.decode()
    assert f"Job #{job.short_id}" in html and "deploy-prod" in html and "agent lost" in html
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html


def test_outsider_gets_404_and_anonymous_is_sent_to_login(outsider, org_a):
    job = JobFactory(org=org_a)
    client = Client()
    assert client.get(f"/orgs/acme/jobs/{job.pk}").status_code == 302
    client.force_login(outsider)
    assert client.get(f"/orgs/acme/jobs/{job.pk}").status_code == 404
    assert client.get(f"/orgs/bravo/jobs/{job.pk}").status_code == 404
