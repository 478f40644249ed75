#!/usr/bin/env bash
# The root filesystem of our kind node image, from Debian's packages: trixie
# (what kind's base image uses) with systemd and the packages kind's base image
# installs, plus Debian's runc and CNI plugins. Built by debootstrap from apt's
# mirror (about 3 min), cached as a tarball keyed by the package list.
# Prints the tarball's path on the last line.
set -euo pipefail
SUITE="${NODE_SUITE:-trixie}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
PACKAGES="systemd,systemd-sysv,dbus,conntrack,iptables,nftables,iproute2,ethtool,util-linux,mount,kmod,libseccomp2,pigz,e2fsprogs,bash,ca-certificates,curl,jq,procps,runc,containernetworking-plugins,socat,ebtables"
CACHE_ROOT="${CHAOSDEMO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/chaosdemo}"
key=$(printf '%s %s' "${SUITE}" "${PACKAGES}" | sha256sum | cut -c1-12)
TAR="${CACHE_ROOT}/kind-node/rootfs-${SUITE}-${key}.tar"
if [[ ! -s "${TAR}" ]]; then
  command -v debootstrap >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
  work=$(mktemp -d)
  trap 'rm -rf "${work}"' EXIT
  echo "[node-rootfs] debootstrap ${SUITE} with systemd and kind's node packages (about 3 min, once)" >&2
  t0=$(date +%s)
  debootstrap --variant=minbase --include="${PACKAGES}" "${SUITE}" "${work}/rootfs" "${MIRROR}" >"${work}/log" 2>&1 \
    || { tail -30 "${work}/log" >&2; exit 1; }
  r="${work}/rootfs"
  rm -rf "${r}"/var/cache/apt/archives/*.deb "${r}"/var/lib/apt/lists/* "${r}"/usr/share/doc/* "${r}"/usr/share/man/*
  # As kind's base image: no services but the ones the node enables, no kmsg in the journal.
  rm -f "${r}"/lib/systemd/system/multi-user.target.wants/* "${r}"/etc/systemd/system/*.wants/* \
        "${r}"/lib/systemd/system/local-fs.target.wants/* "${r}"/lib/systemd/system/sockets.target.wants/*udev* \
        "${r}"/lib/systemd/system/sockets.target.wants/*initctl* "${r}"/lib/systemd/system/basic.target.wants/*
  find "${r}"/lib/systemd/system/sysinit.target.wants/ -name systemd-tmpfiles-setup.service -delete
  echo "ReadKMsg=no" >> "${r}/etc/systemd/journald.conf"
  mkdir -p "$(dirname "${TAR}")"
  tar -C "${r}" --numeric-owner -cf "${TAR}.tmp" . && mv "${TAR}.tmp" "${TAR}"
  echo "[node-rootfs] built in $(( $(date +%s) - t0 ))s: $(du -h "${TAR}" | cut -f1)" >&2
fi
echo "${TAR}"
