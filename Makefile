# The two commands a newcomer needs: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
# PostgreSQL for the second test run: DATABASE_URL when it points at PostgreSQL, else the local server.
PG_TEST_URL ?= $(if $(filter postgres%,$(DATABASE_URL)),$(DATABASE_URL),postgres://postgres@127.0.0.1:5432/sla)
PYTEST_ARGS ?= -n 2

.PHONY: run test lint bench venv clean fuzz

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

venv: $(VENV)/.installed

# The links in e-mails (SITE_URL) point at the address `make run` serves, unless SITE_URL is set.
run: export SITE_URL ?= http://$(HOST):$(PORT)
run: venv
	mkdir -p var
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo --url http://$(HOST):$(PORT)
	@printf "\nServing on http://$(HOST):$(PORT): the API under /api/v1/ (its docs: /api/v1/docs), the admin at /admin/\n"
	ALLOWED_HOSTS=$${ALLOWED_HOSTS:-*} SESSION_COOKIE_SECURE=$${SESSION_COOKIE_SECURE:-false} \
		CSRF_COOKIE_SECURE=$${CSRF_COOKIE_SECURE:-false} $(PY) manage.py runserver --insecure $(HOST):$(PORT)

lint: venv
	$(VENV)/bin/ruff check .

# The whole suite on SQLite, then again on PostgreSQL when it is reachable.
# REQUIRE_POSTGRES=1 (set by .ci/run) turns an unreachable PostgreSQL into a failure.
test: lint
	@echo "== Tests on SQLite =="
	DATABASE_URL=sqlite:///var/test.sqlite3 $(VENV)/bin/pytest $(PYTEST_ARGS)
	@if $(PY) bench/pg_reachable.py "$(PG_TEST_URL)"; then \
		echo "== Tests on PostgreSQL ($(PG_TEST_URL)) =="; \
		DATABASE_URL="$(PG_TEST_URL)" $(VENV)/bin/pytest $(PYTEST_ARGS) && \
		$(MAKE) --no-print-directory fuzz PG_TEST_URL="$(PG_TEST_URL)" && \
		echo "== make test: passed on SQLite and PostgreSQL (and the schema fuzz) =="; \
	elif [ -n "$$REQUIRE_POSTGRES" ]; then \
		echo "== make test: PostgreSQL is required but unreachable at $(PG_TEST_URL) =="; exit 1; \
	else \
		echo "== make test: passed on SQLite only; PostgreSQL was not reachable at $(PG_TEST_URL) =="; \
	fi

# Schemathesis against a live gunicorn on PostgreSQL (the PG_TEST_URL database is recreated for it),
# every operation and check, a fixed seed, FUZZ_EXAMPLES per operation. Called by `make test`.
FUZZ_EXAMPLES ?= 5
FUZZ_SEED ?= 1
fuzz: venv
	$(PY) tests/fuzz/run.py --database-url "$(PG_TEST_URL)" --max-examples $(FUZZ_EXAMPLES) --seed $(FUZZ_SEED)

bench: venv
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .hypothesis
