#!/usr/bin/env bash
# Assembles a kind node image with no registry, doing what `kind build
# node-image` does (its builder fetches every image it preloads, so it cannot
# run offline): the Debian trixie root filesystem of hack/build-node-rootfs.sh,
# kind's own node files from the kind module, the Kubernetes binaries and
# containerd built from Go modules, and every image kubeadm and kind need,
# built here and preloaded into containerd's k8s.io namespace.
#
# All images are named under local.chaosdemo.dev/ (a name no registry
# answers): the harness tells kubeadm and containerd to use them, see
# hack/kind/cluster-config.py. kindnetd is not available here; a CNI stand-in
# of ours (hack/kind/cni-standin) does what it does.
#
# Needs DOCKER_HOST pointing at an engine that can run privileged containers.
# Prints the node image's tag on the last line of stdout. Cached by tag: a
# second run takes a second.
set -euo pipefail
cd "$(dirname "$0")/../.."

K8S_VERSION="${K8S_VERSION:-v1.36.3}"
KIND_VERSION="${KIND_VERSION:-v0.33.0}"
REPO=local.chaosdemo.dev
log() { printf '[node-image] %s\n' "$*" >&2; }

cp_bin=$(bash hack/build-control-plane.sh | tail -1)
kind_bin=$(bash hack/build-kind-tier.sh | tail -1)
rootfs=$(bash hack/build-node-rootfs.sh | tail -1)
kind_files="$(go env GOMODCACHE)/sigs.k8s.io/kind@${KIND_VERSION}"
[[ -d "${kind_files}" ]] || (cd /tmp && GOFLAGS=-mod=mod go mod download "sigs.k8s.io/kind@${KIND_VERSION}")
busybox=$(command -v busybox || true)
[[ -n "${busybox}" ]] && file -L "${busybox}" 2>/dev/null | grep -q static || busybox=/bin/busybox
[[ -x "${busybox}" ]] || { log "busybox-static is needed (apt-get install busybox-static)"; exit 1; }

# The tag changes with anything that goes into the image.
key=$(cat "${cp_bin}/../.complete" "${kind_bin}/../.complete" <(basename "${rootfs}") \
        hack/kind/build-node-image.sh hack/kind/cni-standin hack/kind/cni-standin.yaml | sha256sum | cut -c1-10)
TAG="chaosdemo/kind-node:${K8S_VERSION}-local-${key}"
if docker image inspect "${TAG}" >/dev/null 2>&1; then
  log "reusing ${TAG}"
  echo "${TAG}"
  exit 0
fi
log "assembling ${TAG} (about 3 min on 2 cores)"
start=$(date +%s)
work=$(mktemp -d)
preload=""
cleanup() {
  [[ -n "${preload}" ]] && docker rm -f "${preload}" >/dev/null 2>&1 || true
  docker rmi "${TAG}-unloaded" >/dev/null 2>&1 || true
  rm -rf "${work}"
}
trap cleanup EXIT

base="chaosdemo/kind-node-base:$(basename "${rootfs}" .tar)"
if ! docker image inspect "${base}" >/dev/null 2>&1; then
  docker import --change 'ENV container=docker' "${rootfs}" "${base}" >/dev/null
fi

# --- the images kubeadm, kind and the CNI stand-in run, each a docker-save tarball
mkdir -p "${work}/images"
image() {  # image NAME TAG FROM FILE...: files land in ${DEST:-/usr/local/bin/}; the Dockerfile ends with $ENTRY
  local name="$1" tag="$2" from="$3"; shift 3
  local ctx="${work}/ctx-${name}" dest="${DEST:-/usr/local/bin/}"
  mkdir -p "${ctx}"
  { echo "FROM ${from}"; for f in "$@"; do cp -L "${f}" "${ctx}/"; echo "COPY $(basename "${f}") ${dest}$(basename "${f}")"; done
    echo "${ENTRY}"; } > "${ctx}/Dockerfile"
  docker build -q --network none -t "${REPO}/${name}:${tag}" "${ctx}" >/dev/null
  docker save -o "${work}/images/${name}.tar" "${REPO}/${name}:${tag}"
  docker rmi "${REPO}/${name}:${tag}" >/dev/null
  log "image ${REPO}/${name}:${tag}"
}
# kubeadm's static pods and kube-proxy's DaemonSet run their command by name, so the binaries
# go where containerd's default PATH looks.
for c in kube-apiserver kube-controller-manager kube-scheduler; do
  ENTRY="ENTRYPOINT [\"/usr/local/bin/${c}\"]" image "${c}" "${K8S_VERSION}" scratch "${cp_bin}/${c}"
done
ENTRY='ENTRYPOINT ["/usr/local/bin/etcd"]' image etcd "$("${cp_bin}/etcd" --version | sed -n 's/^etcd Version: /v/p')" scratch "${cp_bin}/etcd"
ENTRY='ENTRYPOINT ["/usr/local/bin/coredns"]' image coredns "$("${kind_bin}/coredns" -version | sed -n 's|^CoreDNS-\(.*\)$|v\1|p')" scratch "${kind_bin}/coredns"
ENTRY='ENTRYPOINT ["/usr/local/bin/pause"]' image pause "3.10-local" scratch "${kind_bin}/pause"
# kube-proxy programs iptables and conntrack: it runs on the node's own Debian userland.
ENTRY='ENTRYPOINT ["/usr/local/bin/kube-proxy"]' image kube-proxy "${K8S_VERSION}" "${base}" "${kind_bin}/kube-proxy"
ENTRY='ENTRYPOINT ["/usr/local/bin/local-path-provisioner"]' image local-path-provisioner local scratch "${kind_bin}/local-path-provisioner"
cp "${busybox}" "${work}/busybox"
DEST=/ ENTRY='RUN ["/busybox", "mkdir", "-p", "/bin", "/tmp"]
RUN ["/busybox", "--install", "-s", "/bin"]' image local-path-helper local scratch "${work}/busybox"
cp "${cp_bin}/kubectl" "${work}/kubectl"
DEST=/ ENTRY='RUN ["/busybox", "mkdir", "-p", "/bin", "/tmp"]
RUN ["/busybox", "--install", "-s", "/bin"]
ENTRYPOINT ["/bin/sh", "/cni-standin"]' image cni-standin local scratch "${work}/busybox" "${work}/kubectl" hack/kind/cni-standin

