#!/usr/bin/env bash
# Supply-chain checks (run by scripts/test.sh): `cargo deny` with the committed deny.toml.
#  - licences, bans (one crypto provider: no aws-lc-rs, no OpenSSL) and sources: always, offline;
#  - advisories (RustSec: vulnerabilities, unmaintained and unsound crates): against the advisory database, which
#    cargo-deny clones from the RustSec repository. When it cannot be fetched and no earlier copy is cached, the
#    check cannot run: it is reported as SKIPPED with the reason, counted in the closing line
#    (`supply chain checks: N passed, M failed, K skipped`, scripts/lib/check.sh), and fails the run when
#    ZIM_REQUIRE_ADVISORIES=1 (set it wherever the database is reachable).
# cargo-deny is installed once, pinned, outside the checkout (~/.cache/zim-operator/cargo-tools).
# cargo deny reads the metadata of every crate in Cargo.lock, for every target (Windows, Android, WASM ...), while
# a Linux build downloads only the crates of its own target: `cargo fetch --locked` (every target) runs first, so
# the offline checks find every crate on a machine with a cold cargo cache too.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/check.sh
check_begin "supply chain"

source scripts/lib/cargo-tool.sh
cargo_tool cargo-deny 0.20.2

cargo fetch --locked --quiet || fatal "cargo fetch --locked (the crates cargo deny reads)"

for check in licenses bans sources; do
  if cargo deny --offline --log-level error check "$check" >/dev/null 2>"${TMPDIR:-/tmp}/deny.$$.log"; then
    ok "cargo deny check $check"
  else
    cat "${TMPDIR:-/tmp}/deny.$$.log" >&2; rm -f "${TMPDIR:-/tmp}/deny.$$.log"
    fatal "cargo deny check $check"
  fi
done
rm -f "${TMPDIR:-/tmp}/deny.$$.log"

# Advisories: fetch the database (a shallow clone, into ~/.cargo/advisory-dbs); else use a copy fetched earlier.
dbs="${CARGO_HOME:-$HOME/.cargo}/advisory-dbs"
if timeout 120 cargo deny --log-level error fetch db >/dev/null 2>"${TMPDIR:-/tmp}/fetch.$$.log"; then
  mode="a freshly fetched database"
elif compgen -G "$dbs/advisory-db-*/.git" >/dev/null; then
  mode="a cached database, $(git -C "$(compgen -G "$dbs/advisory-db-*" | head -1)" log -1 --format=%cs 2>/dev/null || echo 'of unknown date') (the fetch failed)"
else
  mode=""
fi
if [[ -n $mode ]]; then
  cargo deny --offline --log-level error check advisories >/dev/null \
    || { cargo deny --offline check advisories >&2 || true; fatal "cargo deny check advisories"; }
  ok "cargo deny check advisories ($mode)"
else
  log="${TMPDIR:-/tmp}/fetch.$$.log"
  why=$(grep -m1 -o 'Could not resolve host: [^ ]*' "$log" || grep -m1 -o 'unable to access.*' "$log" \
    || grep -m1 -o 'failed to fetch.*' "$log" || echo "the fetch failed")
  skip "cargo deny check advisories: the RustSec advisory database cannot be fetched from this machine ($why) and no copy is cached; run scripts/supply-chain.sh where it can be, or set ZIM_REQUIRE_ADVISORIES=1 to make this fatal"
  if [[ ${ZIM_REQUIRE_ADVISORIES:-0} == 1 ]]; then
    rm -f "${TMPDIR:-/tmp}/fetch.$$.log"; fatal "advisories required (ZIM_REQUIRE_ADVISORIES=1)"
  fi
fi
rm -f "${TMPDIR:-/tmp}/fetch.$$.log"

finish
