#!/usr/bin/env bash
# Builds testbed/kstatus: a small Go program that runs kstatus — sigs.k8s.io/cli-utils pkg/kstatus/status, the
# library Flux's health checks and Helm 4's --wait use — on Kubernetes objects (JSON, one per line on stdin). The
# end-to-end status-contract tests run every object through it and through the Rust port (tests/common/kstatus.rs)
# and fail when they disagree. cli-utils is pinned by testbed/kstatus/go.mod and go.sum and fetched from the Go
# module proxy.
#
# The binary and Go's caches live outside the checkout ($ZIM_TEST_CACHE, default ~/.cache/zim-operator, under
# tools/kstatus/ and go/), keyed on the source, go.mod/go.sum and the Go version. Prints the binary's path on stdout.
# Fails loudly (non-zero exit, the reason on stderr) when Go is missing or too old, the module cannot be fetched,
# or the build fails.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/go-env.sh
source scripts/go-env.sh

mod=testbed/kstatus
cache="$ZIM_CACHE/tools/kstatus"
log() { echo "kstatus-build: $*" >&2; }
die() { log "$*"; exit 1; }

for f in main.go go.mod go.sum; do [[ -f "$mod/$f" ]] || die "missing $mod/$f"; done
go_check || die "$GO_PROBLEM"

key=$({ cat "$mod/main.go" "$mod/go.mod" "$mod/go.sum"; go env GOVERSION; } | sha256sum | cut -c1-16)
bin="$cache/$key/kstatus"
if [[ -x "$bin" ]]; then
  echo "$bin"
  exit 0
fi

log "building the kstatus helper (sigs.k8s.io/cli-utils $(awk '$1 == "sigs.k8s.io/cli-utils" { print $2 }' "$mod/go.mod"), $(go env GOVERSION))"
mkdir -p "$cache/$key"
start=$(date +%s)
(cd "$mod" && go build -trimpath -o "$bin.tmp" .) >&2 || die "go build of $mod failed (see above)"
mv "$bin.tmp" "$bin"
log "built $bin in $(($(date +%s) - start)) s"
echo "$bin"
