#!/usr/bin/env bash
# A stand-in for python:3.11-slim where no registry can be reached: Debian bookworm's
# minimal base with its python3 (3.11), built by debootstrap from Debian's packages and
# cached as a tarball. Prints the tarball's path on the last line.
set -euo pipefail
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
TAR="${CACHE_ROOT}/base/debian-bookworm-python3.11.tar"
debootstrap_tarball base bookworm http://deb.debian.org/debian python3,python3-venv,python-is-python3,ca-certificates "${TAR}"
echo "${TAR}"
