"""Environment pages (issue #20): the list and its New environment form, an environment's page
(current deployment, queue, lock, history, rollback, rules), Approve / Reject on the job page,
the jobs list's environment filter, the Overview panel and the trigger form's Environment."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from orgs.actors import Actor
from orgs.models import AuditEvent, Role
from triggers import services
from triggers.environments import services as env_services
from triggers.models import Environment, Job, JobSource, JobStatus, Trigger

from ..factories import JobFactory, MembershipFactory, TriggerFactory

SHA = "0123456789abcdef0123456789abcdef01234567"
RULES = {
    "description": "",
    "concurrency": "one",
    "queue": "fifo",
    "required_approvals": "0",
    "approver_role": "admin",
    "prevent_self_approval": "on",
    "approval_timeout_seconds": "86400",
    "allowed_refs": "",
}


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _environment(org, actor_user, **rules) -> Environment:
    return env_services.environment_create(org=org, actor=Actor.for_user(actor_user), **rules)


def _deployed(org, environment, trigger, *, ref: str, minutes_ago: int) -> Job:
    at = timezone.now() - timedelta(minutes=minutes_ago)
    return JobFactory(
        org=org,
        trigger=trigger,
        environment=environment,
        environment_name=environment.name,
        status=JobStatus.SUCCEEDED,
        ref=ref,
        params={"V": ref[:7]},
        created_at=at - timedelta(minutes=1),
        finished_at=at,
    )


@pytest.fixture
def member_b(org_a):
    return MembershipFactory(org=org_a, role=Role.MEMBER, user__email="bea@acme.test").user


# --- the list and New environment ---------------------------------------------------------------------


def test_owner_creates_an_environment_from_the_list_page(owner, org_a):
    client = _client(owner)
    page = client.get("/orgs/acme/environments/")
    assert page.status_code == 200 and b"Create environment" in page.content
    response = client.post(
        "/orgs/acme/environments/",
        {**RULES, "name": "production", "required_approvals": "1", "allowed_refs": "main, release/*"},
    )
    assert response.status_code == 302 and response["Location"] == "/orgs/acme/environments/production/"
    environment = Environment.objects.get(org=org_a, name="production")
    assert (environment.required_approvals, environment.allowed_refs) == (1, ["main", "release/*"])
    assert AuditEvent.objects.filter(org=org_a, action="environment.created").count() == 1
    listing = client.get("/orgs/acme/environments/").content.decode()
    assert 'data-environment="production"' in listing and "nothing deployed yet" in listing


def test_the_new_environment_form_says_what_is_wrong(owner, org_a):
    _environment(org_a, owner, name="production")
    client = _client(owner)
    bad = client.post(
        "/orgs/acme/environments/",
        {**RULES, "name": "Production", "required_approvals": "9", "allowed_refs": "main, -x"},
    )
    assert bad.status_code == 400
    text = bad.content.decode()
    assert 'data-field-error="name"' in text and 'data-field-error="required_approvals"' in text
    assert "An environment&#x27;s name is 1–50 lowercase letters" in text
    assert "no leading &#x27;-&#x27;" in text
    taken = client.post("/orgs/acme/environments/", {**RULES, "name": "production"})
    assert taken.status_code == 400
    assert "An environment named production already exists." in taken.content.decode()
    assert Environment.objects.filter(org=org_a).count() == 1


def test_a_member_sees_environments_but_cannot_create_or_edit_them(owner, member, org_a):
    _environment(org_a, owner, name="staging")
    client = _client(member)
    page = client.get("/orgs/acme/environments/")
    assert page.status_code == 200 and b"staging" in page.content and b"Create environment" not in page.content
    assert client.post("/orgs/acme/environments/", {**RULES, "name": "prod"}).status_code == 403
    detail = client.get("/orgs/acme/environments/staging/")
    assert detail.status_code == 200 and b"Save rules" not in detail.content and b"Lock staging" in detail.content
    assert client.post("/orgs/acme/environments/staging/edit", {**RULES, "required_approvals": "2"}).status_code == 403
    assert not Environment.objects.filter(name="prod").exists()
    assert Environment.objects.get(name="staging").required_approvals == 0


def test_another_orgs_environment_is_a_404(owner, outsider, org_a, org_b):
    _environment(org_a, owner, name="production")
    theirs = _client(outsider)
    assert theirs.get("/orgs/acme/environments/").status_code == 404
    assert theirs.get("/orgs/acme/environments/production/").status_code == 404
    # Through their own org's pages, acme's environment does not exist.
    for path in ("", "lock", "unlock", "rollback", "edit"):
        method = theirs.get if not path else theirs.post
        assert method(f"/orgs/bravo/environments/production/{path}").status_code == 404, path
    assert not Environment.objects.get(org=org_a).is_locked()


def test_the_forms_need_the_csrf_token(owner, org_a):
    _environment(org_a, owner, name="production")
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    assert client.post("/orgs/acme/environments/production/lock", {"reason": "freeze"}).status_code == 403
    assert client.post("/orgs/acme/environments/", {**RULES, "name": "qa"}).status_code == 403
    assert not Environment.objects.get(name="production").is_locked()
    assert not Environment.objects.filter(name="qa").exists()


# --- the environment page -----------------------------------------------------------------------------


def test_the_page_shows_current_deployment_queue_and_history(owner, member, org_a):
    environment = _environment(org_a, owner, name="production")
    trigger = TriggerFactory(
        org=org_a, name="deploy-prod", environment=environment, repository_url="https://x.test/a/web"
    )
    _deployed(org_a, environment, trigger, ref="v1.0.0", minutes_ago=30)
    current = _deployed(org_a, environment, trigger, ref=SHA, minutes_ago=10)
    actor = Actor.for_user(member)
    first = services.trigger_run(trigger=trigger, actor=actor, source=JobSource.UI, ref="main", params={})
    second = services.trigger_run(trigger=trigger, actor=actor, source=JobSource.UI, ref="main", params={})
    assert Job.objects.get(pk=second.job_id).status == JobStatus.WAITING

    text = _client(member).get("/orgs/acme/environments/production/").content.decode()
    assert f'<a href="https://x.test/a/web/commit/{SHA}" rel="noopener"><code title="{SHA}">0123456</code></a>' in text
    assert f"#{current.short_id}" in text
    queue = text.split('data-testid="queue"')[1].split("</table>")[0]
    assert f"#{first.body['shortId']}" in queue and "Queued" in queue
    assert f"behind #{first.body['shortId']} (queued)" in queue
    history = text.split('data-testid="history"')[1].split("</table>")[0]
    assert history.count("data-job=") == 4
    # The list shows the same current ref, one running and one waiting.
    listing = _client(member).get("/orgs/acme/environments/").content.decode()
    row = listing.split('data-environment="production"')[1].split("</tr>")[0]
    assert "0123456" in row and 'data-testid="running">1<' in row and 'data-testid="waiting">1<' in row

    # The page polls its queue: the fragment follows the jobs as they move on.
    assert 'hx-get="/orgs/acme/environments/production/queue"' in text
    services.job_cancel(job=Job.objects.get(pk=first.job_id), actor=actor)
    fragment = _client(member).get("/orgs/acme/environments/production/queue").content.decode()
    assert f"#{first.body['shortId']}" not in fragment and f"#{second.body['shortId']}" in fragment
    assert "Queued" in fragment and 'id="environment-queue"' in fragment


def test_lock_refuses_a_run_from_the_trigger_page_until_unlocked(owner, member, member_b, org_a):
    environment = _environment(org_a, owner, name="production")
    trigger = TriggerFactory(org=org_a, name="deploy-prod", environment=environment)
    holder = _client(member)
    response = holder.post("/orgs/acme/environments/production/lock", {"reason": "release freeze"})
    assert response.status_code == 302
    page = holder.get("/orgs/acme/environments/production/").content.decode()
    assert "release freeze" in page and "member@acme.test" in page and "Unlock production" in page

    other = _client(member_b)
    assert b"Unlock production" not in other.get("/orgs/acme/environments/production/").content
    refused = other.post(f"/orgs/acme/triggers/{trigger.pk}/run", {"ref": "main", "params": ""})
    assert refused.status_code == 400
    assert "The environment production is locked by member@acme.test: &#x27;release freeze&#x27;" in (
        refused.content.decode()
    )
    assert not Job.objects.exists()
    # Someone else than the holder or an owner/admin may not unlock.
    assert other.post("/orgs/acme/environments/production/unlock").status_code == 403
    assert Environment.objects.get(pk=environment.pk).is_locked()
    assert _client(owner).post("/orgs/acme/environments/production/unlock").status_code == 302
    assert not Environment.objects.get(pk=environment.pk).is_locked()
    assert other.post(f"/orgs/acme/triggers/{trigger.pk}/run", {"ref": "main", "params": ""}).status_code == 302


def test_a_lock_expiry_in_the_past_is_a_form_error(member, org_a, owner):
    _environment(org_a, owner, name="production")
    past = (timezone.now() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    response = _client(member).post("/orgs/acme/environments/production/lock", {"reason": "freeze", "expires_at": past})
    assert response.status_code == 400 and "must be in the future" in response.content.decode()
    assert not Environment.objects.get(name="production").is_locked()


def test_a_ref_outside_the_rules_is_a_form_error(owner, member, org_a):
    environment = _environment(org_a, owner, name="production", allowed_refs=["main", "release/*"])
    trigger = TriggerFactory(org=org_a, name="deploy-prod", environment=environment)
    response = _client(member).post(f"/orgs/acme/triggers/{trigger.pk}/run", {"ref": "feature/x", "params": ""})
    assert response.status_code == 400
    assert "only deploys refs matching main, release/*" in response.content.decode()
    assert not Job.objects.exists()


def test_admin_edits_the_rules(admin_user, owner, member, org_a):
    _environment(org_a, owner, name="production")
    response = _client(admin_user).post(
        "/orgs/acme/environments/production/edit",
        {**RULES, "required_approvals": "2", "queue": "newest", "approvers": [str(member.pk)]},
    )
    assert response.status_code == 302
    environment = Environment.objects.get(name="production")
    assert (environment.required_approvals, environment.queue) == (2, "newest")
    assert list(environment.approvers.all()) == [member]
    bad = _client(admin_user).post(
        "/orgs/acme/environments/production/edit", {**RULES, "approval_timeout_seconds": "5"}
    )
    assert bad.status_code == 400 and 'data-field-error="approval_timeout_seconds"' in bad.content.decode()


def test_saving_the_rules_form_unchanged_writes_nothing(admin_user, owner, member, org_a):
    _environment(org_a, owner, name="production", required_approvals=1, approver_ids=[member.pk])
    environment = Environment.objects.get(name="production")
    audited = AuditEvent.objects.count()
    client = _client(admin_user)
    # The form as the page fills it in, sent back untouched.
    page = client.get("/orgs/acme/environments/production/").content.decode()
    assert f'<option value="{member.pk}" selected>' in page
    same = {**RULES, "required_approvals": "1", "approvers": [str(member.pk)]}
    response = client.post("/orgs/acme/environments/production/edit", same, follow=True)
    assert response.redirect_chain == [("/orgs/acme/environments/production/", 302)]
    assert "Rules of production saved." in response.content.decode()
    assert Environment.objects.get(name="production").updated_at == environment.updated_at
    assert AuditEvent.objects.count() == audited
    client.post("/orgs/acme/environments/production/edit", {**same, "queue": "newest", "approvers": []})
    event = AuditEvent.objects.get(action="environment.updated")
    assert event.data["fields"] == ["approvers", "queue"]
    assert event.data["changed"] == {"approvers": [], "queue": "newest"}
    assert not Environment.objects.get(name="production").approvers.exists()


def test_rollback_from_the_page(owner, member, org_a):
    environment = _environment(org_a, owner, name="production")
    trigger = TriggerFactory(org=org_a, name="deploy-prod", environment=environment)
    client = _client(member)
    # Nothing to roll back to: said on the page, no job.
    lonely = client.post("/orgs/acme/environments/production/rollback")
    assert lonely.status_code == 409 and not Job.objects.exists()
    assert "has no earlier successful deployment" in lonely.content.decode()
    previous = _deployed(org_a, environment, trigger, ref="v1.0.0", minutes_ago=30)
    # One deployment only: nothing to go back to, no Roll back offered.
    assert "Yes, roll back" not in client.get("/orgs/acme/environments/production/").content.decode()
    current = _deployed(org_a, environment, trigger, ref="v1.1.0", minutes_ago=10)
    page = client.get("/orgs/acme/environments/production/").content.decode()
    assert "Yes, roll back production" in page
    target = page.split('data-testid="rollback-target">')[1].split("</p>")[0]
    assert '<code title="v1.0.0">v1.0.0</code>' in target and f"#{previous.short_id}" in target
    response = client.post("/orgs/acme/environments/production/rollback")
    assert response.status_code == 302
    job = Job.objects.exclude(pk__in=[previous.pk, current.pk]).get()
    assert (job.ref, job.params, job.rollback_of_id, job.source) == ("v1.0.0", {"V": "v1.0.0"}, current.pk, "ui")
    assert response["Location"] == f"/orgs/acme/jobs/{job.pk}"
    job_page = client.get(response["Location"]).content.decode()
    assert f'data-testid="rollback-of"><a href="/orgs/acme/jobs/{current.pk}"' in job_page
    assert '<a href="/orgs/acme/environments/production/">production</a>' in job_page


# --- approvals on the job page ------------------------------------------------------------------------


def test_approve_on_the_job_page(owner, member, member_b, org_a):
    environment = _environment(org_a, owner, name="production", required_approvals=1, approver_role=Role.MEMBER)
    trigger = TriggerFactory(org=org_a, name="deploy-prod", environment=environment)
    run = services.trigger_run(
        trigger=trigger, actor=Actor.for_user(member), source=JobSource.UI, ref="main", params={}
    )
    job = Job.objects.get(pk=run.job_id)
    assert job.status == JobStatus.PENDING_APPROVAL
    own = _client(member).get(f"/orgs/acme/jobs/{job.pk}").content.decode()
    assert 'data-testid="own-job"' in own and 'data-testid="decide"' not in own
    assert "Pending approval" in own and "0 of 1" in own
    # The requester's own approval is refused, with the reason.
    _client(member).post(f"/orgs/acme/jobs/{job.pk}/approve", {"comment": ""})
    job.refresh_from_db()
    assert job.status == JobStatus.PENDING_APPROVAL

    approver = _client(member_b)
    page = approver.get(f"/orgs/acme/jobs/{job.pk}").content.decode()
    assert 'data-testid="decide"' in page and "Approve" in page and "Reject" in page
    response = approver.post(f"/orgs/acme/jobs/{job.pk}/approve", {"comment": "ship it"}, follow=True)
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED and job.approved_at is not None
    text = response.content.decode()
    assert f"You approved job #{job.short_id}." in text
    assert "by bea@acme.test" in text and "ship it" in text and "1 of 1" in text
    assert 'data-testid="decide"' not in text


def test_reject_with_a_comment_and_a_non_approver_is_told(owner, member, member_b, org_a):
    environment = _environment(org_a, owner, name="production", required_approvals=1)  # approvers: admins
    trigger = TriggerFactory(org=org_a, name="deploy-prod", environment=environment)
    run = services.trigger_run(
        trigger=trigger, actor=Actor.for_user(member), source=JobSource.UI, ref="main", params={}
    )
    job = Job.objects.get(pk=run.job_id)
    page = _client(member_b).get(f"/orgs/acme/jobs/{job.pk}").content.decode()
    assert 'data-testid="decide"' not in page
    refused = _client(member_b).post(f"/orgs/acme/jobs/{job.pk}/approve", {}, follow=True).content.decode()
    assert "Only owners and admins of Acme may approve" in refused
    rejected = _client(owner).post(f"/orgs/acme/jobs/{job.pk}/reject", {"comment": "not today"}, follow=True)
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED and job.error == "rejected by owner@acme.test: not today"
    assert f"You rejected job #{job.short_id}." in rejected.content.decode()


def test_another_orgs_job_cannot_be_approved(owner, outsider, member, org_a):
    environment = _environment(org_a, owner, name="production", required_approvals=1)
    trigger = TriggerFactory(org=org_a, environment=environment)
    run = services.trigger_run(
        trigger=trigger, actor=Actor.for_user(member), source=JobSource.UI, ref="main", params={}
    )
    for path in (f"/orgs/acme/jobs/{run.job_id}/approve", f"/orgs/bravo/jobs/{run.job_id}/approve"):
        assert _client(outsider).post(path).status_code == 404
    assert Job.objects.get(pk=run.job_id).status == JobStatus.PENDING_APPROVAL


def test_a_waiting_job_says_why_on_its_page(owner, member, org_a):
    environment = _environment(org_a, owner, name="production")
    trigger = TriggerFactory(org=org_a, environment=environment)
    actor = Actor.for_user(member)
    first = services.trigger_run(trigger=trigger, actor=actor, source=JobSource.UI, ref="main", params={})
    second = services.trigger_run(trigger=trigger, actor=actor, source=JobSource.UI, ref="main", params={})
    client = _client(member)
    text = client.get(f"/orgs/acme/jobs/{second.job_id}").content.decode()
    assert f'data-testid="waiting-reason">behind #{first.body["shortId"]} (queued)<' in text
    live = client.get(f"/orgs/acme/jobs/{second.job_id}/live?after=0").content.decode()
    assert "waiting-reason" in live and "Waiting" in live


# --- jobs list, Overview, trigger form ----------------------------------------------------------------


def test_jobs_list_filters_by_environment_and_knows_the_new_statuses(owner, member, org_a):
    production = _environment(org_a, owner, name="production", required_approvals=1)
    staging = _environment(org_a, owner, name="staging")
    actor = Actor.for_user(member)
    for environment in (production, staging):
        trigger = TriggerFactory(org=org_a, name=f"deploy-{environment.name}", environment=environment)
        services.trigger_run(trigger=trigger, actor=actor, source=JobSource.UI, ref="main", params={})
    client = _client(member)
    page = client.get("/orgs/acme/jobs/?environment=production").content.decode()
    assert (
        page.count("data-job=") == 1 and "deploy-production" in page and "deploy-staging" not in page.split("<tbody")[1]
    )
    assert '<option value="production" selected>' in page
    assert '<option value="pending_approval">Pending approval</option>' in page
    assert '<option value="waiting">Waiting</option>' in page
    by_status = client.get("/orgs/acme/jobs/?status=pending_approval").content.decode()
    assert by_status.count("data-job=") == 1 and 'class="badge pending_approval"' in by_status
    rows = client.get("/orgs/acme/jobs/rows?environment=staging").content.decode()
    assert rows.count("data-job=") == 1 and "→ staging" in rows


def test_overview_shows_environments(owner, member, org_a):
    page = _client(member).get("/orgs/acme/").content.decode()
    assert 'data-testid="overview-environments"' not in page
    environment = _environment(org_a, owner, name="production")
    env_services.environment_lock(environment=environment, actor=Actor.for_user(owner), reason="freeze")
    page = _client(member).get("/orgs/acme/").content.decode()
    panel = page.split('data-testid="overview-environments"')[1].split("</section>")[0]
    assert "production" in panel and 'data-testid="lock-badge"' in panel and "nothing deployed" in panel
    assert ">Environments</a>" in page  # the nav link


def test_the_trigger_form_picks_an_environment(admin_user, owner, org_a, org_b, outsider):
    _environment(org_a, owner, name="production")
    env_services.environment_create(org=org_b, actor=Actor.for_user(outsider), name="theirs")
    client = _client(admin_user)
    form = client.get("/orgs/acme/triggers/new/").content.decode()
    assert '<option value="production">production</option>' in form and "theirs" not in form
    valid = {"name": "deploy-prod", "type": "webhook", "workflow": "deploy", "notify_on": "always", "enabled": "on"}
    response = client.post("/orgs/acme/triggers/new/", {**valid, "environment": "production"})
    assert response.status_code == 302
    trigger = Trigger.objects.get(name="deploy-prod")
    assert trigger.environment.name == "production"
    listing = client.get("/orgs/acme/triggers/").content.decode()
    assert '<td><a href="/orgs/acme/environments/production/">production</a></td>' in listing
    detail = client.get(f"/orgs/acme/triggers/{trigger.pk}/").content.decode()
    assert 'data-testid="trigger-environment"><a href="/orgs/acme/environments/production/">production</a>' in detail
    edit = client.get(f"/orgs/acme/triggers/{trigger.pk}/edit/").content.decode()
    assert '<option value="production" selected>production</option>' in edit
    assert client.post(f"/orgs/acme/triggers/{trigger.pk}/edit/", {**valid, "environment": "theirs"}).status_code == 400
    assert client.post(f"/orgs/acme/triggers/{trigger.pk}/edit/", {**valid, "environment": ""}).status_code == 302
    trigger.refresh_from_db()
    assert trigger.environment_id is None


def test_admin_deletes_an_environment_no_trigger_deploys_to(admin_user, member, owner, org_a):
    environment = _environment(org_a, owner, name="production")
    trigger = TriggerFactory(org=org_a, name="deploy-prod", environment=environment)
    assert _client(member).post("/orgs/acme/environments/production/delete").status_code == 403
    client = _client(admin_user)
    refused = client.post("/orgs/acme/environments/production/delete", follow=True).content.decode()
    assert "Triggers still deploy to production (deploy-prod)" in refused
    assert Environment.objects.filter(pk=environment.pk).exists()
    services.trigger_update(trigger=trigger, actor=Actor.for_user(admin_user), environment_name=None)
    response = client.post("/orgs/acme/environments/production/delete", follow=True)
    assert "Environment production deleted." in response.content.decode()
    assert not Environment.objects.filter(pk=environment.pk).exists()
    assert AuditEvent.objects.filter(org=org_a, action="environment.deleted").count() == 1


def test_the_list_costs_the_same_queries_for_one_environment_or_many(owner, member, org_a):
    def queries() -> int:
        client = _client(member)
        with CaptureQueriesContext(connection) as ctx:
            assert client.get("/orgs/acme/environments/").status_code == 200
        return len(ctx.captured_queries)

    def add(name: str) -> None:
        environment = _environment(org_a, owner, name=name)
        trigger = TriggerFactory(org=org_a, environment=environment)
        _deployed(org_a, environment, trigger, ref=SHA, minutes_ago=5)
        JobFactory(org=org_a, trigger=trigger, environment=environment, status=JobStatus.WAITING)

    add("production")
    one = queries()
    for name in ("staging", "qa", "preview", "demo"):
        add(name)
    assert queries() == one


def test_the_history_shows_the_newest_twenty_with_older_pages_and_a_poll_for_as_many(owner, member, org_a):
    environment = _environment(org_a, owner, name="production")
    trigger = TriggerFactory(org=org_a, name="deploy-prod", environment=environment)
    jobs = [_deployed(org_a, environment, trigger, ref=f"v{n}", minutes_ago=100 - n) for n in range(25)]
    client = _client(member)
    text = client.get("/orgs/acme/environments/production/").content.decode()
    history = text.split('data-testid="history"')[1].split("</table>")[0]
    assert history.count("data-job=") == 20
    assert f"#{jobs[-1].short_id}" in history and f"#{jobs[4].short_id}" not in history
    poll = history.split('hx-get="')[1].split('"')[0]
    assert "environment=production" in poll and "pageSize=20" in poll
    polled = client.get(poll.replace("&amp;", "&")).content.decode()
    assert polled.count("data-job=") == 20
    older = text.split('data-testid="history"')[1].split("</table>")[1].split("Older")[0].rsplit('href="', 1)[1]
    older_page = client.get(older.split('"')[0].replace("&amp;", "&")).content.decode()
    rest = older_page.split('data-testid="history"')[1].split("</table>")[0]
    assert rest.count("data-job=") == 5 and f"#{jobs[0].short_id}" in rest
