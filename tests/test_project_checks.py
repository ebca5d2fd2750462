"""Project-wide checks CI would otherwise miss: deploy settings, migrations, the OpenAPI schema, module sizes."""

import json
import os
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent


def _manage(*args, env=None, cwd=ROOT):
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def _prod_env(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(
        DEBUG="0",
        SECRET_KEY="x" * 20 + Fernet.generate_key().decode(),
        DEPLITE_ENCRYPTION_KEYS=f"{Fernet.generate_key().decode()},{Fernet.generate_key().decode()}",
        ALLOWED_HOSTS="app.example.com",
        DEPLITE_PUBLIC_URL="https://app.example.com",
        DEPLITE_VAR_DIR=str(tmp_path),
    )
    return env


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=_prod_env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_its_secrets(tmp_path):
    env = _prod_env(tmp_path)
    del env["DEPLITE_ENCRYPTION_KEYS"]
    result = _manage("check", env=env)
    assert result.returncode != 0
    assert "DEPLITE_ENCRYPTION_KEYS must be set" in result.stderr
    assert not list(tmp_path.iterdir())  # nothing generated behind the operator's back


def test_migrations_are_complete():
    result = _manage("makemigrations", "--check", "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr


def test_openapi_schema_validates_without_warnings(tmp_path):
    result = _manage("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "/api/orgs/{org_id}/members" in (tmp_path / "schema.yaml").read_text()


def test_static_assets_are_served_with_debug_off(client, settings):
    """Swagger UI and htmx come from this server, also in production (whitenoise)."""
    settings.DEBUG = False
    settings.WHITENOISE_AUTOREFRESH = False  # as in production (tests/conftest.py turns it on for speed)
    from django.templatetags.static import static

    for asset in ("drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js", "vendor/htmx/htmx.min.js"):
        response = client.get(static(asset))
        assert response.status_code == 200, asset
        assert b"".join(response.streaming_content)[:100]


def test_bandit_finds_nothing_in_the_product_code():
    """bandit over everything but tests/.venv/migrations/bench (pyproject [tool.bandit]); each accepted
    finding is a `# nosec BXXX` next to its reason, listed in README "Security checks"."""
    result = subprocess.run(
        [sys.executable, "-m", "bandit", "-c", "pyproject.toml", "-r", ".", "-f", "json", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    report = json.loads(result.stdout)
    findings = [f"{r['filename']}:{r['line_number']} {r['test_id']} {r['issue_text']}" for r in report["results"]]
    assert findings == [], "\n".join(findings)
    assert result.returncode == 0, result.stderr
    assert report["metrics"]["_totals"]["loc"] > 5000  # it really scanned the product


# Issue 19: a module past this many lines has been mixing concerns; split it along its seams the way
# agents/protocol/, orgs/api/ and storage/s3/ were (a package whose __init__ keeps the import paths).
MAX_MODULE_LINES = 400


def _product_modules() -> list[Path]:
    """Every module of the product: each Django app (a folder with apps.py, `deplite` included) and
    the agent's source; not tests, bench or migrations."""
    roots = sorted(path.parent for path in ROOT.glob("*/apps.py")) + [ROOT / "deplite_agent" / "src"]
    return [
        path
        for root in roots
        for path in sorted(root.rglob("*.py"))
        if "migrations" not in path.relative_to(ROOT).parts
    ]


def test_no_product_module_is_longer_than_400_lines():
    modules = _product_modules()
    scanned = {str(path.relative_to(ROOT)) for path in modules}
    # A guard against a walk that silently finds nothing: the apps, deplite/ and the agent are all in it.
    assert {"deplite/urls.py", "agents/models.py", "deplite_agent/src/deplite_agent/runner.py"} <= scanned
    assert len(modules) > 150
    too_long = {
        str(path.relative_to(ROOT)): lines
        for path in modules
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert too_long == {}, "over 400 lines: " + ", ".join(f"{name} ({n})" for name, n in sorted(too_long.items()))
