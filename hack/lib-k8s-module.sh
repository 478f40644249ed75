# Sourced by the build scripts: a wrapper Go module that builds commands of
# k8s.io/kubernetes from the module proxy. k8s.io/kubernetes requires its
# staging modules at v0.0.0 with replaces into ./staging, which a module
# download does not carry; the wrapper maps each one to its published tag.

# k8s_wrapper_module DIR VERSION CMD... : write and tidy the module in DIR.
k8s_wrapper_module() {
  local dir="$1" version="$2"; shift 2
  local staging_tag="v0.${version#v1.}" upstream_mod mods m c
  rm -rf "${dir}" && mkdir -p "${dir}"
  (
    cd "${dir}"
    printf 'module chaosdemo.invalid/k8sbins\n\ngo 1.26.0\n' > go.mod
    go mod edit -require="k8s.io/kubernetes@${version}"
    upstream_mod=$(go mod download -json "k8s.io/kubernetes@${version}" \
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
    mods=$(sed -n 's|^[[:space:]]*\(k8s.io/[^ ]*\) => ./staging/.*|\1|p' "${upstream_mod}")
    [[ -n "${mods}" ]] || { echo "no staging modules found in ${upstream_mod}" >&2; exit 1; }
    for m in ${mods}; do go mod edit -replace="${m}=${m}@${staging_tag}"; done
    for c in "$@"; do go mod edit -tool="k8s.io/kubernetes/cmd/${c}"; done
    go mod tidy >&2
  )
}

# k8s_ldflags VERSION : the version stamp `kubectl version` and kubeadm read.
k8s_ldflags() {
  local version="$1" minor p ldf="-s -w"
  minor="${version#v1.}"; minor="${minor%%.*}"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldf="${ldf} -X ${p}.gitVersion=${version} -X ${p}.gitMajor=1 -X ${p}.gitMinor=${minor}"
    ldf="${ldf} -X ${p}.gitTreeState=clean -X ${p}.gitCommit=module-proxy-build -X ${p}.buildDate=$(date -u +%FT%TZ)"
  done
  echo "${ldf}"
}
