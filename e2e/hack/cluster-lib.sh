# Process, port, health, network and node helpers for cluster.sh. Sourced; expects STATE, BIN,
# NODES, POD_NET, TIMEOUT and KUBECTL (array) to be set by the caller.

log() { echo "cluster: $*" >&2; }
die() {
  echo "cluster: error: $*" >&2
  exit 1
}

# Stop order (start order reversed).
COMPONENTS=(kwok kube-scheduler kube-controller-manager kube-apiserver etcd)
START_ORDER=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)
# How many times a component that exits while starting is started, each time on new ports.
START_ATTEMPTS="${RAGOPS_E2E_START_ATTEMPTS:-3}"
# Lowest port handed out below the ephemeral range.
PORT_FLOOR=10000

# ephemeral_range: "low high" of the kernel's ephemeral port range (32768 60999 if unreadable).
ephemeral_range() {
  local lo="" hi=""
  { read -r lo hi </proc/sys/net/ipv4/ip_local_port_range; } 2>/dev/null || true
  if [[ "${lo}" =~ ^[0-9]+$ && "${hi}" =~ ^[0-9]+$ ]] && ((lo <= hi)); then
    echo "${lo} ${hi}"
  else
    echo "32768 60999"
  fi
}

# port_in_use <port>: something listens on 127.0.0.1:<port>, or a TCP socket of this network
# namespace (any state) has it as its local port.
port_in_use() {
  local p="$1" hex f
  # A refused connection means nothing listens.
  if (exec 3<>"/dev/tcp/127.0.0.1/${p}") 2>/dev/null; then return 0; fi
  printf -v hex ':%04X' "${p}"
  for f in /proc/net/tcp /proc/net/tcp6; do
    [[ -r "${f}" ]] || continue
    awk -v h="${hex}" 'NR > 1 && substr($2, length($2) - 4) == h { found = 1; exit }
      END { exit !found }' "${f}" && return 0
  done
  return 1
}

# free_port [taken...]: a TCP port on 127.0.0.1 that is not in use and not in the list, chosen
# outside the kernel's ephemeral range (from PORT_FLOOR up to its low end, or above its high
# end): a port inside it can be taken by any outgoing connection (the API server's own, say)
# between the pick and the component's bind.
free_port() {
  local lo hi below above total r p i
  read -r lo hi <<<"$(ephemeral_range)"
  below=$((lo - PORT_FLOOR)) # ports PORT_FLOOR .. lo-1
  ((below < 0)) && below=0
  above=$((65535 - hi)) # ports hi+1 .. 65535
  ((above < 0)) && above=0
  total=$((below + above))
  ((total > 0)) || die "no port >= ${PORT_FLOOR} outside the ephemeral range ${lo}-${hi} (net.ipv4.ip_local_port_range)"
  for ((i = 0; i < 200; i++)); do
    r=$((((RANDOM << 15) | RANDOM) % total))
    if ((r < below)); then p=$((PORT_FLOOR + r)); else p=$((hi + 1 + r - below)); fi
    [[ " $* " == *" ${p} "* ]] && continue
    if ! port_in_use "${p}"; then
      echo "${p}"
      return
    fi
  done
  die "no free port found outside the ephemeral range ${lo}-${hi}"
}

# Every port this run of `up` has handed out (failed ones included, so a retry never reuses one).
USED_PORTS=()
# new_port <var>: a fresh free port into <var>.
new_port() {
  local p
  p="$(free_port "${USED_PORTS[@]}")" || exit 1
  USED_PORTS+=("${p}")
  printf -v "$1" '%s' "${p}"
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

# pid_alive <pid>: the process exists and is not a zombie.
pid_alive() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  [[ "${stat:0:1}" != Z ]]
}

