#!/usr/bin/env bash
# `make demo-kind`: ChaosDemo on a real kind cluster. One script, two image sources,
# chosen automatically and printed:
# - online (registries answer): kind's published node image, tidb-operator's chart and a
#   real TiDB; needs docker, kind (>= 0.19), kubectl and helm;
# - offline (no registry, as on our own machines): everything built here from Go modules and
#   Debian packages, PD and TiKV as STAND-IN pods (chaosdemo-local kind-demo).
# IMAGES=online or IMAGES=offline forces the choice.
set -euo pipefail
cd "$(dirname "$0")/.."

CLUSTER="${KIND_CLUSTER:-chaosdemo}"
TIDB_OPERATOR_VERSION="${TIDB_OPERATOR_VERSION:-v1.6.6}"
IMAGE="${IMAGE:-chaosdemo-operator:dev}"
ACTION="${ACTION:-pod-delete}"
step() { printf '\n==> %s\n' "$*"; }

images="${IMAGES:-}"
if [[ -z "${images}" ]]; then
  answers() { [[ "$(curl -s -m 5 -o /dev/null -w '%{http_code}' "$1" || true)" != 000 ]]; }
  if answers https://registry.k8s.io/v2/ && answers https://charts.pingcap.com/index.yaml; then
    images=online
  else
    images=offline
  fi
fi
if [[ "${images}" == offline ]]; then
  echo "image source: offline (no registry answers): kind, the node image, the operator and PD/TiKV STAND-INS are built here"
  exec .venv/bin/chaosdemo-local kind-demo --action "${ACTION}"
fi
echo "image source: online: kind's published node image, tidb-operator ${TIDB_OPERATOR_VERSION} and TiDB's images"

for tool in docker kind kubectl helm; do
  command -v "$tool" >/dev/null || { echo "missing $tool: see docs/kind-tier.md" >&2; exit 1; }
done

if ! kind get clusters | grep -qx "$CLUSTER"; then
  step "kind create cluster --name $CLUSTER --config kind-config.yaml"
  kind create cluster --name "$CLUSTER" --config kind-config.yaml
fi
kubectl config use-context "kind-$CLUSTER"

step "tidb-operator $TIDB_OPERATOR_VERSION: CRDs and Helm chart"
kubectl create -f "https://raw.githubusercontent.com/pingcap/tidb-operator/$TIDB_OPERATOR_VERSION/manifests/crd.yaml" 2>/dev/null \
  || kubectl replace -f "https://raw.githubusercontent.com/pingcap/tidb-operator/$TIDB_OPERATOR_VERSION/manifests/crd.yaml"
helm repo add pingcap https://charts.pingcap.com/ >/dev/null 2>&1 || true
helm repo update pingcap >/dev/null
kubectl create namespace tidb-admin --dry-run=client -o yaml | kubectl apply -f -
helm upgrade --install --namespace tidb-admin tidb-operator pingcap/tidb-operator --version "$TIDB_OPERATOR_VERSION" --wait

step "TidbCluster basic (1 PD, 3 TiKV, 1 TiDB): deploy/tidb-cluster.yaml"
kubectl create namespace tidb-cluster --dry-run=client -o yaml | kubectl apply -f -
kubectl apply -f deploy/tidb-cluster.yaml
echo "waiting for the TidbCluster to be Ready (first run pulls TiDB images: several minutes)"
kubectl wait -n tidb-cluster tidbcluster/basic --for=condition=Ready --timeout=20m

step "operator image $IMAGE, loaded into kind"
docker build -t "$IMAGE" .
kind load docker-image "$IMAGE" --name "$CLUSTER"

step "operator chart (Docker socket mounted for node-kill and container-kill)"
SOCKET_GID=$(stat -c %g /var/run/docker.sock)
helm upgrade --install chaosdemo charts/chaosdemo-operator --namespace chaosdemo-system --create-namespace \
  --set image.repository="${IMAGE%:*}" --set image.tag="${IMAGE##*:}" \
  --set dockerSocket.enabled=true --set dockerSocket.groupId="$SOCKET_GID" --wait
if [[ -n "${ANTHROPIC_API_KEY:-}" ]]; then
  kubectl -n chaosdemo-system create secret generic chaosdemo-anthropic \
    --from-literal=api-key="$ANTHROPIC_API_KEY" --dry-run=client -o yaml | kubectl apply -f -
  kubectl -n chaosdemo-system rollout restart deployment/chaosdemo-operator
  kubectl -n chaosdemo-system rollout status deployment/chaosdemo-operator
  echo "diagnosis: Claude"
else
  echo "diagnosis: rules engine (ANTHROPIC_API_KEY is not set)"
fi

sample=deploy/samples/chaosdemo.yaml
[[ "$ACTION" != pod-delete ]] && sample="deploy/samples/$ACTION.yaml"
name=$(kubectl create --dry-run=client -f "$sample" -o jsonpath='{.metadata.name}')
kubectl delete -f "$sample" --ignore-not-found --wait
step "kubectl apply -f $sample; kubectl get chaosdemos -n tidb-cluster -w"
kubectl apply -f "$sample"
kubectl get chaosdemos -n tidb-cluster -w &
watcher=$!
trap 'kill $watcher 2>/dev/null || true' EXIT
until phase=$(kubectl get chaosdemo "$name" -n tidb-cluster -o jsonpath='{.status.phase}') \
      && [[ "$phase" =~ ^(Succeeded|Failed|Aborted)$ ]]; do sleep 2; done
kill $watcher 2>/dev/null || true
step "diagnosis"
kubectl get chaosdemo "$name" -n tidb-cluster -o jsonpath='{.status.diagnosis}' | python3 -m json.tool
kubectl describe chaosdemo "$name" -n tidb-cluster | sed -n '/^Events:/,$p'
[[ "$phase" == Succeeded ]]
