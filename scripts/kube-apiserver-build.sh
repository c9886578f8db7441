#!/usr/bin/env bash
# Provides the control plane the controller's end-to-end tests (the CEL rules' included), the chart checks and the
# README check run on: a kube-apiserver and an etcd, for one of two Kubernetes versions.
#
#   scripts/kube-apiserver-build.sh [current|floor]     (default: current; ZIM_KUBE_VERSION sets the default)
#
# Prints shell assignments (use: eval "$(scripts/kube-apiserver-build.sh current)"):
#   KUBE_APISERVER   the kube-apiserver binary
#   KUBE_ETCD        the etcd binary for it
#   KUBE_VERSION     the version kube-apiserver reports (e.g. v1.37.2)
#
# current  Kubernetes 1.37 — the newest release the Go module proxy serves that builds with the machine's Go
#          (1.26) — built from the k8s.io/kubernetes Go module with every staging module (k8s.io/api,
#          k8s.io/apiserver, ...) pinned to its matching v0.37 release by `replace` lines (testbed/kube-apiserver:
#          go.mod and go.sum are committed), and etcd 3.7 from go.etcd.io/etcd/server/v3 (testbed/etcd), the
#          version that Kubernetes release requires. About 10 minutes cold on 2 cores.
# floor    Kubernetes 1.20, the oldest version the README and the chart's kubeVersion promise: built from Debian's
#          `kubernetes` source package (the full upstream tree with vendor/, GOPATH mode), with Debian's etcd-server
#          (3.4). About 6 minutes cold.
#
# The binaries are cached outside the checkout ($ZIM_TEST_CACHE, default ~/.cache/zim-operator, under bin/), keyed
# on what they are built from, so only the first run pays. Fails loudly (non-zero exit, the reason on stderr) when
# it cannot build: a module the proxy does not serve, a Go that is too old, a Debian package gone.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
# shellcheck source=scripts/go-env.sh
source "$here/go-env.sh"
cache="$ZIM_CACHE"
log() { echo "kube-apiserver-build: $*" >&2; }
die() { log "$*"; exit 1; }

which="${1:-${ZIM_KUBE_VERSION:-current}}"
case "$which" in
  current|1.37) which=current ;;
  floor|1.20) which=floor ;;
  *) die "unknown version '$which' (current or floor)" ;;
esac

# --- current: Kubernetes from its Go modules ------------------------------------------------------------------
# Builds package PKG of the module in testbed/MOD into OUT, with LDFLAGS.
go_build() { # MOD PKG OUT LDFLAGS
  local mod="$root/testbed/$1" pkg="$2" out="$3" ldflags="$4" start
  start=$(date +%s)
  if ! (cd "$mod" && go mod download >&2); then
    die "cannot fetch the modules of testbed/$1 from the Go module proxy (see above: the module or version named there is not served here)"
  fi
  (cd "$mod" && go build -trimpath -ldflags "$ldflags" -o "$out.tmp" "$pkg") >&2 \
    || die "go build of $pkg (testbed/$1) failed (see above)"
  mv "$out.tmp" "$out"
  log "built $out in $(($(date +%s) - start)) s"
}

