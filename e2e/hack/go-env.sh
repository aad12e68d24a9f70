# shellcheck shell=bash
# The Go environment every build script of the test tooling shares. Sourced; expects `die` and
# RAGOPS_E2E_CACHE (from versions.sh). `go_env WHAT` finds Go (GO, else PATH, else
# /usr/local/go), exports the environment, checks the Go version WHAT needs and sets GO_VERSION;
# `go_build_lock` takes the per-cache build lock (one Go build at a time).

go_env() {
  local what="$1" go_minor
  GO="${GO:-$(command -v go || true)}"
  [[ -z "${GO}" && -x /usr/local/go/bin/go ]] && GO=/usr/local/go/bin/go
  [[ -n "${GO}" && -x "${GO}" ]] ||
    die "Go not found. Install Go >= 1.26 (https://go.dev/dl/) and put it on PATH, or set GO=/path/to/go."

  # Caches outside the checkout, no toolchain download. The checksum database is often
  # unreachable where the proxy is; every module's hash is pinned in the checked-in go.sum files
  # under e2e/hack/gosum/ instead (see e2e/README.md).
  export GOMODCACHE="${RAGOPS_E2E_CACHE}/gomod"
  export GOCACHE="${RAGOPS_E2E_CACHE}/gocache"
  export GOTOOLCHAIN=local
  export CGO_ENABLED=0
  export GOPROXY="${GOPROXY:-https://proxy.golang.org,direct}"
  export GOSUMDB="${GOSUMDB:-off}"
  export GOFLAGS="-mod=mod -buildvcs=false"
  export GOWORK=off

  GO_VERSION="$("${GO}" env GOVERSION)"
  go_minor="$(sed -E 's/^go1\.([0-9]+).*/\1/' <<<"${GO_VERSION}")"
  [[ "${go_minor}" =~ ^[0-9]+$ && "${go_minor}" -ge 26 ]] ||
    die "${GO} is ${GO_VERSION}; ${what} needs Go >= 1.26 (GOTOOLCHAIN=local, no auto-download)."
  mkdir -p "${GOMODCACHE}" "${GOCACHE}"
}

go_build_lock() {
  exec 9>"${RAGOPS_E2E_CACHE}/.build.lock"
  command -v flock >/dev/null && flock 9
  return 0
}
