#!/usr/bin/env bash
# Start and stop the loopback control plane N times in a row (default 20) to catch flaky starts:
# each run is `cluster.sh up`, `cluster.sh status`, then `cluster.sh down`, and fails if any step
# fails or a process of the run is still alive after `down`.
#
# Each run gets its own state dir under a fresh temp dir (RAGOPS_E2E_STATE is overridden), so a
# cluster already running for development is never touched. A failed run keeps its state dir
# (logs, audit log, the output of each step) and the loop goes on; the temp dir is removed at the
# end only if every run passed.
#
# Usage: updown-loop.sh [N]
# Prints `updown: N runs, F failures, R component restarts (up: min/avg/max ...)` and exits 1 if
# F > 0. Restarts (a component `up` had to start again on new ports) do not fail a run.
set -euo pipefail

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CLUSTER="${HACK_DIR}/cluster.sh"
N="${1:-20}"
[[ "${N}" =~ ^[1-9][0-9]*$ ]] || {
  echo "usage: $0 [N>0]" >&2
  exit 2
}

WORK="$(mktemp -d "${TMPDIR:-/tmp}/ragops-updown.XXXXXX")"
log() { echo "updown: $*" >&2; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
secs() { printf '%d.%01d' $(($1 / 1000)) $((($1 % 1000) / 100)); }

# If interrupted, stop the cluster of the current run (its logs stay) and say where things are.
current=""
on_signal() {
  if [[ -n "${current}" ]]; then
    RAGOPS_E2E_STATE="${current}/cluster" RAGOPS_E2E_KEEP_LOGS=1 "${CLUSTER}" down 2>/dev/null || true
  fi
  log "interrupted; runs in ${WORK}"
  exit 130
}
trap on_signal INT TERM


failures=0
restarts=0
failed_runs=()
up_times=()
log "${N} runs, state dirs under ${WORK}"
for ((i = 1; i <= N; i++)); do
  run="${WORK}/run-${i}"
  current="${run}"
  mkdir -p "${run}"
  export RAGOPS_E2E_STATE="${run}/cluster"
  failed=""

  t0="$(now_ms)"
  if "${CLUSTER}" up >"${run}/up.out" 2>"${run}/up.err"; then
    up_ms=$(($(now_ms) - t0))
    up_times+=("${up_ms}")
    if ! "${CLUSTER}" status >"${run}/status.out" 2>&1; then failed="status"; fi
  else
    up_ms=$(($(now_ms) - t0))
    failed="up"
  fi

  # The pids the cluster recorded, to check after `down` that none of them still runs.
  pids=()
  for f in "${RAGOPS_E2E_STATE}"/pids/*.pid; do
    [[ -f "${f}" ]] && pids+=("$(cat "${f}")")
  done
  keep=0
  [[ -n "${failed}" ]] && keep=1
  if ! RAGOPS_E2E_KEEP_LOGS="${keep}" "${CLUSTER}" down >"${run}/down.out" 2>&1; then
    failed="${failed:+${failed}, }down"
  fi
  leaked=""
  for pid in "${pids[@]}"; do
    # A zombie (state Z) has exited; only its parent has not reaped it yet.
    stat="$(cat "/proc/${pid}/stat" 2>/dev/null)" || continue
    stat="${stat##*) }"
    [[ "${stat:0:1}" == Z ]] || leaked+=" ${pid}"
  done
  if [[ -n "${leaked}" ]]; then
    failed="${failed:+${failed}, }processes left after down:${leaked}"
  fi
  current=""
  # Components that `up` had to start again (e.g. a port taken between pick and bind).
  n="$(grep -c 'while starting (attempt' "${run}/up.err" 2>/dev/null || true)"
  restarts=$((restarts + ${n:-0}))
  note=""
  ((${n:-0} > 0)) && note=", ${n} restart(s): $(sed -n 's/^cluster: \([a-z-]*\) .* while starting (attempt .*/\1/p' \
    "${run}/up.err" | paste -sd, -)"

  if [[ -n "${failed}" ]]; then
    failures=$((failures + 1))
    failed_runs+=("${i}")
    log "run ${i}/${N}: FAILED (${failed}) after up $(secs "${up_ms}")s${note}; kept in ${run}"
    tail -n 20 "${run}/up.err" | cut -c1-300 | sed 's/^/    /' >&2 || true
    [[ -f "${run}/status.out" ]] && sed 's/^/    /' "${run}/status.out" >&2
  else
    log "run ${i}/${N}: ok (up $(secs "${up_ms}")s${note})"
    rm -rf "${run}"
  fi
done

summary=""
if ((${#up_times[@]} > 0)); then
  min="${up_times[0]}" max="${up_times[0]}" sum=0
  for t in "${up_times[@]}"; do
    ((t < min)) && min="${t}"
    ((t > max)) && max="${t}"
    sum=$((sum + t))
  done
  summary=" (up: min $(secs "${min}")s, avg $(secs $((sum / ${#up_times[@]})))s, max $(secs "${max}")s)"
fi
echo "updown: ${N} runs, ${failures} failures, ${restarts} component restarts${summary}"
if ((failures > 0)); then
  log "failed runs: ${failed_runs[*]}; their logs are in ${WORK}/run-<n>/"
  exit 1
fi
rmdir "${WORK}" 2>/dev/null || true
