# Two commands for a newcomer: `make run` and `make test`. Both set themselves up. `make check` is the fast loop.
SHELL := /bin/bash
PY ?= python3
PORT ?= 8000
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | sha1sum | cut -c1-12)

.PHONY: run test check worker beat lint migrate install bench security fuzz

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	rm -f $(VENV)/.installed-*
	touch $@

# The agent the server hands out (/agent/…), built from deplite_agent/ into the directory the settings
# serve it from (DEPLITE_AGENT_DIST_DIR, default $DEPLITE_VAR_DIR/agent): rebuilt whenever a file of the
# agent changes, or the requirements (setuptools builds it), or the built release is gone. The same
# wheel goes into .venv, so `.venv/bin/deplite-agent` is what customers get.
AGENT_DIST := $(or $(DEPLITE_AGENT_DIST_DIR),$(or $(DEPLITE_VAR_DIR),var)/agent)
AGENT_SOURCES := $(shell find deplite_agent -type f -not -path '*/build/*' -not -path '*.egg-info/*' \
	-not -path '*/__pycache__/*' -not -name '*.pyc' 2>/dev/null)

$(AGENT_DIST)/version.json: $(STAMP) $(AGENT_SOURCES)
	$(BIN)/python manage.py build_agent
	$(BIN)/python -m pip install --quiet --no-deps --force-reinstall $(AGENT_DIST)/deplite_agent-*.whl

install: $(STAMP) $(AGENT_DIST)/version.json

migrate: install
	$(BIN)/python manage.py migrate --noinput

# The embedded default: the web server plus the periodic sweepers in-process (no broker).
# Links the product emits (banner, agent snippet, run URLs, emails) use DEPLITE_PUBLIC_URL;
# unset, it is this server's own address, so `make run PORT=18900` links to :18900.
run: migrate
	export DEPLITE_PUBLIC_URL="$${DEPLITE_PUBLIC_URL:-http://127.0.0.1:$(PORT)}"; \
	$(BIN)/python manage.py ensure_demo && \
	{ trap 'kill 0' EXIT; $(BIN)/python manage.py embedded_beat & $(BIN)/python manage.py runserver 127.0.0.1:$(PORT); }

# The suite's processes (each xdist worker, every server a test starts) compile and assertion-rewrite the
# project's modules; with bytecode caching off (PYTHONDONTWRITEBYTECODE, set in some shells) each pays it
# again, seconds of CPU apiece. __pycache__/ is ignored by git.
PYTEST := PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest
# pytest-xdist workers. Each has its own test database and Redis database (REDIS_URL's + its number,
# tests/settings.py). The whole suite waits on servers and processes a lot: more workers than cores pays
# there; the fast tests are CPU-bound, one worker a core. (README "Tests" has the measurements.)
TEST_WORKERS ?= 4
CHECK_WORKERS ?= 2

# Everything, as CI runs it: in parallel, each test stopped by pytest-timeout if it hangs (pyproject.toml).
# --dist loadgroup: the tests marked xdist_group (tests/conftest.py) share one worker.
test: install
	$(PYTEST) -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

# The fast loop: lint, format, and every test that is not e2e, browser, drill or slow (tests/conftest.py marks
# them by folder), keeping the test databases between runs (--reuse-db; add --create-db after editing a
# migration in place).
check: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(PYTEST) -n $(CHECK_WORKERS) --reuse-db -m "not e2e and not browser and not drill and not slow" $(PYTEST_ARGS)

worker: install
	$(BIN)/celery -A deplite worker --loglevel=INFO

beat: install
	$(BIN)/celery -A deplite beat --loglevel=INFO --schedule=var/celerybeat-schedule

lint: install
	$(BIN)/ruff check .

# Every hot-path benchmark against the production shape (Procfile web line, PostgreSQL, Redis),
# one table. Uses the database deplite_bench and Redis DB 9; needs wrk (installed here when root).
bench: install
	command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y wrk >/dev/null; } \
		|| { echo "make bench needs wrk: apt-get install -y wrk"; exit 1; }
	$(BIN)/python bench/run.py $(BENCH_PARTS)

# Static security checks (README "Security checks"). bandit also runs in `make test`
# (tests/test_project_checks.py); pip-audit needs PyPI's per-release JSON, so it is run by hand.
security: install
	$(BIN)/python -m bandit -c pyproject.toml -r . -q
	$(BIN)/pip-audit -r requirements.txt --progress-spinner off

# The schema fuzz run at full size (README "Schema fuzz run"); `make test` runs it bounded.
# Needs DATABASE_URL (PostgreSQL), like CI.
fuzz: install
	DEPLITE_FUZZ_FULL=1 $(BIN)/python -m pytest tests/api/test_schema_fuzz.py -q -s $(PYTEST_ARGS)
