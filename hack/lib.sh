# Sourced by the build scripts: where builds are cached, and a Debian root filesystem as a cached tarball.

# Everything built is cached outside the work tree, keyed by version, so only a machine's first run pays.
CACHE_ROOT="${CHAOSDEMO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/chaosdemo}"

# debootstrap_tarball TAG SUITE MIRROR PACKAGES TAR [HOOK]: build a minbase root filesystem of SUITE with
# PACKAGES and write it to TAR (unless TAR exists), without apt's caches; HOOK, if named, is called with the
# root directory before it is packed. Progress and the build time go to stderr, tagged [TAG].
debootstrap_tarball() {
  local tag="$1" suite="$2" mirror="$3" packages="$4" tar="$5" hook="${6:-}" work t0
  [[ -s "${tar}" ]] && return 0
  command -v debootstrap >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
  work=$(mktemp -d)
  t0=$(date +%s)
  echo "[${tag}] debootstrap ${suite} (minbase + ${packages//,/ }): a few minutes, once" >&2
  if ! debootstrap --variant=minbase --include="${packages}" "${suite}" "${work}/rootfs" "${mirror}" >"${work}/log" 2>&1; then
    tail -30 "${work}/log" >&2; rm -rf "${work}"; return 1
  fi
  rm -rf "${work}"/rootfs/var/cache/apt/archives/*.deb "${work}"/rootfs/var/lib/apt/lists/*
  [[ -z "${hook}" ]] || "${hook}" "${work}/rootfs"
  mkdir -p "$(dirname "${tar}")"
  tar -C "${work}/rootfs" --numeric-owner -cf "${tar}.tmp" . && mv "${tar}.tmp" "${tar}"
  rm -rf "${work}"
  echo "[${tag}] built in $(( $(date +%s) - t0 ))s: $(du -h "${tar}" | cut -f1)" >&2
}
