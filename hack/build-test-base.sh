#!/usr/bin/env bash
# A stand-in for python:3.11-slim where no registry can be reached: Debian bookworm's
# minimal base with its python3 (3.11), built by debootstrap from Debian's packages and
# cached as a tarball. Prints the tarball's path on the last line.
set -euo pipefail
CACHE_ROOT="${CHAOSDEMO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/chaosdemo}"
TAR="${CACHE_ROOT}/base/debian-bookworm-python3.11.tar"
if [[ ! -s "${TAR}" ]]; then
  command -v debootstrap >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
  work=$(mktemp -d)
  trap 'rm -rf "${work}"' EXIT
  echo "[base] debootstrap bookworm (minbase + python3)" >&2
  debootstrap --variant=minbase --include=python3,python3-venv,python-is-python3,ca-certificates \
    bookworm "${work}/rootfs" http://deb.debian.org/debian >&2
  rm -rf "${work}/rootfs/var/cache/apt/archives/"*.deb "${work}/rootfs/var/lib/apt/lists/"*
  mkdir -p "$(dirname "${TAR}")"
  tar -C "${work}/rootfs" -cf "${TAR}.tmp" . && mv "${TAR}.tmp" "${TAR}"
fi
echo "${TAR}"
