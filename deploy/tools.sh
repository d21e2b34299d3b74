#!/usr/bin/env bash
# Builds the chart's CI tools, pinned, from the Go module proxy into .cache/tools/bin:
#   helm        helm.sh/helm/v3/cmd/helm          (helm lint, helm template)
#   kubeconform github.com/yannh/kubeconform/...  (every rendered object against the Kubernetes schemas)
# Go's module and build caches live in .cache/go, so a second run takes seconds (a cold Helm build
# takes about 4 minutes on 2 cores). Prints the bin folder on stdout; progress goes to stderr.
#
# Go: the one on PATH (or /usr/local/go/bin/go). Helm 3.22 needs Go >= 1.26. An older Go gets the
# pinned toolchain from the module proxy (the golang.org/toolchain module, checksum-verified by go).
set -euo pipefail
cd "$(dirname "$0")/.."

HELM_MODULE=helm.sh/helm/v3
HELM_VERSION=v3.22.0
# What Helm's own Makefile links in (its LDFLAGS at v3.22.0). Without them a source-built helm says
# "v3.22" and `helm template` / `helm lint` assume Kubernetes v1.20. The Kubernetes version is the
# one helm is built against: k8s.io/client-go v0.37.0 in its go.mod, so v1.37 (major = 0 + 1).
HELM_KUBERNETES_MAJOR=1
HELM_KUBERNETES_MINOR=37
HELM_LDFLAGS="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
for package in pkg/lint/rules pkg/chartutil; do
  HELM_LDFLAGS+=" -X helm.sh/helm/v3/$package.k8sVersionMajor=$HELM_KUBERNETES_MAJOR"
  HELM_LDFLAGS+=" -X helm.sh/helm/v3/$package.k8sVersionMinor=$HELM_KUBERNETES_MINOR"
done
KUBECONFORM_MODULE=github.com/yannh/kubeconform
KUBECONFORM_VERSION=v0.8.0
GO_MINIMUM=1.26
GO_TOOLCHAIN=go1.26.8

ROOT=$(pwd)
BIN="$ROOT/.cache/tools/bin"
export GOPATH="$ROOT/.cache/go"
export GOMODCACHE="$GOPATH/pkg/mod"
export GOCACHE="$GOPATH/build"
export GOBIN="$BIN"
export GOFLAGS=-buildvcs=false
export GOTOOLCHAIN=local
export CGO_ENABLED=0

log() { echo "tools: $*" >&2; }

find_go() {
  command -v go 2>/dev/null && return
  [[ -x /usr/local/go/bin/go ]] && echo /usr/local/go/bin/go && return
  log "no Go found (install Go >= $GO_MINIMUM, or golang-go and let this script fetch $GO_TOOLCHAIN)"
  exit 1
}

# "go1.26.8" -> "1.26"; true when $1 is at least GO_MINIMUM.
go_is_recent() {
  local v
  v=$("$1" env GOVERSION)
  v=${v#go}
  [[ "$(printf '%s\n%s\n' "$GO_MINIMUM" "${v%.*}" | sort -V | head -n1)" == "$GO_MINIMUM" ]]
}

# The pinned toolchain is an ordinary module on the proxy: download it with the old go, use its bin/go.
bootstrap_go() {
  local module="golang.org/toolchain@v0.0.1-$GO_TOOLCHAIN.linux-$("$1" env GOARCH)"
  local dir="$GOMODCACHE/${module}"
  if [[ ! -x "$dir/bin/go" ]]; then
    log "$1 is older than Go $GO_MINIMUM; fetching $module"
    (cd "$(mktemp -d)" && "$1" mod download "$module")
    chmod -R u+w "$dir" && chmod +x "$dir/bin/go" "$dir"/pkg/tool/*/*
  fi
  echo "$dir/bin/go"
}

# The module version and the -ldflags a binary was built with (go version -m records both), or
# nothing: a binary built before the ldflags changed is rebuilt.
built_with() {
  [[ -x "$BIN/$2" ]] || return 0
  "$1" version -m "$BIN/$2" | awk -F '\t' '$2 == "mod" { print $4 } $2 == "build" && $3 ~ /^-ldflags=/ { print $3 }'
}

install_tool() {
  local go=$1 name=$2 package=$3 version=$4 ldflags=${5:-}
  local wanted=$version
  [[ -z "$ldflags" ]] || wanted+=$'\n'"-ldflags=\"$ldflags\""
  if [[ "$(built_with "$go" "$name")" == "$wanted" ]]; then
    return
  fi
  log "building $name $version (cached in .cache/go)"
  "$go" install -ldflags "$ldflags" "$package@$version"
}

main() {
  local go
  go=$(find_go)
  go_is_recent "$go" || go=$(bootstrap_go "$go")
  mkdir -p "$BIN"
  install_tool "$go" helm "$HELM_MODULE/cmd/helm" "$HELM_VERSION" "$HELM_LDFLAGS"
  install_tool "$go" kubeconform "$KUBECONFORM_MODULE/cmd/kubeconform" "$KUBECONFORM_VERSION"
  echo "$BIN"
}

main "$@"
