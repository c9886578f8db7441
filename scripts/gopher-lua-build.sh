#!/usr/bin/env bash
# Builds argocd/gopher-lua (our health-script runner on gopher-lua, Argo CD's Lua interpreter) from Debian's
# packages: golang-go and golang-github-yuin-gopher-lua-dev, in GOPATH mode (no Go module download is involved).
#
# The binary is cached outside the checkout ($ZIM_TEST_CACHE, default ~/.cache/zim-operator, under
# tools/gopher-lua/), keyed on the runner's source, the gopher-lua package version and the Go version, so it is
# rebuilt only when one of them changes. Prints the binary's path on stdout. Fails loudly (non-zero exit, the
# reason on stderr) when a package is missing and cannot be installed, or the build fails.
set -euo pipefail
cd "$(dirname "$0")/.."

cache="${ZIM_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/zim-operator}/tools/gopher-lua"
src=argocd/gopher-lua/health.go
log() { echo "gopher-lua-build: $*" >&2; }
die() { log "$*"; exit 1; }

[[ -f "$src" ]] || die "missing $src"

pkgs=(golang-go golang-github-yuin-gopher-lua-dev)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2 || die "apt-get update failed; cannot install ${missing[*]}"
  for p in "${missing[@]}"; do
    apt-cache show "$p" >/dev/null 2>&1 ||
      die "Debian package $p is not available from this machine's apt sources; the gopher-lua runner cannot be built"
  done
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 || die "apt-get install ${missing[*]} failed"
fi

gocode=/usr/share/gocode
[[ -f "$gocode/src/github.com/yuin/gopher-lua/state.go" ]] ||
  die "golang-github-yuin-gopher-lua-dev is installed but $gocode/src/github.com/yuin/gopher-lua has no sources"
command -v go >/dev/null || die "golang-go is installed but no 'go' command is on PATH"

lua_version=$(dpkg-query -W -f='${Version}' golang-github-yuin-gopher-lua-dev)
go_version=$(go env GOVERSION)
key=$({ sha256sum "$src"; echo "$lua_version $go_version"; } | sha256sum | cut -c1-16)
bin="$cache/$key/argocd-health"
if [[ -x "$bin" ]]; then
  echo "$bin"
  exit 0
fi

log "building the gopher-lua health runner (gopher-lua $lua_version, $go_version)"
mkdir -p "$cache/$key"
start=$(date +%s)
# GOPATH mode: imports resolve in Debian's /usr/share/gocode; the build cache stays under our cache directory.
GO111MODULE=off GOPROXY=off GOFLAGS= GOPATH="$gocode" GOCACHE="$cache/go-build" CGO_ENABLED=0 \
  go build -trimpath -o "$bin.tmp" "$src" >&2 || die "go build of $src failed"
mv "$bin.tmp" "$bin"
log "built $bin in $(($(date +%s) - start)) s"
echo "$bin"
