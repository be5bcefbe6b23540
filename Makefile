# The two commands: `make run` (whole system on embedded defaults) and `make test`.
# Each creates or reuses the virtualenv .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
# A Sparkplug B edge node from another library (mqtt-spb-wrapper), for the interoperability test of the
# MQTT listener: a virtualenv of its own, since it pins paho-mqtt and protobuf older than ours.
SPB_NODE_VENV := .venv-spb-node
SPB_NODE_STAMP := $(SPB_NODE_VENV)/.installed
# Browser libraries from npm (package-lock.json pins them), copied into static/vendor/ (not committed).
VENDOR_STAMP := static/vendor/.installed
PYTEST_ARGS ?=

.PHONY: run test test-deps test-fast schema docs vendor lint typecheck check clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(RUN_STAMP): requirements.txt | $(PY)
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(DEV_STAMP): requirements.txt requirements-dev.txt requirements-interop.txt | $(PY)
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-interop.txt
	touch $@ $(RUN_STAMP)

$(SPB_NODE_STAMP): requirements-sparkplug-node.txt
	rm -rf $(SPB_NODE_VENV)
	$(PYTHON) -m venv $(SPB_NODE_VENV)
	$(SPB_NODE_VENV)/bin/python -m pip install --quiet -r requirements-sparkplug-node.txt
	touch $@

$(VENDOR_STAMP): package.json package-lock.json
	@command -v npm >/dev/null 2>&1 || { \
	  echo "npm is missing: install Node.js (with npm) to fetch the browser libraries (uPlot)." >&2; \
	  exit 1; }
	npm ci --no-audit --no-fund
	mkdir -p static/vendor/uplot
	cp node_modules/uplot/dist/uPlot.iife.min.js node_modules/uplot/dist/uPlot.min.css static/vendor/uplot/
	touch $@

## vendor: install the browser libraries from package-lock.json into static/vendor/
vendor: $(VENDOR_STAMP)

## run: start web, worker and embedded Redis/MQTT (unless *_URL is set), with demo data
run: $(RUN_STAMP) $(VENDOR_STAMP)
	$(PY) -m openspc.embedded run

## test-deps: what the test suite needs installed (two runs of `make test` side by side need it first)
test-deps: $(DEV_STAMP) $(VENDOR_STAMP) $(SPB_NODE_STAMP)

## test: the test suite; embedded Redis/MQTT are started for it unless *_URL is set
test: test-deps
	$(PY) -m openspc.embedded exec -- $(PY) -m pytest $(PYTEST_ARGS)

## test-fast: `make test` without the tests marked slow (browser, real workers and daphne, the MQTT
## listener and private brokers, kill and fault tests, benchmarks, the soak), one process per core
## (each with its own test database and Redis database, tests/support/parallel.py): before a commit
test-fast:
	$(MAKE) test PYTEST_ARGS='-m "not slow" -n auto --maxprocesses=8 $(PYTEST_ARGS)'

## schema: regenerate openapi.yaml (the committed API schema; a test fails when it is stale)
schema: $(RUN_STAMP)
	DEBUG=1 $(PY) manage.py spectacular --validate --fail-on-warn --file openapi.yaml

## docs: the documentation site into var/docs/, strictly: a warning (a broken link, a page missing
## from the table of contents, a missing image) fails the build. -E reads every page each time: an
## incremental build would not repeat the warnings of pages it did not read again, and pass.
docs: $(DEV_STAMP)
	$(VENV)/bin/sphinx-build -E -W --keep-going -n -b html docs var/docs

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(DEV_STAMP)
	$(VENV)/bin/mypy apps openspc spc

check: lint typecheck test

clean:
	rm -rf $(VENV) $(SPB_NODE_VENV) var .pytest_cache .mypy_cache .ruff_cache node_modules static/vendor
