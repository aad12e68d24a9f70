#!/usr/bin/env bash
# A real Kubernetes control plane on 127.0.0.1: etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler and kwok (fake nodes whose pods become Running/Ready with an IP).
#
#   cluster.sh up     start it (binaries from build-control-plane.sh); prints `export ...` lines
#   cluster.sh down   stop every process it started; remove the state dir
#                     (RAGOPS_E2E_KEEP_LOGS=1 keeps the logs and audit log)
#   cluster.sh env    print the `export ...` lines of a running cluster
#   cluster.sh status exit 0 when every component runs and its health endpoint answers 200;
#                     otherwise name the ones that do not, and exit 1
#
# RAGOPS_E2E_QDRANT=1: `up` also starts a Qdrant server (qdrant.sh, state in <state>/qdrant) and
# exports RAGOPS_E2E_QDRANT_URL (gRPC) and RAGOPS_E2E_QDRANT_HTTP_URL; status checks its /readyz,
# down stops it.
#
# Progress goes to stderr, so `eval "$(cluster.sh up)"` works. Works without a terminal (make, CI).
set -euo pipefail

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "${HACK_DIR}/../.." && pwd)"
# shellcheck source=versions.sh
source "${HACK_DIR}/versions.sh"
# shellcheck source=pki.sh
source "${HACK_DIR}/pki.sh"
# shellcheck source=cluster-lib.sh
source "${HACK_DIR}/cluster-lib.sh"

STATE="${RAGOPS_E2E_STATE:-${REPO_ROOT}/.e2e/cluster}"
BIN="${RAGOPS_E2E_BIN_DIR:-${E2E_BIN_DIR}}"
NODES="${RAGOPS_E2E_NODES:-2}"
# loopback (default): pod IPs from 127.0.0.0/8, so every byte a test sends stays on loopback.
# local-route: a 198.18.0.0/15 /24 per node routed to lo (needs root); EndpointSlices accept those.
POD_NET="${RAGOPS_E2E_POD_NET:-loopback}"
TIMEOUT="${RAGOPS_E2E_START_TIMEOUT:-120}"
QDRANT="${RAGOPS_E2E_QDRANT:-0}"
# The Service range; its first address must stay 10.0.0.1 (in the API server's certificate). The
# default holds ~250 Services; `make bench-operator` uses 10.0.0.0/16 for 2,000 and more.
SERVICE_CIDR="${RAGOPS_E2E_SERVICE_CIDR:-10.0.0.0/24}"
# Client QPS/burst of kube-controller-manager and kube-scheduler (empty: their defaults, 20/30 and
# 50/100). The bench raises them so the control plane, not its client limit, is what is measured.
CP_QPS="${RAGOPS_E2E_CP_QPS:-}"
CP_BURST="${RAGOPS_E2E_CP_BURST:-}"

