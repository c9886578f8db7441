#!/usr/bin/env bash
# Builds argocd/gopher-lua (our health-script runner on gopher-lua, Argo CD's Lua interpreter) against gopher-lua
# v1.1.2 — the version Argo CD ships — from its Go module (argocd/gopher-lua/go.mod and go.sum pin it; the module
# comes from the Go module proxy and is checked against go.sum), with the machine's Go (1.26 or newer).
#
# The binary and Go's caches live outside the checkout ($ZIM_TEST_CACHE, default ~/.cache/zim-operator, under
# tools/argocd-health/ and go/), rebuilt only when the source, go.mod/go.sum or the Go version change. Prints the
# binary's path on stdout; fails loudly (scripts/go-env.sh, go_helper_build).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/go-env.sh
source scripts/go-env.sh
go_helper_build argocd/gopher-lua argocd-health \
  "the gopher-lua health runner (gopher-lua $(awk '$1 == "require" && $2 == "github.com/yuin/gopher-lua" { print $3 }' argocd/gopher-lua/go.mod))"
