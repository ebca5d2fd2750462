"""`/agent/…`: the agent a customer installs, served to anyone (no secret in any of it).

    /agent/install.sh                              the installer, with this server's URL, version and sha256
    /agent/version                                 JSON: version, wheel, sha256, URLs, the oldest version accepted
    /agent/deplite_agent-<version>-py3-none-any.whl  the wheel (immutable: cached for a year)
    /agent/deplite_agent-<version>-py3-none-any.whl.sha256
    /agent/deplite_agent-latest-py3-none-any.whl[.sha256]  redirects to the current version

Everything comes from what `manage.py build_agent` wrote (agents.distribution); nothing is built here.
"""

from __future__ import annotations

from django.conf import settings
from django.http import FileResponse, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.cache import patch_cache_control
from django.views.decorators.http import condition, require_safe

from deplite.api.errors import error_response
from deplite.links import public_base_url

from .distribution import LATEST_WHEEL, AgentRelease, install_script, served_release

# install.sh, version and the latest alias change with each release: short enough that a new release
# reaches hosts within minutes, long enough for a CDN to absorb a fleet installing at once.
SHORT_CACHE_SECONDS = 300
IMMUTABLE_CACHE_SECONDS = 365 * 24 * 3600


def _not_built():
    return error_response(
        503,
        "agent_not_built",
        "This server has no agent package to hand out; its operator runs `python manage.py build_agent`.",
    )


def _cached(response: HttpResponse, seconds: int, *, immutable: bool = False) -> HttpResponse:
    patch_cache_control(response, public=True, max_age=seconds, **({"immutable": True} if immutable else {}))
    return response


def _release_etag(request, filename: str | None = None) -> str | None:
    """The release's sha256: what install.sh, the wheel and its .sha256 are made from (not the aliases)."""
    release = served_release()
    if release is None or filename not in (None, release.wheel, release.sha256_file):
        return None
    return release.sha256


@require_safe
@condition(etag_func=_release_etag)
def install_script_view(request):
    release = served_release()
    if release is None:
        return _not_built()
    response = HttpResponse(install_script(release), content_type="text/x-shellscript; charset=utf-8")
    return _cached(response, SHORT_CACHE_SECONDS)


def _file_url(release: AgentRelease, name: str) -> str:
    return public_base_url() + reverse("agent-download", kwargs={"filename": name})


@require_safe
def version_view(request):
    release = served_release()
    if release is None:
        return _not_built()
    body = {
        "version": release.version,
        "wheel": release.wheel,
        "sha256": release.sha256,
        "size": release.size,
        "wheelUrl": _file_url(release, release.wheel),
        "sha256Url": _file_url(release, release.sha256_file),
        "installScriptUrl": public_base_url() + reverse("agent-install-script"),
        "minimumVersion": settings.DEPLITE_AGENT_MIN_VERSION,
    }
    return _cached(JsonResponse(body), SHORT_CACHE_SECONDS)


@require_safe
@condition(etag_func=_release_etag)
def download_view(request, filename: str):
    release = served_release()
    if release is None:
        return _not_built()
    if filename in (LATEST_WHEEL, f"{LATEST_WHEEL}.sha256"):
        current = release.wheel + filename[len(LATEST_WHEEL) :]
        return _cached(redirect("agent-download", filename=current), SHORT_CACHE_SECONDS)
    if filename == release.wheel:
        response = FileResponse(open(release.wheel_path, "rb"), content_type="application/octet-stream")
        return _cached(response, IMMUTABLE_CACHE_SECONDS, immutable=True)
    if filename == release.sha256_file:
        response = HttpResponse(f"{release.sha256}  {release.wheel}\n", content_type="text/plain; charset=utf-8")
        return _cached(response, IMMUTABLE_CACHE_SECONDS, immutable=True)
    return error_response(
        404, "not_found", f"This server serves deplite-agent {release.version} only: {release.wheel}."
    )
