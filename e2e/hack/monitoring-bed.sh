#!/usr/bin/env bash
# Runs CMD against a private e2e cluster whose pod IPs EndpointSlices accept, inside a network
# namespace of its own, so that Prometheus can find ServiceMonitor targets (see e2e/README.md,
# "Monitoring test bed").
#
# The default cluster gives pods loopback IPs, which the API server refuses in EndpointSlices;
# `RAGOPS_E2E_POD_NET=local-route` routes a 198.18.0.0/15 range to `lo` instead. Done in a new
# network namespace (`unshare --net`, needs root), those routes, the control plane, the pods and
# Prometheus exist only there: every packet stays on that namespace's loopback device, and the
# namespace disappears with its last process. The cluster's state dir is a fresh temp dir, kept
# (and named) when CMD fails.
#
# Usage: monitoring-bed.sh -- CMD...   e.g. monitoring-bed.sh -- cargo test -p e2e --test e2e_monitoring_bed -- --include-ignored
# Without root or `unshare`/`ip`, prints why and exits 0 without running CMD (SKIPPED is in the
# output), unless RAGOPS_E2E_MONITORING_REQUIRED=1.
set -euo pipefail

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
log() { echo "monitoring-bed: $*" >&2; }

[[ "${1:-}" == "--" ]] && shift
[[ $# -gt 0 ]] || { echo "usage: monitoring-bed.sh -- CMD..." >&2; exit 2; }

# As root, the two tools come from Debian's packages when missing (like lua5.1 for argocd-test).
install_tools() {
  [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null || return 0
  command -v unshare >/dev/null && command -v ip >/dev/null && return 0
  log "installing util-linux and iproute2"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq util-linux iproute2 >/dev/null
}

if [[ "${MONITORING_BED_INSIDE:-}" != 1 ]]; then
  install_tools || log "could not install util-linux and iproute2"
  why=""
  if [[ "$(id -u)" != 0 ]]; then why="needs root (a network namespace and a local route)"
  elif ! command -v unshare >/dev/null || ! command -v ip >/dev/null; then why="needs unshare (util-linux) and ip (iproute2)"
  elif ! unshare --net true 2>/dev/null; then why="cannot create a network namespace here (unshare --net failed)"
  fi
  if [[ -n "${why}" ]]; then
    [[ "${RAGOPS_E2E_MONITORING_REQUIRED:-0}" == 1 ]] && { log "error: ${why}"; exit 1; }
    log "SKIPPED: the monitoring test bed ${why}; not running: $*"
    exit 0
  fi
  export RAGOPS_E2E_STATE
  RAGOPS_E2E_STATE="$(mktemp -d "${TMPDIR:-/tmp}/ragops-e2e-monitoring.XXXXXX")"
  export MONITORING_BED_INSIDE=1
  # No network but loopback in there: cargo must not try to fetch anything.
  export CARGO_NET_OFFLINE=true
  status=0
  unshare --net "${BASH_SOURCE[0]}" -- "$@" || status=$?
  if [[ "${status}" == 0 ]]; then
    rm -rf "${RAGOPS_E2E_STATE}"
  else
    log "failed (${status}); cluster logs kept in ${RAGOPS_E2E_STATE}/logs"
  fi
  exit "${status}"
fi

# Inside the new network namespace.
ip link set lo up
export RAGOPS_E2E_POD_NET=local-route RAGOPS_E2E_QDRANT=0
down() { RAGOPS_E2E_KEEP_LOGS=1 "${HACK_DIR}/cluster.sh" down >/dev/null 2>&1 || true; }
trap down EXIT
start="$(date +%s)"
eval "$("${HACK_DIR}/cluster.sh" up)"
log "cluster up in $(($(date +%s) - start))s (pod CIDRs ${RAGOPS_E2E_POD_CIDRS}); running: $*"
"$@"
