# Process, port, network and node helpers for cluster.sh. Sourced; expects STATE, BIN, NODES,
# POD_NET and KUBECTL (array) to be set by the caller.

log() { echo "cluster: $*" >&2; }
die() {
  echo "cluster: error: $*" >&2
  exit 1
}

COMPONENTS=(kwok kube-scheduler kube-controller-manager kube-apiserver etcd)

# free_port [taken...]: a TCP port on 127.0.0.1 that nothing listens on and is not in the list.
free_port() {
  local p i
  for ((i = 0; i < 200; i++)); do
    p=$((20000 + RANDOM % 30000))
    [[ " $* " == *" ${p} "* ]] && continue
    # A refused connection means the port is free.
    if ! (exec 3<>"/dev/tcp/127.0.0.1/${p}") 2>/dev/null; then
      echo "${p}"
      return
    fi
  done
  die "no free port found"
}

# start <name> <binary> [args...]: run detached from the terminal, output to logs/<name>.log.
start() {
  local name="$1"
  shift
  local launcher=()
  command -v setsid >/dev/null && launcher=(setsid)
  "${launcher[@]}" "$@" </dev/null >"${STATE}/logs/${name}.log" 2>&1 &
  local pid=$!
  echo "${pid}" >"${STATE}/pids/${name}.pid"
  echo "$1" >"${STATE}/pids/${name}.exe"
  log "started ${name} (pid ${pid})"
}

# is_ours <name>: the recorded pid is alive and still runs the binary we started.
is_ours() {
  local pidf="${STATE}/pids/$1.pid" pid exe
  [[ -f "${pidf}" ]] || return 1
  pid="$(cat "${pidf}")"
  exe="$(cat "${STATE}/pids/$1.exe" 2>/dev/null || true)"
  [[ -d "/proc/${pid}" ]] || return 1
  [[ -z "${exe}" || "$(readlink "/proc/${pid}/exe" 2>/dev/null)" == "$(readlink -f "${exe}")" ]]
}

all_running() {
  local c
  for c in "${COMPONENTS[@]}"; do is_ours "${c}" || return 1; done
}

# Fail fast with its log when a component has died.
check_alive() {
  local c
  for c in "${COMPONENTS[@]}"; do
    if [[ -f "${STATE}/pids/${c}.pid" ]] && ! is_ours "${c}"; then
      tail -n 30 "${STATE}/logs/${c}.log" >&2 || true
      die "${c} exited (log: ${STATE}/logs/${c}.log)"
    fi
  done
}

stop_all() {
  local c pid i
  for c in "${COMPONENTS[@]}"; do
    is_ours "${c}" || continue
    pid="$(cat "${STATE}/pids/${c}.pid")"
    kill -TERM "${pid}" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
      [[ -d "/proc/${pid}" ]] || break
      sleep 0.1
    done
    if [[ -d "/proc/${pid}" ]]; then
      log "${c} did not stop on SIGTERM; killing"
      kill -KILL "${pid}" 2>/dev/null || true
    fi
    log "stopped ${c} (pid ${pid})"
  done
  rm -f "${STATE}"/pids/*.pid
}

# wait_until <what> <timeout seconds> <command...>: poll the command until it succeeds.
wait_until() {
  local what="$1" timeout="$2"
  shift 2
  local deadline=$(($(date +%s) + timeout)) out
  while true; do
    if out="$("$@" 2>&1)"; then
      log "${what}: ok"
      return
    fi
    check_alive
    if (($(date +%s) >= deadline)); then
      echo "${out}" | tail -n 10 >&2
      die "timed out after ${timeout}s waiting for ${what} (logs: ${STATE}/logs)"
    fi
    sleep 0.5
  done
}

# Pod IPs must be addresses a test can bind and the API server accepts in EndpointSlices, which
# refuse loopback. As root we make a /24 per node from 198.18.0.0/15 (RFC 2544 benchmarking range)
# local with `ip route add local ... dev lo`: every address in it is then bindable on this host
# with no interface to create. Without that, pods get loopback IPs (127.<k>.<n>.0/24): Pod status
# accepts them, EndpointSlices do not.
choose_pod_cidrs() {
  POD_CIDRS=()
  local k i cidr
  : >"${STATE}/routes"
  if [[ "${POD_NET}" != loopback ]] && can_route_locally; then
    for ((i = 0; i < 20; i++)); do
      k=$((RANDOM % (256 - NODES)))
      if ! ip route show table local | grep -q "^local 198\.18\.${k}\.0/24"; then break; fi
    done
    for ((i = 0; i < NODES; i++)); do
      cidr="198.18.$((k + i)).0/24"
      ip route add local "${cidr}" dev lo || die "ip route add local ${cidr} dev lo failed"
      echo "${cidr}" >>"${STATE}/routes"
      POD_CIDRS+=("${cidr}")
    done
    POD_NET_MODE="local route on lo"
  else
    [[ "${POD_NET}" == local-route ]] && die "RAGOPS_E2E_POD_NET=local-route needs root and iproute2"
    k=$((1 + RANDOM % 250))
    for ((i = 0; i < NODES; i++)); do POD_CIDRS+=("127.${k}.$((i + 1)).0/24"); done
    POD_NET_MODE="loopback: EndpointSlices will reject these pod IPs"
  fi
}

can_route_locally() {
  [[ "$(id -u)" == 0 ]] && command -v ip >/dev/null || return 1
  # Probe with a throwaway route, so a missing CAP_NET_ADMIN falls back instead of failing.
  ip route add local 198.19.255.0/30 dev lo 2>/dev/null || return 1
  ip route del local 198.19.255.0/30 dev lo 2>/dev/null || true
}

remove_pod_routes() {
  [[ -f "${STATE}/routes" ]] || return 0
  local cidr
  while read -r cidr; do
    [[ -n "${cidr}" ]] && ip route del local "${cidr}" dev lo 2>/dev/null || true
  done <"${STATE}/routes"
  rm -f "${STATE}/routes"
}

# Fake nodes managed by kwok: no taints, plenty of room, one pod CIDR each.
create_nodes() {
  local i
  for ((i = 0; i < NODES; i++)); do
    cat <<EOF
---
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-${i}
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    type: kwok
    kubernetes.io/hostname: kwok-node-${i}
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    kubernetes.io/role: agent
spec:
  podCIDR: ${POD_CIDRS[${i}]}
  podCIDRs: [${POD_CIDRS[${i}]}]
status:
  allocatable: {cpu: "32", memory: 256Gi, pods: "110"}
  capacity: {cpu: "32", memory: 256Gi, pods: "110"}
EOF
  done >"${STATE}/nodes.yaml"
  "${KUBECTL[@]}" apply -f "${STATE}/nodes.yaml" >/dev/null
  log "created ${NODES} fake node(s)"
}
