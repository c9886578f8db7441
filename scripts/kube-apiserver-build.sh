#!/usr/bin/env bash
# Provides a kube-apiserver binary for the controller's end-to-end tests.
#
# No container engine and no prebuilt control plane can be had here, so we build kube-apiserver 1.20 from
# Debian's `kubernetes` source package (which carries the full upstream tree with vendor/) with Debian's Go.
# The binary is cached outside the checkout ($ZIM_TEST_CACHE, default ~/.cache/zim-operator) so only the
# first run pays for the build (about 10 minutes on 2 cores).
#
# Prints the path of the binary on stdout. Fails loudly (non-zero exit, a message on stderr) when it cannot.
set -euo pipefail

cache="${ZIM_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/zim-operator}"
bin="$cache/bin/kube-apiserver"
log() { echo "kube-apiserver-build: $*" >&2; }

if [[ -x "$bin" ]]; then
  echo "$bin"
  exit 0
fi

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

version=$(basename "$(ls "$src_dl"/kubernetes_*.dsc | head -n 1)" .dsc)
version=${version#kubernetes_}
upstream=${version#*really}
upstream=${upstream%%-*}
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
echo "$bin"
