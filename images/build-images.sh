#!/usr/bin/env bash
# Builds the rag-operator and rag-runtime images as OCI image layouts, with no container daemon:
# the release binaries on a root filesystem made of Debian's own packages (what distroless images
# are made of), packed with umoci.
#
#   build-images.sh BIN_DIR     BIN_DIR holds the release binaries rag-operator and rag-runtime
#
# Output: ${RAGOPS_IMAGES_DIR}/oci/<image> is an OCI layout tagged <version> (the workspace's),
# e.g. `umoci unpack --image .../oci/rag-runtime:0.1.0 bundle`. Two layers per image: the base
# (shared by both, cached per package set) and the binary. Files carry a fixed mtime and owner, and
# the config a fixed creation time, so the same binary gives the same image digest.
#
# Environment: RAGOPS_IMAGES_DIR (default ${XDG_CACHE_HOME:-$HOME/.cache}/ragops-images),
# RAGOPS_IMAGES_PROFILE (release; another cargo profile's images go to oci-<profile>/),
# RAGOPS_IMAGES_REFRESH=1 (download the packages again: new security updates), SOURCE_DATE_EPOCH.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=SCRIPTDIR/images-lib.sh
source "${HERE}/images-lib.sh"

BIN_DIR="${1:?usage: build-images.sh BIN_DIR}"
# What the binaries link (libc, libgcc_s; checked below against each binary's DT_NEEDED), the CA
# bundle the rustls clients read, zoneinfo, /etc/os-release, /etc/services.
PACKAGES=(base-files netbase tzdata ca-certificates libc6 libgcc-s1)
# The workspace's version (the first `version =` in Cargo.toml is [workspace.package]'s).
VERSION="$(sed -n 's/^version = "\(.*\)"$/\1/p' "${REPO_ROOT}/Cargo.toml" | head -n1)"
# Fixed time for files, layers and configs: the last commit's, when the clone has history.
EPOCH="${SOURCE_DATE_EPOCH:-$(git -C "${REPO_ROOT}" log -1 --format=%ct 2>/dev/null || echo 0)}"
CREATED="$(date -u -d "@${EPOCH}" +%Y-%m-%dT%H:%M:%SZ)"
ARCH="$(dpkg --print-architecture)"

need_cmd umoci umoci
need_cmd readelf binutils
need_cmd apt-get apt
need_cmd dpkg-deb dpkg

