#!/usr/bin/env bash
# Builds Argo Rollouts' controller from its Go module, for the side-by-side operator benchmark
# (`make bench-operator`; never part of `make test`):
#   rollouts-controller   github.com/argoproj/argo-rollouts/cmd/rollouts-controller at
#                         ARGO_ROLLOUTS_VERSION, built inside a copy of the module itself, so its
#                         own go.mod (with its k8s.io replace block) and go.sum decide every
#                         dependency (-mod=readonly: nothing the module does not pin)
#   crds/                 the module's own manifests/crds/*.yaml
# into ${RAGOPS_E2E_CACHE}/bin/argo-rollouts-<version>/. The module zip's hash is pinned below
# (ARGO_ROLLOUTS_SUM), so the go.sum it carries is trusted only through that pin. Idempotent: a
# stamp (version, Go version); a warm run takes well under a second. Needs Go >= 1.26 and, cold,
# the Go module proxy (~5 min on 2 cores).
#
# Usage: build-argo-rollouts.sh                build (or find cached)
#        build-argo-rollouts.sh --print-path   prints the directory (controller binary + crds/)
set -euo pipefail

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.sh
source "${HACK_DIR}/versions.sh"

die() { echo "build-argo-rollouts: error: $*" >&2; exit 1; }
log() { echo "build-argo-rollouts: $*" >&2; }

MODULE=github.com/argoproj/argo-rollouts
OUT="${RAGOPS_E2E_CACHE}/bin/argo-rollouts-${ARGO_ROLLOUTS_VERSION}"
if [[ "${1:-}" == "--print-path" ]]; then
  echo "${OUT}"
  exit 0
fi

# shellcheck source=go-env.sh
source "${HACK_DIR}/go-env.sh"
go_env "Argo Rollouts ${ARGO_ROLLOUTS_VERSION}"
go_build_lock

STAMP="${MODULE}@${ARGO_ROLLOUTS_VERSION} ${ARGO_ROLLOUTS_SUM} ${GO_VERSION}"
if [[ -x "${OUT}/rollouts-controller" && "$(cat "${OUT}/.stamp" 2>/dev/null)" == "${STAMP}" ]]; then
  log "cached (${ARGO_ROLLOUTS_VERSION})"
  exit 0
fi

start="$(date +%s)"
info="$(cd /tmp && "${GO}" mod download -json "${MODULE}@${ARGO_ROLLOUTS_VERSION}")" ||
  die "cannot download ${MODULE}@${ARGO_ROLLOUTS_VERSION} (is the Go module proxy ${GOPROXY} reachable?)"
sum="$(sed -n 's/^[[:space:]]*"Sum": "\(.*\)",$/\1/p' <<<"${info}")"
dir="$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' <<<"${info}")"
[[ "${sum}" == "${ARGO_ROLLOUTS_SUM}" ]] ||
  die "${MODULE}@${ARGO_ROLLOUTS_VERSION} has hash ${sum}, the pin says ${ARGO_ROLLOUTS_SUM}"

src="${RAGOPS_E2E_CACHE}/src/argo-rollouts-${ARGO_ROLLOUTS_VERSION}"
rm -rf "${src}"
mkdir -p "${src}" "${OUT}"
cp -r "${dir}/." "${src}/"
chmod -R u+w "${src}"
log "building rollouts-controller ${ARGO_ROLLOUTS_VERSION} ..."
tmp="${OUT}/.rollouts-controller.tmp"
(cd "${src}" && GOFLAGS="-mod=readonly -buildvcs=false" "${GO}" build -trimpath -o "${tmp}" \
  -ldflags "-s -w -X github.com/argoproj/argo-rollouts/utils/version.version=${ARGO_ROLLOUTS_VERSION#v}" \
  ./cmd/rollouts-controller) || die "building rollouts-controller failed (see above)"
rm -rf "${OUT}/crds"
mkdir -p "${OUT}/crds"
cp "${src}"/manifests/crds/*-crd.yaml "${OUT}/crds/"
mv -f "${tmp}" "${OUT}/rollouts-controller"
echo "${STAMP}" >"${OUT}/.stamp"
log "built in $(($(date +%s) - start))s: ${OUT}"
