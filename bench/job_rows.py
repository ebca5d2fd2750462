"""The jobs list's rows: the row template against the f-string rows it replaced, in one run.

In-process (Django's test client, no web server), production settings (DEBUG off, the cached
template loader), on BENCH_DATABASE_URL. Seeds BENCH_ROWS_JOBS (150) jobs of every kind a row
shows (a SHA linked to its repository, a long ref, an error, a running job's duration, a GitHub
actor) in the org `bench-job-rows`, then asks for the jobs page and its htmx rows poll at 50 and
100 rows a page, in blocks alternating the two renderings (so both see the same machine load),
BENCH_ROWS_ROUNDS (8) blocks of BENCH_ROWS_REQUESTS (10) requests each, at most
BENCH_ROWS_SECONDS (240) in all. Prints the median ms per answer of each, wall clock and this
process's CPU time, and first checks that both renderings give the same HTML (whitespace between
tags aside).

The f-string rows live here only, as the reference (the product's until issue 19); they are loaded
through a template that overrides `triggers/_jobs_rows.html`.

    .venv/bin/python bench/job_rows.py
"""

from __future__ import annotations

import os
import re
import statistics
import sys
import time
import warnings
from datetime import UTC, timedelta
from html import escape as _esc
from pathlib import Path
from unittest import mock

from django import template

register = template.Library()

_ANY_ID = "00000000-0000-0000-0000-000000000000"
_SHA_RE = re.compile(r"^[0-9a-f]{40}$")


@register.simple_tag
def fstring_job_rows(page, org) -> str:
    """The rows as the product built them before: one f-string per row, every value escaped by hand."""
    from django.urls import reverse
    from django.utils import timezone
    from django.utils.safestring import mark_safe

    detail = reverse("job-detail", args=[org.slug, _ANY_ID])
    now = timezone.now()
    return mark_safe("\n".join(_fstring_row(job, detail, now) for job in page))  # noqa: S308  # nosec B308 B703


def _fstring_ref(job) -> str:
    from django.utils.text import Truncator

    ref = job.ref
    if not _SHA_RE.match(ref or ""):
        shown = ref if len(ref) <= 40 else Truncator(ref).chars(40)
        return f'<code title="{_esc(ref)}">{_esc(shown)}</code>'
    repository = job.trigger.repository_url.rstrip("/") if job.trigger_id and job.trigger else ""
    short = f'<code title="{ref}">{ref[:7]}</code>'
    if repository.startswith(("https://", "http://")):
        short = f'<a href="{_esc(repository)}/commit/{ref}" rel="noopener">{short}</a>'
    return short


def _fstring_row(job, detail_url: str, now) -> str:
    from django.utils import timezone
    from django.utils.text import Truncator
    from django.utils.timesince import timesince

    from triggers.templatetags.jobs import job_duration, job_who

    error = (
        f'<div class="row-error" data-testid="row-error" title="{_esc(job.error)}">'
        f"{_esc(Truncator(job.error).chars(120))}</div>"
        if job.error
        else ""
    )
    created = timezone.localtime(job.created_at, UTC)
    short = _esc(job.short_id)
    status = _esc(job.status)
    return (
        f'<tr data-job="{short}">'
        f'<td><span class="badge {status}" data-testid="row-status">{_esc(job.get_status_display())}</span>{error}</td>'
        f'<td><a href="{_esc(detail_url.replace(_ANY_ID, str(job.id)))}" class="mono">#{short}</a></td>'
        f"<td>{_esc(job.trigger_name)}</td><td>{_fstring_ref(job)}</td>"
        f'<td data-testid="row-who">{_esc(job_who(job))}</td>'
        f'<td class="nowrap" title="{created.strftime("%Y-%m-%d %H:%M:%S")} UTC">{_esc(timesince(job.created_at, now))} ago</td>'
        f'<td class="nowrap">{_esc(job_duration(job) or "—")}</td></tr>'
    )