# --- the node: kind's files, the binaries, its manifests
ctx="${work}/node"
mkdir -p "${ctx}/bin" "${ctx}/k8s-bin" "${ctx}/kind/manifests"
cp -r "${kind_files}/images/base/files/." "${ctx}/files"
chmod -R u+w "${ctx}/files"
for b in containerd containerd-shim-runc-v2 ctr crictl; do cp "${kind_bin}/${b}" "${ctx}/bin/"; done
# Where kind's node-image builder puts them (kubelet.service runs /usr/bin/kubelet).
for b in kubelet kubeadm; do cp "${kind_bin}/${b}" "${ctx}/k8s-bin/"; done
cp "${cp_bin}/kubectl" "${ctx}/k8s-bin/"
echo "${K8S_VERSION}" > "${ctx}/kind/version"
sed "s|@REPO@|${REPO}|g" hack/kind/cni-standin.yaml > "${ctx}/kind/manifests/default-cni.yaml"
# kind's default storage: its own manifest (read from the kind module), with our images.
python3 - "${kind_files}/pkg/build/nodeimage/const_storage.go" "${REPO}" > "${ctx}/kind/manifests/default-storage.yaml" <<'PY'
import re, sys
src, repo = open(sys.argv[1]).read(), sys.argv[2]
src = src[src.index("const defaultStorageManifest = `"):]
src = src.replace("` + storageProvisionerImage + `", f"{repo}/local-path-provisioner:local")
src = src.replace("` + storageHelperImage + `", f"{repo}/local-path-helper:local")
manifest = re.search(r"const defaultStorageManifest = `(.*?)`", src, re.S).group(1)
assert "image: " + repo in manifest, "kind's storage manifest changed shape"
print(manifest)
PY
cat > "${ctx}/Dockerfile" <<EOF
FROM ${base}
COPY files/ /
COPY bin/ /usr/local/bin/
COPY k8s-bin/ /usr/bin/
COPY kind/ /kind/
RUN chmod 755 /usr/local/bin/* /usr/bin/kubelet /usr/bin/kubeadm /usr/bin/kubectl /kind /kind/bin /kind/bin/* \\
 && mkdir -p /etc/kubernetes/manifests /opt/cni \\
 && ln -s /usr/lib/cni /opt/cni/bin \\
 && systemctl enable kubelet.service containerd.service undo-mount-hacks.service \\
 && systemctl mask systemd-binfmt.service \\
 && ctr oci spec | jq '.hooks.createContainer[.hooks.createContainer|length] |= . + {"path": "/kind/bin/mount-product-files.sh"}' \\
      | jq 'del(.process.rlimits)' > /etc/containerd/cri-base.json \\
 && ln -sf /usr/lib/systemd/systemd /sbin/init
ENV container=docker
STOPSIGNAL SIGRTMIN+3
ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]
EOF
docker build -q --network none -t "${TAG}-unloaded" "${ctx}" >/dev/null
log "node filesystem built; preloading $(ls "${work}/images" | wc -l) images into containerd"

# --- preload: containerd in the new image imports every image (not unpacked:
# the CRI unpacks an image the first time a container uses it), then commit.
preload=$(docker run -d --network none --privileged --entrypoint /usr/local/bin/containerd "${TAG}-unloaded")
for i in $(seq 50); do docker exec "${preload}" ctr version >/dev/null 2>&1 && break; sleep 0.2; done
docker exec "${preload}" mkdir -p /kind/images
for t in "${work}"/images/*.tar; do
  docker cp "${t}" "${preload}:/kind/images/"
  docker exec "${preload}" ctr --namespace=k8s.io images import --all-platforms --no-unpack --digests \
    "/kind/images/$(basename "${t}")" >/dev/null
done
docker exec "${preload}" rm -rf /kind/images
docker exec "${preload}" ctr --namespace=k8s.io images list -q | grep -v "^sha256:" | sed "s/^/[node-image] preloaded /" >&2
docker stop -t 10 "${preload}" >/dev/null
# The container keeps the image's STOPSIGNAL and ENV; only the entrypoint changed for the preload.
docker commit --change 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' --change 'CMD []' \
  "${preload}" "${TAG}" >/dev/null
[[ "$(docker image inspect -f '{{.Config.StopSignal}}' "${TAG}")" == "SIGRTMIN+3" ]] \
  || { log "the committed image lost its STOPSIGNAL"; exit 1; }
docker rmi "${TAG}-unloaded" >/dev/null 2>&1 || true
log "built ${TAG} in $(( $(date +%s) - start ))s ($(docker image inspect -f '{{.Size}}' "${TAG}" | awk '{printf "%.0f MB", $1/1e6}'))"
echo "${TAG}"
