"""The agent this server hands out: a wheel built from `deplite_agent/`, its sha256, and the install script.

`build_agent_release()` runs at set-up only (`manage.py build_agent`: `make install`, the Procfile's
release line) and writes everything into DEPLITE_AGENT_DIST_DIR, the manifest (`version.json`) last.
Requests only read what it wrote (`served_release()`); nothing is ever built while serving.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import subprocess  # (pip builds the wheel at set-up, never while serving)  # nosec B404
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.urls import reverse

from deplite.links import public_base_url

AGENT_SOURCE = Path(settings.BASE_DIR) / "deplite_agent"
INSTALL_SCRIPT = "install.sh"
MANIFEST = "version.json"
WHEEL_PREFIX, WHEEL_SUFFIX = "deplite_agent-", "-py3-none-any.whl"
LATEST_WHEEL = f"{WHEEL_PREFIX}latest{WHEEL_SUFFIX}"
# Zip entries dated 1980-01-01 (the earliest a zip can hold): the same source and setuptools build the
# same bytes, so hosts that each build at release publish the same sha256.
REPRODUCIBLE_EPOCH = "315532800"
# What the server fills into install.sh: each `'@NAME@'` becomes a shell-quoted value.
_SCRIPT_VALUES = ("DEPLITE_SERVER", "AGENT_VERSION", "AGENT_WHEEL", "AGENT_SHA256")


class AgentBuildError(Exception):
    pass


@dataclass(frozen=True)
class AgentRelease:
    version: str
    wheel: str
    sha256: str
    size: int
    directory: Path

    @property
    def wheel_path(self) -> Path:
        return self.directory / self.wheel

    @property
    def sha256_file(self) -> str:
        return f"{self.wheel}.sha256"


def build_agent_release(*, source: Path = AGENT_SOURCE, dest: Path | None = None) -> AgentRelease:
    """Build the agent's wheel from `source` and publish it with its sha256 and install.sh into `dest`
    (default DEPLITE_AGENT_DIST_DIR). Wheels of other versions there are removed: only one is served."""
    dest = Path(dest or settings.DEPLITE_AGENT_DIST_DIR)
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="deplite-agent-build-") as tmp:
        # Built from a copy: setuptools writes build/ and *.egg-info beside the sources, which two builds
        # at once (make install beside a test) must not share, and which must not end up in the checkout.
        tree = Path(tmp) / "source"
        shutil.copytree(
            source, tree, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "build", "dist", "*.egg-info")
        )
        out = Path(tmp) / "wheel"
        # --no-build-isolation: the pinned setuptools of requirements.txt, no index needed at release time.
        command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet"]
        command += ["--wheel-dir", str(out), str(tree)]
        done = subprocess.run(  # noqa: S603 (a fixed command on this checkout's sources)  # nosec B603
            command,
            env={**os.environ, "SOURCE_DATE_EPOCH": REPRODUCIBLE_EPOCH},
            capture_output=True,
            text=True,
            check=False,
        )
        wheels = sorted(out.glob(f"{WHEEL_PREFIX}*{WHEEL_SUFFIX}")) if done.returncode == 0 else []
        if len(wheels) != 1:
            raise AgentBuildError(f"pip wheel {source} failed:\n{done.stdout}{done.stderr}")
        wheel = wheels[0]
        data = wheel.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    release = AgentRelease(
        version=wheel.name[len(WHEEL_PREFIX) : -len(WHEEL_SUFFIX)],
        wheel=wheel.name,
        sha256=digest,
        size=len(data),
        directory=dest,
    )
    _publish(dest / release.wheel, data)
    _publish(dest / release.sha256_file, f"{digest}  {release.wheel}\n".encode())
    _publish(dest / INSTALL_SCRIPT, (source / INSTALL_SCRIPT).read_bytes())
    manifest = {"version": release.version, "wheel": release.wheel, "sha256": digest, "size": release.size}
    # Last: a web process reading the directory meanwhile sees the previous release whole, or this one.
    _publish(dest / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())
    for stale in dest.glob(f"{WHEEL_PREFIX}*"):
        if stale.name not in (release.wheel, release.sha256_file):
            stale.unlink()
    return release


def _publish(path: Path, data: bytes) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(data)
    partial.chmod(0o644)
    os.replace(partial, path)


_cached: tuple[tuple, AgentRelease] | None = None


def served_release() -> AgentRelease | None:
    """The release in DEPLITE_AGENT_DIST_DIR, or None when nothing was built there. Re-read only when
    the manifest changes (a new build), so a page or a list of agents costs one stat()."""
    global _cached
    directory = Path(settings.DEPLITE_AGENT_DIST_DIR)
    manifest = directory / MANIFEST
    try:
        stat = manifest.stat()
    except FileNotFoundError:
        return None
    key = (str(manifest), stat.st_mtime_ns, stat.st_size)
    cached = _cached
    if cached is not None and cached[0] == key:
        return cached[1]
    release = load_release(directory)
    if release is not None:
        _cached = (key, release)
    return release


def load_release(directory: Path) -> AgentRelease | None:
    """The release `build_agent_release` published in `directory`, or None when there is none."""
    try:
        data = json.loads((directory / MANIFEST).read_text())
    except FileNotFoundError:
        return None
    release = AgentRelease(
        version=data["version"], wheel=data["wheel"], sha256=data["sha256"], size=data["size"], directory=directory
    )
    return release if release.wheel_path.is_file() else None


def install_script(release: AgentRelease) -> str:
    """install.sh with this server's address and this release's wheel and sha256 filled in."""
    text = (release.directory / INSTALL_SCRIPT).read_text()
    values = {
        "DEPLITE_SERVER": public_base_url(),
        "AGENT_VERSION": release.version,
        "AGENT_WHEEL": release.wheel,
        "AGENT_SHA256": release.sha256,
    }
    for name in _SCRIPT_VALUES:
        text = text.replace(f"'@{name}@'", shlex.quote(values[name]))
    return text


def install_script_url() -> str:
    return public_base_url() + reverse("agent-install-script")


def install_command(*, agent_id: object, systemd: bool = False) -> str:
    """The one command that installs (or upgrades in place) this agent on its host."""
    fetch = f"curl -fsSL {shlex.quote(install_script_url())} | "
    if systemd:
        return fetch + f"sudo sh -s -- --agent-id {agent_id} --systemd"
    return fetch + f"sh -s -- --agent-id {agent_id}"
