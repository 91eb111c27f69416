#!/usr/bin/env bash
# Installs the pinned toolchain (tools/versions.env) into .tools/ (git-ignored).
#
# Go tools are built from their modules (the only route that works without GitHub release downloads);
# each (tool, version) is built once into ~/.cache/langflow-platform/bin and linked into .tools/bin, so a
# fresh clone on a warm machine installs in seconds. A binary already on PATH with the pinned version is
# used as is. Python dependencies go into .venv (uv, from requirements.lock); Langflow into its own cached
# venv. Debian packages for the real servers are installed when missing (as root).
#
# Usage: tools/install.sh [all|go|python|langflow|apt|crds|schemas|scanners] ...   (default: all)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=versions.env
source "$ROOT/tools/versions.env"
TOOLS_DIR=${TOOLS_DIR:-$ROOT/.tools}
BIN=$TOOLS_DIR/bin
CACHE=${LFP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/langflow-platform}
export GOFLAGS=${GOFLAGS:--buildvcs=false}
export GOCACHE=${GOCACHE:-$(go env GOCACHE)}
GOMODCACHE=$(go env GOMODCACHE)
mkdir -p "$BIN" "$CACHE/bin" "$CACHE/src"

T0=$(date +%s)
step() { printf '==> [+%4ss] %s\n' "$(( $(date +%s) - T0 ))" "$*"; }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }

# link NAME DIR: put DIR/NAME on .tools/bin
link() { ln -sfn "$2/$1" "$BIN/$1"; }

# on_path_matches NAME VERSION: a binary on PATH (outside .tools) already has the pinned version
on_path_matches() {
  local name=$1 want=$2 path out
  path=$(PATH=$(printf '%s' "$PATH" | tr ':' '\n' | grep -v "^$BIN\$" | paste -sd:) command -v "$name" 2>/dev/null) || return 1
  case $name in
    helm) out=$("$path" version --short 2>/dev/null) ;;
    kubectl) out=$("$path" version --client 2>/dev/null | head -1) ;;
    *) out=$("$path" --version 2>/dev/null || "$path" version 2>/dev/null) ;;
  esac
  case $out in *"$want"*) ln -sfn "$path" "$BIN/$name"; return 0 ;; esac
  return 1
}

# module_copy MODULE VERSION: a writable copy of a downloaded module (for modules whose go.mod has
# replace directives or whose main package needs -mod=mod), printed as its path.
module_copy() {
  local mod=$1 ver=$2 dir
  dir="$CACHE/src/$(printf '%s' "$mod" | tr '/' '_')@$ver"
  if [ ! -f "$dir/go.mod" ]; then
    (cd "$CACHE/src" && GOFLAGS=-mod=mod go mod download "$mod@$ver") >&2
    rm -rf "$dir"; cp -r "$GOMODCACHE/$(module_escape "$mod")@$ver" "$dir"; chmod -R u+w "$dir"
  fi
  printf '%s' "$dir"
}
# The module cache escapes upper-case letters as !lower.
module_escape() { printf '%s' "$1" | sed -E 's/([A-Z])/!\L\1/g'; }

# build NAME VERSION FUNCTION: build once per version into the cache, then link
build() {
  local name=$1 ver=$2 fn=$3 out="$CACHE/bin/$1@$2"
  if [ -x "$out/$name" ]; then link "$name" "$out"; return; fi
  if on_path_matches "$name" "$ver"; then step "$name $ver: using $(readlink "$BIN/$name")"; return; fi
  step "$name $ver: building from its Go module (cold builds take minutes on 2 cores)"
  local t=$(date +%s) tmp="$out.tmp"
  rm -rf "$tmp"; mkdir -p "$tmp"
  "$fn" "$tmp" "$ver"
  rm -rf "$out"; mv "$tmp" "$out"
  link "$name" "$out"
  step "$name $ver: built in $(( $(date +%s) - t ))s"
}

