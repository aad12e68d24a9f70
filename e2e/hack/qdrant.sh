#!/usr/bin/env bash
# A real Qdrant server (version pinned in versions.sh) on 127.0.0.1, for the runtime's store tests
# and the e2e suite.
#
#   qdrant.sh install [--print-path]  put the server binary in the cache (idempotent)
#   qdrant.sh install --if-prebuilt   the same, but exit 3 instead of building from source
#   qdrant.sh run -- CMD...           start a server in a temp dir, run CMD with QDRANT_URL (gRPC)
#                                     and QDRANT_HTTP_URL exported, stop it; exits with CMD's code
#   qdrant.sh start                   start one in the state dir; prints `export ...` lines
#   qdrant.sh stop                    stop it; remove the state dir (RAGOPS_E2E_KEEP_LOGS=1 keeps logs)
#   qdrant.sh env                     print the `export ...` lines of the running one
#   qdrant.sh status                  exit 0 when it runs and GET /readyz answers 200
#
# The binary comes from the folder RAGOPS_QDRANT_DIST (default: ../shared/qdrant beside the
# repository): the prebuilt server, checked against its SHA256SUMS; when only the sources are
# there, its build-from-source.sh. State dir: RAGOPS_QDRANT_STATE (default <repo>/.e2e/qdrant).
# Progress goes to stderr, so `eval "$(qdrant.sh start)"` works.
set -euo pipefail

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "${HACK_DIR}/../.." && pwd)"
# shellcheck source=versions.sh
source "${HACK_DIR}/versions.sh"
# free_port, start, is_ours, stop_one, set_health, healthy, await_healthy.
# shellcheck source=cluster-lib.sh
source "${HACK_DIR}/cluster-lib.sh"

log() { echo "qdrant: $*" >&2; }
die() {
  echo "qdrant: error: $*" >&2
  exit 1
}

DIST="${RAGOPS_QDRANT_DIST:-${REPO_ROOT}/../shared/qdrant}"
QDRANT_DIR="${RAGOPS_E2E_CACHE}/qdrant/${QDRANT_VERSION}"
QDRANT_BIN="${QDRANT_DIR}/qdrant"
XZ_NAME="qdrant-${QDRANT_VERSION}-linux-x86_64.xz"
SRC_NAME="qdrant-${QDRANT_VERSION}-src.tar.gz"
STATE="${RAGOPS_QDRANT_STATE:-${REPO_ROOT}/.e2e/qdrant}"
# shellcheck disable=SC2034 # read by await_healthy (cluster-lib.sh)
TIMEOUT="${RAGOPS_QDRANT_START_TIMEOUT:-60}"

# ---- install ----

# expected_sum <file name>: its line in the dist folder's SHA256SUMS.
expected_sum() {
  [[ -f "${DIST}/SHA256SUMS" ]] || die "${DIST}/SHA256SUMS is missing"
  awk -v f="$1" '$2 == f || $2 == "*" f { print $1; found = 1 } END { exit !found }' \
    "${DIST}/SHA256SUMS" || die "${DIST}/SHA256SUMS has no line for $1"
}

verify() {
  local want got
  want="$(expected_sum "$1")"
  got="$(sha256sum "${DIST}/$1" | cut -d' ' -f1)"
  [[ "${got}" == "${want}" ]] || die "checksum mismatch for ${DIST}/$1: ${got}, SHA256SUMS says ${want}"
}

# The stamp names what the cached binary was made from; a warm install only compares it.
stamp_for() {
  if [[ -f "${DIST}/${XZ_NAME}" ]]; then
    echo "prebuilt ${XZ_NAME} $(expected_sum "${XZ_NAME}")"
  elif [[ -f "${DIST}/${SRC_NAME}" ]]; then
    echo "source ${SRC_NAME} $(expected_sum "${SRC_NAME}")"
  fi
}

ensure_xz() {
  command -v xz >/dev/null && return
  [[ "$(id -u)" == 0 ]] || die "xz is missing; install it as root: apt-get install -y xz-utils"
  log "installing xz-utils"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq xz-utils >/dev/null
}

