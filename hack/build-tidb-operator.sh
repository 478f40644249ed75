#!/usr/bin/env bash
# Builds tidb-operator's controller-manager and discovery from the Go module
# github.com/pingcap/tidb-operator (its published tag), cached outside the work
# tree by version, and extracts its Helm chart and CRDs from the same module.
#
# The module requires github.com/tikv/pd v2.1.17+incompatible, which the module
# proxy here refuses. tidb-operator uses only two types of it (pkg/typeutil:
# ByteSize and Duration, for JSON fields of PD's store status), so a local
# module of ours with those two types stands in for it (hack/tidb-operator/pd-typeutil).
# Its nested modules pkg/apis and pkg/client are required at the same tag.
#
# Prints the cache directory on the last line: bin/{tidb-controller-manager,tidb-discovery},
# charts/tidb-operator, manifests/crd.yaml.
set -euo pipefail
VERSION="${TIDB_OPERATOR_VERSION:-v1.6.6}"
REPO="$(cd "$(dirname "$0")/.." && pwd)"
source "${REPO}/hack/lib.sh"  # CACHE_ROOT
OUT="${CACHE_ROOT}/tidb-operator-${VERSION}"
STUB_HASH=$(cd "${REPO}/hack/tidb-operator/pd-typeutil" && find . -type f | sort | xargs cat | sha256sum | cut -c1-8)
STAMP="${OUT}/.built-${STUB_HASH}"

if [[ -f "${STAMP}" ]]; then
  echo "[tidb-operator] reusing ${OUT} ($(cat "${STAMP}"))" >&2
  echo "${OUT}"
  exit 0
fi
echo "[tidb-operator] building tidb-operator ${VERSION} (controller-manager, discovery) from its Go module:" \
     "about 3 min on 2 cores with the module cache warm, up to 12 min cold; once, then cached in ${OUT}" >&2
start=$(date +%s)
work=$(mktemp -d)
trap 'rm -rf "${work}"' EXIT
export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0
(
  cd "${work}"
  cp -r "${REPO}/hack/tidb-operator/pd-typeutil" pd-typeutil
  printf 'module chaosdemo.invalid/tidboperator\n\ngo 1.26.0\n' > go.mod
  go mod edit -require="github.com/pingcap/tidb-operator@${VERSION}" \
    -require="github.com/pingcap/tidb-operator/pkg/apis@${VERSION}" \
    -require="github.com/pingcap/tidb-operator/pkg/client@${VERSION}" \
    -require="github.com/tikv/pd@v2.1.17+incompatible" \
    -replace="github.com/tikv/pd=./pd-typeutil"
  upstream=$(go mod download -json "github.com/pingcap/tidb-operator@${VERSION}" \
    | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["GoMod"]); print(d["Dir"])')
  upstream_mod=$(echo "${upstream}" | sed -n 1p)
  upstream_dir=$(echo "${upstream}" | sed -n 2p)
  # The upstream module's own replaces to other modules (not its ./pkg paths) apply here too.
  sed -n 's|^replace[[:space:]]\+\([^ ]*\) => \([^.][^ ]*\) \(v[^ ]*\)$|\1=\2@\3|p' "${upstream_mod}" | while read -r r; do
    go mod edit -replace="${r}"
  done
  printf 'package tools\n\nimport (\n\t_ "github.com/pingcap/tidb-operator/cmd/controller-manager"\n\t_ "github.com/pingcap/tidb-operator/cmd/discovery"\n)\n' > tools.go
  sed -i '1i //go:build tools' tools.go
  go mod tidy -e >&2 || true
  ldflags="-s -w -X github.com/pingcap/tidb-operator/pkg/version.gitVersion=${VERSION}"
  ldflags="${ldflags} -X github.com/pingcap/tidb-operator/pkg/version.gitCommit=module-proxy-build"
  ldflags="${ldflags} -X github.com/pingcap/tidb-operator/pkg/version.buildDate=$(date -u +%FT%TZ)"
  mkdir -p "${OUT}/bin"
  go build -trimpath -ldflags "${ldflags}" -o "${OUT}/bin/tidb-controller-manager" \
    github.com/pingcap/tidb-operator/cmd/controller-manager >&2
  go build -trimpath -ldflags "${ldflags}" -o "${OUT}/bin/tidb-discovery" \
    github.com/pingcap/tidb-operator/cmd/discovery >&2
  rm -rf "${OUT}/charts" "${OUT}/manifests"
  mkdir -p "${OUT}/charts" "${OUT}/manifests"
  cp -r "${upstream_dir}/charts/tidb-operator" "${OUT}/charts/"
  cp "${upstream_dir}/manifests/crd.yaml" "${OUT}/manifests/"
  chmod -R u+w "${OUT}/charts"
)
echo "built in $(( $(date +%s) - start ))s on $(nproc) cores, $(date -u +%FT%TZ)" > "${STAMP}"
echo "[tidb-operator] $(cat "${STAMP}"): ${OUT}" >&2
echo "${OUT}"
