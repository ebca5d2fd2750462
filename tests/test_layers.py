"""The layering, checked on every `make test`: which of our packages may import which.

    deplite_agent   the program on customers' servers: no Django, none of our apps
    orgs            organisations, members, tokens, scoping: no domain app
    storage         bindings and files: never triggers (triggers listen to its signal)
    triggers        triggers and jobs: never agents, integrations or notifications
                    (they listen to `job_finished`; chat calls trigger services)
    integrations    chat and the outbox: never notifications (which hands it messages) or agents

Every import counts: top-level, inside a function, relative, and `apps.get_model("app.Model")`
strings. Migrations are left out (Django writes their cross-app dependencies).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OUR_APPS = {"deplite", "orgs", "storage", "triggers", "agents", "integrations", "notifications"}

CONTRACTS = {
    "deplite_agent": OUR_APPS | {"django", "rest_framework", "celery"},
    "orgs": {"storage", "triggers", "agents", "integrations", "notifications"},
    "storage": {"triggers", "agents", "integrations", "notifications"},
    "triggers": {"agents", "integrations", "notifications"},
    "integrations": {"agents", "notifications"},
}


# "app_label.ModelName": a model named by string (apps.get_model, lazy relations).
MODEL_LABEL = re.compile(r"^([a-z_]+)\.[A-Z]\w*$")


def _package_dir(package: str) -> Path:
    return ROOT / ("deplite_agent/src/deplite_agent" if package == "deplite_agent" else package)


def imported_modules(path: Path, package: str, package_dir: Path) -> set[tuple[str, int]]:
    """(dotted module, line) of everything `path` (in `package`, at `package_dir`) imports;
    `from x import y` counts as `x.y` (y may be a module)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    parts = path.relative_to(package_dir).with_suffix("").parts
    here = [package, *(parts[:-1] if parts[-1] == "__init__" else parts)]
    is_package = path.name == "__init__.py"
    found: set[tuple[str, int]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {(alias.name, node.lineno) for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here if is_package else here[:-1]
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            found |= {(f"{module}.{alias.name}", node.lineno) for alias in node.names}
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and MODEL_LABEL.match(node.value):
            found.add((MODEL_LABEL.match(node.value).group(1) + ".models", node.lineno))
    return found


def imported_roots(path: Path, package: str, package_dir: Path) -> set[tuple[str, int]]:
    """(top-level package, line) of everything `path` imports."""
    return {(module.split(".")[0], line) for module, line in imported_modules(path, package, package_dir)}


def _sources(package: str) -> list[Path]:
    return sorted(p for p in _package_dir(package).rglob("*.py") if "migrations" not in p.parts)


@pytest.mark.parametrize("package", sorted(CONTRACTS))
def test_package_imports_only_what_its_layer_allows(package):
    sources = _sources(package)
    assert sources, f"no source found for {package}"
    broken = [
        f"{path.relative_to(ROOT)}:{line} imports {root}"
        for path in sources
        for root, line in sorted(imported_roots(path, package, _package_dir(package)))
        if root in CONTRACTS[package]
    ]
    assert broken == []


# The domain layer of each app (what services, tasks and chat handlers build on) knows nothing
# of HTTP: no DRF, no API plumbing, no request-scoping. Its errors are deplite.errors, who acts
# is orgs.actors.Actor.
DOMAIN_MODULES = re.compile(
    r"(^|/)(services|tasks|models|actors|rules|signals|selectors|input_files|payloads|token_scopes|outbox|delivery)(/|\.py$)"
)
HTTP_MODULES = re.compile(
    r"^(rest_framework|drf_spectacular|django_filters|deplite\.api|deplite\.middleware)(\.|$)"
    r"|^(orgs|storage|triggers|agents|integrations|notifications)\.(api|views|forms|pages|scoping|authentication|schema|urls|protocol)(\.|$)"
)


@pytest.mark.parametrize("package", ["orgs", "storage", "triggers", "agents", "integrations", "notifications"])
def test_the_domain_layer_imports_nothing_from_http(package):
    sources = [p for p in _sources(package) if DOMAIN_MODULES.search(str(p.relative_to(_package_dir(package))))]
    broken = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in sources
        for module, line in sorted(imported_modules(path, package, _package_dir(package)))
        if HTTP_MODULES.search(module)
    ]
    assert broken == []


def test_the_checker_sees_every_kind_of_import(tmp_path):
    # A guard against a checker that silently finds nothing.
    pkg = tmp_path / "orgs"
    pkg.mkdir()
    (pkg / "x.py").write_text(
        "import storage.models\n"
        "from triggers import services\n"
        "def f():\n    from agents.models import Agent\n"
        "apps.get_model('notifications.Rule')\n"
        "MODEL = 'integrations.Installation'\n"
        "from . import y\n"
    )
    roots = {root for root, _ in imported_roots(pkg / "x.py", "orgs", pkg)}
    assert roots == {"storage", "triggers", "agents", "notifications", "integrations", "orgs"}


def test_the_domain_and_http_patterns_name_what_they_mean():
    assert all(DOMAIN_MODULES.search(p) for p in ("services.py", "services/runs.py", "tasks.py", "models.py"))
    assert not any(DOMAIN_MODULES.search(p) for p in ("api.py", "views.py", "api/triggers.py"))
    assert all(HTTP_MODULES.search(m) for m in ("deplite.api.errors.Conflict", "orgs.scoping.Actor", "rest_framework"))
    assert not any(HTTP_MODULES.search(m) for m in ("deplite.errors.Conflict", "orgs.actors.Actor", "orgs.apis"))
