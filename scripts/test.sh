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
# helm 3 and 4, kubectl, Lua 5.1 + dkjson, a Python venv (cached outside the checkout) and Debian's prometheus and
# promtool: the chart checks, the Argo CD cases, the monitoring checks and the end-to-end status-contract and
# alerting tests (kubectl wait, helm 4 --wait, health.lua, a Prometheus server scraping the operator) use them.
eval "$(scripts/tools.sh)"
export HELM3 HELM4 KUBECTL LUA TOOLS_PY PROMETHEUS PROMTOOL

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy (warnings denied)"
cargo clippy --all-targets --locked -- -D warnings

echo "== cargo test (unit, simulator over HTTP, binary, end to end on kube-apiserver)"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
# Not --all-targets: that would also run the benchmarks (cargo bench --bench perf), which take minutes.
cargo test --lib --bins --tests --locked -- --nocapture 2>&1 | tee "$log"

echo "== chart checks (helm 3 and 4, kubernetes-validate, dry-run, RBAC, operator under the chart's ServiceAccount)"
scripts/chart-check.sh | tee -a "$log"

echo "== monitoring checks (promtool: the alert rules, their unit tests, the dashboard's queries)"
scripts/monitoring-check.sh | tee -a "$log"

echo "== README install, upgrade and uninstall as written (helm 3 and 4, kube-apiserver 1.20, the simulator)"
scripts/readme-check.sh | tee -a "$log"

echo "== Argo CD health check tests (Lua 5.1, and gopher-lua built from Debian by scripts/gopher-lua-build.sh)"
argocd/test.sh | tee -a "$log"

echo "== CEL checks on a Kubernetes 1.36 CRD server (built from Debian sid by scripts/crd-server-build.sh, cached)"
scripts/cel-check.sh | tee -a "$log"

echo "== supply chain (cargo deny: licences, bans, sources, advisories; deny.toml)"
scripts/supply-chain.sh | tee -a "$log"

# One closing line for the whole run (", N skipped" when a check could not run here, e.g. advisories offline).
awk '/^test result:/ { p += $4; f += $6 }
     /^(chart checks|monitoring checks|readme checks|argocd health|cel checks|supply chain):/ { p += $(NF-3); f += $(NF-1) }
     /^supply chain skipped:/ { s += $NF }
     END { printf "%d passed, %d failed", p, f; if (s) printf ", %d skipped", s; printf "\n" }' "$log"
