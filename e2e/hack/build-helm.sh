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

# shellcheck source=go-env.sh
source "${HACK_DIR}/go-env.sh"
go_env "helm ${HELM_VERSION}"

SRC_DIR="${RAGOPS_E2E_CACHE}/src/helm-${HELM_VERSION}"
mkdir -p "${E2E_BIN_DIR}" "${SRC_DIR}"
go_build_lock

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