# Downloads the packages once into the cache; prints the .deb paths. apt-get download needs the
# package lists, which `apt-get update` (root) fetches when they are missing or stale.
fetch_debs() {
  local dir="${IMAGES_DIR}/debs/${ARCH}" list
  list="${dir}/packages-$(printf '%s\n' "${PACKAGES[@]}" | sha256sum | cut -c1-12).txt"
  mkdir -p "${dir}"
  if [[ "${RAGOPS_IMAGES_REFRESH:-0}" == 1 || ! -s "${list}" ]] || ! all_present "${dir}" "${list}"; then
    log "downloading ${PACKAGES[*]} (${ARCH})"
    local tmp
    tmp="$(mktemp -d "${dir}/dl.XXXXXX")"
    # As root apt-get would drop to its _apt user, who cannot enter a private cache dir.
    local apt=(apt-get download)
    [[ "$(id -u)" != 0 ]] || apt+=(-o APT::Sandbox::User=root)
    if ! (cd "${tmp}" && "${apt[@]}" "${PACKAGES[@]}" >&2); then
      [[ "$(id -u)" == 0 ]] || die "apt-get download failed; run 'apt-get update' as root and retry"
      apt-get update -qq >&2
      (cd "${tmp}" && "${apt[@]}" "${PACKAGES[@]}" >&2)
    fi
    find "${tmp}" -maxdepth 1 -name '*.deb' -printf '%f\n' | LC_ALL=C sort >"${tmp}/list"
    mv -f "${tmp}"/*.deb "${dir}/"
    mv -f "${tmp}/list" "${list}"
    rmdir "${tmp}"
  fi
  sed "s|^|${dir}/|" "${list}"
}

all_present() {
  local f
  while read -r f; do [[ -f "$1/${f}" ]] || return 1; done <"$2"
}

# The root filesystem of the base layer, from the unpacked packages, without docs, manuals,
# locales, maintainer scripts' tools or gconv modules (Rust binaries use none of them).
make_rootfs() {
  local root="$1" deb name
  shift
  mkdir -p "${root}/var/lib/dpkg/status.d"
  for deb in "$@"; do
    dpkg-deb -x "${deb}" "${root}"
    name="$(dpkg-deb -f "${deb}" Package)"
    # What distroless records, so image scanners see the package versions.
    { dpkg-deb -f "${deb}" Package Version Architecture Maintainer Source Installed-Size Description \
        | sed '1a Status: install ok installed'; } >"${root}/var/lib/dpkg/status.d/${name}"
  done
  find "${root}/usr/share/doc" -mindepth 2 ! -name copyright ! -type d -delete
  find "${root}/usr/share/doc" -depth -type d -empty -delete
  rm -rf "${root:?}"/usr/share/{man,info,locale,lintian,bug,common-licenses,base-files,base-passwd} \
    "${root:?}"/usr/lib/*-linux-gnu/gconv "${root:?}"/usr/sbin "${root:?}"/sbin "${root:?}"/usr/bin \
    "${root:?}"/etc/{init.d,default,update-motd.d,cron.daily}
  # update-ca-certificates' job: one PEM bundle of every certificate the package ships.
  mkdir -p "${root}/etc/ssl/certs"
  find "${root}/usr/share/ca-certificates" -name '*.crt' | LC_ALL=C sort | xargs cat \
    >"${root}/etc/ssl/certs/ca-certificates.crt"
  printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' 'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' \
    'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' >"${root}/etc/passwd"
  printf '%s\n' 'root:x:0:' 'nobody:x:65534:' 'nonroot:x:65532:' >"${root}/etc/group"
  printf '%s\n' 'passwd: files' 'group: files' 'hosts: files dns' 'networks: files' \
    'protocols: files' 'services: files' >"${root}/etc/nsswitch.conf"
  mkdir -p "${root}/tmp" "${root}/root" "${root}/home/nonroot"
  chmod 1777 "${root}/tmp"
  chmod 0700 "${root}/root" "${root}/home/nonroot"
}

# The base layer (uncompressed tar), cached per package set: every file root-owned except the
# nonroot user's home.
base_layer() {
  local debs key out work
  mapfile -t debs < <(fetch_debs)
  key="$(printf '%s\n' "${debs[@]##*/}" "${EPOCH}" "$(sha256sum "${BASH_SOURCE[0]}")" | sha256sum | cut -c1-16)"
  out="${IMAGES_DIR}/layers/base-${ARCH}-${key}.tar"
  if [[ ! -s "${out}" ]]; then
    log "assembling the base layer from ${#debs[@]} packages"
    work="$(mktemp -d "${IMAGES_DIR}/tmp.XXXXXX")"
    make_rootfs "${work}/rootfs" "${debs[@]}"
    mkdir -p "${IMAGES_DIR}/layers"
    (cd "${work}/rootfs" && mapfile -t top < <(find . -mindepth 1 -maxdepth 1 -printf '%f\n' | LC_ALL=C sort) &&
      reproducible_tar "${work}/layer.tar" 0 --exclude=home/nonroot -- "${top[@]}" &&
      reproducible_tar "${work}/layer.tar" 65532 --append --no-recursion home/nonroot)
    # Only the current base is kept: an older one is for packages or a time no longer used.
    find "${IMAGES_DIR}/layers" -name "base-${ARCH}-*.tar" -delete
    mv "${work}/layer.tar" "${out}"
    rm -rf "${work}"
  fi
  echo "${out}"
}

# tar FILE OWNER [tar args...]: sorted entries, fixed mtime, numeric owner, no atime/ctime.
reproducible_tar() {
  local file="$1" owner="$2"
  shift 2
  local mode=(--create)
  [[ " $* " == *" --append "* ]] && mode=()
  tar "${mode[@]}" --file "${file}" --sort=name --format=pax \
    --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
    --mtime="@${EPOCH}" --owner="${owner}" --group="${owner}" --numeric-owner "$@"
}

