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

# The module version a binary was built from (go version -m), or nothing.
built_version() {
  [[ -x "$BIN/$2" ]] || return 0
  "$1" version -m "$BIN/$2" | awk '$1 == "mod" { print $3 }'
}

install_tool() {
  local go=$1 name=$2 package=$3 version=$4
  if [[ "$(built_version "$go" "$name")" == "$version" ]]; then
    return
  fi
  log "building $name $version (cached in .cache/go)"
  "$go" install "$package@$version"
}

main() {
  local go
  go=$(find_go)
  go_is_recent "$go" || go=$(bootstrap_go "$go")
  mkdir -p "$BIN"
  install_tool "$go" helm "$HELM_MODULE/cmd/helm" "$HELM_VERSION"
  install_tool "$go" kubeconform "$KUBECONFORM_MODULE/cmd/kubeconform" "$KUBECONFORM_VERSION"
  echo "$BIN"
}

main "$@"
