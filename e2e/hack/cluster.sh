#!/usr/bin/env bash
# A real Kubernetes control plane on 127.0.0.1: etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler and kwok (fake nodes whose pods become Running/Ready with an IP).
#
#   cluster.sh up     start it (binaries from build-control-plane.sh); prints `export ...` lines
#   cluster.sh down   stop every process it started; remove the state dir
#                     (RAGOPS_E2E_KEEP_LOGS=1 keeps the logs and audit log)
#   cluster.sh env    print the `export ...` lines of a running cluster
#   cluster.sh status exit 0 when every component of the cluster is running
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

cmd_env() {
  [[ -f "${STATE}/env" ]] || die "no cluster at ${STATE} (run: $0 up)"
  cat "${STATE}/env"
}

cmd_up() {
  local t0
  t0="$(date +%s)"
  if [[ -f "${STATE}/env" ]] && all_running; then
    log "already running (${STATE})"
    cmd_env
    return
  fi
  if [[ -d "${STATE}/pids" ]]; then
    stop_all
    remove_pod_routes
  fi
  for b in etcd kube-apiserver kube-controller-manager kube-scheduler kwok kubectl; do
    [[ -x "${BIN}/${b}" ]] || die "missing ${BIN}/${b}; build it first: ${HACK_DIR}/build-control-plane.sh (make e2e-bins)"
  done
  [[ -f "${BIN}/kwok-stages.yaml" ]] || die "missing ${BIN}/kwok-stages.yaml; run ${HACK_DIR}/build-control-plane.sh"
  command -v openssl >/dev/null || die "openssl is required"

  rm -rf "${STATE}"
  mkdir -p "${STATE}"/{pids,logs,pki,kubeconfig,etcd}
  STATE="$(cd "${STATE}" && pwd)"

  local etcd_port etcd_peer api_port kcm_port sched_port kwok_port
  etcd_port="$(free_port)"
  etcd_peer="$(free_port "${etcd_port}")"
  api_port="$(free_port "${etcd_port}" "${etcd_peer}")"
  kcm_port="$(free_port "${etcd_port}" "${etcd_peer}" "${api_port}")"
  sched_port="$(free_port "${etcd_port}" "${etcd_peer}" "${api_port}" "${kcm_port}")"
  kwok_port="$(free_port "${etcd_port}" "${etcd_peer}" "${api_port}" "${kcm_port}" "${sched_port}")"
  local server="https://127.0.0.1:${api_port}"
  local pki="${STATE}/pki" kc="${STATE}/kubeconfig"
  KUBECTL=("${BIN}/kubectl" --kubeconfig "${kc}/admin.kubeconfig")

  generate_pki "${pki}" "${server}" "${kc}"
  choose_pod_cidrs
  log "pki ready; pod CIDRs: ${POD_CIDRS[*]} (${POD_NET_MODE})"

  start etcd "${BIN}/etcd" --name e2e --data-dir "${STATE}/etcd" \
    --listen-client-urls "http://127.0.0.1:${etcd_port}" --advertise-client-urls "http://127.0.0.1:${etcd_port}" \
    --listen-peer-urls "http://127.0.0.1:${etcd_peer}" --initial-advertise-peer-urls "http://127.0.0.1:${etcd_peer}" \
    --initial-cluster "e2e=http://127.0.0.1:${etcd_peer}" --unsafe-no-fsync --log-level warn

  cat >"${STATE}/audit-policy.yaml" <<EOF
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
EOF
  start kube-apiserver "${BIN}/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:${etcd_port}" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "${api_port}" \
    --tls-cert-file "${pki}/apiserver.crt" --tls-private-key-file "${pki}/apiserver.key" \
    --client-ca-file "${pki}/ca.crt" --authorization-mode RBAC \
    --service-cluster-ip-range 10.0.0.0/24 --endpoint-reconciler-type none \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "${pki}/sa.pub" --service-account-signing-key-file "${pki}/sa.key" \
    --allow-privileged=true \
    --requestheader-client-ca-file "${pki}/ca.crt" --requestheader-allowed-names front-proxy-client \
    --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
    --requestheader-extra-headers-prefix X-Remote-Extra- \
    --audit-policy-file "${STATE}/audit-policy.yaml" --audit-log-path "${STATE}/audit.log" \
    --audit-log-maxsize 0 --audit-log-format json

  wait_until "kube-apiserver /readyz" "${TIMEOUT}" "${KUBECTL[@]}" get --raw /readyz

  start kube-controller-manager "${BIN}/kube-controller-manager" \
    --kubeconfig "${kc}/kube-controller-manager.kubeconfig" \
    --authentication-kubeconfig "${kc}/kube-controller-manager.kubeconfig" \
    --authorization-kubeconfig "${kc}/kube-controller-manager.kubeconfig" \
    --leader-elect=false --bind-address 127.0.0.1 --secure-port "${kcm_port}" \
    --service-account-private-key-file "${pki}/sa.key" --root-ca-file "${pki}/ca.crt" \
    --cluster-signing-cert-file "${pki}/ca.crt" --cluster-signing-key-file "${pki}/ca.key" \
    --use-service-account-credentials=false

  start kube-scheduler "${BIN}/kube-scheduler" \
    --kubeconfig "${kc}/kube-scheduler.kubeconfig" \
    --authentication-kubeconfig "${kc}/kube-scheduler.kubeconfig" \
    --authorization-kubeconfig "${kc}/kube-scheduler.kubeconfig" \
    --leader-elect=false --bind-address 127.0.0.1 --secure-port "${sched_port}"

  start kwok "${BIN}/kwok" --kubeconfig "${kc}/kwok.kubeconfig" \
    --config "${BIN}/kwok-stages.yaml" \
    --manage-all-nodes=false --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
    --node-ip 127.0.0.1 --node-lease-duration-seconds 40 \
    --server-address "127.0.0.1:${kwok_port}"

  create_nodes
  wait_until "fake nodes Ready" "${TIMEOUT}" "${KUBECTL[@]}" wait --for=condition=Ready node \
    -l type=kwok --timeout=5s
  # The serviceaccount controller (kube-controller-manager) is up once `default` has its account.
  wait_until "kube-controller-manager (default ServiceAccount)" "${TIMEOUT}" \
    "${KUBECTL[@]}" get serviceaccount default -n default

  {
    echo "export KUBECONFIG=${kc}/admin.kubeconfig"
    echo "export RAGOPS_E2E_STATE=${STATE}"
    echo "export RAGOPS_E2E_OPERATOR_KUBECONFIG=${kc}/operator.kubeconfig"
    echo "export RAGOPS_E2E_AUDIT_LOG=${STATE}/audit.log"
    echo "export RAGOPS_E2E_KUBECTL=${BIN}/kubectl"
    echo "export RAGOPS_E2E_POD_CIDRS=$(IFS=,; echo "${POD_CIDRS[*]}")"
  } >"${STATE}/env"
  log "up in $(($(date +%s) - t0))s: ${server} (state ${STATE})"
  cmd_env
}

cmd_down() {
  if [[ ! -d "${STATE}" ]]; then
    log "nothing to stop at ${STATE}"
    return
  fi
  stop_all
  remove_pod_routes
  if [[ "${RAGOPS_E2E_KEEP_LOGS:-0}" == 1 ]]; then
    rm -rf "${STATE}/etcd" "${STATE}/pki" "${STATE}/kubeconfig" "${STATE}/pids" "${STATE}/env"
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
  status)
    if [[ -f "${STATE}/env" ]] && all_running; then
      log "running (${STATE})"
    else
      log "not running (${STATE})"
      exit 1
    fi
    ;;
  *)
    echo "usage: $0 up|down|env|status" >&2
    exit 2
    ;;
esac
