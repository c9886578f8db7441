#!/usr/bin/env bash
# Regenerates every generated file from the Rust types:
#   crds/zimroom.yaml                           `zim-operator crd`: the CRD for kubectl users
#   charts/zim-operator/templates/crd.yaml      the same CRD as a chart template (scripts/chart-crd.py): rendered
#                                               with crds.enabled, kept on uninstall with crds.keep, CEL rules only
#                                               for Kubernetes >= 1.25
# tests/crd.rs fails when a committed file differs from what the code generates.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --quiet --locked -- crd > crds/zimroom.yaml
python3 scripts/chart-crd.py < crds/zimroom.yaml > charts/zim-operator/templates/crd.yaml
echo "generated crds/zimroom.yaml and charts/zim-operator/templates/crd.yaml"
