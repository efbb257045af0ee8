# The two commands of the README: `make demo` and `make test`.
# Both create the virtual environment in .venv if it is absent and install the project.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo voice-demo test system-deps lint fmt typecheck pytest bench clean

demo: $(VENV)/.installed
	$(BIN)/cti demo $(ARGS)

test: system-deps $(VENV)/.installed-dev lint typecheck pytest

# A SIP line and your softphone as agent 1001's phone: call in and talk (README, "Talk").
voice-demo: $(VENV)/.installed
	$(BIN)/cti voice-demo $(ARGS)

# Mosquitto, SIPp, tmux, baresip...: the real peers of the integration tests (apt-get as root).
system-deps:
	./deploy/system-deps.sh

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

# Format and fix what ruff can.
fmt: $(VENV)/.installed-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# mypy --strict on every package (the list is in pyproject.toml, [tool.mypy]).
typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

# The media tests (tests/media, baresip) each run in a network namespace of their own,
# which needs root (CI runs as root); not root: they fail and say so (docs/voice.md).
pytest: system-deps $(VENV)/.installed-dev
	$(BIN)/pytest -q $(PYTEST_ARGS)

# Every benchmark, each printing its figures beside its baseline (about 15 minutes;
# bench_customers alone builds a million customers). One: make bench BENCH=bench_router
BENCH ?= bench_router bench_simulator bench_customer_lookup bench_customers bench_journal \
         bench_bus bench_sip bench_wallboard bench_dialer bench_media
bench: system-deps $(VENV)/.installed-dev
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	for b in $(BENCH); do echo "== $$b"; $(BIN)/python benchmarks/$$b.py || exit 1; done

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
