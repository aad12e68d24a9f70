#!/usr/bin/env bash
# Builds the e2e control plane from upstream Go modules, once per pinned version:
#   etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kwok
# into ${RAGOPS_E2E_CACHE}/bin/<k8s-version>/. Idempotent: a binary whose stamp matches its
# pinned version and build flags is not rebuilt. Needs Go (>= the version Kubernetes' go.mod
# asks for) and a reachable Go module proxy; nothing else.
#
# Usage: build-control-plane.sh [--print-bin-dir]
set -euo pipefail

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.sh
source "${HACK_DIR}/versions.sh"

if [[ "${1:-}" == "--print-bin-dir" ]]; then
  echo "${E2E_BIN_DIR}"
  exit 0
fi

die() { echo "build-control-plane: error: $*" >&2; exit 1; }
log() { echo "build-control-plane: $*" >&2; }

# shellcheck source=go-env.sh
source "${HACK_DIR}/go-env.sh"
go_env "Kubernetes ${K8S_VERSION}"

TAGS="selinux,notest,grpcnotrace"
SRC_DIR="${RAGOPS_E2E_CACHE}/src"
mkdir -p "${E2E_BIN_DIR}" "${SRC_DIR}" "${GOMODCACHE}" "${GOCACHE}"

# One build at a time per cache (two `make e2e` in parallel would otherwise race).
exec 9>"${RAGOPS_E2E_CACHE}/.build.lock"
command -v flock >/dev/null && flock 9

now() { date +%s; }
TOTAL_START="$(now)"

stamp_ok() { # name, expected stamp
  [[ -x "${E2E_BIN_DIR}/$1" && -f "${E2E_BIN_DIR}/.$1.stamp" && "$(cat "${E2E_BIN_DIR}/.$1.stamp")" == "$2" ]]
}

# go_build <name> <stamp> <module dir> <package> [extra go build args...]
go_build() {
  local name="$1" stamp="$2" dir="$3" pkg="$4"
  shift 4
  if stamp_ok "${name}" "${stamp}"; then
    log "${name}: cached (${stamp})"
    return
  fi
  log "${name}: building ${pkg} ..."
  local start tmp
  start="$(now)"
  tmp="${E2E_BIN_DIR}/.${name}.tmp"
  (cd "${dir}" && "${GO}" build -trimpath -tags "${TAGS}" -o "${tmp}" "$@" "${pkg}") ||
    die "building ${name} failed (see above)"
  mv -f "${tmp}" "${E2E_BIN_DIR}/${name}"
  echo "${stamp}" >"${E2E_BIN_DIR}/.${name}.stamp"
  log "${name}: built in $(($(now) - start))s"
}

# download_mod <module@version>: prints the module's cached .mod file path; clear error if offline.
download_mod() {
  local out
  out="$(cd "${SRC_DIR}" && "${GO}" mod download -json "$1" 2>&1)" ||
    die "cannot download $1 from GOPROXY=${GOPROXY}. Is the Go module proxy reachable?
${out}"
  sed -nE 's/^\s*"GoMod": "(.*)",?$/\1/p' <<<"${out}"
}

# download_dir <module@version>: prints the module's extracted source directory.
download_dir() {
  local out
  out="$(cd "${SRC_DIR}" && "${GO}" mod download -json "$1" 2>&1)" ||
    die "cannot download $1 from GOPROXY=${GOPROXY}. Is the Go module proxy reachable?
${out}"
  sed -nE 's/^\s*"Dir": "(.*)",?$/\1/p' <<<"${out}"
}

# Seed a wrapper module's go.sum from the checked-in pin, so a changed upstream hash fails the build.
seed_sum() { # wrapper dir, pin name
  local pin="${HACK_DIR}/gosum/$2.sum"
  if [[ -f "${pin}" ]]; then cp "${pin}" "$1/go.sum"; fi
}

# Fails early, with a clear message, when the proxy is unreachable and the cache is cold.
K8S_MOD="$(download_mod "k8s.io/kubernetes@${K8S_VERSION}")"
[[ -f "${K8S_MOD}" ]] || die "no go.mod for k8s.io/kubernetes@${K8S_VERSION}"

# ---- etcd: its own module, so its dependency versions never mix with Kubernetes' ----
ETCD_DIR="${SRC_DIR}/etcd-${ETCD_VERSION}"
mkdir -p "${ETCD_DIR}"
cat >"${ETCD_DIR}/go.mod" <<EOF
module ragops.invalid/e2e/etcd

go 1.26.0

require go.etcd.io/etcd/server/v3 ${ETCD_VERSION}
EOF
seed_sum "${ETCD_DIR}" "etcd-${ETCD_VERSION}"
go_build etcd "etcd ${ETCD_VERSION} ${GO_VERSION} ${TAGS}" "${ETCD_DIR}" go.etcd.io/etcd/server/v3

# ---- kwok: plain module, no replace directives ----
KWOK_DIR="${SRC_DIR}/kwok-${KWOK_VERSION}"
mkdir -p "${KWOK_DIR}"
cat >"${KWOK_DIR}/go.mod" <<EOF
module ragops.invalid/e2e/kwok

