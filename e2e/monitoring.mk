# The monitoring test bed (see e2e/README.md, "Monitoring test bed"). Included by the root Makefile:
#   make monitoring-bins     build/cache prometheus, promtool (v3.x) and prometheus-operator + its
#                            CRDs from their Go modules (hack/build-monitoring.sh, once per version)
#   make monitoring-bins-bg  start that build in the background, niced (the first step of `make
#                            test`); the next `monitoring-bins` waits for it (one build per cache: flock)
#   make promtool-check      promtool on config/prometheus/: `check rules` on every *.yaml rule
#                            file, `test rules` on every unit test file (*.test.yaml, *_test.yaml;
#                            run from its directory); a visible no-op while the directory does not exist
#   make e2e-monitoring      the e2e_monitoring*.rs tests (incl. ignored) on a private cluster with
#                            routed pod IPs, in a network namespace of its own (hack/monitoring-bed.sh)

MON_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
MON_HACK := $(MON_DIR)/hack
CARGO ?= cargo
# Below the Rust builds it runs beside: it fills the cores they leave idle.
MON_NICE ?= nice -n 15
MON_CACHE := $(or $(RAGOPS_E2E_CACHE),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/ragops-e2e)
MON_BG_LOG := $(MON_CACHE)/monitoring-build.log
PROMETHEUS_RULES_DIR ?= $(abspath $(MON_DIR)/..)/config/prometheus
E2E_MONITORING_TESTS ?= $(sort $(basename $(notdir $(wildcard $(MON_DIR)/tests/e2e_monitoring*.rs))))
E2E_MONITORING_THREADS ?= 2
MON_TEST_ARGS = -p e2e $(addprefix --test ,$(E2E_MONITORING_TESTS))

.PHONY: monitoring-bins monitoring-bins-bg promtool-check e2e-monitoring

# Last in `make test`, so the background build started by its first step has had the most time.
test: promtool-check e2e-monitoring

monitoring-bins-bg:
	@mkdir -p "$(MON_CACHE)"
	@echo "monitoring-bins-bg: building the monitoring test bed in the background ($(MON_BG_LOG))"
	@setsid $(MON_NICE) $(MON_HACK)/build-monitoring.sh >"$(MON_BG_LOG)" 2>&1 </dev/null &

# Waits for a background build (the script's lock), then finds everything cached; or builds.
monitoring-bins:
	@status=0; $(MON_NICE) $(MON_HACK)/build-monitoring.sh || status=$$?; \
	if [ -f "$(MON_BG_LOG)" ]; then \
	  echo "--- background build ($(MON_BG_LOG)) ---"; grep -v '^go: downloading' "$(MON_BG_LOG)" || true; \
	  rm -f "$(MON_BG_LOG)"; \
	fi; \
	exit $$status

promtool-check: monitoring-bins
	@dir="$(PROMETHEUS_RULES_DIR)"; \
	if [ ! -d "$$dir" ]; then \
	  echo "promtool-check: SKIPPED: $$dir does not exist yet, no rules to check"; exit 0; \
	fi; \
	promtool="$$($(MON_HACK)/build-monitoring.sh --print-path promtool)"; \
	mapfile -t rules < <(find "$$dir" -type f \( -name '*.yaml' -o -name '*.yml' \) \
	  ! -name '*[._]test.y*ml' | sort); \
	mapfile -t tests < <(find "$$dir" -type f -name '*[._]test.y*ml' | sort); \
	if [ $${#rules[@]} -eq 0 ] && [ $${#tests[@]} -eq 0 ]; then \
	  echo "promtool-check: SKIPPED: no *.yaml under $$dir"; exit 0; \
	fi; \
	if [ $${#rules[@]} -gt 0 ]; then \
	  echo "promtool check rules $${rules[*]}"; "$$promtool" check rules "$${rules[@]}"; \
	fi; \
	for t in "$${tests[@]}"; do \
	  echo "promtool test rules $$t"; (cd "$$(dirname "$$t")" && "$$promtool" test rules "$$(basename "$$t")"); \
	done

e2e-monitoring: monitoring-bins e2e-bins
	$(CARGO) build --workspace --bins
	$(CARGO) test $(MON_TEST_ARGS) --no-run
	$(MON_HACK)/monitoring-bed.sh -- $(CARGO) test $(MON_TEST_ARGS) --no-fail-fast -- \
	  --include-ignored --test-threads=$(E2E_MONITORING_THREADS)
