"""The layering, checked on every `make test`: which of our packages may import which.

    deplite_agent   the program on customers' servers: no Django, none of our apps
    orgs            organisations, members, tokens, scoping: no domain app
    storage         bindings and files: never triggers (triggers listen to its signal)
    triggers        triggers and jobs: never agents, integrations or notifications
                    (they listen to `job_finished`; chat calls trigger services)

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
}


# "app_label.ModelName": a model named by string (apps.get_model, lazy relations).
MODEL_LABEL = re.compile(r"^([a-z_]+)\.[A-Z]\w*$")


def _package_dir(package: str) -> Path:
    return ROOT / ("deplite_agent/src/deplite_agent" if package == "deplite_agent" else package)


def imported_roots(path: Path, package: str, package_dir: Path) -> set[tuple[str, int]]:
    """(top-level package, line) of everything `path` (in `package`, at `package_dir`) imports."""
    tree = ast.parse(path.read_text(), filename=str(path))
    parts = path.relative_to(package_dir).with_suffix("").parts
    here = [package, *(parts[:-1] if parts[-1] == "__init__" else parts)]
    is_package = path.name == "__init__.py"
    found: set[tuple[str, int]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {(alias.name.split(".")[0], node.lineno) for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here if is_package else here[:-1]
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                found.add((base[0] if base else "", node.lineno))
            elif node.module:
                found.add((node.module.split(".")[0], node.lineno))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and MODEL_LABEL.match(node.value):
            found.add((MODEL_LABEL.match(node.value).group(1), node.lineno))
    return found


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
