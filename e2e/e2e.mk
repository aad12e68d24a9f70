# End-to-end tests against a real control plane on loopback (see e2e/README.md).
# Included by the root Makefile:
#   make e2e-bins      build/cache etcd, kube-*, kubectl, kwok, helm (once per pinned version)
#   make chart-lint    helm lint --strict of charts/rag-operator (default values and variants)
#   make cluster-up    start the control plane; prints `export KUBECONFIG=...`
#   make cluster-down  stop it (E2E_KEEP_LOGS=1 keeps logs and the audit log)
#   make cluster-updown-loop  up/status/down E2E_UPDOWN_RUNS times in private state dirs
#   make e2e           bins -> build -> cluster up -> cargo test -p e2e -> cluster down (always)
#   make qdrant-install  cache the pinned Qdrant server (hack/qdrant.sh; prebuilt, else from source)

E2E_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
E2E_HACK := $(E2E_DIR)/hack
CARGO ?= cargo
E2E_TEST_THREADS ?= 2
# The Go build takes tens of minutes on two cores; keep the machine responsive meanwhile.
E2E_NICE ?= nice -n 10
E2E_KEEP_LOGS ?= 0
# Extra arguments for the test binary, e.g. E2E_TEST_ARGS=e2e_cluster
E2E_TEST_ARGS ?=
# Iterations of cluster-updown-loop.
E2E_UPDOWN_RUNS ?= 20
# A Qdrant server beside the cluster (RAGOPS_E2E_QDRANT_URL): 1 on, 0 off, auto (default) on when
# the prebuilt server is cached or can be installed at once, never building it from source.
E2E_QDRANT ?= $(or $(RAGOPS_E2E_QDRANT),auto)
E2E_QDRANT_DECIDE = qdrant=$(E2E_QDRANT); \
	if [ "$$qdrant" = auto ]; then \
	  if $(E2E_HACK)/qdrant.sh install --if-prebuilt; then qdrant=1; else qdrant=0; fi; \
	fi

export RAGOPS_E2E_STATE ?= $(abspath $(E2E_DIR)/..)/.e2e/cluster

.PHONY: e2e-bins chart-lint cluster-up cluster-down cluster-env cluster-updown-loop e2e qdrant-install

e2e-bins:
	$(E2E_NICE) $(E2E_HACK)/build-control-plane.sh
	$(E2E_NICE) $(E2E_HACK)/build-helm.sh
	$(E2E_HACK)/gateway-api-crds.sh

HELM_CHART := $(abspath $(E2E_DIR)/..)/charts/rag-operator
chart-lint: e2e-bins
	@helm="$$($(E2E_HACK)/build-helm.sh --print-path)"; \
	for sets in "" "--set watchNamespace=ragops --set logFormat=text" \
	  "--set leaderElection.enabled=false --set replicas=1 --set metrics.serviceMonitor.enabled=true"; do \
	  echo "helm lint --strict $(HELM_CHART) $$sets"; \
	  "$$helm" lint --strict --quiet $(HELM_CHART) $$sets; \
	done

cluster-up: e2e-bins
	@$(E2E_QDRANT_DECIDE); RAGOPS_E2E_QDRANT=$$qdrant $(E2E_HACK)/cluster.sh up

qdrant-install:
	$(E2E_HACK)/qdrant.sh install

cluster-down:
	RAGOPS_E2E_KEEP_LOGS=$(E2E_KEEP_LOGS) $(E2E_HACK)/cluster.sh down

cluster-env:
	@$(E2E_HACK)/cluster.sh env

# Start/stop reliability: each run uses its own temp state dir, never the one above.
cluster-updown-loop: e2e-bins
	$(E2E_HACK)/updown-loop.sh $(E2E_UPDOWN_RUNS)

# The whole workspace is built first (the tests start target/debug/rag-operator), so the
# cluster is not kept waiting on the compiler. The monitoring CRDs come from monitoring-bins
# (e2e_chart_rbac and e2e_no_monitoring_crds install them). Teardown always runs (logs kept on failure),
# except for a cluster that was already running before (e.g. from `make cluster-up`).
e2e: e2e-bins monitoring-bins
	$(CARGO) build --workspace --bins
	@status=0; down=1; \
	if $(E2E_HACK)/cluster.sh status 2>/dev/null; then down=0; fi; \
	trap 'if [ $$down = 1 ]; then RAGOPS_E2E_KEEP_LOGS=1 $(E2E_HACK)/cluster.sh down; fi; exit 130' INT TERM; \
	$(E2E_QDRANT_DECIDE); \
	if env_out="$$(RAGOPS_E2E_QDRANT=$$qdrant $(E2E_HACK)/cluster.sh up)"; then \
	  eval "$$env_out"; \
	  export RAGOPS_E2E_GATEWAY_CRDS="$$($(E2E_HACK)/gateway-api-crds.sh --print-path)"; \
	  $(CARGO) test -p e2e --no-fail-fast -- --test-threads=$(E2E_TEST_THREADS) $(E2E_TEST_ARGS) || status=$$?; \
	else \
	  status=1; \
	fi; \
	if [ "$$down" = 0 ]; then \
	  echo "e2e: leaving the cluster that was already running up (make cluster-down)" >&2; \
	elif [ "$$status" -ne 0 ]; then \
	  RAGOPS_E2E_KEEP_LOGS=1 $(E2E_HACK)/cluster.sh down; \
	  echo "e2e failed; control plane logs in $(RAGOPS_E2E_STATE)" >&2; \
	else \
	  RAGOPS_E2E_KEEP_LOGS=$(E2E_KEEP_LOGS) $(E2E_HACK)/cluster.sh down; \
	fi; \
	exit $$status
