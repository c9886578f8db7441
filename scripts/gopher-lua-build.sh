#!/usr/bin/env bash
# Builds argocd/gopher-lua (our health-script runner on gopher-lua, Argo CD's Lua interpreter) against gopher-lua
# v1.1.2 — the version Argo CD ships — from its Go module (argocd/gopher-lua/go.mod and go.sum pin it; the module
# comes from the Go module proxy and is checked against go.sum), with the machine's Go (1.26 or newer).
#
# The binary and Go's module and build caches live outside the checkout ($ZIM_TEST_CACHE, default
# ~/.cache/zim-operator, under tools/gopher-lua/ and go/), keyed on the runner's source, its go.mod/go.sum and the Go
# version, so it is rebuilt only when one of them changes. Prints the binary's path on stdout. Fails loudly
# (non-zero exit, the reason on stderr) when Go is missing or too old, the module cannot be fetched, or the build
# fails.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/go-env.sh
source scripts/go-env.sh

mod=argocd/gopher-lua
cache="$ZIM_CACHE/tools/gopher-lua"
log() { echo "gopher-lua-build: $*" >&2; }
die() { log "$*"; exit 1; }

for f in health.go go.mod go.sum; do [[ -f "$mod/$f" ]] || die "missing $mod/$f"; done
go_check || die "$GO_PROBLEM"

key=$({ cat "$mod/health.go" "$mod/go.mod" "$mod/go.sum"; go env GOVERSION; } | sha256sum | cut -c1-16)
bin="$cache/$key/argocd-health"
if [[ -x "$bin" ]]; then
  echo "$bin"
  exit 0
fi

log "building the gopher-lua health runner ($(grep -m1 'yuin/gopher-lua ' "$mod/go.mod" | awk '{print $NF}'), $(go env GOVERSION))"
mkdir -p "$cache/$key"
start=$(date +%s)
(cd "$mod" && go build -trimpath -o "$bin.tmp" .) >&2 || die "go build of $mod failed (see above)"
mv "$bin.tmp" "$bin"
log "built $bin in $(($(date +%s) - start)) s"
echo "$bin"
