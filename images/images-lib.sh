# Shared by build-images.sh and test-images.sh (sourced, not run).
# shellcheck shell=bash
# shellcheck disable=SC2034 # REPO_ROOT and IMAGES_DIR are for the scripts that source this.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
IMAGES_DIR="${RAGOPS_IMAGES_DIR:-${XDG_CACHE_HOME:-${HOME}/.cache}/ragops-images}"
# The layouts: oci/ for the release binaries' images, oci-<profile>/ for another cargo profile's.
PROFILE="${RAGOPS_IMAGES_PROFILE:-release}"
OCI_DIR="${IMAGES_DIR}/oci$([[ "${PROFILE}" == release ]] || echo "-${PROFILE}")"

log() { echo "images: $*" >&2; }
die() {
  log "error: $*"
  exit 1
}

# need_cmd COMMAND DEBIAN_PACKAGE: installs the package when the command is missing (root only).
need_cmd() {
  command -v "$1" >/dev/null 2>&1 && return 0
  if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    die "$1 is missing; install the Debian package $2 (as root: apt-get install $2)"
  fi
  log "installing $2 (for $1)"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >&2; then
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >&2
  fi
  command -v "$1" >/dev/null 2>&1 || die "installed $2 but $1 is still missing"
}