CP_CLIENT_FLAGS=()
[[ -n "${CP_QPS}" ]] && CP_CLIENT_FLAGS+=(--kube-api-qps "${CP_QPS}")
[[ -n "${CP_BURST}" ]] && CP_CLIENT_FLAGS+=(--kube-api-burst "${CP_BURST}")
[[ "${SERVICE_CIDR}" == 10.0.0.0/* ]] ||
  die "RAGOPS_E2E_SERVICE_CIDR must start at 10.0.0.0 (the certificate names 10.0.0.1), not ${SERVICE_CIDR}"

cmd_env() {
  [[ -f "${STATE}/env" ]] || die "no cluster at ${STATE} (run: $0 up)"
  cat "${STATE}/env"
}

# One launch_* per component: pick its ports (new ones on every call, so a retry after a failed
# bind moves elsewhere), start it and record its health endpoint.
launch_etcd() {
  new_port ETCD_PORT
  new_port ETCD_PEER_PORT
  # A failed attempt may have left a member with the old peer URL in the data dir.
  rm -rf "${STATE}/etcd"
  mkdir -m 700 "${STATE}/etcd"
  start etcd "${BIN}/etcd" --name e2e --data-dir "${STATE}/etcd" \
    --listen-client-urls "http://127.0.0.1:${ETCD_PORT}" --advertise-client-urls "http://127.0.0.1:${ETCD_PORT}" \
    --listen-peer-urls "http://127.0.0.1:${ETCD_PEER_PORT}" --initial-advertise-peer-urls "http://127.0.0.1:${ETCD_PEER_PORT}" \
    --initial-cluster "e2e=http://127.0.0.1:${ETCD_PEER_PORT}" --unsafe-no-fsync --log-level warn
  set_health etcd "http://127.0.0.1:${ETCD_PORT}/health" -
}

launch_kube-apiserver() {
  new_port API_PORT
  SERVER="https://127.0.0.1:${API_PORT}"
  write_kubeconfigs "${PKI_DIR}" "${SERVER}" "${KC_DIR}"
  start kube-apiserver "${BIN}/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:${ETCD_PORT}" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "${API_PORT}" \
    --tls-cert-file "${PKI_DIR}/apiserver.crt" --tls-private-key-file "${PKI_DIR}/apiserver.key" \
    --client-ca-file "${PKI_DIR}/ca.crt" --authorization-mode RBAC \
    --service-cluster-ip-range "${SERVICE_CIDR}" --endpoint-reconciler-type none \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "${PKI_DIR}/sa.pub" --service-account-signing-key-file "${PKI_DIR}/sa.key" \
    --allow-privileged=true \
    --requestheader-client-ca-file "${PKI_DIR}/ca.crt" --requestheader-allowed-names front-proxy-client \
    --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
    --requestheader-extra-headers-prefix X-Remote-Extra- \
    --audit-policy-file "${STATE}/audit-policy.yaml" --audit-log-path "${STATE}/audit.log" \
    --audit-log-maxsize 0 --audit-log-format json
  # /readyz is open to anonymous requests (system:public-info-viewer).
  set_health kube-apiserver "${SERVER}/readyz" "${PKI_DIR}/ca.crt"
}

launch_kube-controller-manager() {
  local kc="${KC_DIR}/kube-controller-manager.kubeconfig"
  new_port KCM_PORT
  start kube-controller-manager "${BIN}/kube-controller-manager" \
    --kubeconfig "${kc}" --authentication-kubeconfig "${kc}" --authorization-kubeconfig "${kc}" \
    --leader-elect=false --bind-address 127.0.0.1 --secure-port "${KCM_PORT}" \
    --service-account-private-key-file "${PKI_DIR}/sa.key" --root-ca-file "${PKI_DIR}/ca.crt" \
    --cluster-signing-cert-file "${PKI_DIR}/ca.crt" --cluster-signing-key-file "${PKI_DIR}/ca.key" \
    --use-service-account-credentials=false "${CP_CLIENT_FLAGS[@]}"
  # Self-signed serving cert made in memory; /healthz is in --authorization-always-allow-paths.
  set_health kube-controller-manager "https://127.0.0.1:${KCM_PORT}/healthz" insecure
}

launch_kube-scheduler() {
  local kc="${KC_DIR}/kube-scheduler.kubeconfig"
  new_port SCHED_PORT
  start kube-scheduler "${BIN}/kube-scheduler" \
    --kubeconfig "${kc}" --authentication-kubeconfig "${kc}" --authorization-kubeconfig "${kc}" \
    --leader-elect=false --bind-address 127.0.0.1 --secure-port "${SCHED_PORT}" "${CP_CLIENT_FLAGS[@]}"
  set_health kube-scheduler "https://127.0.0.1:${SCHED_PORT}/healthz" insecure
}

launch_kwok() {
  new_port KWOK_PORT
  start kwok "${BIN}/kwok" --kubeconfig "${KC_DIR}/kwok.kubeconfig" \
    --config "${BIN}/kwok-stages.yaml" \
    --manage-all-nodes=false --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
    --node-ip 127.0.0.1 --node-lease-duration-seconds 40 \
    --server-address "127.0.0.1:${KWOK_PORT}"
  set_health kwok "http://127.0.0.1:${KWOK_PORT}/healthz" -
}

# ---- Qdrant: qdrant.sh with its state in <state>/qdrant ----
qdrant_sh() { RAGOPS_QDRANT_STATE="${STATE}/qdrant" "${HACK_DIR}/qdrant.sh" "$@"; }

# qdrant_up: install (instant once cached), start, and print its exports under RAGOPS_E2E_ names.
qdrant_up() {
  local out
  qdrant_sh install || die "Qdrant is not installed (see ${HACK_DIR}/qdrant.sh install)"
  out="$(qdrant_sh start)" || die "Qdrant did not start (log: ${STATE}/qdrant/logs/qdrant.log)"
  echo "${out//export QDRANT_/export RAGOPS_E2E_QDRANT_}"
}

# qdrant_healthy: true when no Qdrant belongs to this cluster, or it answers /readyz.
qdrant_healthy() { [[ ! -d "${STATE}/qdrant" ]] || qdrant_sh status 2>/dev/null; }

qdrant_down() { [[ ! -d "${STATE}/qdrant" ]] || qdrant_sh stop; }

cmd_up() {
  local t0
  t0="$(date +%s)"
  if [[ -f "${STATE}/env" ]] && all_healthy && qdrant_healthy; then
    if [[ "${QDRANT}" == 1 && ! -d "${STATE}/qdrant" ]]; then qdrant_up >>"${STATE}/env"; fi
    log "already running (${STATE})"
    cmd_env
    return
  fi
  if [[ -d "${STATE}/pids" ]]; then
    if [[ -f "${STATE}/env" ]]; then
      log "the cluster at ${STATE} is not healthy; replacing it:"
      health_report || true
      qdrant_healthy || qdrant_sh status || true
    fi
    stop_all
    remove_pod_routes
    qdrant_down
  fi
  for b in etcd kube-apiserver kube-controller-manager kube-scheduler kwok kubectl; do
    [[ -x "${BIN}/${b}" ]] || die "missing ${BIN}/${b}; build it first: ${HACK_DIR}/build-control-plane.sh (make e2e-bins)"
  done
  [[ -f "${BIN}/kwok-stages.yaml" ]] || die "missing ${BIN}/kwok-stages.yaml; run ${HACK_DIR}/build-control-plane.sh"
  command -v openssl >/dev/null || die "openssl is required"
  command -v curl >/dev/null || log "curl not found; health checks use openssl s_client and bash /dev/tcp"

  rm -rf "${STATE}"
  mkdir -p "${STATE}"/{pids,logs,pki,kubeconfig,health}
  STATE="$(cd "${STATE}" && pwd)"
  PKI_DIR="${STATE}/pki"
  KC_DIR="${STATE}/kubeconfig"
  KUBECTL=("${BIN}/kubectl" --kubeconfig "${KC_DIR}/admin.kubeconfig")
  local lo hi
  read -r lo hi <<<"$(ephemeral_range)"
  log "ports from ${PORT_FLOOR}-$((lo - 1)) and $((hi + 1))-65535 (ephemeral range ${lo}-${hi} avoided)"

  generate_pki "${PKI_DIR}"
  choose_pod_cidrs
  log "pki ready; pod CIDRs: ${POD_CIDRS[*]} (${POD_NET_MODE})"

  launch_etcd
  await_healthy etcd launch_etcd

  cat >"${STATE}/audit-policy.yaml" <<EOF
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
EOF
  launch_kube-apiserver
  await_healthy kube-apiserver launch_kube-apiserver

  launch_kube-controller-manager
  launch_kube-scheduler
  launch_kwok
  await_healthy kube-controller-manager launch_kube-controller-manager
  await_healthy kube-scheduler launch_kube-scheduler
  await_healthy kwok launch_kwok

  create_nodes
  wait_until "fake nodes Ready" "${TIMEOUT}" "${KUBECTL[@]}" wait --for=condition=Ready node \
    -l type=kwok --timeout=5s
  # The serviceaccount controller (kube-controller-manager) is up once `default` has its account.
  wait_until "kube-controller-manager (default ServiceAccount)" "${TIMEOUT}" \
    "${KUBECTL[@]}" get serviceaccount default -n default

  local qdrant_env=""
  if [[ "${QDRANT}" == 1 ]]; then qdrant_env="$(qdrant_up)" || exit 1; fi

  # Never report up with a component missing: every one must still run and answer now.
  if ! all_healthy || ! qdrant_healthy; then
    health_report || true
    qdrant_healthy || qdrant_sh status || true
    die "a component failed after it had started (logs: ${STATE}/logs)"
  fi

  {
    echo "export KUBECONFIG=${KC_DIR}/admin.kubeconfig"
    echo "export RAGOPS_E2E_STATE=${STATE}"
    echo "export RAGOPS_E2E_OPERATOR_KUBECONFIG=${KC_DIR}/operator.kubeconfig"
    echo "export RAGOPS_E2E_AUDIT_LOG=${STATE}/audit.log"
    echo "export RAGOPS_E2E_KUBECTL=${BIN}/kubectl"
    echo "export RAGOPS_E2E_POD_CIDRS=$(IFS=,; echo "${POD_CIDRS[*]}")"
    [[ -z "${qdrant_env}" ]] || echo "${qdrant_env}"
  } >"${STATE}/env"
  log "up in $(($(date +%s) - t0))s: ${SERVER} (state ${STATE})"
  cmd_env
}

cmd_status() {
  if [[ ! -f "${STATE}/env" ]]; then
    log "not running (no cluster at ${STATE})"
    exit 1
  fi
  local bad=0
  health_report || bad=1
  if [[ -d "${STATE}/qdrant" ]]; then qdrant_sh status || bad=1; fi
  if ((bad == 0)); then
    log "running, every component healthy (${STATE})"
  else
    log "not healthy (${STATE})"
    exit 1
  fi
}

cmd_down() {
  if [[ ! -d "${STATE}" ]]; then
    log "nothing to stop at ${STATE}"
    return
  fi
  stop_all
  remove_pod_routes
  qdrant_down
  if [[ "${RAGOPS_E2E_KEEP_LOGS:-0}" == 1 ]]; then
    rm -rf "${STATE}/etcd" "${STATE}/pki" "${STATE}/kubeconfig" "${STATE}/pids" "${STATE}/health" "${STATE}/env"
    log "stopped; logs kept in ${STATE}/logs and ${STATE}/audit.log"
  else
    rm -rf "${STATE}"
    log "stopped and removed ${STATE}"
  fi
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  env) cmd_env ;;
  status) cmd_status ;;
  *)
    echo "usage: $0 up|down|env|status" >&2
    exit 2
    ;;
esac