b_helm() { GOBIN=$1 go install -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$2" "helm.sh/helm/v3/cmd/helm@$2"; }
b_kubeconform() { GOBIN=$1 go install -ldflags "-s -w" "github.com/yannh/kubeconform/cmd/kubeconform@$2"; }
b_helm_docs() { GOBIN=$1 go install -ldflags "-s -w" "github.com/norwoodj/helm-docs/cmd/helm-docs@$2"; }
b_kwok() { GOBIN=$1 go install -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${2#v}" "sigs.k8s.io/kwok/cmd/kwok@$2"; }
b_kwokctl() { GOBIN=$1 go install -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${2#v}" "sigs.k8s.io/kwok/cmd/kwokctl@$2"; }
b_registry() { GOBIN=$1 go install -ldflags "-s -w -X github.com/distribution/distribution/v3/version.version=$2" "github.com/distribution/distribution/v3/cmd/registry@$2"; }
b_kube_score() { GOBIN=$1 go install -ldflags "-s -w -X main.version=${2#v}" "github.com/zegl/kube-score/cmd/kube-score@$2"; }
b_metrics_server() { GOBIN=$1 go install -ldflags "-s -w" "sigs.k8s.io/metrics-server/cmd/metrics-server@$2"; }
b_actionlint() { GOBIN=$1 go install -ldflags "-s -w -X github.com/rhysd/actionlint.version=$2" "github.com/rhysd/actionlint/cmd/actionlint@$2"; }
b_ct() {
  local src; src=$(module_copy github.com/helm/chart-testing/v3 "$2")
  (cd "$src" && go build -mod=mod -ldflags "-s -w -X github.com/helm/chart-testing/v3/ct/cmd.Version=$2" -o "$1/ct" ./ct)
  cp -r "$src/etc" "$1/etc"
}
b_etcd() {
  local src; src=$(module_copy go.etcd.io/etcd/server/v3 "$2")
  # the module's go.mod replaces sibling modules by relative paths that do not exist outside the repo
  local m
  for m in $(cd "$src" && go mod edit -json | python3 -c 'import json,sys; print(" ".join(r["Old"]["Path"] for r in json.load(sys.stdin).get("Replace") or [] if r["New"]["Path"].startswith(".")))'); do
    (cd "$src" && go mod edit -dropreplace="$m")
  done
  (cd "$src" && go build -mod=mod -ldflags "-s -w" -o "$1/etcd" .)
}
b_keda() {
  local src; src=$(module_copy github.com/kedacore/keda/v2 "$2")
  (cd "$src" && go build -mod=mod -ldflags "-s -w -X github.com/kedacore/keda/v2/version.Version=${2#v}" -o "$1/keda-operator" ./cmd/operator \
            && go build -mod=mod -ldflags "-s -w -X github.com/kedacore/keda/v2/version.Version=${2#v}" -o "$1/keda-adapter" ./cmd/adapter)
  mkdir -p "$1/crds"; cp "$src"/config/crd/bases/*.yaml "$1/crds/"
  ln -sfn keda-operator "$1/keda"
}
# k8s.io/kubernetes replaces its staging modules with local paths: build it through a wrapper module
# that requires it and replaces each staging module with the matching published v0.x.y.
b_kube() {
  local ver=$2 minor staging w="$CACHE/src/kube-wrapper@$2"
  minor=$(printf '%s' "$ver" | cut -d. -f2)
  mkdir -p "$w"
  (cd "$w" && GOFLAGS=-mod=mod go mod download "k8s.io/kubernetes@$ver")
  staging=$(grep -oE '^\s+k8s.io/[a-z0-9-]+ => \./staging' "$GOMODCACHE/k8s.io/kubernetes@$ver/go.mod" | awk '{print $1}')
  {
    echo "module local/kube-wrapper"; echo; echo "go 1.24"; echo
    echo "require k8s.io/kubernetes $ver"; echo
    echo "replace ("
    for m in $staging; do echo "	$m => $m v0.${ver#v1.}"; done
    echo ")"
  } > "$w/go.mod"
  printf 'package tools\n\nimport (\n\t_ "k8s.io/kubernetes/cmd/kube-apiserver/app"\n\t_ "k8s.io/kubernetes/cmd/kube-controller-manager/app"\n\t_ "k8s.io/kubernetes/cmd/kube-scheduler/app"\n\t_ "k8s.io/kubernetes/cmd/kubelet/app"\n\t_ "k8s.io/kubernetes/cmd/kube-proxy/app"\n\t_ "k8s.io/kubectl/pkg/cmd"\n)\n' > "$w/tools.go"
  (cd "$w" && go mod tidy >/dev/null 2>&1 || go mod tidy)
  kube_build "$1" "$ver" kube-apiserver kube-controller-manager kube-scheduler kubectl
}
# kube_build OUT VERSION CMD...: go build each k8s.io/kubernetes/cmd/CMD from the wrapper module, with version ldflags
kube_build() {
  local out=$1 ver=$2 minor w="$CACHE/src/kube-wrapper@$2" vpkg=k8s.io/component-base/version c; shift 2
  minor=$(printf '%s' "$ver" | cut -d. -f2)
  local ld="-s -w -X $vpkg.gitVersion=$ver -X $vpkg.gitMajor=1 -X $vpkg.gitMinor=$minor -X $vpkg.gitTreeState=clean -X $vpkg.buildDate=1970-01-01T00:00:00Z"
  ld="$ld -X k8s.io/client-go/pkg/version.gitVersion=$ver -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"
  for c in "$@"; do
    step "  go build $c"
    (cd "$w" && go build -ldflags "$ld" -o "$out/$c" "k8s.io/kubernetes/cmd/$c")
  done
}
# The real node's kubelet and kube-proxy, from the same wrapper module as the control plane (b_kube made it).
b_kubenode() {
  [ -f "$CACHE/src/kube-wrapper@$2/tools.go" ] && grep -q cmd/kubelet/app "$CACHE/src/kube-wrapper@$2/tools.go" || b_kube "$1" "$2"
  kube_build "$1" "$2" kubelet kube-proxy
}
# CoreDNS with only the plugins a cluster-local resolver needs (no forward: no query leaves the machine);
# the main package is generated from tools/coredns/main.go.in (ours) in a module that requires CoreDNS.
b_coredns() {
  local w="$CACHE/src/coredns-main@$2"
  mkdir -p "$w"
  cp "$ROOT/tools/coredns/main.go.in" "$w/main.go"
  printf 'module local/coredns-main\n\ngo 1.24\n\nrequire github.com/coredns/coredns %s\n' "$2" > "$w/go.mod"
  (cd "$w" && go mod tidy >/dev/null 2>&1 || go mod tidy)
  # static (no cgo): the same binary runs on the host and FROM scratch in images/coredns
  (cd "$w" && CGO_ENABLED=0 go build -ldflags "-s -w -X github.com/coredns/coredns/coremain.GitCommit=$2" -o "$1/coredns" .)
}

go_tools() {
  command -v go >/dev/null || die "Go is required (https://go.dev/dl): the toolchain is built from Go modules"
  build helm "$HELM_VERSION" b_helm
  build kubeconform "$KUBECONFORM_VERSION" b_kubeconform
  build helm-docs "$HELM_DOCS_VERSION" b_helm_docs
  build ct "$CHART_TESTING_VERSION" b_ct
  ln -sfn "$CACHE/bin/ct@$CHART_TESTING_VERSION/etc" "$TOOLS_DIR/ct-etc" 2>/dev/null || true
  build etcd "$ETCD_VERSION" b_etcd
  build kwok "$KWOK_VERSION" b_kwok
  build kwokctl "$KWOK_VERSION" b_kwokctl
  build kube-apiserver "$KUBERNETES_VERSION" b_kube
  for c in kube-controller-manager kube-scheduler kubectl; do link "$c" "$CACHE/bin/kube-apiserver@$KUBERNETES_VERSION"; done
  build kubelet "$KUBERNETES_VERSION" b_kubenode
  link kube-proxy "$CACHE/bin/kubelet@$KUBERNETES_VERSION"
  build coredns "$COREDNS_VERSION" b_coredns
  build keda-operator "$KEDA_VERSION" b_keda
  link keda-adapter "$CACHE/bin/keda-operator@$KEDA_VERSION"
  build metrics-server "$METRICS_SERVER_VERSION" b_metrics_server
  build kube-score "$KUBE_SCORE_VERSION" b_kube_score
  build registry "$DISTRIBUTION_VERSION" b_registry
  build actionlint "$ACTIONLINT_VERSION" b_actionlint
}

python_deps() {
  local py=${PYTHON:-python3}
  if [ ! -x "$ROOT/.venv/bin/python" ]; then step "python: creating .venv"; "$py" -m venv "$ROOT/.venv"; fi
  if ! "$ROOT/.venv/bin/uv" --version 2>/dev/null | grep -q "$UV_VERSION"; then
    step "python: installing uv $UV_VERSION"; "$ROOT/.venv/bin/pip" install -q "uv==$UV_VERSION"
  fi
  local stamp="$ROOT/.venv/.lock-sha" sha
  sha=$(sha256sum "$ROOT/requirements.lock" | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$sha" ]; then
    step "python: syncing .venv with requirements.lock"
    VIRTUAL_ENV="$ROOT/.venv" "$ROOT/.venv/bin/uv" pip sync -q --python "$ROOT/.venv/bin/python" "$ROOT/requirements.lock"
    VIRTUAL_ENV="$ROOT/.venv" "$ROOT/.venv/bin/uv" pip install -q --python "$ROOT/.venv/bin/python" --no-deps -e "$ROOT/worker"
    printf '%s' "$sha" > "$stamp"
  fi
}

# Langflow lives in its own venv (1.8 GB, ~460 packages), cached per version outside the clone.
langflow() {
  local venv="$CACHE/langflow-$LANGFLOW_VERSION" spec="langflow[postgresql]==$LANGFLOW_VERSION"
  if [ "$(cat "$venv/.lfp-spec" 2>/dev/null)" != "$spec" ]; then
    python_deps
    step "langflow: installing $spec into $venv with uv (about 30 s warm, a few minutes cold)"
    [ -x "$venv/bin/python" ] || "$ROOT/.venv/bin/uv" venv -q --python "${PYTHON:-python3}" "$venv"
    VIRTUAL_ENV="$venv" "$ROOT/.venv/bin/uv" pip install -q --python "$venv/bin/python" "$spec"
    printf '%s' "$spec" > "$venv/.lfp-spec"
  fi
  ln -sfn "$venv" "$TOOLS_DIR/langflow-venv"
}

apt_packages() {
  local missing=() p
  for p in $APT_PACKAGES; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return
  step "apt: installing ${missing[*]}"
  local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  command -v apt-get >/dev/null || die "missing system packages: ${missing[*]} (install them with your package manager)"
  $sudo apt-get update -qq
  # servers are started by the harness on loopback ports of its own; keep the package's services off
  printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null; $sudo chmod +x /usr/sbin/policy-rc.d
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
  $sudo rm -f /usr/sbin/policy-rc.d
}

# CRDs the charts use, taken from the projects' Go modules (never committed).
crds() {
  local out="$TOOLS_DIR/crds" stamp
  stamp="$KEDA_VERSION $CERT_MANAGER_VERSION $CNPG_VERSION $PROMETHEUS_OPERATOR_VERSION"
  [ "$(cat "$out/.stamp" 2>/dev/null)" = "$stamp" ] && return
  step "crds: extracting KEDA, cert-manager, CloudNativePG and Prometheus Operator CRDs from their modules"
  rm -rf "$out"; mkdir -p "$out"/{keda,cert-manager,cnpg,prometheus-operator}
  local d
  d=$(module_copy github.com/kedacore/keda/v2 "$KEDA_VERSION"); cp "$d"/config/crd/bases/*.yaml "$out/keda/"
  d=$(module_copy github.com/cert-manager/cert-manager "$CERT_MANAGER_VERSION"); cp "$d"/deploy/crds/*.yaml "$out/cert-manager/"
  d=$(module_copy github.com/cloudnative-pg/cloudnative-pg "$CNPG_VERSION"); cp "$d"/config/crd/bases/*.yaml "$out/cnpg/"
  d=$(module_copy github.com/prometheus-operator/prometheus-operator "$PROMETHEUS_OPERATOR_VERSION"); cp "$d"/example/prometheus-operator-crd/*.yaml "$out/prometheus-operator/"
  printf '%s' "$stamp" > "$out/.stamp"
}

# kubeconform schemas: built-in kinds from the Kubernetes module's OpenAPI, CRD kinds from the CRDs.
schemas() {
  crds; python_deps
  local out="$TOOLS_DIR/schemas" stamp
  stamp="$KUBERNETES_VERSION $(cat "$TOOLS_DIR/crds/.stamp") $(sha256sum "$ROOT/tools/gen_schemas.py" | cut -c1-12)"
  [ "$(cat "$out/.stamp" 2>/dev/null)" = "$stamp" ] && return
  step "schemas: generating strict kubeconform schemas for Kubernetes $KUBERNETES_VERSION and the CRDs"
  (cd "$CACHE/src" && GOFLAGS=-mod=mod go mod download "k8s.io/kubernetes@$KUBERNETES_VERSION")
  rm -rf "$out"
  "$ROOT/.venv/bin/python" "$ROOT/tools/gen_schemas.py" \
    --openapi "$GOMODCACHE/k8s.io/kubernetes@$KUBERNETES_VERSION/api/openapi-spec/swagger.json" \
    --crds "$TOOLS_DIR/crds" --out "$out" --kubernetes-version "$KUBERNETES_VERSION"
  printf '%s' "$stamp" > "$out/.stamp"
}

# Python scanners whose pins clash with our lock (and with each other: checkov wants networkx<2.7,
# network-config-analyzer ==3.2.1): each in its own venv, cached per version, its command linked into .tools/bin.
# pyvenv NAME VERSION COMMAND: install PyPI package NAME==VERSION into a venv of its own, link COMMAND
pyvenv() {
  local pkg=$1 ver=$2 cmd=$3 venv="$CACHE/$1-$2"
  if [ ! -x "$venv/bin/$cmd" ]; then
    python_deps
    step "$pkg $ver: installing into $venv (its own venv)"
    rm -rf "$venv"
    "$ROOT/.venv/bin/uv" venv -q --python "${PYTHON:-python3}" "$venv"
    VIRTUAL_ENV="$venv" "$ROOT/.venv/bin/uv" pip install -q --python "$venv/bin/python" "$pkg==$ver"
  fi
  link "$cmd" "$venv/bin"
}
scanners() {
  pyvenv checkov "$CHECKOV_VERSION" checkov
  pyvenv network-config-analyzer "$NCA_VERSION" nca
}

# The PyPI side (scanners' venvs, Langflow's 1.8 GB venv) is mostly download and unpacking, the Go side mostly
# compiling: on a cold machine they run side by side (measured: the PyPI side took 2 min, hidden under the helm
# build). The background part's output goes to its log, shown when it ends; its failure fails the install.
BG_PID="" BG_LOG=""
in_background() {
  local name=$1; shift
  BG_LOG="$CACHE/install-$name.log"
  step "$name: $* in the background (log: $BG_LOG)"
  ( for part in "$@"; do "$part"; done ) >"$BG_LOG" 2>&1 &
  BG_PID=$!
}
wait_background() {
  [ -n "$BG_PID" ] || return 0
  local rc=0; wait "$BG_PID" || rc=$?
  sed 's/^/    /' "$BG_LOG"
  [ "$rc" -eq 0 ] || die "the background part failed (exit $rc): $BG_LOG"
  BG_PID=""
}

main() {
  local what=("$@"); [ ${#what[@]} -eq 0 ] && what=(all)
  # one install at a time per cache: two clones (or a `make docs` beside a CI run) would otherwise build the same
  # tool into the same temporary path and one of them fail
  exec 9>"$CACHE/.install.lock"
  flock -n 9 || { step "waiting for another install.sh using $CACHE"; flock 9; }
  for w in "${what[@]}"; do
    case $w in
      all) apt_packages; python_deps; in_background py_side scanners langflow; go_tools; crds; schemas; wait_background ;;
      go) go_tools ;;
      python) python_deps ;;
      langflow) langflow ;;
      apt) apt_packages ;;
      crds) crds ;;
      schemas) schemas ;;
      scanners) scanners ;;
      *) die "unknown part '$w' (all|go|python|langflow|apt|crds|schemas|scanners)" ;;
    esac
  done
  step "toolchain ready in $TOOLS_DIR"
}
main "$@"; exit $?  # on one line: bash reads scripts as it runs them, so an edit made meanwhile cannot run
