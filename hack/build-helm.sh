#!/usr/bin/env bash
# Builds helm from its Go module (its tags carry no replace directives), cached
# outside the work tree by version. Prints the binary's path on the last line.
set -euo pipefail
HELM_VERSION="${HELM_VERSION:-v3.22.0}"
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"  # CACHE_ROOT
BIN="${CACHE_ROOT}/helm-${HELM_VERSION}"
if [[ ! -x "${BIN}/helm" ]]; then
  echo "[helm] building helm ${HELM_VERSION} from the Go module proxy (about 1 min, once)" >&2
  start=$(date +%s)
  GOTOOLCHAIN=local CGO_ENABLED=0 GOBIN="${BIN}" go install -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}" "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}" >&2
  echo "[helm] built in $(( $(date +%s) - start ))s" >&2
fi
echo "${BIN}/helm"
