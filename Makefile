# The two commands of the README: `make run` (the product on its embedded default) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: run test lint bench prod-check messages

$(VENV)/.runtime: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(VENV)/.runtime $@

# The translation catalogues (locale/*/LC_MESSAGES/django.po) compiled by Babel, a requirement: a
# fresh machine needs no GNU gettext. The .mo files are built, never committed.
CATALOGUES := $(patsubst %.po,%.mo,$(wildcard locale/*/LC_MESSAGES/django.po))
messages: $(CATALOGUES)
locale/%.mo: locale/%.po $(VENV)/.runtime
	$(VENV)/bin/pybabel --quiet compile --input-file $< --output-file $@

run: $(VENV)/.runtime messages
	$(PY) manage.py migrate --noinput
	$(PY) manage.py demo_data
	$(PY) manage.py runserver 127.0.0.1:8000

lint: $(VENV)/.dev
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

# Lint, then the suite on SQLite with eager tasks (the browser suite included), then again on
# PostgreSQL + Redis + a Celery worker (tests/realstack.py: a failure in CI when they are unreachable,
# a one-line skip elsewhere). The browser suite tests the pages, not the database, and the schemathesis
# run tests the API against its schema: each runs on SQLite only. The SQLite pass runs once more with the
# clock 400 days ahead (tests/conftest.py): no test may lean on today's date without freezing it. The
# demo's test loads the whole demo on days it freezes itself (a shifted clock changes nothing there):
# it runs in the first pass only. Every pass runs in one pytest-xdist process per core, each on a
# test database of its own; on the real stack each process also has its own Celery queue and Redis
# cache database (config/settings/test.py). Its bank payment file: 50,000 rows posted by two workers.
test: lint messages
	DJANGO_SETTINGS_MODULE=config.settings.test $(PY) manage.py makemigrations --check --dry-run
	DJANGO_SETTINGS_MODULE=config.settings.test $(PY) manage.py spectacular --validate --fail-on-warn --file /dev/null
	$(PY) -m pytest -n auto -m "not realstack"
	CLOCK_SHIFT_DAYS=400 $(PY) -m pytest -n auto -m "not realstack and not browser and not demo"
	$(PY) tests/realstack.py -n auto -m "not browser and not schemathesis and not demo"

# Every benchmark, each printing its figures beside their aims as ratios measured in the same run
# (tests/benchmarks, README "Benchmarks"): on PostgreSQL and Redis at 127.0.0.1, each in databases of
# its own. `make bench BENCH_ARGS=--quick` runs them small.
BENCHMARKS := rating_engine ai_check billing_run bill_emails bill_retrieval payments rebilling
BENCH_ARGS ?=
bench: $(VENV)/.dev
	@for name in $(BENCHMARKS); do \
		echo "== $$name"; $(PY) tests/benchmarks/$$name.py $(BENCH_ARGS) || exit 1; \
	done

# The production stack of the Procfile (gunicorn, a Celery worker, celery beat under honcho) on
# PostgreSQL and Redis with config.settings.production, smoke-tested through gunicorn over HTTP
# (deploy/prod_check.py; README "Production").
prod-check: $(VENV)/.runtime messages
	$(PY) deploy/prod_check.py
