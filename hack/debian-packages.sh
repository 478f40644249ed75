#!/usr/bin/env bash
# What the tiers need from Debian's packages, one list for `make demo`, `make test` and `.ci/run`.
# As root it installs what is missing and says what; otherwise it prints the one command to run and
# fails, so a newcomer's first `make demo` or `make test` either works or says exactly what to do.
#
#   hack/debian-packages.sh demo   the local tier: a Docker engine, busybox for the images it builds
#   hack/debian-packages.sh test   and what the tests read with: Prometheus, headless Chromium
#   hack/debian-packages.sh kind   and what the kind tier builds with: debootstrap
set -euo pipefail
purpose="${1:-test}"

need=()
want() {  # want PACKAGE CHECK...: the package, unless CHECK succeeds
  local pkg="$1"; shift
  "$@" >/dev/null 2>&1 || need+=("${pkg}")
}
have() { command -v "$1"; }

want make have make
want openssl have openssl
want curl have curl
want iptables have iptables
want file have file
# A real Docker engine for node-kill, container-kill and kind (the tiers start and stop their own
# dockerd; no service is started here), and busybox, static so that it runs in a bare image.
want docker.io have dockerd
want busybox-static dpkg -s busybox-static
if [[ "${purpose}" != demo ]]; then
  # A real Prometheus evaluates the dashboard's queries; headless Chromium renders the report page.
  want prometheus have prometheus
  want chromium have chromium
fi
if [[ "${purpose}" == kind ]]; then
  want debootstrap have debootstrap  # the root filesystems of the kind node image and the Python base image
fi

if ((${#need[@]} == 0)); then
  exit 0
fi
if [[ "$(id -u)" != 0 ]]; then
  echo "[packages] missing Debian packages for '${purpose}': ${need[*]}" >&2
  echo "[packages] install them with:  sudo apt-get install -y ${need[*]}" >&2
  exit 1
fi
echo "[packages] installing what '${purpose}' needs from Debian: ${need[*]} (a minute or two, once)" >&2
# Packages only: no service of theirs is started (policy-rc.d); the tiers start what they need.
no_start=""
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  no_start=1
fi
trap '[[ -z "${no_start}" ]] || rm -f /usr/sbin/policy-rc.d' EXIT
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
echo "[packages] installed: ${need[*]}" >&2
