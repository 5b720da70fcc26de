# creditledger — `make run` for a demo on a bare machine, `make test` for the suite.
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run serve test lint format bench migrate worker beat seal check-deploy clean messages

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Stamp files: reinstall only when a requirements file changes.
$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.runtime

# --- make run: SQLite + filesystem broker, web + worker + beat -----------------------------
# Ctrl-C or a TERM to make reaches the recipe's shell, whose trap stops all three: the web
# server's whole process group (the autoreloader serves from a child), the Celery worker's
# main process (it shuts its own pool down) and beat. runserver runs in the background too,
# because bash runs no trap until a foreground command has finished.
run: export DEBUG ?= 1
run: $(VENV)/.runtime
	mkdir -p var/celery/queue var/celery/processed var/celery/control
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py demo_setup
	@set -m; \
	$(BIN)/celery -A creditledger worker -Q celery,scoring,webhooks,exports -c 2 --loglevel=INFO \
		> var/worker.log 2>&1 & worker=$$!; \
	$(BIN)/celery -A creditledger beat --schedule var/celerybeat-schedule --loglevel=INFO \
		> var/beat.log 2>&1 & beat=$$!; \
	$(BIN)/python manage.py ledger_seal > var/sealer.log 2>&1 & sealer=$$!; \
	$(BIN)/python manage.py runserver $(HOST):$(PORT) < /dev/null & web=$$!; \
	stop() { trap - EXIT INT TERM; kill -TERM -$$web $$worker $$beat $$sealer 2>/dev/null; wait; }; \
	trap 'stop; exit 130' INT; trap 'stop; exit 143' TERM; trap stop EXIT; \
	echo "worker (pid $$worker) logs to var/worker.log, beat (pid $$beat) to var/beat.log, sealer (pid $$sealer) to var/sealer.log"; \
	echo "Serving http://$(HOST):$(PORT)/admin/  (Ctrl-C stops web, worker, beat and sealer)"; \
	wait $$web

# --- make serve: production web (gunicorn, WhiteNoise); workers and beat run beside it -------
# Settings from the environment (docs/deploy.md); gunicorn's from gunicorn.conf.py
# (GUNICORN_WORKERS, GUNICORN_THREADS, GUNICORN_BIND ...).
serve: $(VENV)/.runtime
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py collectstatic --no-input --verbosity 0
	exec $(BIN)/gunicorn -c gunicorn.conf.py creditledger.wsgi

# One worker per queue (`make worker QUEUE=webhooks CONCURRENCY=4`), exactly one beat.
QUEUE ?= scoring
CONCURRENCY ?= 2
worker: $(VENV)/.runtime
	exec $(BIN)/celery -A creditledger worker -Q $(QUEUE) -n $(QUEUE)@%h -c $(CONCURRENCY) --loglevel=INFO

# The ledger's sequencer: one per installation (a second one is a standby).
seal: $(VENV)/.runtime
	exec $(BIN)/python manage.py ledger_seal

beat: $(VENV)/.runtime
	exec $(BIN)/celery -A creditledger beat --schedule $${VAR_DIR:-var}/celerybeat-schedule --loglevel=INFO

# --- make test: the whole suite on PostgreSQL + Redis --------------------------------------
test: export DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/creditledger
test: export CELERY_BROKER_URL ?= redis://127.0.0.1:6379/14
test: export CACHE_URL ?= rediscache://127.0.0.1:6379/13
test: export SECRET_KEY ?= test-only-secret-key-not-for-production-use-0123456789
test: export DEBUG := 0
test: export LEDGER_SEALER ?= inline
test: export SECURE_SSL_REDIRECT := 0
test: export SESSION_COOKIE_SECURE := 0
test: export CSRF_COOKIE_SECURE := 0
test: export ALLOWED_HOSTS ?= testserver,127.0.0.1,localhost
test: export VAR_DIR ?= $(CURDIR)/var/test
test: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/python manage.py makemigrations --check --dry-run
	mkdir -p var && $(BIN)/python manage.py spectacular --lang en --validate --fail-on-warn --file var/openapi.yaml && diff -u docs/openapi.yaml var/openapi.yaml
	mkdir -p $(VAR_DIR)/static  # WhiteNoise warns about a missing STATIC_ROOT in every test otherwise
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# --- make messages: refresh the catalogues from the code, then compile them ------------------
# Collects every translatable string into locale/*/LC_MESSAGES/django.po (new ones arrive with
# an empty msgstr: translate them in locale/zh_Hans), and compiles the .mo files the site reads.
# Both the .po and the .mo files are committed: a server without gettext tools still has them.
MESSAGES_IGNORE := --ignore=.venv --ignore=var --ignore=bench --ignore=tests --ignore=docs --ignore=locale
# DEBUG=1: the settings load without a SECRET_KEY (only LOCALE_PATHS is read).
messages: export DEBUG := 1
messages: $(VENV)/.dev
	$(BIN)/python manage.py makemessages -l zh_Hans -l en --add-location=file --no-obsolete $(MESSAGES_IGNORE)
	$(BIN)/python manage.py compilemessages $(MESSAGES_IGNORE)

bench: export DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/creditledger_bench
bench: export CELERY_BROKER_URL ?= redis://127.0.0.1:6379/12
bench: export CACHE_URL ?= rediscache://127.0.0.1:6379/15
bench: export SECRET_KEY ?= bench-only-secret-key-not-for-production-use-0123456789
bench: export DEBUG := 0
bench: export VAR_DIR ?= $(CURDIR)/var/bench
bench: $(VENV)/.dev
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# `python manage.py check --deploy` with a production-like environment (see README).
check-deploy: $(VENV)/.runtime
	DEBUG=0 SECRET_KEY=$$(head -c 48 /dev/urandom | base64) ALLOWED_HOSTS=creditledger.example.gov.cn \
	DATABASE_URL=postgres://creditledger@127.0.0.1:5432/creditledger \
	CELERY_BROKER_URL=redis://127.0.0.1:6379/0 \
	LEDGER_SIGNING_KEY=$$(head -c 32 /dev/urandom | base64) \
	$(BIN)/python manage.py check --deploy --fail-level WARNING

clean:
	rm -rf var/test var/bench .pytest_cache .ruff_cache
