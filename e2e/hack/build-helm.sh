#!/usr/bin/env bash
# Builds helm from its Go module (helm.sh/helm/v3/cmd/helm at HELM_VERSION) into the same
# versioned bin dir as the control plane (${E2E_BIN_DIR}/helm), once per pinned version.
# Idempotent: a binary whose stamp matches its version and build flags is not rebuilt. The
# module hashes are pinned in gosum/helm-<version>.sum. Needs Go >= 1.26 and the Go module proxy.
#
# Usage: build-helm.sh [--print-path]
set -euo pipefail

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.sh
source "${HACK_DIR}/versions.sh"

HELM_BIN="${E2E_BIN_DIR}/helm"
if [[ "${1:-}" == "--print-path" ]]; then
  echo "${HELM_BIN}"
  exit 0
fi

die() { echo "build-helm: error: $*" >&2; exit 1; }
log() { echo "build-helm: $*" >&2; }

GO="${GO:-$(command -v go || true)}"
[[ -z "${GO}" && -x /usr/local/go/bin/go ]] && GO=/usr/local/go/bin/go
[[ -n "${GO}" && -x "${GO}" ]] ||
  die "Go not found. Install Go >= 1.26 (https://go.dev/dl/) and put it on PATH, or set GO=/path/to/go."

export GOMODCACHE="${RAGOPS_E2E_CACHE}/gomod"
export GOCACHE="${RAGOPS_E2E_CACHE}/gocache"
export GOTOOLCHAIN=local
export CGO_ENABLED=0
export GOPROXY="${GOPROXY:-https://proxy.golang.org,direct}"
# Hashes are pinned in the checked-in go.sum (gosum/helm-<version>.sum), not the checksum database.
export GOSUMDB="${GOSUMDB:-off}"
export GOFLAGS="-mod=mod -buildvcs=false"
export GOWORK=off

GO_VERSION="$("${GO}" env GOVERSION)"
go_minor="$(sed -E 's/^go1\.([0-9]+).*/\1/' <<<"${GO_VERSION}")"
[[ "${go_minor}" =~ ^[0-9]+$ && "${go_minor}" -ge 26 ]] ||
  die "${GO} is ${GO_VERSION}; helm ${HELM_VERSION} needs Go >= 1.26 (GOTOOLCHAIN=local, no auto-download)."

SRC_DIR="${RAGOPS_E2E_CACHE}/src/helm-${HELM_VERSION}"
mkdir -p "${E2E_BIN_DIR}" "${SRC_DIR}" "${GOMODCACHE}" "${GOCACHE}"

# The same lock as build-control-plane.sh: one Go build at a time per cache.
exec 9>"${RAGOPS_E2E_CACHE}/.build.lock"
command -v flock >/dev/null && flock 9

STAMP="helm ${HELM_VERSION} ${GO_VERSION}"
if [[ -x "${HELM_BIN}" && "$(cat "${E2E_BIN_DIR}/.helm.stamp" 2>/dev/null)" == "${STAMP}" ]]; then
  log "helm: cached (${STAMP})"
  exit 0
fi

cat >"${SRC_DIR}/go.mod" <<EOM
module ragops.invalid/e2e/helm

go 1.26.0

require helm.sh/helm/v3 ${HELM_VERSION}
EOM
PIN="${HACK_DIR}/gosum/helm-${HELM_VERSION}.sum"
if [[ -f "${PIN}" ]]; then cp "${PIN}" "${SRC_DIR}/go.sum"; else rm -f "${SRC_DIR}/go.sum"; fi

start="$(date +%s)"
log "helm: resolving helm.sh/helm/v3@${HELM_VERSION} ..."
out="$(cd "${SRC_DIR}" && "${GO}" mod download helm.sh/helm/v3 2>&1 &&
  "${GO}" list -m -f '{{.Version}}' k8s.io/client-go 2>&1)" ||
  die "cannot resolve helm.sh/helm/v3@${HELM_VERSION} from GOPROXY=${GOPROXY}. Is the Go module proxy reachable?
${out}"
client_go="$(tail -n1 <<<"${out}")"
# As helm's Makefile: the Kubernetes version helm assumes offline (lint, template) is that of its
# client-go, v0.X.Y -> 1.X.
[[ "${client_go}" =~ ^v0\.([0-9]+)\. ]] || die "unexpected k8s.io/client-go version '${client_go}'"
k8s_minor="${BASH_REMATCH[1]}"

LDFLAGS="-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}"
LDFLAGS+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for p in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
  LDFLAGS+=" -X ${p}.k8sVersionMajor=1 -X ${p}.k8sVersionMinor=${k8s_minor}"
done

log "helm: building helm.sh/helm/v3/cmd/helm (Kubernetes 1.${k8s_minor}) ..."
tmp="${E2E_BIN_DIR}/.helm.tmp"
(cd "${SRC_DIR}" && "${GO}" build -trimpath -o "${tmp}" -ldflags "${LDFLAGS}" helm.sh/helm/v3/cmd/helm) ||
  die "building helm failed (see above)"
mv -f "${tmp}" "${HELM_BIN}"
echo "${STAMP}" >"${E2E_BIN_DIR}/.helm.stamp"
log "helm: built in $(($(date +%s) - start))s: $("${HELM_BIN}" version --short)"
