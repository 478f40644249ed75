#!/usr/bin/env bash
# Builds, from Go modules and Debian sources only, every binary a kind node and
# its preloaded images need where no registry can be reached: kind itself;
# kubelet, kubeadm and kube-proxy; containerd v2 with its runc shim and ctr;
# crictl; CoreDNS; local-path-provisioner; pause. The control plane's own
# binaries (kube-apiserver, controller-manager, scheduler, kubectl, etcd) come
# from hack/build-control-plane.sh. Cached outside the work tree by version:
# only the first run on a machine pays (about 10 min on 2 cores, measured in
# README); later runs take well under a second.
#
# Prints the bin directory on its last line of stdout. Progress goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/lib-k8s-module.sh

K8S_VERSION="${K8S_VERSION:-v1.36.3}"
KIND_VERSION="${KIND_VERSION:-v0.33.0}"
CONTAINERD_VERSION="${CONTAINERD_VERSION:-v2.3.7}"
CRICTL_VERSION="${CRICTL_VERSION:-v1.37.0}"
COREDNS_VERSION="${COREDNS_VERSION:-v1.14.2}"
LOCAL_PATH_VERSION="${LOCAL_PATH_VERSION:-v0.0.30}"
source hack/lib.sh  # CACHE_ROOT
KEY="k8s-${K8S_VERSION}_kind-${KIND_VERSION}_containerd-${CONTAINERD_VERSION}_crictl-${CRICTL_VERSION}_coredns-${COREDNS_VERSION}_localpath-${LOCAL_PATH_VERSION}"
OUT="${CACHE_ROOT}/kind-tier/${KEY}"
BIN="${OUT}/bin"

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-trimpath

log() { printf '[kind-tier] %s\n' "$*" >&2; }
timed() {  # timed NAME CMD...: run and log how long it took
  local name="$1" t0; shift; t0=$(date +%s)
  "$@"
  log "built ${name} in $(( $(date +%s) - t0 ))s"
}

if [[ -f "${OUT}/.complete" ]]; then
  log "reusing ${BIN} (built $(cat "${OUT}/.complete"))"
  echo "${BIN}"
  exit 0
fi
log "first build of the kind tier's binaries: about 10 min on 2 cores (cached afterwards in ${OUT})"
mkdir -p "${BIN}" "${OUT}/src"
start=$(date +%s)

timed "kind ${KIND_VERSION}" env GOBIN="${BIN}" go install -ldflags "-s -w" "sigs.k8s.io/kind@${KIND_VERSION}"

k8s_wrapper_module "${OUT}/src/k8s" "${K8S_VERSION}" kubelet kubeadm kube-proxy
ldf="$(k8s_ldflags "${K8S_VERSION}")"
for c in kubeadm kube-proxy kubelet; do
  (cd "${OUT}/src/k8s" && timed "${c} ${K8S_VERSION}" go build -p 2 -ldflags "${ldf}" -o "${BIN}/${c}" "k8s.io/kubernetes/cmd/${c}")
done

# containerd: no cgo and none of the optional snapshotters, as kind's own build.
ctd_ldf="-s -w -X github.com/containerd/containerd/v2/version.Version=${CONTAINERD_VERSION} -X github.com/containerd/containerd/v2/version.Revision=module-proxy-build"
for c in containerd containerd-shim-runc-v2 ctr; do
  timed "${c} ${CONTAINERD_VERSION}" env GOBIN="${BIN}" go install -tags "no_btrfs no_devmapper no_zfs no_aufs" \
    -ldflags "${ctd_ldf}" "github.com/containerd/containerd/v2/cmd/${c}@${CONTAINERD_VERSION}"
done

timed "crictl ${CRICTL_VERSION}" env GOBIN="${BIN}" go install \
  -ldflags "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=${CRICTL_VERSION}" "sigs.k8s.io/cri-tools/cmd/crictl@${CRICTL_VERSION}"
timed "coredns ${COREDNS_VERSION}" env GOBIN="${BIN}" go install -ldflags "-s -w" "github.com/coredns/coredns@${COREDNS_VERSION}"
timed "local-path-provisioner ${LOCAL_PATH_VERSION}" env GOBIN="${BIN}" go install \
  -ldflags "-s -w -X main.VERSION=${LOCAL_PATH_VERSION}" "github.com/rancher/local-path-provisioner@${LOCAL_PATH_VERSION}"

# pause: Kubernetes' own C source, linked statically.
pause_c="$(go env GOMODCACHE)/k8s.io/kubernetes@${K8S_VERSION}/build/pause/linux/pause.c"
[[ -f "${pause_c}" ]] || (cd "${OUT}/src/k8s" && go mod download "k8s.io/kubernetes@${K8S_VERSION}")
timed pause gcc -Os -static -DVERSION="${K8S_VERSION}-chaosdemo" -o "${BIN}/pause" "${pause_c}"

"${BIN}/kubeadm" version -o short >&2
"${BIN}/containerd" --version >&2
elapsed=$(( $(date +%s) - start ))
log "cold build took ${elapsed}s"
echo "$(date -u +%FT%TZ) in ${elapsed}s on $(nproc) cores" > "${OUT}/.complete"
echo "${BIN}"
