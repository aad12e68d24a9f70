#!/usr/bin/env bash
# The Gateway API's standard CRDs (HTTPRoute among them), copied from its Go module's own
# config/crd/standard/ at GATEWAY_API_VERSION, into ${RAGOPS_E2E_CACHE}/gateway-api-<version>/crds/.
# The module zip's hash is pinned (GATEWAY_API_SUM in versions.sh). A canary e2e test applies
# them so the weights the operator writes are checked by the real schema and CEL rules.
# Idempotent: a stamp; a warm run takes well under a second. Needs Go >= 1.26 and, cold, the
# Go module proxy (a few seconds: nothing is built).
#
# Usage: gateway-api-crds.sh                fetch (or find cached)
#        gateway-api-crds.sh --print-path   prints the crds/ directory
set -euo pipefail

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.sh
source "${HACK_DIR}/versions.sh"

die() { echo "gateway-api-crds: error: $*" >&2; exit 1; }
log() { echo "gateway-api-crds: $*" >&2; }

MODULE=sigs.k8s.io/gateway-api
OUT="${RAGOPS_E2E_CACHE}/gateway-api-${GATEWAY_API_VERSION}/crds"
if [[ "${1:-}" == "--print-path" ]]; then
  echo "${OUT}"
  exit 0
fi

STAMP="${MODULE}@${GATEWAY_API_VERSION} ${GATEWAY_API_SUM}"
if [[ -d "${OUT}" && "$(cat "${OUT}/.stamp" 2>/dev/null)" == "${STAMP}" ]]; then
  log "cached (${GATEWAY_API_VERSION})"
  exit 0
fi

# shellcheck source=go-env.sh
source "${HACK_DIR}/go-env.sh"
go_env "the Gateway API CRDs ${GATEWAY_API_VERSION}"
info="$(cd /tmp && "${GO}" mod download -json "${MODULE}@${GATEWAY_API_VERSION}")" ||
  die "cannot download ${MODULE}@${GATEWAY_API_VERSION} (is the Go module proxy ${GOPROXY} reachable?)"
sum="$(sed -n 's/^[[:space:]]*"Sum": "\(.*\)",$/\1/p' <<<"${info}")"
dir="$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' <<<"${info}")"
[[ "${sum}" == "${GATEWAY_API_SUM}" ]] ||
  die "${MODULE}@${GATEWAY_API_VERSION} has hash ${sum}, the pin says ${GATEWAY_API_SUM}"
[[ -d "${dir}/config/crd/standard" ]] || die "${MODULE}@${GATEWAY_API_VERSION} has no config/crd/standard/"

rm -rf "${OUT}.tmp"
mkdir -p "${OUT}.tmp"
cp "${dir}"/config/crd/standard/gateway.networking.k8s.io_*.yaml "${OUT}.tmp/"
chmod -R u+w "${OUT}.tmp"
echo "${STAMP}" >"${OUT}.tmp/.stamp"
rm -rf "${OUT}"
mv "${OUT}.tmp" "${OUT}"
log "$(find "${OUT}" -name '*.yaml' | wc -l) CRDs of ${MODULE}@${GATEWAY_API_VERSION}"
