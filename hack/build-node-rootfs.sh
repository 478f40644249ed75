#!/usr/bin/env bash
# The root filesystem of our kind node image, from Debian's packages: trixie
# (what kind's base image uses) with systemd and the packages kind's base image
# installs, plus Debian's runc and CNI plugins. Built by debootstrap from apt's
# mirror (about 3 min), cached as a tarball keyed by the package list.
# Prints the tarball's path on the last line.
set -euo pipefail
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
SUITE="${NODE_SUITE:-trixie}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
PACKAGES="systemd,systemd-sysv,dbus,conntrack,iptables,nftables,iproute2,ethtool,util-linux,mount,kmod,libseccomp2,pigz,e2fsprogs,bash,ca-certificates,curl,jq,procps,runc,containernetworking-plugins,socat,ebtables"
key=$(printf '%s %s' "${SUITE}" "${PACKAGES}" | sha256sum | cut -c1-12)
TAR="${CACHE_ROOT}/kind-node/rootfs-${SUITE}-${key}.tar"

as_kind_base() {  # as kind's base image: no services but the ones the node enables, no kmsg in the journal
  local r="$1"
  rm -rf "${r}"/usr/share/doc/* "${r}"/usr/share/man/*
  rm -f "${r}"/lib/systemd/system/multi-user.target.wants/* "${r}"/etc/systemd/system/*.wants/* \
        "${r}"/lib/systemd/system/local-fs.target.wants/* "${r}"/lib/systemd/system/sockets.target.wants/*udev* \
        "${r}"/lib/systemd/system/sockets.target.wants/*initctl* "${r}"/lib/systemd/system/basic.target.wants/*
  find "${r}"/lib/systemd/system/sysinit.target.wants/ -name systemd-tmpfiles-setup.service -delete
  echo "ReadKMsg=no" >> "${r}/etc/systemd/journald.conf"
}
debootstrap_tarball node-rootfs "${SUITE}" "${MIRROR}" "${PACKAGES}" "${TAR}" as_kind_base
echo "${TAR}"
