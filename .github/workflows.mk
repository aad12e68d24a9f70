# Checks of the repository's own CI configuration and dependency policy; the root Makefile
# includes this file and `make test` runs both (the GitHub workflows run them too):
#   make workflows-lint   actionlint on every workflow under .github/workflows (shellcheck on the
#                         run: blocks too when shellcheck is on PATH; it is not required)
#   make deny             cargo deny check bans licenses sources (deny.toml). The advisories check
#                         needs the RustSec database from the network: security.yml runs it.
# Both tools are built from pinned sources once per version, outside the checkout: actionlint
# from its Go module (e2e/hack/build-go-tool.sh, go.sum pinned in e2e/hack/gosum/), cargo-deny
# with `cargo install --locked` into ${XDG_CACHE_HOME:-~/.cache}/ragops-tools.
.PHONY: workflows-lint actionlint-bin deny cargo-deny-bin

WORKFLOWS_ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))..)
CARGO ?= cargo
TOOLS_NICE ?= nice -n 5

ACTIONLINT_VERSION := v1.7.12
ACTIONLINT_BUILD := $(WORKFLOWS_ROOT)/e2e/hack/build-go-tool.sh
ACTIONLINT_ARGS := actionlint github.com/rhysd/actionlint@$(ACTIONLINT_VERSION) \
  github.com/rhysd/actionlint/cmd/actionlint
WORKFLOW_FILES = $(patsubst $(WORKFLOWS_ROOT)/%,%,$(wildcard \
  $(WORKFLOWS_ROOT)/.github/workflows/*.yml $(WORKFLOWS_ROOT)/.github/workflows/*.yaml))

# cargo-deny 0.20.2 needs rustc >= 1.88 (the workspace builds with 1.95).
CARGO_DENY_VERSION := 0.20.2
RAGOPS_TOOLS_ROOT ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/ragops-tools
CARGO_DENY := $(RAGOPS_TOOLS_ROOT)/bin/cargo-deny

actionlint-bin:
	$(TOOLS_NICE) $(ACTIONLINT_BUILD) $(ACTIONLINT_ARGS)

workflows-lint: actionlint-bin
	@test -n "$(WORKFLOW_FILES)" || { echo "workflows-lint: no workflow files" >&2; exit 1; }
	@echo "actionlint $(ACTIONLINT_VERSION) $(WORKFLOW_FILES)"
	@cd $(WORKFLOWS_ROOT) && "$$($(ACTIONLINT_BUILD) --print-path $(ACTIONLINT_ARGS))" $(WORKFLOW_FILES)

# Installed (in its own target dir, not the workspace's) unless this exact version is there.
cargo-deny-bin:
	@mkdir -p $(RAGOPS_TOOLS_ROOT)
	@exec 9>$(RAGOPS_TOOLS_ROOT)/.install.lock; if command -v flock >/dev/null; then flock 9; fi; \
	if [ "$$($(CARGO_DENY) --version 2>/dev/null)" = "cargo-deny $(CARGO_DENY_VERSION)" ]; then \
	  echo "cargo-deny $(CARGO_DENY_VERSION): cached"; \
	else \
	  echo "cargo-deny $(CARGO_DENY_VERSION): installing into $(RAGOPS_TOOLS_ROOT) (a few minutes)"; \
	  env -u CARGO_TARGET_DIR $(TOOLS_NICE) $(CARGO) install cargo-deny --locked --force \
	    --version $(CARGO_DENY_VERSION) --root $(RAGOPS_TOOLS_ROOT); \
	fi

# Errors only (security.yml shows the duplicate-version warnings); an allowed licence that no
# dependency uses is an error too, so deny.toml's list stays exact.
deny: cargo-deny-bin
	cd $(WORKFLOWS_ROOT) && $(CARGO_DENY) --log-level error check -D license-not-encountered \
	  bans licenses sources

test: workflows-lint deny