# is_ours <name>: the recorded pid is alive and still runs the binary we started.
is_ours() {
  local pidf="${STATE}/pids/$1.pid" pid exe
  [[ -f "${pidf}" ]] || return 1
  pid="$(cat "${pidf}")"
  exe="$(cat "${STATE}/pids/$1.exe" 2>/dev/null || true)"
  pid_alive "${pid}" || return 1
  [[ -z "${exe}" || "$(readlink "/proc/${pid}/exe" 2>/dev/null)" == "$(readlink -f "${exe}")" ]]
}

all_running() {
  local c
  for c in "${COMPONENTS[@]}"; do is_ours "${c}" || return 1; done
}

# ---- health ----
# health/<name> holds "<url> <tls>": tls is "-" (plain http), "insecure" (the component serves a
# self-signed certificate it made in memory) or the CA file that verifies its serving certificate.

# set_health <name> <url> <tls>
set_health() {
  mkdir -p "${STATE}/health"
  echo "$2 $3" >"${STATE}/health/$1"
}

health_url() {
  local url="" tls=""
  { read -r url tls <"${STATE}/health/$1"; } 2>/dev/null || true
  echo "${url:-unknown}"
}

# http_ok <url> <tls>: the URL answers 200 within 5 s. curl when installed; otherwise a bare
# HTTP/1.0 GET over bash's /dev/tcp, or over `openssl s_client` for https.
# RAGOPS_E2E_HTTP_CLIENT=builtin forces the fallback (to test it).
http_ok() {
  local url="$1" tls="${2:--}"
  if [[ "${RAGOPS_E2E_HTTP_CLIENT:-}" != builtin ]] && command -v curl >/dev/null; then
    local args=(-fs -o /dev/null --max-time 5)
    case "${tls}" in
      -) ;;
      insecure) args+=(-k) ;;
      *) args+=(--cacert "${tls}") ;;
    esac
    curl "${args[@]}" "${url}" 2>/dev/null
    return
  fi
  local rest hostport path req status=""
  rest="${url#*://}"
  hostport="${rest%%/*}"
  path="/${rest#*/}"
  [[ "${rest}" == */* ]] || path=/
  req="GET ${path} HTTP/1.0"$'\r\n'"Host: ${hostport}"$'\r\n\r\n'
  if [[ "${url}" == https://* ]]; then
    local verify=()
    [[ "${tls}" != insecure ]] && verify=(-CAfile "${tls}" -verify_return_error)
    status="$(printf '%s' "${req}" |
      timeout 5 openssl s_client -quiet -connect "${hostport}" "${verify[@]}" 2>/dev/null |
      head -n 1)" || true
  else
    # shellcheck disable=SC2016 # expanded by the inner bash
    status="$(timeout 5 bash -c 'exec 3<>"/dev/tcp/${1%:*}/${1##*:}" && printf "%s" "$2" >&3 && head -n 1 <&3' \
      _ "${hostport}" "${req}" 2>/dev/null)" || true
  fi
  [[ "${status}" =~ ^HTTP/1\.[01]\ 200 ]]
}

# healthy <name>: its process runs and its recorded health endpoint answers 200.
healthy() {
  local url="" tls=""
  is_ours "$1" || return 1
  { read -r url tls <"${STATE}/health/$1"; } 2>/dev/null || return 1
  http_ok "${url}" "${tls}"
}

# health_report: one line per component on stderr; returns 1 if any is down or unhealthy.
health_report() {
  local c bad=0
  for c in "${START_ORDER[@]}"; do
    if ! is_ours "${c}"; then
      log "${c}: NOT RUNNING (log: ${STATE}/logs/${c}.log)"
      bad=1
    elif [[ ! -f "${STATE}/health/${c}" ]]; then
      log "${c}: UNHEALTHY: no health endpoint recorded (started by an older cluster.sh?)"
      bad=1
    elif ! healthy "${c}"; then
      log "${c}: UNHEALTHY: $(health_url "${c}") does not answer 200 (log: ${STATE}/logs/${c}.log)"
      bad=1
    else
      log "${c}: ok ($(health_url "${c}"))"
    fi
  done
  return "${bad}"
}

all_healthy() {
  local c
  for c in "${COMPONENTS[@]}"; do healthy "${c}" || return 1; done
}

# check_alive [name...]: fail fast with its log when one of these components (default: all) has
# died after it was started.
check_alive() {
  local c names=("$@")
  ((${#names[@]} > 0)) || names=("${COMPONENTS[@]}")
  for c in "${names[@]}"; do
    if [[ -f "${STATE}/pids/${c}.pid" ]] && ! is_ours "${c}"; then
      tail -n 30 "${STATE}/logs/${c}.log" >&2 || true
      die "${c} exited (log: ${STATE}/logs/${c}.log)"
    fi
  done
}

# stop_one <name>: SIGTERM, SIGKILL after 10 s; only the pid we recorded, if it still runs our binary.
stop_one() {
  local c="$1" pid i
  if is_ours "${c}"; then
    pid="$(cat "${STATE}/pids/${c}.pid")"
    kill -TERM "${pid}" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
      pid_alive "${pid}" || break
      sleep 0.1
    done
    if pid_alive "${pid}"; then
      log "${c} did not stop on SIGTERM; killing"
      kill -KILL "${pid}" 2>/dev/null || true
    fi
    log "stopped ${c} (pid ${pid})"
  fi
  rm -f "${STATE}/pids/${c}.pid"
}

stop_all() {
  local c
  for c in "${COMPONENTS[@]}"; do stop_one "${c}"; done
  rm -f "${STATE}"/pids/*.pid
}

# Components that have passed await_healthy; one of them dying while another starts fails `up`.
# (One started but not yet awaited is left to its own await_healthy, which may restart it.)
CONFIRMED=()

# await_healthy <name> <launch function>: wait until the component's health endpoint answers.
# If it exits while starting, or logs that its port is taken, it is stopped and launched again
# (the launch function picks new ports), up to START_ATTEMPTS times; then `up` fails with its log.
await_healthy() {
  local name="$1" launch="$2" attempt=1 deadline reason pid logf="${STATE}/logs/$1.log"
  deadline=$(($(date +%s) + TIMEOUT))
  while true; do
    if healthy "${name}"; then
      log "${name} healthy: $(health_url "${name}")"
      CONFIRMED+=("${name}")
      return
    fi
    reason=""
    if ! is_ours "${name}"; then
      reason="exited"
    elif grep -q 'address already in use' "${logf}" 2>/dev/null; then
      reason="cannot bind its port"
    fi
    if [[ -n "${reason}" ]]; then
      if ((attempt >= START_ATTEMPTS)); then
        tail -n 30 "${logf}" >&2 || true
        die "${name} ${reason} while starting, attempt ${attempt} of ${START_ATTEMPTS} (log: ${logf})"
      fi
      log "${name} ${reason} while starting (attempt ${attempt} of ${START_ATTEMPTS}); its log ends:"
      tail -n 5 "${logf}" | cut -c1-300 | sed 's/^/    /' >&2 || true
      pid="$(cat "${STATE}/pids/${name}.pid" 2>/dev/null || true)"
      stop_one "${name}"
      # Reap it: it is a child of this shell.
      [[ -n "${pid}" ]] && wait "${pid}" 2>/dev/null || true
      mv "${logf}" "${STATE}/logs/${name}.attempt${attempt}.log"
      attempt=$((attempt + 1))
      log "starting ${name} again on new ports"
      "${launch}"
      deadline=$(($(date +%s) + TIMEOUT))
      continue
    fi
    ((${#CONFIRMED[@]} == 0)) || check_alive "${CONFIRMED[@]}"
    if (($(date +%s) >= deadline)); then
      tail -n 30 "${logf}" >&2 || true
      die "timed out after ${TIMEOUT}s waiting for ${name} at $(health_url "${name}") (log: ${logf})"
    fi
    sleep 0.5
  done
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
