# The operator benchmark (see e2e/README.md, "Operator benchmark"). Included by the root Makefile;
# not part of `make test`:
#   make bench-operator   ragops vs Argo Rollouts v1.9.1 (built from its Go module, cached) at
#                         N = 100, 500 and 1,000 objects each, each run on a fresh control plane;
#                         prints the side-by-side table. BENCH_OPERATOR_ARGS passes options, e.g.
#                         BENCH_OPERATOR_ARGS="--sizes 100 --steady 30" (see `--help`).

BENCH_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
BENCH_OPERATOR_ARGS ?=
BENCH_TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)

.PHONY: bench-operator

# The operator under test is a release build, like Argo's; the bench itself (stand-in server,
# watches, audit log) is the workspace's debug build, the same for both controllers.
bench-operator: e2e-bins bins
	$(E2E_NICE) $(BENCH_DIR)/hack/build-argo-rollouts.sh
	$(CARGO) build --release -p rag-operator --bin rag-operator
	ulimit -n "$$(ulimit -Hn)"; \
	RAGOPS_OPERATOR_BIN="$${RAGOPS_OPERATOR_BIN:-$(BENCH_TARGET_DIR)/release/rag-operator}" \
	  "$(BENCH_TARGET_DIR)/debug/bench-operator" $(BENCH_OPERATOR_ARGS)

# make bench-secrets   the operator's RSS on an empty cluster and on one holding 5,000 unrelated
#                      Secrets of 10 KiB (BENCH_SECRETS_ARGS, e.g. "--helm-secrets 200
#                      --config-maps 2000"; see `--help`); RAGOPS_OPERATOR_BIN picks the binary.
.PHONY: bench-secrets
bench-secrets: e2e-bins bins
	"$(BENCH_TARGET_DIR)/debug/bench-secrets" $(BENCH_SECRETS_ARGS)