build_instructions() {
  cat >&2 <<EOF
qdrant: error: no Qdrant ${QDRANT_VERSION} at ${DIST} (neither ${XZ_NAME} nor ${SRC_NAME}).
Build it from the upstream tag (Rust toolchain, protoc; ~30-80 min) and put it in the cache:

    git clone --depth 1 --branch ${QDRANT_VERSION} https://github.com/qdrant/qdrant
    cd qdrant && cargo build --release --bin qdrant
    mkdir -p ${QDRANT_DIR} && cp target/release/qdrant ${QDRANT_BIN}
    echo "upstream ${QDRANT_VERSION}" >${QDRANT_DIR}/.stamp

or point RAGOPS_QDRANT_DIST at a folder holding ${XZ_NAME} and SHA256SUMS.
EOF
  exit 1
}

# check_version <binary>: it runs and reports the pinned version.
check_version() {
  local out
  out="$("$1" --version 2>&1)" || die "$1 --version failed: ${out}"
  [[ "${out}" == *" ${QDRANT_VERSION#v}"* ]] || die "$1 reports '${out}', expected ${QDRANT_VERSION}"
}

install_locked() {
  local stamp tmp t0
  stamp="$(stamp_for)"
  if [[ -x "${QDRANT_BIN}" && -f "${QDRANT_DIR}/.stamp" ]]; then
    # Made from this dist folder's file, or installed by hand from upstream with no dist here.
    if [[ -z "${stamp}" || "$(cat "${QDRANT_DIR}/.stamp")" == "${stamp}" ]]; then
      return
    fi
    log "cached binary was made from '$(cat "${QDRANT_DIR}/.stamp")'; replacing it"
  fi
  if [[ "${IF_PREBUILT}" == 1 && ! -f "${DIST}/${XZ_NAME}" ]]; then
    log "no prebuilt Qdrant ${QDRANT_VERSION} at ${DIST} and none cached; not building it now"
    return 3
  fi
  [[ -n "${stamp}" ]] || build_instructions
  t0="$(date +%s)"
  tmp="${QDRANT_DIR}/qdrant.tmp"
  if [[ -f "${DIST}/${XZ_NAME}" ]]; then
    ensure_xz
    verify "${XZ_NAME}"
    xz -dc "${DIST}/${XZ_NAME}" >"${tmp}"
  else
    local f
    for f in "${DIST}/${SRC_NAME}" "${DIST}"/raft-rs-*-src.tar.gz "${DIST}"/tonic-*-src.tar.gz; do
      [[ -f "${f}" ]] || die "${f} is missing (build-from-source.sh needs it)"
      verify "$(basename "${f}")"
    done
    [[ -x "${DIST}/build-from-source.sh" ]] || die "${DIST}/build-from-source.sh is missing"
    log "no prebuilt binary in ${DIST}: building Qdrant ${QDRANT_VERSION} from source (~30 min on 2 cores)"
    QDRANT_BUILD_DIR="${QDRANT_DIR}/build" "${DIST}/build-from-source.sh" "${QDRANT_DIR}/out" >&2
    mv "${QDRANT_DIR}/out/qdrant" "${tmp}"
    rm -rf "${QDRANT_DIR}/build" "${QDRANT_DIR}/out"
  fi
  chmod 755 "${tmp}"
  check_version "${tmp}"
  mv "${tmp}" "${QDRANT_BIN}"
  echo "${stamp}" >"${QDRANT_DIR}/.stamp"
  log "installed ${QDRANT_BIN} in $(($(date +%s) - t0))s"
}

IF_PREBUILT=0
cmd_install() {
  local print=0 arg rc=0
  for arg in "$@"; do
    case "${arg}" in
      --print-path) print=1 ;;
      --if-prebuilt) IF_PREBUILT=1 ;;
      *) die "install: unknown option ${arg}" ;;
    esac
  done
  mkdir -p "${QDRANT_DIR}"
  # One install at a time per cache.
  exec 9>"${QDRANT_DIR}/.lock"
  flock 9
  install_locked || rc=$?
  exec 9>&-
  ((rc == 0)) || return "${rc}"
  if ((print)); then echo "${QDRANT_BIN}"; fi
}

# ---- a server in STATE ----

launch_qdrant() {
  new_port HTTP_PORT
  new_port GRPC_PORT
  mkdir -p "${STATE}/storage" "${STATE}/snapshots" "${STATE}/tmp"
  # Qdrant reads config/*.yaml from its working directory: run it where there is none.
  pushd "${STATE}" >/dev/null
  QDRANT__SERVICE__HOST=127.0.0.1 QDRANT__SERVICE__HTTP_PORT="${HTTP_PORT}" \
    QDRANT__SERVICE__GRPC_PORT="${GRPC_PORT}" QDRANT__CLUSTER__ENABLED=false \
    QDRANT__STORAGE__STORAGE_PATH="${STATE}/storage" QDRANT__STORAGE__SNAPSHOTS_PATH="${STATE}/snapshots" \
    QDRANT__STORAGE__TEMP_PATH="${STATE}/tmp" QDRANT__SERVICE__ENABLE_STATIC_CONTENT=false \
    QDRANT__TELEMETRY_DISABLED=true QDRANT__LOG_LEVEL=WARN \
    start qdrant "${QDRANT_BIN}" --disable-telemetry
  popd >/dev/null
  set_health qdrant "http://127.0.0.1:${HTTP_PORT}/readyz" -
}

