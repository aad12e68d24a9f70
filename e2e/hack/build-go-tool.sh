#!/usr/bin/env bash
# Builds one Go command from its module at a pinned version into
# ${RAGOPS_E2E_CACHE}/bin/<name>-<version>/<name>, once per version (e.g. actionlint for
# `make workflows-lint`). The module hashes are pinned in gosum/<name>-<version>.sum: a build
# that needs a module the pin does not list fails instead of trusting whatever the proxy serves.
# Idempotent: a binary whose stamp matches its version and Go version is not rebuilt. Needs Go
# >= 1.26 and, on the first build, the Go module proxy.
#
# Usage: build-go-tool.sh [--print-path] NAME MODULE@VERSION PACKAGE
#   e.g. build-go-tool.sh actionlint github.com/rhysd/actionlint@v1.7.12 github.com/rhysd/actionlint/cmd/actionlint
# RAGOPS_UPDATE_GOSUM=1 writes the pin from a fresh resolution (a new version, reviewed in git).
set -euo pipefail

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.sh
source "${HACK_DIR}/versions.sh"

print_path=0
if [[ "${1:-}" == "--print-path" ]]; then
  print_path=1
  shift
fi
die() { echo "build-go-tool: error: $*" >&2; exit 1; }
[[ $# -eq 3 && "$2" == *@v* ]] || die "usage: build-go-tool.sh [--print-path] NAME MODULE@VERSION PACKAGE"
NAME="$1" MODULE="${2%@*}" VERSION="${2##*@}" PACKAGE="$3"
log() { echo "build-go-tool: ${NAME}: $*" >&2; }

BIN_DIR="${RAGOPS_E2E_CACHE}/bin/${NAME}-${VERSION}"
BIN="${BIN_DIR}/${NAME}"
if [[ "${print_path}" == 1 ]]; then
  echo "${BIN}"
  exit 0
fi

# shellcheck source=go-env.sh
source "${HACK_DIR}/go-env.sh"
go_env "${NAME} ${VERSION}"

SRC_DIR="${RAGOPS_E2E_CACHE}/src/${NAME}-${VERSION}"
mkdir -p "${BIN_DIR}" "${SRC_DIR}"
go_build_lock

STAMP="${MODULE}@${VERSION} ${PACKAGE} ${GO_VERSION}"
if [[ -x "${BIN}" && "$(cat "${BIN_DIR}/.stamp" 2>/dev/null)" == "${STAMP}" ]]; then
  log "cached (${VERSION})"
  exit 0
fi

PIN="${HACK_DIR}/gosum/${NAME}-${VERSION}.sum"
update="${RAGOPS_UPDATE_GOSUM:-0}"
[[ -f "${PIN}" || "${update}" == 1 ]] ||
  die "no pinned go.sum ${PIN}; run once with RAGOPS_UPDATE_GOSUM=1 and commit it"

cat >"${SRC_DIR}/go.mod" <<EOM
module ragops.invalid/tools/${NAME}

go 1.26.0

require ${MODULE} ${VERSION}
EOM
if [[ "${update}" == 1 ]]; then rm -f "${SRC_DIR}/go.sum"; else cp "${PIN}" "${SRC_DIR}/go.sum"; fi

start="$(date +%s)"
log "building ${PACKAGE}@${VERSION} ..."
tmp="${BIN_DIR}/.${NAME}.tmp"
(cd "${SRC_DIR}" && "${GO}" mod download "${MODULE}" &&
  "${GO}" build -trimpath -o "${tmp}" -ldflags "-s -w" "${PACKAGE}") ||
  die "building ${PACKAGE}@${VERSION} failed (see above; is the Go module proxy ${GOPROXY} reachable?)"

if [[ "${update}" == 1 ]]; then
  cp "${SRC_DIR}/go.sum" "${PIN}"
  log "wrote ${PIN}"
elif ! cmp -s "${SRC_DIR}/go.sum" "${PIN}"; then
  # Every module the build used must already be pinned (the Go tool adds lines it had to trust).
  rm -f "${tmp}"
  diff "${PIN}" "${SRC_DIR}/go.sum" >&2 || true
  die "the build used modules whose hashes ${PIN} does not pin (above)"
fi
mv -f "${tmp}" "${BIN}"
echo "${STAMP}" >"${BIN_DIR}/.stamp"
log "built in $(($(date +%s) - start))s: ${BIN}"
