#!/usr/bin/env bash
# Regenerates every generated file from the Rust types: crds/zimroom.yaml (and the chart's copy, when the chart
# exists). tests/crd.rs fails when a committed copy differs from what the code generates.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --quiet --locked -- crd > crds/zimroom.yaml
if [[ -d charts/zim-operator ]]; then
  mkdir -p charts/zim-operator/crds
  cp crds/zimroom.yaml charts/zim-operator/crds/zimroom.yaml
fi
echo "generated crds/zimroom.yaml"
