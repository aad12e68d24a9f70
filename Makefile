# ragops: one entry point for running, testing and generating.
#   make run    the local stack (see README)
#   make test   everything CI checks: fmt, clippy, unit + integration tests, CRD drift, e2e
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
CARGO ?= cargo
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)

.PHONY: all build bins fmt fmt-check clippy unit-test crds crds-check test run run-operator
all: build

build:
	$(CARGO) build --workspace --all-targets

# Always the whole workspace: building one package unifies features differently and rebuilds the
# shared dependencies.
bins:
	$(CARGO) build --workspace --bins

fmt:
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit-test:
	$(CARGO) test --workspace --exclude e2e

CRD_DIRS := crds charts/rag-operator/crds

# Regenerate the checked-in CRDs (and the chart's copy) from the API types, and the rules file
# and README alert table from the rule renderer.
crds: bins
	$(TARGET_DIR)/debug/crdgen $(CRD_DIRS)
	$(TARGET_DIR)/debug/rulegen

# Fail when a checked-in CRD, the rules file or the README's alert table is out of date.
crds-check: bins
	$(TARGET_DIR)/debug/crdgen --check $(CRD_DIRS)
	$(TARGET_DIR)/debug/rulegen --check

# The operator against whatever cluster KUBECONFIG points at (e.g. after `make cluster-up`).
run-operator: bins
	$(TARGET_DIR)/debug/rag-operator --log-format text

test: monitoring-bins-bg fmt-check clippy crds-check chart-lint unit-test e2e

# The whole product on this machine: the local control plane, the operator, the sample RagIndex and
# RagPipeline on KWOK pods served by real rag-runtime processes, and a question answered. Ctrl-C
# stops it (and the control plane, unless it was already up). `make run-runtime`: the runtime alone.
run: e2e-bins bins
	@if e2e/hack/cluster.sh status >/dev/null 2>&1; then keep=1; else keep=0; fi; \
	eval "$$(e2e/hack/cluster.sh up)"; \
	if [ "$$keep" = 0 ]; then trap 'e2e/hack/cluster.sh down' EXIT; fi; \
	$(CARGO) run -q -p e2e --bin ragops-local

-include rag-runtime/runtime.mk
-include e2e/e2e.mk
-include config/argocd/argocd.mk
-include images/images.mk
-include .github/workflows.mk
-include e2e/monitoring.mk
-include e2e/bench.mk
