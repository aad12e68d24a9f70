# Argo CD health checks and resource actions (Lua); the root Makefile includes this file.
#   make argocd-test   run every script against the fixtures in config/argocd/test (Lua 5.1, the
#                      language of Argo CD's gopher-lua) and check argocd-cm.yaml is up to date
#   make argocd-cm     regenerate config/argocd/argocd-cm.yaml from the scripts
.PHONY: argocd-test argocd-cm argocd-lua

ARGOCD_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
LUA ?= lua5.1

# Debian/Ubuntu package lua5.1; installed when missing (root, or sudo without a password).
argocd-lua:
	@if ! command -v $(LUA) >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then sudo=; \
	  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo=sudo; \
	  else echo "argocd: $(LUA) is missing; install it as root: apt-get install -y lua5.1" >&2; exit 1; fi; \
	  echo "argocd: installing lua5.1" >&2; \
	  $$sudo apt-get update -qq && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq lua5.1 >/dev/null; \
	fi

argocd-test: argocd-lua
	$(LUA) $(ARGOCD_DIR)/test/run.lua $(ARGOCD_DIR)

argocd-cm: argocd-lua
	$(LUA) $(ARGOCD_DIR)/test/run.lua $(ARGOCD_DIR) --write-cm

test: argocd-test