go 1.26.0

require sigs.k8s.io/kwok ${KWOK_VERSION}
EOF
seed_sum "${KWOK_DIR}" "kwok-${KWOK_VERSION}"
go_build kwok "kwok ${KWOK_VERSION} ${GO_VERSION} ${TAGS}" "${KWOK_DIR}" sigs.k8s.io/kwok/cmd/kwok \
  -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v} -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=${K8S_VERSION#v}"

# The standalone kwok binary has no built-in stages (kwokctl adds them); ship kwokctl's defaults:
# node init + heartbeat with Lease, pods Ready at once, Jobs complete, deletion finalised.
# One change: pod-complete (which marks every Running Job pod Succeeded at once) skips pods whose
# container image name (last path segment, no tag or digest) contains "rag-runtime". Those run for
# real under the e2e SpecRunner, which writes their terminal status itself; the API server refuses
# to move a pod out of Succeeded, so KWOK must not get there first. Bump STAGES_REV on any change.
STAGES_REV="kwok ${KWOK_VERSION} ragops-stages 2"
RUNNER_IMAGE_QUERY='.spec.containers.[].image | split("@") | .[0] | split("/") | last | split(":") | .[0] | contains("rag-runtime")'
KWOK_SRC="$(download_dir "sigs.k8s.io/kwok@${KWOK_VERSION}")"
STAGES="${E2E_BIN_DIR}/kwok-stages.yaml"
# pod_complete_skipping_runner_pods <file>: the stage with one more (ANDed) selector expression.
pod_complete_skipping_runner_pods() {
  local out
  out="$(awk -v q="${RUNNER_IMAGE_QUERY}" '
    /^  next:/ && !done {
      print "    # ragops e2e: pods the SpecRunner runs (rag-runtime images) finish for real."
      print "    - key: '\''" q "'\''"
      print "      operator: '\''NotIn'\''"
      print "      values:"
      print "      - '\''true'\''"
      done = 1
    }
    { print }' "$1")"
  grep -qF "contains(\"rag-runtime\")" <<<"${out}" && grep -q "^  selector:" <<<"${out}" ||
    die "kwok ${KWOK_VERSION}: $1 changed shape; cannot add the rag-runtime selector"
  echo "${out}"
}
if [[ ! -f "${STAGES}" || "$(cat "${STAGES%/*}/.kwok-stages.yaml.stamp" 2>/dev/null)" != "${STAGES_REV}" ]]; then
  for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
    pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
    [[ -f "${KWOK_SRC}/kustomize/stage/${f}" ]] || die "kwok ${KWOK_VERSION} has no kustomize/stage/${f}"
    echo "---"
    if [[ "${f}" == pod/fast/pod-complete.yaml ]]; then
      pod_complete_skipping_runner_pods "${KWOK_SRC}/kustomize/stage/${f}"
    else
      cat "${KWOK_SRC}/kustomize/stage/${f}"
    fi
  done >"${STAGES}.tmp"
  mv -f "${STAGES}.tmp" "${STAGES}"
  echo "${STAGES_REV}" >"${E2E_BIN_DIR}/.kwok-stages.yaml.stamp"
  log "kwok-stages.yaml: written (${STAGES_REV})"
fi

# ---- Kubernetes: wrapper module replacing every staging module with its published tag ----
K8S_DIR="${SRC_DIR}/k8s-${K8S_VERSION}"
mkdir -p "${K8S_DIR}"
STAGING_VERSION="v0.${K8S_VERSION#v1.}"
mapfile -t STAGING < <(sed -nE 's#^\s*(k8s\.io/[a-z0-9-]+) => \./staging/.*#\1#p' "${K8S_MOD}")
((${#STAGING[@]} > 20)) || die "found only ${#STAGING[@]} staging modules in ${K8S_MOD}; format changed?"
{
  echo "module ragops.invalid/e2e/kubernetes"
  echo
  echo "go 1.26.0"
  echo
  grep -E '^godebug ' "${K8S_MOD}" || true
  echo
  echo "require k8s.io/kubernetes ${K8S_VERSION}"
  echo
  echo "replace ("
  for m in "${STAGING[@]}"; do echo "	${m} => ${m} ${STAGING_VERSION}"; done
  echo ")"
} >"${K8S_DIR}/go.mod"
seed_sum "${K8S_DIR}" "k8s-${K8S_VERSION}"

minor="${K8S_VERSION#v1.}"
minor="${minor%%.*}"
K8S_LDFLAGS="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  K8S_LDFLAGS+=" -X ${p}.gitVersion=${K8S_VERSION} -X ${p}.gitMajor=1 -X ${p}.gitMinor=${minor}"
  K8S_LDFLAGS+=" -X ${p}.gitTreeState=clean"
done
for name in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
  go_build "${name}" "k8s ${K8S_VERSION} ${GO_VERSION} ${TAGS}" "${K8S_DIR}" "k8s.io/kubernetes/cmd/${name}" \
    -ldflags "${K8S_LDFLAGS}"
done

log "all binaries in ${E2E_BIN_DIR} (total $(($(now) - TOTAL_START))s)"
