# jobqueue: set-up, tests, demo and benchmarks.
#
# With DATABASE_URL unset, everything runs against a project-local PostgreSQL
# cluster kept in .pgdata/ (ignored by git) on 127.0.0.1:$(PGPORT), with
# pg_cron preloaded. With DATABASE_URL set, that database is used instead and
# no cluster is created.
#
# As root, missing Debian packages are installed and the cluster commands run
# as the postgres user (initdb and pg_ctl refuse root).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PG_MAJOR   ?= 15
PG_BIN     ?= /usr/lib/postgresql/$(PG_MAJOR)/bin
# Own names, not PGPORT/PGDATA: those are often set for another server.
JOBQUEUE_PORT    ?= 55432
JOBQUEUE_CLUSTER ?= $(CURDIR)/.pgdata
JOBQUEUE_DB      ?= jobqueue
PGPORT     := $(JOBQUEUE_PORT)
PGDATA     := $(JOBQUEUE_CLUSTER)/data
PGLOG      := $(JOBQUEUE_CLUSTER)/postgresql.log
PGDATABASE := $(JOBQUEUE_DB)
VENV       := $(CURDIR)/.venv
PY         := $(VENV)/bin/python
STAMPS     := $(CURDIR)/.stamps

DEB_PACKAGES := postgresql-$(PG_MAJOR) postgresql-contrib postgresql-$(PG_MAJOR)-cron \
	postgresql-$(PG_MAJOR)-plpgsql-check

IS_ROOT := $(filter 0,$(shell id -u))
AS_PG   := $(if $(IS_ROOT),runuser -u postgres --,)

LOCAL_URL := postgresql://postgres@127.0.0.1:$(PGPORT)/$(PGDATABASE)
export DATABASE_URL ?= $(LOCAL_URL)
# Recorded before the export above so that recipes can tell a user-given URL.
USER_URL := $(filter-out $(LOCAL_URL),$(DATABASE_URL))
# Tests that crash and restart PostgreSQL need to know the cluster is ours.
ifeq ($(USER_URL),)
export JOBQUEUE_LOCAL_CLUSTER := $(PGDATA)
export JOBQUEUE_PG_BIN := $(PG_BIN)
endif

.PHONY: help setup deps venv pgmq-extension cluster start stop db migrate test lint \
	test-sql test-runner demo psql bench chaos clean

help:
	@echo "make test     install what is missing, start the local cluster, lint and run the suite"
	@echo "make demo     install, submit sample jobs, drain them with the runner, print the outcome"
	@echo "make psql     open psql on the database (DATABASE_URL or the local cluster)"
	@echo "make migrate  install or upgrade the SQL package in the database"
	@echo "make bench    run the benchmark suite (results in bench/out/, chart in docs/img/)"
	@echo "make chaos    run the full fault-injection suite"
	@echo "make stop     stop the local cluster"

# --- machine set-up ---------------------------------------------------------

deps: $(STAMPS)/deps
$(STAMPS)/deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	python3 -c 'import ensurepip, venv' 2>/dev/null || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  if [ -n "$(IS_ROOT)" ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "missing Debian packages:$$missing (install them as root: apt-get install$$missing)"; exit 1; \
	  fi; \
	fi
	@mkdir -p $(STAMPS) && touch $@

venv: $(STAMPS)/venv
$(STAMPS)/venv: pyproject.toml | $(STAMPS)/deps
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	@touch $@

# pgmq's official extension SQL ships inside its PyPI package; install it as a
# real extension so that CREATE EXTENSION pgmq behaves as on Supabase. Only
# the local cluster needs it from here: a server that DATABASE_URL names
# reads its own extension directory, not this machine's.
pgmq-extension: $(STAMPS)/venv
	@$(PY) scripts/install_pgmq_extension.py --sharedir "$$($(PG_BIN)/pg_config --sharedir)"

# --- the local cluster ------------------------------------------------------

cluster: $(PGDATA)/PG_VERSION
$(PGDATA)/PG_VERSION: | $(STAMPS)/deps
	@if [ -n "$(USER_URL)" ]; then echo "DATABASE_URL is set: no local cluster"; exit 0; fi
	mkdir -p $(JOBQUEUE_CLUSTER)
	$(if $(IS_ROOT),chown postgres: $(JOBQUEUE_CLUSTER))
	@$(AS_PG) test -w $(JOBQUEUE_CLUSTER) || { echo "the postgres user cannot write $(JOBQUEUE_CLUSTER): make every parent folder searchable (chmod o+x), or set JOBQUEUE_CLUSTER"; exit 1; }
	$(AS_PG) $(PG_BIN)/initdb -D $(PGDATA) -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
	@printf '%s\n' \
	  "# jobqueue local cluster" \
	  "listen_addresses = '127.0.0.1'" \
	  "port = $(PGPORT)" \
	  "unix_socket_directories = ''" \
	  "max_connections = 200" \
	  "shared_preload_libraries = 'pg_cron,pg_stat_statements'" \
	  "cron.database_name = '$(PGDATABASE)'" \
	  "cron.use_background_workers = on" \
	  "max_worker_processes = 32" \
	  "log_min_messages = warning" \
	  | $(AS_PG) tee -a $(PGDATA)/postgresql.conf >/dev/null

start: $(if $(USER_URL),,pgmq-extension) cluster
	@if [ -n "$(USER_URL)" ]; then exit 0; fi; \
	if ! $(AS_PG) $(PG_BIN)/pg_ctl -D $(PGDATA) status >/dev/null 2>&1; then \
	  $(AS_PG) $(PG_BIN)/pg_ctl -D $(PGDATA) -l $(PGLOG) -w -t 60 start >/dev/null; \
	  echo "local cluster started on 127.0.0.1:$(PGPORT) (data in .pgdata/)"; \
	fi; \
	$(PG_BIN)/psql -X -q -d postgresql://postgres@127.0.0.1:$(PGPORT)/postgres -tAc \
	  "select 1 from pg_database where datname = '$(PGDATABASE)'" | grep -q 1 || \
	  $(PG_BIN)/createdb -h 127.0.0.1 -p $(PGPORT) -U postgres $(PGDATABASE)

stop:
	@if [ -f $(PGDATA)/postmaster.pid ]; then $(AS_PG) $(PG_BIN)/pg_ctl -D $(PGDATA) -m fast -w stop; fi

setup: start venv

# --- using it ---------------------------------------------------------------

migrate: setup
	$(VENV)/bin/jobqueue migrate

psql: setup
	@$(PG_BIN)/psql "$(DATABASE_URL)"

demo: migrate
	$(PY) -m jobqueue.demo

lint: venv
	$(VENV)/bin/sqlfluff lint sql/
	$(VENV)/bin/ruff check python/ tests/ scripts/ bench/
	$(VENV)/bin/ruff format --check python/ tests/ scripts/ bench/

test: setup lint
	$(VENV)/bin/pytest -q tests

chaos: setup
	$(VENV)/bin/pytest -q tests/chaos --chaos-full

bench: setup
	@$(PY) -c 'import matplotlib' 2>/dev/null || $(VENV)/bin/pip install -q -e '.[bench]'
	$(PY) -m bench $(BENCH_ARGS)

clean: stop
	rm -rf .pgdata $(STAMPS) $(VENV)
