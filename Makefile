# The two commands: `make run` (whole system on embedded defaults) and `make test`.
# Each creates or reuses the virtualenv .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
PYTEST_ARGS ?=

.PHONY: run test schema lint typecheck check clean

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

## run: start web, worker and embedded Redis/MQTT (unless *_URL is set), with demo data
run: $(RUN_STAMP)
	$(PY) -m openspc.embedded run

## test: the test suite; embedded Redis/MQTT are started for it unless *_URL is set
test: $(DEV_STAMP)
	$(PY) -m openspc.embedded exec -- $(PY) -m pytest $(PYTEST_ARGS)

## schema: regenerate openapi.yaml (the committed API schema; a test fails when it is stale)
schema: $(RUN_STAMP)
	DEBUG=1 $(PY) manage.py spectacular --validate --fail-on-warn --file openapi.yaml

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(DEV_STAMP)
	$(VENV)/bin/mypy apps openspc

check: lint typecheck test

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
