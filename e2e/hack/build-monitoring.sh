#!/usr/bin/env bash
# Builds the monitoring test bed from Go modules, once per pinned version (see e2e/README.md,
# "Monitoring test bed"):
#   prometheus, promtool   github.com/prometheus/prometheus at PROMETHEUS_VERSION (release v3.X.Y is
#                          the Go module version v0.3XX.Y); tags remove_all_sd,enable_kubernetes_sd
#                          (only Kubernetes service discovery), no builtinassets (no web UI)
#   prometheus-operator    github.com/prometheus-operator/prometheus-operator/cmd/operator at
#                          PROMETHEUS_OPERATOR_VERSION, and its CRDs copied from the module's own
#                          example/prometheus-operator-crd/ (monitoring.coreos.com, not hand-written)
# into ${RAGOPS_E2E_CACHE}/bin/prometheus-<version>/ and bin/prometheus-operator-<version>/.
# Idempotent: a stamp (versions, tags, Go version) per directory; a warm run takes well under a
# second. Module hashes are pinned in gosum/<name>-<version>.sum (RAGOPS_UPDATE_GOSUM=1 rewrites
# them from a fresh resolution, to review in git). Needs Go >= 1.26 and, cold, the module proxy.
#
# Usage: build-monitoring.sh [prometheus|operator]...   build (default: both)
#        build-monitoring.sh --print-path NAME         prometheus|promtool|prometheus-operator|crds
#        build-monitoring.sh --print-env               RAGOPS_E2E_PROMETHEUS=... lines (no build)
set -euo pipefail

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.sh
source "${HACK_DIR}/versions.sh"

die() { echo "build-monitoring: error: $*" >&2; exit 1; }
log() { echo "build-monitoring: $*" >&2; }

# Release v3.X.Y -> module version v0.3XX.Y (v3.16.0 -> v0.316.0, v3.5.2 -> v0.305.2).
[[ "${PROMETHEUS_VERSION}" =~ ^v3\.([0-9]+)\.([0-9]+)$ ]] ||
  die "PROMETHEUS_VERSION must be a v3.X.Y release, not '${PROMETHEUS_VERSION}'"
PROM_MODULE_VERSION="$(printf 'v0.3%02d.%d' "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}")"
PROM_DIR="${RAGOPS_E2E_CACHE}/bin/prometheus-${PROMETHEUS_VERSION}"
OP_DIR="${RAGOPS_E2E_CACHE}/bin/prometheus-operator-${PROMETHEUS_OPERATOR_VERSION}"
PROM_TAGS="remove_all_sd,enable_kubernetes_sd"

print_path() {
  case "$1" in
    prometheus | promtool) echo "${PROM_DIR}/$1" ;;
    prometheus-operator) echo "${OP_DIR}/prometheus-operator" ;;
    crds) echo "${OP_DIR}/crds" ;;
    *) die "unknown name '$1' (prometheus, promtool, prometheus-operator, crds)" ;;
  esac
}
case "${1:-}" in
  --print-path) print_path "${2:-}"; exit 0 ;;
  --print-env)
    echo "RAGOPS_E2E_PROMETHEUS=$(print_path prometheus)"
    echo "RAGOPS_E2E_PROMTOOL=$(print_path promtool)"
    echo "RAGOPS_E2E_PROMETHEUS_OPERATOR=$(print_path prometheus-operator)"
    echo "RAGOPS_E2E_MONITORING_CRDS=$(print_path crds)"
    echo "RAGOPS_E2E_PROMETHEUS_VERSION=${PROMETHEUS_VERSION}"
    exit 0 ;;
esac

# shellcheck source=go-env.sh
source "${HACK_DIR}/go-env.sh"
go_env "the monitoring test bed"
update="${RAGOPS_UPDATE_GOSUM:-0}"

# wrapper NAME MODULE VERSION: a module of our own that requires MODULE@VERSION, with the pinned
# go.sum copied in; prints its directory.
wrapper() {
  local name="$1" module="$2" version="$3" dir pin
  dir="${RAGOPS_E2E_CACHE}/src/${name}-${version}"
  pin="${HACK_DIR}/gosum/${name}-${version}.sum"
  [[ -f "${pin}" || "${update}" == 1 ]] ||
    die "no pinned go.sum ${pin}; run once with RAGOPS_UPDATE_GOSUM=1 and commit it"
  mkdir -p "${dir}"
  printf 'module ragops.invalid/e2e/%s\n\ngo 1.26.0\n\nrequire %s %s\n' \
    "${name}" "${module}" "${version}" >"${dir}/go.mod"
  if [[ "${update}" == 1 ]]; then rm -f "${dir}/go.sum"; else cp "${pin}" "${dir}/go.sum"; fi
  (cd "${dir}" && "${GO}" mod download "${module}") ||
    die "cannot download ${module}@${version} (is the Go module proxy ${GOPROXY} reachable?)"
  echo "${dir}"
}

# check_pin NAME VERSION DIR: every module the build used must already be pinned.
check_pin() {
  local pin="${HACK_DIR}/gosum/$1-$2.sum"
  if [[ "${update}" == 1 ]]; then
    cp "$3/go.sum" "${pin}"
    log "wrote ${pin}"
  elif ! cmp -s "$3/go.sum" "${pin}"; then
    diff "${pin}" "$3/go.sum" >&2 || true
    die "the build used modules whose hashes ${pin} does not pin (above)"
  fi
}

