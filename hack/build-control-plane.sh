#!/usr/bin/env bash
# Builds a real Kubernetes control plane from Go modules (no internet but the
# Go module proxy): etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl and kwok. The binaries are cached outside the work
# tree, keyed by version, so only the first run on a machine pays for the build.
#
# Prints the bin directory on its last line of stdout. Progress goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/lib-k8s-module.sh

K8S_VERSION="${K8S_VERSION:-v1.36.3}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
KWOK_VERSION="${KWOK_VERSION:-v0.8.0}"
source hack/lib.sh  # CACHE_ROOT
KEY="k8s-${K8S_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}"
OUT="${CACHE_ROOT}/controlplane/${KEY}"
BIN="${OUT}/bin"

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-trimpath

log() { printf '[control-plane] %s\n' "$*" >&2; }

if [[ -f "${OUT}/.complete" ]]; then
  log "reusing ${BIN} (built $(cat "${OUT}/.complete"))"
  echo "${BIN}"
  exit 0
fi

log "first build of the control plane from Go modules: about 5 min on 2 cores with an empty module cache, up to 10 with other work beside it (cached afterwards in ${OUT})"
mkdir -p "${BIN}" "${OUT}/src"
start=$(date +%s)

# --- Kubernetes: a wrapper module that maps every staging module (required
# at v0.0.0 by k8s.io/kubernetes) to its published tag (hack/lib-k8s-module.sh).
k8s_src="${OUT}/src/k8s"
log "resolving Kubernetes ${K8S_VERSION} modules"
k8s_wrapper_module "${k8s_src}" "${K8S_VERSION}" kube-apiserver kube-controller-manager kube-scheduler kubectl
ldf="$(k8s_ldflags "${K8S_VERSION}")"
for c in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
  log "building ${c} ${K8S_VERSION}"
  t0=$(date +%s)
  (cd "${k8s_src}" && go build -p 2 -ldflags "${ldf}" -o "${BIN}/${c}" "k8s.io/kubernetes/cmd/${c}")
  log "built ${c} in $(( $(date +%s) - t0 ))s"
done

# --- etcd: the server module's go.mod has relative replaces, so build it
# through a wrapper module too.
etcd_src="${OUT}/src/etcd"
rm -rf "${etcd_src}" && mkdir -p "${etcd_src}"
(
  cd "${etcd_src}"
  printf 'module chaosdemo.invalid/etcdbin\n\ngo 1.26.0\n' > go.mod
  go mod edit -require="go.etcd.io/etcd/server/v3@${ETCD_VERSION}" -tool=go.etcd.io/etcd/server/v3
  go mod tidy >&2
  log "building etcd ${ETCD_VERSION}"
  go build -p 2 -ldflags "-s -w" -o "${BIN}/etcd" go.etcd.io/etcd/server/v3
)

# --- kwok: its tags carry no replace directives, so go install works.
log "building kwok ${KWOK_VERSION}"
GOBIN="${BIN}" go install -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@${KWOK_VERSION}"

# kwok v0.8.0 exits with "no stages found" unless stages are given; its
# defaults ship only in its module, so keep a copy beside the binaries.
moddir="$(go env GOMODCACHE)/sigs.k8s.io/kwok@${KWOK_VERSION}/kustomize/stage"
mkdir -p "${OUT}/stages"
for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
         pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
  cp "${moddir}/${f}" "${OUT}/stages/$(basename "${f}")"
done
chmod -R u+w "${OUT}/stages"

"${BIN}/kube-apiserver" --version >&2
"${BIN}/etcd" --version >&2
elapsed=$(( $(date +%s) - start ))
log "cold build took ${elapsed}s"
echo "$(date -u +%FT%TZ) in ${elapsed}s on $(nproc) cores" > "${OUT}/.complete"
echo "${BIN}"
