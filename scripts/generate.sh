#!/usr/bin/env bash
# Regenerates every generated file from its source:
#   crds/zimroom.yaml, crds/zimroomset.yaml     `zim-operator crd --kind ...`: the CRDs for kubectl users
#   charts/zim-operator/templates/crd.yaml, charts/zim-operator/templates/crd-zimroomset.yaml
#                                               the same CRDs as chart templates (scripts/chart-crd.py): rendered
#                                               with crds.enabled, kept on uninstall with crds.keep, CEL rules only
#                                               for Kubernetes >= 1.25
#   charts/zim-operator/files/zim-operator.rules.yaml     copy of monitoring/zim-operator.rules.yaml (the chart's
#                                                         PrometheusRule reads it with .Files.Get)
#   charts/zim-operator/files/zim-operator-dashboard.json copy of dashboards/zim-operator.json (the dashboard
#                                                         ConfigMap)
# tests/integration/crd.rs and tests/integration/monitoring.rs fail when a committed file differs from what this script generates.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --quiet --locked -- crd --kind ZimRoom > crds/zimroom.yaml
cargo run --quiet --locked -- crd --kind ZimRoomSet > crds/zimroomset.yaml
python3 scripts/chart-crd.py ZimRoom < crds/zimroom.yaml > charts/zim-operator/templates/crd.yaml
python3 scripts/chart-crd.py ZimRoomSet < crds/zimroomset.yaml > charts/zim-operator/templates/crd-zimroomset.yaml
cp monitoring/zim-operator.rules.yaml charts/zim-operator/files/zim-operator.rules.yaml
cp dashboards/zim-operator.json charts/zim-operator/files/zim-operator-dashboard.json
echo "generated crds/, charts/zim-operator/templates/crd.yaml, charts/zim-operator/templates/crd-zimroomset.yaml and charts/zim-operator/files/"
