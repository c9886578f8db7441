#!/usr/bin/env bash
# The project's test command (the README's "Testing" section; CI runs exactly this).
#
# Installs what the tests need (caches outside the checkout), then runs: formatting check, clippy with warnings
# denied, and every test tier that needs no external cluster. A tier whose server cannot start fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== test prerequisites"
# etcd (Debian) and kube-apiserver (built once from Debian's source package, cached outside the checkout) for the
# end-to-end tier; tests/e2e starts them on 127.0.0.1 through scripts/kube-env.sh and fails if they cannot run.
command -v curl >/dev/null && command -v openssl >/dev/null || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends curl openssl
}
command -v etcd >/dev/null || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends etcd-server
}
scripts/kube-apiserver-build.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy (warnings denied)"
cargo clippy --all-targets --locked -- -D warnings

echo "== cargo test"
cargo test --all-targets --locked -- --nocapture 2>&1 | tee /tmp/zim-operator-test.log
# Doc tests are not part of --all-targets.
cargo test --doc --locked
