#!/usr/bin/env bash
# Runs the images `make images` built, from their OCI layouts, under runc, restricted the way the
# chart and the operator's pod template restrict them: uid 65532, read-only root filesystem, every
# capability dropped, no new privileges, writable paths only as mounts. The host's network
# namespace is kept, so loopback is shared with the test.
#
#   rag-runtime   `ingest` of rag-runtime/testdata/docs into a mounted data dir, then `serve`:
#                 /healthz, /readyz, and POST /v1/query ranks the expected document first
#   rag-operator  against a private local control plane (e2e/hack/cluster.sh) with a mounted,
#                 read-only kubeconfig: /readyz answers, it logs the controller start, and it
#                 writes the sample pipeline's children
#   both          the container's process runs as 65532 with no capabilities and NoNewPrivs on a
#                 read-only root, and stops on SIGTERM
#
# runc needs root here: without it the test says SKIPPED and exits 0. Containers, the cluster and
# the work dir are removed on exit; RAGOPS_IMAGES_KEEP=1 keeps the work dir (logs, bundles).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=SCRIPTDIR/images-lib.sh
source "${HERE}/images-lib.sh"

if [[ "$(id -u)" != 0 ]]; then
  echo "images-test: SKIPPED: runc needs root on this machine (run make test as root)"
  exit 0
fi
need_cmd runc runc
need_cmd umoci umoci
need_cmd jq jq
need_cmd curl curl

VERSION="$(sed -n 's/^version = "\(.*\)"$/\1/p' "${REPO_ROOT}/Cargo.toml" | head -n1)"
TIMEOUT="${RAGOPS_IMAGES_TEST_TIMEOUT:-60}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/ragops-images-test.XXXXXX")"
chmod 755 "${WORK}"
ID_PREFIX="ragops-img-$$"
CONTAINERS=()
CLUSTER_UP=0
PASSED=0
FAILED=0

cleanup() {
  local status=$? c
  for c in "${CONTAINERS[@]}"; do runc delete -f "${c}" >/dev/null 2>&1 || true; done
  if [[ "${CLUSTER_UP}" == 1 ]]; then
    RAGOPS_E2E_STATE="${WORK}/cluster" "${REPO_ROOT}/e2e/hack/cluster.sh" down >/dev/null 2>&1 || true
  fi
  if [[ "${RAGOPS_IMAGES_KEEP:-0}" == 1 ]]; then log "work dir kept: ${WORK}"; else rm -rf "${WORK}"; fi
  exit "${status}"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# check NAME COMMAND...: one assertion; a failure names it, prints the container logs and counts.
check() {
  local name="$1"
  shift
  if "$@"; then
    echo "images-test: ok    ${name}"
    PASSED=$((PASSED + 1))
  else
    echo "images-test: FAIL  ${name}"
    FAILED=$((FAILED + 1))
    for f in "${WORK}"/*.log; do [[ -f "${f}" ]] && { echo "--- ${f##*/}"; tail -n 20 "${f}"; }; done
  fi
}

# wait_until SECONDS COMMAND...: polls until the command succeeds or the deadline passes.
wait_until() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

# A port on 127.0.0.1 nothing listens on, below the ephemeral range (see e2e/README.md "Ports").
free_port() {
  local port
  while :; do
    port=$((20000 + RANDOM % 12000))
    (exec 3<>"/dev/tcp/127.0.0.1/${port}") 2>/dev/null || { echo "${port}"; return; }
  done
}