FSTRING_ROWS_TEMPLATE = """{% load bench_job_rows %}<tbody id="job-rows"{% if polling %} hx-get="{% url 'job-rows' org.slug %}{% if rows_query %}?{{ rows_query }}{% endif %}" hx-trigger="every {{ poll_every }}" hx-swap="outerHTML"{% endif %}>
  {% fstring_job_rows page org %}
  {% if not page %}<tr><td colspan="7" class="muted">No jobs{% if selected_trigger or selected_status or search %} match these filters{% else %} yet. Run a trigger to start one{% endif %}.</td></tr>{% endif %}
</tbody>
"""

SLUG = "bench-job-rows"
SHA = "3f2c1a9b8e7d6c5b4a3928170f6e5d4c3b2a1908"
JOBS = int(os.environ.get("BENCH_ROWS_JOBS", "150"))
ROUNDS = int(os.environ.get("BENCH_ROWS_ROUNDS", "8"))
REQUESTS = int(os.environ.get("BENCH_ROWS_REQUESTS", "10"))
SECONDS = float(os.environ.get("BENCH_ROWS_SECONDS", "240"))
PAGE_SIZES = (50, 100)
RENDERINGS = ("f-strings (before)", "template")


def seed():
    """The org, its owner and JOBS jobs (kept between runs), every kind of cell a row shows."""
    from django.utils import timezone

    from orgs.models import Membership, Organization, User
    from triggers.models import Job, Trigger

    org, _ = Organization.objects.get_or_create(slug=SLUG, defaults={"name": SLUG})
    user, _ = User.objects.get_or_create(email=f"{SLUG}@example.com")
    Membership.objects.get_or_create(org=org, user=user, defaults={"role": "owner"})
    trigger, _ = Trigger.objects.get_or_create(
        org=org, name="web", defaults={"workflow": "deploy", "repository_url": "https://github.com/acme/web"}
    )
    have = Job.objects.filter(org=org).count()
    start = timezone.now() - timedelta(days=3)
    kinds = [
        {"status": "succeeded", "ref": "main", "source": "ui", "actor_label": "dev@example.com"},
        {
            "status": "succeeded",
            "ref": SHA,
            "source": "webhook",
            "actor_label": "github-ci",
            "params": {"actor": "octocat"},
        },
        {
            "status": "failed",
            "ref": "v1.2.3",
            "source": "api",
            "actor_label": "ci",
            "error": 'step "migrate" exited with code 2 ' * 8,
        },
        {"status": "running", "ref": "release/" + "x" * 60, "source": "slack", "actor_label": "U123 (ann)"},
        {"status": "queued", "ref": "main", "source": "discord", "actor_label": "ann#0001"},
        {"status": "cancelled", "ref": SHA, "source": "api", "actor_label": "token deploy"},
    ]
    batch = []
    for n in range(have, JOBS):
        kind = kinds[n % len(kinds)]
        created = start + timedelta(minutes=n * 7)
        final = kind["status"] in ("succeeded", "failed", "cancelled")
        job = Job(
            org=org,
            trigger=trigger,
            trigger_name=trigger.name,
            workflow="deploy",
            created_at=created,
            claimed_at=created + timedelta(seconds=2) if kind["status"] != "queued" else None,
            started_at=created + timedelta(seconds=3) if kind["status"] != "queued" else None,
            finished_at=created + timedelta(seconds=157) if final else None,
            **kind,
        )
        job.fill_short_id()
        batch.append(job)
    Job.objects.bulk_create(batch)
    return org, user


