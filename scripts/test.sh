#!/usr/bin/env bash
# The project's test command (the README's "Testing" section; CI runs exactly this).
#
# Installs and builds what the tests need (caches outside the checkout, under ~/.cache/zim-operator or
# $ZIM_TEST_CACHE), then runs: formatting check, clippy with warnings denied, and every test tier, including those
# that need servers (`cargo test --features e2e`: a kube-apiserver and etcd on 127.0.0.1, Prometheus, helm,
# kubectl). A tier whose server cannot start fails the run. A plain `cargo test` runs only the tiers that need no
# server.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS

echo "== test prerequisites"
command -v curl >/dev/null && command -v openssl >/dev/null || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends curl openssl
}
# The control planes: the current Kubernetes (1.37 and etcd 3.7, from their Go modules) for the end-to-end tier,
# the chart and README checks; the promised floor (1.20 from Debian's source, Debian's etcd 3.4) for the
# README check. Built once, cached; each prints what it provides.
current=$(scripts/kube-apiserver-build.sh current)
echo "$current"
scripts/kube-apiserver-build.sh floor
# The Go helpers the consumers' checks run: kstatus from sigs.k8s.io/cli-utils and the health-script runner on
# gopher-lua v1.1.2 (Argo CD's interpreter).
scripts/kstatus-build.sh
scripts/gopher-lua-build.sh
# helm 3 and 4, kubectl, Lua 5.1 + dkjson, a Python venv (cached outside the checkout) and Debian's prometheus and
# promtool: the chart checks, the Argo CD cases, the monitoring checks and the end-to-end status-contract and
# alerting tests (kubectl wait, helm 4 --wait, health.lua, a Prometheus server scraping the operator) use them.
eval "$(scripts/tools.sh)"
export HELM3 HELM4 KUBECTL LUA TOOLS_PY PROMETHEUS PROMTOOL
echo "prerequisites ready after $((SECONDS - start)) s"

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy (warnings denied, the server tiers included)"
cargo clippy --all-targets --features e2e --locked -- -D warnings

echo "== cargo test (unit, simulator over HTTP, binary, end to end on kube-apiserver $(sed -n 's/^KUBE_VERSION=//p' <<<"$current"))"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
# Not --all-targets: that would also run the benchmarks (cargo bench --bench perf), which take minutes.
ZIM_KUBE_VERSION=current cargo test --features e2e --lib --bins --tests --locked -- --nocapture 2>&1 | tee "$log"

echo "== chart checks (helm 3 and 4, kubernetes-validate, dry-run, RBAC, admission policy, on the current Kubernetes)"
ZIM_KUBE_VERSION=current scripts/chart-check.sh | tee -a "$log"

echo "== monitoring checks (promtool: the alert rules, their unit tests, the dashboard's queries)"
scripts/monitoring-check.sh | tee -a "$log"

echo "== README install, upgrade and uninstall as written (helm 3 and 4, Kubernetes 1.20 and the current one)"
scripts/readme-check.sh | tee -a "$log"

echo "== Argo CD health check tests (Lua 5.1, and gopher-lua v1.1.2 from its Go module)"
argocd/test.sh | tee -a "$log"

echo "== supply chain (cargo deny: licences, bans, sources, advisories; deny.toml)"
scripts/supply-chain.sh | tee -a "$log"

echo "test command finished in $((SECONDS - start)) s"
# One closing line for the whole run (", N skipped" when a check could not run here, e.g. advisories offline),
# adding up cargo's `test result:` lines and the check scripts' closing lines, all in the one format of
# scripts/lib/check.sh: "NAME checks: N passed, M failed[, K skipped]".
awk '/^test result:/ { p += $4; f += $6 }
     /^[a-z][a-z -]* checks: [0-9]+ passed, [0-9]+ failed(, [0-9]+ skipped)?$/ {
       split(substr($0, index($0, ": ") + 2), n, /[^0-9]+/); p += n[1]; f += n[2]; s += n[3] }
     END { printf "%d passed, %d failed", p, f; if (s) printf ", %d skipped", s; printf "\n" }' "$log"
