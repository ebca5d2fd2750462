"""The layering, checked on every `make test`: which of our packages may import which.

The contracts live in pyproject.toml ([tool.importlinter]) and import-linter checks them: every
import counts, top-level, inside a function or relative. What it cannot see is a model named by
a string (`apps.get_model("app.Model")`, a lazy relation): the last test holds those to the same
contracts.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

from importlinter.api import read_configuration

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "pyproject.toml"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(cwd: Path, *, pythonpath: str | None = None) -> subprocess.CompletedProcess:
    # --no-cache: nothing written into the tree, and a stale graph can never pass a broken contract.
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(CONFIG), "--no-cache"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_import_contracts_are_kept():
    # The agent's source, not the wheel `make install` put into .venv.
    result = lint_imports(ROOT, pythonpath=str(ROOT / "deplite_agent/src"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_the_contracts_break_on_upward_imports(tmp_path):
    # A guard against contracts that silently check nothing: a tree with the same packages where
    # orgs imports triggers inside a function, a service imports DRF and the agent imports Django,
    # while notifications importing integrations (downward) is fine.
    for package in ("deplite", "deplite/api", "orgs", "storage", "triggers", "agents", "integrations", "insights"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    for package in ("notifications", "deplite_agent"):
        (tmp_path / package).mkdir()
    (tmp_path / "deplite/middleware.py").write_text("")
    (tmp_path / "notifications/__init__.py").write_text("import integrations\n")
    (tmp_path / "orgs/services.py").write_text("def f():\n    from triggers import models\n")
    (tmp_path / "triggers/models.py").write_text("")
    (tmp_path / "triggers/receivers.py").write_text("import insights\n")  # nothing imports insights
    (tmp_path / "storage/services.py").write_text("from rest_framework import serializers\n")
    (tmp_path / "deplite_agent/__init__.py").write_text("import django\n")
    result = lint_imports(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Contracts: 0 kept, 3 broken." in result.stdout
    assert "orgs.services -> triggers.models" in result.stdout
    assert "triggers.receivers -> insights" in result.stdout
    assert "storage.services -> rest_framework" in result.stdout
    assert "deplite_agent -> django" in result.stdout
    assert "notifications" not in result.stdout


# "app_label.ModelName": a model named by string (apps.get_model, lazy relations).
MODEL_LABEL = re.compile(r"^([a-z_]+)\.[A-Z]\w*$")


def forbidden_roots() -> dict[str, set[str]]:
    """{package: packages it may not import}, from the layers and forbidden contracts."""
    forbidden: dict[str, set[str]] = {}
    for contract in read_configuration(str(CONFIG))["contracts_options"]:
        if contract["type"] == "layers":
            above: set[str] = set()
            for layer in contract["layers"]:
                siblings = {name.strip() for name in re.split(r"[|:]", layer)}
                independent = "|" in layer
                for name in siblings:
                    forbidden.setdefault(name, set()).update(above | (siblings - {name} if independent else set()))
                above |= siblings
        elif contract["type"] == "forbidden":
            for source in contract["source_modules"]:
                if "." not in source and "*" not in source:  # a whole package, not a kind of module
                    forbidden.setdefault(source, set()).update(m for m in contract["forbidden_modules"] if "." not in m)
    return forbidden


def _package_dir(package: str) -> Path:
    return ROOT / ("deplite_agent/src/deplite_agent" if package == "deplite_agent" else package)


def model_labels(path: Path) -> set[tuple[str, int]]:
    """(app label, line) of every "app.Model" string in `path`."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return {
        (MODEL_LABEL.match(node.value).group(1), node.lineno)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and MODEL_LABEL.match(node.value)
    }


def test_no_model_is_named_by_a_string_across_a_layer():
    forbidden = forbidden_roots()
    assert forbidden["orgs"] >= {"storage", "triggers", "agents", "integrations", "notifications"}
    assert forbidden["deplite_agent"] >= {"orgs", "django"}
    broken = [
        f"{path.relative_to(ROOT)}:{line} names a model of {app}"
        for package, others in sorted(forbidden.items())
        for path in sorted(_package_dir(package).rglob("*.py"))
        if "migrations" not in path.relative_to(ROOT).parts
        for app, line in sorted(model_labels(path))
        if app in others
    ]
    assert broken == []


def test_the_label_scan_sees_model_names(tmp_path):
    source = tmp_path / "x.py"
    source.write_text(
        "apps.get_model('notifications.Rule')\nMODEL = 'integrations.Installation'\nNOT_A_MODEL = 'deplite.errors'\n"
    )
    assert {app for app, _ in model_labels(source)} == {"notifications", "integrations"}
