#!/usr/bin/env bash
# The project's test command (the README's "Testing" section; CI runs exactly this).
#
# Installs what the tests need (caches outside the checkout), then runs: formatting check, clippy with warnings
# denied, and every test tier that needs no external cluster. A tier whose server cannot start fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy (warnings denied)"
cargo clippy --all-targets --locked -- -D warnings

echo "== cargo test"
cargo test --all-targets --locked -- --nocapture 2>&1 | tee /tmp/zim-operator-test.log
# Doc tests are not part of --all-targets.
cargo test --doc --locked