# bundle IMAGE DIR MOUNTS_JSON ARGS_JSON [ENV_JSON]: unpacks the image into a runtime bundle and
# restricts its config; the image's own user and entrypoint must come through unpacking unchanged.
bundle() {
  local image="$1" dir="$2" mounts="$3" args="$4" env="${5:-[]}" cfg
  umoci unpack --image "${OCI_DIR}/${image}:${VERSION}" "${dir}" >/dev/null
  cfg="${dir}/config.json"
  [[ "$(jq -c '[.process.user.uid, .process.user.gid, .process.args[0]]' "${cfg}")" == \
    "[65532,65532,\"/usr/local/bin/${image}\"]" ]] || {
    log "${image}: unexpected user or entrypoint: $(jq -c '.process.user, .process.args' "${cfg}")"
    return 1
  }
  jq --argjson mounts "${mounts}" --argjson args "${args}" --argjson env "${env}" '
    .process.terminal = false
    | .process.args = .process.args[0:1] + $args
    | .process.env += $env
    | .process.user = {uid: 65532, gid: 65532}
    | .process.noNewPrivileges = true
    | .process.capabilities = {bounding: [], effective: [], inheritable: [], permitted: [], ambient: []}
    | .root.readonly = true
    | .hostname = "ragops-test"
    | .linux.namespaces |= map(select(.type != "network"))
    | .mounts += [{destination: "/tmp", type: "tmpfs", source: "tmpfs",
                   options: ["nosuid", "nodev", "noexec", "mode=1777", "size=65536k"]}] + $mounts
  ' "${cfg}" >"${cfg}.new"
  mv "${cfg}.new" "${cfg}"
}

bind() { jq -nc --arg s "$1" --arg d "$2" --arg m "$3" '{destination: $d, type: "bind", source: $s, options: ["rbind", $m, "nosuid", "nodev"]}'; }

# start NAME BUNDLE: runs the container detached, its output in WORK/NAME.log.
start() {
  CONTAINERS+=("${ID_PREFIX}-$1")
  runc run --detach --bundle "$2" "${ID_PREFIX}-$1" >"${WORK}/$1.log" 2>&1 </dev/null
}

container_pid() { runc state "${ID_PREFIX}-$1" | jq -r .pid; }

# The restrictions as the kernel sees them on the container's process, not as config.json says.
restricted() {
  local pid
  pid="$(container_pid "$1")"
  grep -qE '^Uid:\s+65532\s+65532\s+65532\s+65532$' "/proc/${pid}/status" &&
    grep -qE '^Gid:\s+65532\s+65532\s+65532\s+65532$' "/proc/${pid}/status" &&
    grep -qE '^CapEff:\s+0+$' "/proc/${pid}/status" &&
    grep -qE '^CapPrm:\s+0+$' "/proc/${pid}/status" &&
    grep -qE '^CapBnd:\s+0+$' "/proc/${pid}/status" &&
    grep -qE '^NoNewPrivs:\s+1$' "/proc/${pid}/status" &&
    awk '$5 == "/" { split($6, o, ","); ro = (o[1] == "ro") } END { exit !ro }' "/proc/${pid}/mountinfo"
}

# SIGTERM stops the process (PID 1 in its namespace, so only a handler makes it exit).
stops_on_sigterm() {
  runc kill "${ID_PREFIX}-$1" TERM &&
    wait_until "${TIMEOUT}" bash -c "[[ \"\$(runc state '${ID_PREFIX}-$1' | jq -r .status)\" == stopped ]]"
}

json_true() { jq -e "$2" "$1" >/dev/null; }

http_ok() { curl -fsS -o /dev/null --max-time 5 "$1"; }

# In the foreground: runc returns the container's exit status.
run_ingest() {
  runc run --bundle "${WORK}/runtime-ingest" "${ID_PREFIX}-ingest" >"${WORK}/ingest.out" 2>"${WORK}/ingest.log" </dev/null
}

test_runtime() {
  local port docs data answer
  port="$(free_port)"
  docs="${REPO_ROOT}/rag-runtime/testdata/docs"
  data="${WORK}/runtime-data"
  mkdir -p "${data}"
  chown 65532:65532 "${data}"
  bundle rag-runtime "${WORK}/runtime-ingest" "[$(bind "${docs}" /docs ro), $(bind "${data}" /data rw)]" \
    '["ingest", "--json", "--data-dir", "/data", "/docs"]'
  CONTAINERS+=("${ID_PREFIX}-ingest")
  check "rag-runtime ingest runs in the image" run_ingest
  check "rag-runtime ingest stored every document" \
    json_true "${WORK}/ingest.out" '.documents >= 5 and .chunks >= .documents and (.failed | length) == 0'

  bundle rag-runtime "${WORK}/runtime-serve" "[$(bind "${data}" /data rw)]" \
    "[\"serve\", \"--listen\", \"127.0.0.1:${port}\", \"--data-dir\", \"/data\"]"
  start runtime "${WORK}/runtime-serve"
  check "rag-runtime /healthz answers" wait_until "${TIMEOUT}" http_ok "http://127.0.0.1:${port}/healthz"
  check "rag-runtime /readyz answers" wait_until "${TIMEOUT}" http_ok "http://127.0.0.1:${port}/readyz"
  answer="$(curl -fsS --max-time 10 "http://127.0.0.1:${port}/v1/query" -H 'content-type: application/json' \
    -d '{"query": "How does a blue-green rollout switch traffic?", "topK": 3}' || true)"
  echo "${answer}" >"${WORK}/query.out"
  check "rag-runtime POST /v1/query ranks guides/blue-green.md first" \
    json_true "${WORK}/query.out" '.sources[0].documentId == "guides/blue-green.md" and (.answer | length) > 0'
  check "rag-runtime runs as 65532, no capabilities, no new privileges, read-only root" restricted runtime
  check "rag-runtime stops on SIGTERM" stops_on_sigterm runtime
}