build_prometheus() {
  local stamp="prometheus ${PROMETHEUS_VERSION} (${PROM_MODULE_VERSION}) tags=${PROM_TAGS} ${GO_VERSION}"
  if [[ -x "${PROM_DIR}/prometheus" && -x "${PROM_DIR}/promtool" &&
    "$(cat "${PROM_DIR}/.stamp" 2>/dev/null)" == "${stamp}" ]]; then
    log "prometheus, promtool: cached (${PROMETHEUS_VERSION})"
    return 0
  fi
  local start dir v="github.com/prometheus/common/version" ldflags
  start="$(date +%s)"
  dir="$(wrapper prometheus github.com/prometheus/prometheus "${PROM_MODULE_VERSION}")"
  ldflags="-s -w -X ${v}.Version=${PROMETHEUS_VERSION#v} -X ${v}.Branch=HEAD"
  ldflags+=" -X ${v}.Revision=${PROM_MODULE_VERSION} -X ${v}.BuildUser=ragops-e2e"
  log "building prometheus, promtool ${PROMETHEUS_VERSION} (module ${PROM_MODULE_VERSION}) ..."
  mkdir -p "${PROM_DIR}/.tmp"
  (cd "${dir}" && "${GO}" build -trimpath -tags "${PROM_TAGS}" -ldflags "${ldflags}" \
    -o "${PROM_DIR}/.tmp/" github.com/prometheus/prometheus/cmd/prometheus \
    github.com/prometheus/prometheus/cmd/promtool) || die "building prometheus failed (see above)"
  check_pin prometheus "${PROM_MODULE_VERSION}" "${dir}"
  mv -f "${PROM_DIR}/.tmp/prometheus" "${PROM_DIR}/.tmp/promtool" "${PROM_DIR}/"
  rmdir "${PROM_DIR}/.tmp"
  echo "${stamp}" >"${PROM_DIR}/.stamp"
  log "prometheus, promtool: built in $(($(date +%s) - start))s: $("${PROM_DIR}/prometheus" --version | head -n1)"
}

build_operator() {
  local module=github.com/prometheus-operator/prometheus-operator
  local stamp="prometheus-operator ${PROMETHEUS_OPERATOR_VERSION} crds ${GO_VERSION}"
  if [[ -x "${OP_DIR}/prometheus-operator" && -d "${OP_DIR}/crds" &&
    "$(cat "${OP_DIR}/.stamp" 2>/dev/null)" == "${stamp}" ]]; then
    log "prometheus-operator: cached (${PROMETHEUS_OPERATOR_VERSION})"
    return 0
  fi
  local start dir src v="github.com/prometheus/common/version" ldflags
  start="$(date +%s)"
  dir="$(wrapper prometheus-operator "${module}" "${PROMETHEUS_OPERATOR_VERSION}")"
  src="$(cd "${dir}" && "${GO}" list -m -f '{{.Dir}}' "${module}")"
  [[ -d "${src}/example/prometheus-operator-crd" ]] ||
    die "${module}@${PROMETHEUS_OPERATOR_VERSION} has no example/prometheus-operator-crd/"
  ldflags="-s -w -X ${v}.Version=${PROMETHEUS_OPERATOR_VERSION#v} -X ${v}.Branch=HEAD"
  ldflags+=" -X ${v}.Revision=${PROMETHEUS_OPERATOR_VERSION} -X ${v}.BuildUser=ragops-e2e"
  log "building prometheus-operator ${PROMETHEUS_OPERATOR_VERSION} ..."
  mkdir -p "${OP_DIR}"
  (cd "${dir}" && "${GO}" build -trimpath -ldflags "${ldflags}" \
    -o "${OP_DIR}/.prometheus-operator.tmp" "${module}/cmd/operator") ||
    die "building prometheus-operator failed (see above)"
  check_pin prometheus-operator "${PROMETHEUS_OPERATOR_VERSION}" "${dir}"
  rm -rf "${OP_DIR}/crds" "${OP_DIR}/.crds.tmp"
  mkdir -p "${OP_DIR}/.crds.tmp"
  cp "${src}"/example/prometheus-operator-crd/monitoring.coreos.com_*.yaml "${OP_DIR}/.crds.tmp/"
  chmod -R u+w "${OP_DIR}/.crds.tmp"
  mv "${OP_DIR}/.crds.tmp" "${OP_DIR}/crds"
  mv -f "${OP_DIR}/.prometheus-operator.tmp" "${OP_DIR}/prometheus-operator"
  echo "${stamp}" >"${OP_DIR}/.stamp"
  log "prometheus-operator: built in $(($(date +%s) - start))s, $(find "${OP_DIR}/crds" -name "*.yaml" | wc -l) CRDs"
}

# One monitoring build at a time per cache; a lock of its own, so it can run beside the
# control-plane build (e.g. started in the background by `make monitoring-bins-bg`).
exec 8>"${RAGOPS_E2E_CACHE}/.monitoring-build.lock"
command -v flock >/dev/null && flock 8

total="$(date +%s)"
for what in "${@:-prometheus operator}"; do
  for w in ${what}; do
    case "${w}" in
      prometheus) build_prometheus ;;
      operator) build_operator ;;
      *) die "unknown target '${w}' (prometheus, operator)" ;;
    esac
  done
done
log "done in $(($(date +%s) - total))s"