# Every library a binary needs must be in the base layer, and its ELF interpreter too.
check_links() {
  local bin="$1" base="$2" files lib interp
  files="$(tar -tf "${base}")"
  while read -r lib; do
    grep -qE "(^|/)${lib//./\\.}\$" <<<"${files}" || die "$(basename "${bin}") needs ${lib}, not in the base layer"
  done < <(readelf -d "${bin}" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
  interp="$(readelf -l "${bin}" | sed -n 's/.*Requesting program interpreter: \/\(.*\)\]/\1/p')"
  [[ -z "${interp}" ]] || grep -qxF "${interp}" <<<"${files}" || die "interpreter /${interp} not in the base layer"
}

# image NAME BASE_LAYER: a fresh layout for NAME, tagged VERSION, built beside the old one and
# moved into place, so a failed build leaves the previous image intact.
build_image() {
  local name="$1" base="$2" bin="${BIN_DIR}/$1" work layout app
  [[ -x "${bin}" ]] || die "no ${bin}: build the release binaries first (make images does)"
  check_links "${bin}" "${base}"
  work="$(mktemp -d "${IMAGES_DIR}/tmp.XXXXXX")"
  layout="${work}/${name}"
  mkdir -p "${work}/app/usr/local/bin"
  install -m 0755 "${bin}" "${work}/app/usr/local/bin/${name}"
  (cd "${work}/app" && reproducible_tar "${work}/app.tar" 0 usr)
  local hist=(--history.created "${CREATED}" --history.author ragops) cmd=()
  # As in images/Dockerfile: the runtime serves unless told otherwise.
  [[ "${name}" != rag-runtime ]] || cmd=(--config.cmd serve)
  umoci init --layout "${layout}"
  umoci new --image "${layout}:${VERSION}"
  umoci raw add-layer --image "${layout}:${VERSION}" "${hist[@]}" \
    --history.created_by "debian packages: ${PACKAGES[*]}" "${base}"
  umoci raw add-layer --image "${layout}:${VERSION}" "${hist[@]}" \
    --history.created_by "COPY ${name} /usr/local/bin/${name}" "${work}/app.tar"
  umoci config --image "${layout}:${VERSION}" --no-history \
    --created "${CREATED}" --author ragops --os linux --architecture "${ARCH}" \
    --config.user 65532:65532 --config.workingdir /home/nonroot \
    --config.entrypoint "/usr/local/bin/${name}" "${cmd[@]}" \
    --config.env PATH=/usr/local/bin:/usr/bin:/bin --config.env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    --config.label "org.opencontainers.image.title=${name}" \
    --config.label "org.opencontainers.image.version=${VERSION}" \
    --config.label "org.opencontainers.image.source=https://github.com/ragops/ragops" \
    --config.label "org.opencontainers.image.licenses=Apache-2.0"
  umoci gc --layout "${layout}"
  mkdir -p "${OCI_DIR}"
  rm -rf "${OCI_DIR}/${name}.old"
  [[ ! -e "${OCI_DIR}/${name}" ]] || mv "${OCI_DIR}/${name}" "${OCI_DIR}/${name}.old"
  mv "${layout}" "${OCI_DIR}/${name}"
  rm -rf "${OCI_DIR}/${name}.old" "${work}"
  app="$(stat -c %s "${bin}")"
  report "${name}" "${app}"
}

# One line per image: the compressed size (what a registry stores and a node pulls), the
# uncompressed size and the manifest digest.
report() {
  local layout="${OCI_DIR}/$1" compressed uncompressed digest
  compressed="$(du -sb --apparent-size "${layout}/blobs" | cut -f1)"
  uncompressed="$(($(stat -c %s "${BASE}") + $2))"
  digest="$(umoci stat --image "${layout}:${VERSION}" --json >/dev/null 2>&1 && manifest_digest "${layout}")"
  printf '%-13s %s:%s  %s MB compressed, %s MB unpacked  %s\n' "$1" "${layout}" "${VERSION}" \
    "$(mb "${compressed}")" "$(mb "${uncompressed}")" "${digest}"
}

manifest_digest() {
  grep -o '"digest":"sha256:[0-9a-f]*"' "$1/index.json" | head -n1 | cut -d'"' -f4
}

mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1000000 }'; }

mkdir -p "${IMAGES_DIR}"
start=${SECONDS}
BASE="$(base_layer)"
for image in rag-operator rag-runtime; do
  build_image "${image}" "${BASE}"
done
log "images built in $((SECONDS - start)) s (${ARCH}, ${PROFILE} binaries, version ${VERSION}, created ${CREATED})"