def fstring_templates(settings) -> list[dict]:
    """The product's template settings, with `triggers/_jobs_rows.html` the f-string rows (cached loader too)."""
    django_engines = [t for t in settings.TEMPLATES if t["BACKEND"].endswith(".DjangoTemplates")]
    others = [t for t in settings.TEMPLATES if not t["BACKEND"].endswith(".DjangoTemplates")]
    base = django_engines[0]
    options = {
        **base["OPTIONS"],
        "libraries": {"bench_job_rows": "bench.job_rows"},
        "loaders": [
            (
                "django.template.loaders.cached.Loader",
                [
                    ("django.template.loaders.locmem.Loader", {"triggers/_jobs_rows.html": FSTRING_ROWS_TEMPLATE}),
                    "django.template.loaders.filesystem.Loader",
                    "django.template.loaders.app_directories.Loader",
                ],
            )
        ],
    }
    return [*others, {**base, "APP_DIRS": False, "OPTIONS": options}]


def _between_tags(html: str) -> str:
    return re.sub(r">\s+<", "><", html).strip()


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from stack import ROOT, production_env

    sys.path.insert(0, str(ROOT))
    os.environ.update(production_env())
    # WhiteNoise's warning that collectstatic never ran: no static file is asked for here.
    warnings.filterwarnings("ignore", message="No directory at", module="django.core.handlers.base")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client
    from django.test.utils import override_settings
    from django.utils import timezone

    from triggers import views

    # The module that holds the jobs list view holds its page size.
    jobs_view = sys.modules[views.jobs_list.__module__]
    call_command("migrate", verbosity=0)
    org, user = seed()
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    urls = {"page": f"/orgs/{org.slug}/jobs/", "poll": f"/orgs/{org.slug}/jobs/rows"}
    variants = {
        "f-strings (before)": override_settings(TEMPLATES=fstring_templates(settings)),
        "template": override_settings(),
    }

    def get(url: str) -> str:
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        return response.content.decode()

    # Same HTML from both, at one frozen moment (a running job's duration counts the seconds).
    frozen = timezone.now()
    for size in PAGE_SIZES:
        jobs_view.JOBS_PER_PAGE = size
        seen = {}
        for name, variant in variants.items():
            with variant, mock.patch("django.utils.timezone.now", return_value=frozen):
                seen[name] = _between_tags(get(urls["poll"]))
        assert seen["f-strings (before)"] == seen["template"], "the two renderings differ"
        assert seen["template"].count('<tr data-job="') == size, "a page short of rows"

    wall: dict[tuple[str, int, str], list[float]] = {}
    cpu: dict[tuple[str, int, str], list[float]] = {}
    deadline = time.monotonic() + SECONDS
    rounds = 0
    while rounds < ROUNDS and time.monotonic() < deadline:
        rounds += 1
        for size in PAGE_SIZES:
            jobs_view.JOBS_PER_PAGE = size
            for name in RENDERINGS if rounds % 2 else reversed(RENDERINGS):
                with variants[name]:
                    for what, url in urls.items():
                        get(url)  # the new engine compiles its templates once
                        for _ in range(REQUESTS):
                            started, started_cpu = time.perf_counter(), time.thread_time()
                            get(url)
                            cpu.setdefault((what, size, name), []).append((time.thread_time() - started_cpu) * 1000)
                            wall.setdefault((what, size, name), []).append((time.perf_counter() - started) * 1000)
    print(f"jobs list rows, in-process, ms per answer, median of {rounds}×{REQUESTS} (the same HTML from both):")
    print(
        "| answer | rows | f-strings (before) | template | template ÷ f-strings | CPU ms, f-strings | CPU ms, template | CPU ÷ |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for what in urls:
        for size in PAGE_SIZES:
            before, after = (statistics.median(wall[(what, size, name)]) for name in RENDERINGS)
            cpu_before, cpu_after = (statistics.median(cpu[(what, size, name)]) for name in RENDERINGS)
            print(
                f"| {what} | {size} | {before:.1f} | {after:.1f} | {after / before:.2f} "
                f"| {cpu_before:.1f} | {cpu_after:.1f} | {cpu_after / cpu_before:.2f} |"
            )
    print("CPU ms: this process's own CPU time for the answer (PostgreSQL's share not counted), steadier than")
    print("the wall clock when other processes share the cores.")


if __name__ == "__main__":
    main()