build_current() {
  go_check || die "$GO_PROBLEM"
  local k8s etcd_v key dir major minor ldflags
  k8s=$(awk '$1 == "require" && $2 == "k8s.io/kubernetes" { print $3 }' "$root/testbed/kube-apiserver/go.mod")
  etcd_v=$(awk '$1 == "require" && $2 == "go.etcd.io/etcd/server/v3" { print $3 }' "$root/testbed/etcd/go.mod")
  [[ -n "$k8s" && -n "$etcd_v" ]] || die "cannot read the pinned versions from testbed/kube-apiserver/go.mod and testbed/etcd/go.mod"
  key=$(cat "$root"/testbed/kube-apiserver/go.{mod,sum} "$root"/testbed/etcd/go.{mod,sum} | { cat; go env GOVERSION; } | sha256sum | cut -c1-12)
  dir="$cache/bin/k8s-$k8s-$key"
  if [[ ! -x "$dir/kube-apiserver" ]]; then
    log "building kube-apiserver $k8s from the k8s.io/kubernetes Go module ($(go env GOVERSION); about 10 minutes the first time)"
    mkdir -p "$dir"
    major=${k8s#v}; major=${major%%.*}
    minor=${k8s#v*.}; minor=${minor%%.*}
    ldflags="-s -w"
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ldflags+=" -X $pkg.gitVersion=$k8s -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
      ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
    done
    go_build kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver "$dir/kube-apiserver" "$ldflags"
  fi
  if [[ ! -x "$dir/etcd" ]]; then
    log "building etcd $etcd_v from go.etcd.io/etcd/server/v3"
    go_build etcd go.etcd.io/etcd/server/v3 "$dir/etcd" "-s -w"
  fi
  echo "KUBE_APISERVER=$dir/kube-apiserver"
  echo "KUBE_ETCD=$dir/etcd"
  echo "KUBE_VERSION=$k8s"
}

# --- floor: Kubernetes 1.20 from Debian's source package ---------------------------------------------------------
build_floor() {
  local bin="$cache/bin/kube-apiserver"
  if ! command -v etcd >/dev/null 2>&1; then
    log "installing etcd-server"
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends etcd-server; } >&2 \
      || die "cannot install Debian's etcd-server package"
    # Debian starts a system etcd on the default ports; ours uses its own ports and data directory.
    systemctl stop etcd >/dev/null 2>&1 || true
  fi
  if [[ ! -x "$bin" ]]; then
    debian_build
  fi
  echo "KUBE_APISERVER=$bin"
  echo "KUBE_ETCD=$(command -v etcd)"
  local dsc
  dsc=$(ls "$cache"/src/dl/kubernetes_*.dsc 2>/dev/null | head -n 1)
  [[ -n "$dsc" ]] || die "no Debian kubernetes source package under $cache/src/dl: cannot tell the version of $bin"
  echo "KUBE_VERSION=v$(debian_upstream "$dsc")"
}

# The upstream version of a Debian kubernetes_<version>.dsc (1.20.5+really1.20.2-1 -> 1.20.2).
debian_upstream() {
  local version
  version=$(basename "$1" .dsc)
  version=${version#kubernetes_}
  version=${version#*really}
  echo "${version%%-*}"
}

debian_build() {
  mkdir -p "$cache/bin" "$cache/src"
  export DEBIAN_FRONTEND=noninteractive

  need_pkgs=()
  for p in golang-go rsync make golang-github-modern-go-reflect2-dev; do
    dpkg -s "$p" >/dev/null 2>&1 || need_pkgs+=("$p")
  done
  if ((${#need_pkgs[@]})); then
    log "installing ${need_pkgs[*]}"
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >&2
  fi

  # A private apt state whose only sources are the machine's own configured Debian sources, turned into deb-src.
  apt_dir="$cache/apt"
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial"
  : >"$apt_dir/sources.list"
  # One-line format (/etc/apt/sources.list and *.list).
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f "$f" ]] || continue
    grep -E '^[[:space:]]*deb[[:space:]]' "$f" | sed -E 's/^[[:space:]]*deb[[:space:]]/deb-src /' >>"$apt_dir/sources.list" || true
  done
  # deb822 format (*.sources): every stanza of Types: deb becomes one deb-src line per suite.
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f "$f" ]] || continue
    awk '
      function flush() {
        if (types ~ /(^| )deb( |$)/ && uris != "" && enabled != "no") {
          n = split(uris, u, " "); m = split(suites, s, " ")
          for (i = 1; i <= n; i++) for (j = 1; j <= m; j++) {
            line = "deb-src "
            if (signed != "") line = line "[signed-by=" signed "] "
            print line u[i] " " s[j] " " comps
          }
        }
        types = uris = suites = comps = signed = enabled = ""
      }
      /^[[:space:]]*$/ { flush(); next }
      /^#/ { next }
      /^Types:/       { sub(/^Types:[[:space:]]*/, "");       types = $0 }
      /^URIs:/        { sub(/^URIs:[[:space:]]*/, "");        uris = $0 }
      /^Suites:/      { sub(/^Suites:[[:space:]]*/, "");      suites = $0 }
      /^Components:/  { sub(/^Components:[[:space:]]*/, "");  comps = $0 }
      /^Signed-By:/   { sub(/^Signed-By:[[:space:]]*/, "");   signed = $0 }
      /^Enabled:/     { sub(/^Enabled:[[:space:]]*/, "");     enabled = $0 }
      END { flush() }
    ' "$f" >>"$apt_dir/sources.list"
  done
  # Only Debian's own archive carries the source we want; other vendors' repositories are dropped.
  grep -E 'debian' "$apt_dir/sources.list" >"$apt_dir/sources.list.debian" || true
  if [[ ! -s "$apt_dir/sources.list.debian" ]]; then
    log "no Debian apt source is configured on this machine; cannot fetch the kubernetes source package"
    exit 1
  fi
  apt_opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list.debian" -o "Dir::Etc::SourceParts=/dev/null"
    -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache::Archives=$apt_dir/archives"
    -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache=")

  src_dl="$cache/src/dl"
  mkdir -p "$src_dl"
  if ! ls "$src_dl"/kubernetes_*.dsc >/dev/null 2>&1; then
    log "fetching Debian's kubernetes source package"
    apt-get "${apt_opts[@]}" update -qq >&2
    (cd "$src_dl" && apt-get "${apt_opts[@]}" source --download-only kubernetes >&2)
  fi

  tree="$cache/src/gopath/src/k8s.io/kubernetes"
  if [[ ! -f "$tree/.zim-extracted" ]]; then
    log "extracting the upstream tree"
    rm -rf "$cache/src/gopath" "$cache/src/extract"
    mkdir -p "$cache/src/extract" "$(dirname "$tree")"
    orig=$(ls "$src_dl"/kubernetes_*.orig.tar.* | head -n 1)
    tar -C "$cache/src/extract" -xf "$orig"
    top=$(find "$cache/src/extract" -mindepth 1 -maxdepth 1 -type d | head -n 1)
    mv "$top" "$tree"
    # Go >= 1.18 crashes the vendored reflect2 1.0.1 on the first custom-resource create; use Debian's 1.0.2.
    r2=/usr/share/gocode/src/github.com/modern-go/reflect2
    [[ -d "$r2" ]] || { log "missing $r2 (golang-github-modern-go-reflect2-dev)"; exit 1; }
    rm -rf "$tree/vendor/github.com/modern-go/reflect2"
    mkdir -p "$tree/vendor/github.com/modern-go/reflect2"
    cp "$r2"/*.go "$tree/vendor/github.com/modern-go/reflect2/"
    rm -f "$tree"/vendor/github.com/modern-go/reflect2/*_test.go
    touch "$tree/.zim-extracted"
  fi

  upstream=$(debian_upstream "$(ls "$src_dl"/kubernetes_*.dsc | head -n 1)")
  major=${upstream%%.*}
  minor=${upstream#*.}; minor=${minor%%.*}

  log "building kube-apiserver v$upstream (this takes about 10 minutes the first time)"
  (
    cd "$tree"
    export GOPATH="$cache/src/gopath" GO111MODULE=off GOPROXY=off GOFLAGS=-mod=vendor CGO_ENABLED=0
    export GOCACHE="$cache/go-build"
    export KUBE_GIT_VERSION="v$upstream" KUBE_GIT_MAJOR="$major" KUBE_GIT_MINOR="$minor"
    export KUBE_GIT_TREE_STATE=clean KUBE_GIT_COMMIT=0000000000000000000000000000000000000000
    unset GOFLAGS
    make WHAT=cmd/kube-apiserver >&2
  )
  built=$(find "$tree/_output" -type f -name kube-apiserver -perm -u+x | head -n 1)
  [[ -n "$built" ]] || { log "the build finished but no kube-apiserver binary was found"; exit 1; }
  cp "$built" "$bin.tmp" && mv "$bin.tmp" "$bin"
  log "built $bin"
}

if [[ $which == current ]]; then build_current; else build_floor; fi
