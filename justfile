# The everyday commands. With just installed, `just` lists them and `just NAME` runs one; without it, each recipe's
# indented lines are the command to type at the checkout's root. tests/integration/docs.rs checks that every script and
# cargo target named here exists.

set shell := ["bash", "-euo", "pipefail", "-c"]

# List the recipes.
default:
    @just --list --unsorted

# The project's one test command: formatting, clippy, every tier and every check (README "Testing").
test:
    scripts/test.sh

# The tiers that need no server: unit tests, the simulator over HTTP, the binary.
unit:
    cargo test

# One module of the tiers without a server, filtered: `just integration reconcile::`.
integration *filter:
    cargo test --test integration -- {{filter}}

# One end-to-end tier, e2e, outage or uninstall (ZIM_KUBE_VERSION=floor: on 1.20), filtered: `just e2e e2e cel`.
e2e tier="e2e" *filter:
    eval "$(scripts/tools.sh)"; export HELM3 HELM4 KUBECTL LUA TOOLS_PY PROMETHEUS PROMTOOL; cargo test --features e2e --test {{tier}} -- --nocapture {{filter}}

# The benchmarks (release binary, real kube-apiserver, simulator); writes docs/PERFORMANCE.md.
bench:
    cargo bench --bench perf

# One benchmark alone, P4 or P10: `just perf P10`.
perf id:
    PERF_ONLY={{id}} cargo bench --bench perf

# Regenerate the CRD, the chart's CRD template and the chart's copies of the alert rules and dashboard.
generate:
    scripts/generate.sh

# The Helm chart against helm 3 and 4 and a current kube-apiserver.
chart-check:
    ZIM_KUBE_VERSION=current scripts/chart-check.sh

# The README's install, upgrade and uninstall commands, run as written (about 10 minutes).
readme-check:
    scripts/readme-check.sh

# The alert rules and the dashboard with promtool.
monitoring-check:
    scripts/monitoring-check.sh

# The Argo CD health check under Lua 5.1 and gopher-lua.
argocd:
    argocd/test.sh

# Format the code.
fmt:
    cargo fmt --all

# Clippy as the test command runs it: every target, the server tiers included, warnings denied.
clippy:
    cargo clippy --all-targets --features e2e --locked -- -D warnings

# The ZIM simulator on 127.0.0.1:8080 (docs/simulator.md).
simulate:
    ZEGO_SERVER_SECRET=0123456789abcdef0123456789abcdef cargo run --release -- simulate --listen 127.0.0.1:8080 --app-id 1000001

# Print the ZimRoom CRD as YAML.
crd:
    cargo run --quiet -- crd
