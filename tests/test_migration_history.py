"""Each app's migrations form one line: one latest migration, and none that merges two branches.

Two branches that each add a migration to an app are rebased (the later one renumbered onto the
other: `makemigrations` again, or edit its number and `dependencies`), never merged: a merge migration
lets the two branches' migrations run in different orders on different databases.

Our own check rather than django-linear-migrations: its system checks compare max_migration.txt with
the highest migration name only, so a committed merge migration (then the highest name) passes them.
"""

from pathlib import Path

import pytest
from django.apps import apps
from django.db.migrations.loader import MigrationLoader

ROOT = Path(__file__).resolve().parent.parent


def _our_app_labels() -> set[str]:
    return {config.label for config in apps.get_app_configs() if ROOT in Path(config.path).parents}


def migration_history_problems() -> list[str]:
    """What breaks the one-line rule in Deplite's apps, read from the migration files on disk."""
    loader = MigrationLoader(None, ignore_no_migrations=True)
    ours = _our_app_labels()
    problems = [
        f"{app_label} has {len(names)} latest migrations {sorted(names)}: rebase one onto the other"
        for app_label, names in sorted(loader.detect_conflicts().items())
        if app_label in ours
    ]
    for app_label, name in sorted(loader.graph.nodes):
        if app_label not in ours:
            continue
        parents = sorted(p.key[1] for p in loader.graph.node_map[app_label, name].parents if p.key[0] == app_label)
        if len(parents) > 1:
            problems.append(f"{app_label}.{name} merges {parents}: rebase instead of merging")
    return problems


def test_every_app_has_one_line_of_migrations():
    problems = migration_history_problems()
    assert not problems, "\n".join(problems)


def _write_migration(package: Path, name: str, parents: list[str]) -> None:
    dependencies = ", ".join(f"('storage', '{parent}')" for parent in parents)
    package.joinpath(f"{name}.py").write_text(
        "from django.db import migrations\n\n\n"
        f"class Migration(migrations.Migration):\n    dependencies = [{dependencies}]\n    operations = []\n"
    )


@pytest.mark.parametrize(
    ("merged", "expected"),
    [
        (False, ["storage has 2 latest migrations ['0002_a', '0002_b']: rebase one onto the other"]),
        (True, ["storage.0003_merge merges ['0002_a', '0002_b']: rebase instead of merging"]),
    ],
)
def test_the_check_reports_two_branches_and_a_merge_migration(tmp_path, monkeypatch, settings, merged, expected):
    # A package name per case: the migration modules of one case stay imported (sys.modules).
    package = tmp_path / f"branched_migrations_{'merged' if merged else 'open'}"
    package.mkdir()
    package.joinpath("__init__.py").write_text("")
    _write_migration(package, "0001_initial", [])
    _write_migration(package, "0002_a", ["0001_initial"])
    _write_migration(package, "0002_b", ["0001_initial"])
    if merged:
        _write_migration(package, "0003_merge", ["0002_a", "0002_b"])
    monkeypatch.syspath_prepend(str(tmp_path))
    settings.MIGRATION_MODULES = {"storage": package.name}

    # Only the substituted app's: a real problem elsewhere fails the test above, not this one.
    assert [problem for problem in migration_history_problems() if problem.startswith("storage")] == expected