write_env() {
  {
    echo "export QDRANT_URL=http://127.0.0.1:${GRPC_PORT}"
    echo "export QDRANT_HTTP_URL=http://127.0.0.1:${HTTP_PORT}"
  } >"${STATE}/env"
}

cmd_start() {
  local t0
  [[ -x "${QDRANT_BIN}" ]] || die "missing ${QDRANT_BIN}; run: $0 install"
  if [[ -f "${STATE}/env" ]] && healthy qdrant; then
    log "already running (${STATE})"
    cat "${STATE}/env"
    return
  fi
  stop_one qdrant 2>/dev/null || true
  rm -rf "${STATE}"
  mkdir -p "${STATE}"/{pids,logs,health}
  STATE="$(cd "${STATE}" && pwd)"
  t0="$(date +%s%N)"
  launch_qdrant
  # It is ready within ~0.1 s; await_healthy polls every 0.5 s, so look more often at first.
  for _ in {1..20}; do
    if healthy qdrant; then break; fi
    sleep 0.05
  done
  await_healthy qdrant launch_qdrant
  write_env
  log "ready in $((($(date +%s%N) - t0) / 1000000)) ms: gRPC ${GRPC_PORT}, HTTP ${HTTP_PORT} (state ${STATE})"
  cat "${STATE}/env"
}

cmd_stop() {
  if [[ ! -d "${STATE}" ]]; then
    log "nothing to stop at ${STATE}"
    return
  fi
  stop_one qdrant
  if [[ "${RAGOPS_E2E_KEEP_LOGS:-0}" == 1 ]]; then
    rm -rf "${STATE}/storage" "${STATE}/snapshots" "${STATE}/tmp" "${STATE}/pids" "${STATE}/health" "${STATE}/env"
    log "stopped; log kept in ${STATE}/logs"
  else
    rm -rf "${STATE}"
  fi
}

cmd_env() {
  [[ -f "${STATE}/env" ]] || die "no Qdrant at ${STATE} (run: $0 start)"
  cat "${STATE}/env"
}

cmd_status() {
  if [[ ! -f "${STATE}/env" ]]; then
    log "NOT RUNNING (no server at ${STATE})"
    return 1
  fi
  if ! is_ours qdrant; then
    log "NOT RUNNING (log: ${STATE}/logs/qdrant.log)"
    return 1
  fi
  if ! healthy qdrant; then
    log "UNHEALTHY: $(health_url qdrant) does not answer 200 (log: ${STATE}/logs/qdrant.log)"
    return 1
  fi
  log "ok ($(health_url qdrant))"
}

cmd_run() {
  [[ "${1:-}" == -- ]] && shift
  (($# > 0)) || die "usage: $0 run -- CMD..."
  STATE="$(mktemp -d "${TMPDIR:-/tmp}/ragops-qdrant.XXXXXX")"
  # The temp dir goes in every case; a failed run first prints the errors the server logged.
  trap 'rc=$?; if ((rc != 0)) && grep -q -E "ERROR|panicked" "${STATE}/logs/qdrant.log" 2>/dev/null; then
      log "the server logged errors:"; grep -E "ERROR|panicked" "${STATE}/logs/qdrant.log" | tail -n 15 | sed "s/^/    /" >&2; fi
    stop_one qdrant >/dev/null 2>&1; rm -rf "${STATE}"' EXIT
  trap 'exit 130' INT TERM
  cmd_start >/dev/null
  # shellcheck source=/dev/null
  source "${STATE}/env"
  local rc=0
  "$@" || rc=$?
  return "${rc}"
}

case "${1:-}" in
  install)
    shift
    cmd_install "$@"
    ;;
  run)
    shift
    cmd_install
    cmd_run "$@"
    ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  env) cmd_env ;;
  status) cmd_status ;;
  *)
    echo "usage: $0 install [--print-path] | run -- CMD... | start | stop | env | status" >&2
    exit 2
    ;;
esac