test_operator() {
  local port kubeconfig env_out kubectl ns=ragops-images-test
  port="$(free_port)"
  kubeconfig="${WORK}/operator.kubeconfig"
  env_out="$(RAGOPS_E2E_STATE="${WORK}/cluster" "${REPO_ROOT}/e2e/hack/cluster.sh" up 2>"${WORK}/cluster-up.log")" || {
    tail -n 30 "${WORK}/cluster-up.log" >&2
    die "the local control plane did not start"
  }
  CLUSTER_UP=1
  eval "${env_out}"
  kubectl=("${RAGOPS_E2E_KUBECTL}" --kubeconfig "${KUBECONFIG}")
  # One self-contained file: the certificates inline, nothing else to mount.
  "${RAGOPS_E2E_KUBECTL}" --kubeconfig "${RAGOPS_E2E_OPERATOR_KUBECONFIG}" config view --flatten --raw >"${kubeconfig}"
  chown 65532:65532 "${kubeconfig}"
  chmod 0400 "${kubeconfig}"
  "${kubectl[@]}" apply -f "${REPO_ROOT}/crds/" >/dev/null
  "${kubectl[@]}" wait --for=condition=Established crd --all --timeout="${TIMEOUT}s" >/dev/null
  "${kubectl[@]}" create namespace "${ns}" >/dev/null
  "${kubectl[@]}" apply -n "${ns}" -f "${REPO_ROOT}/config/samples/" >/dev/null

  bundle rag-operator "${WORK}/operator" "[$(bind "${kubeconfig}" /etc/ragops/kubeconfig ro)]" \
    "[\"--metrics-addr\", \"127.0.0.1:${port}\", \"--log-format\", \"json\"]" \
    '["KUBECONFIG=/etc/ragops/kubeconfig", "RUST_LOG=info"]'
  start operator "${WORK}/operator"
  check "rag-operator /readyz answers" wait_until "${TIMEOUT}" http_ok "http://127.0.0.1:${port}/readyz"
  check "rag-operator /healthz answers" http_ok "http://127.0.0.1:${port}/healthz"
  check "rag-operator logs the controller start" \
    grep -q 'starting the RagPipeline and RagIndex controllers' "${WORK}/operator.log"
  check "rag-operator reconciles the sample pipeline through the API server" \
    wait_until "${TIMEOUT}" "${kubectl[@]}" get -n "${ns}" configmap/handbook-config deployment/handbook-blue service/handbook-preview
  check "rag-operator counts reconciliations in /metrics" wait_until "${TIMEOUT}" \
    bash -c "curl -fsS --max-time 5 http://127.0.0.1:${port}/metrics | grep -q '^ragops_reconciliations_total'"
  check "rag-operator runs as 65532, no capabilities, no new privileges, read-only root" restricted operator
  check "rag-operator stops on SIGTERM" stops_on_sigterm operator
}

for image in rag-operator rag-runtime; do
  [[ -f "${OCI_DIR}/${image}/index.json" ]] || die "no ${image} image in ${OCI_DIR} (make images)"
done
start_s=${SECONDS}
test_runtime
test_operator
log "images tested in $((SECONDS - start_s)) s"
echo "images-test: ${PASSED} passed, ${FAILED} failed"
((FAILED == 0))
