#!/usr/bin/env bash
# Builds testbed/kstatus: a small Go program that runs kstatus — sigs.k8s.io/cli-utils pkg/kstatus/status, the
# library Flux's health checks and Helm 4's --wait use — on Kubernetes objects (JSON, one per line on stdin). The
# end-to-end status-contract tests run every object through it and through the Rust port (tests/support/kstatus.rs)
# and fail when they disagree. cli-utils is pinned by testbed/kstatus/go.mod and go.sum and fetched from the Go
# module proxy.
#
# The binary and Go's caches live outside the checkout ($ZIM_TEST_CACHE, default ~/.cache/zim-operator, under
# tools/kstatus/ and go/). Prints the binary's path on stdout; fails loudly (scripts/go-env.sh, go_helper_build).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/go-env.sh
source scripts/go-env.sh
go_helper_build testbed/kstatus kstatus \
  "the kstatus helper (sigs.k8s.io/cli-utils $(awk '$1 == "sigs.k8s.io/cli-utils" { print $2 }' testbed/kstatus/go.mod))"
