#!/usr/bin/env bash
# Checks the alert rules and the dashboard with Debian's promtool (run by scripts/test.sh):
#  1. `promtool check rules` on monitoring/zim-operator.rules.yaml;
#  2. `promtool test rules` on every monitoring/tests/*.yaml, and every alert of the rules file has a case where it
#     fires and one where it stays quiet;
#  3. every query of dashboards/zim-operator.json parses as PromQL (promtool checks it as a recording rule, with the
#     dashboard's variables replaced as Grafana would);
#  4. the chart's copies under charts/zim-operator/files/ are identical to their sources (scripts/generate.sh).
# The rules' runbook anchors and the dashboard's metric names are checked by tests/integration/monitoring.rs, and the rules and
# the dashboard's queries run against a live operator in tests/e2e/alerting.rs.
#
# Prints `ok:`/`FAILED:` per check and ends with `monitoring checks: N passed, M failed` (scripts/lib/check.sh);
# exits 1 if any failed.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/check.sh
check_begin monitoring
eval "$(scripts/tools.sh)"
work="$(mktemp -d)"
at_exit 'rm -rf "$work"'
rules=monitoring/zim-operator.rules.yaml
dashboard=dashboards/zim-operator.json

check "promtool check rules $rules ($("$PROMTOOL" --version 2>&1 | head -1 | cut -d' ' -f3))" "$PROMTOOL" check rules "$rules"
for t in monitoring/tests/*.yaml; do
  check "promtool test rules $t" "$PROMTOOL" test rules "$t"
done

covered() {
  "$TOOLS_PY" - "$rules" monitoring/tests/*.yaml <<'PY'
import sys, yaml
alerts = [r["alert"] for g in yaml.safe_load(open(sys.argv[1]))["groups"] for r in g["rules"] if "alert" in r]
fires, quiet = set(), set()
for path in sys.argv[2:]:
    for test in yaml.safe_load(open(path))["tests"]:
        for case in test.get("alert_rule_test", []):
            (fires if case.get("exp_alerts") else quiet).add(case["alertname"])
missing = [f"{a}: no case where it {what}" for a in alerts for what, seen in (("fires", fires), ("stays quiet", quiet)) if a not in seen]
unknown = sorted((fires | quiet) - set(alerts))
for m in missing:
    print(m)
for u in unknown:
    print(f"{u}: tested, but not in {sys.argv[1]}")
print(f"{len(alerts)} alerts")
sys.exit(1 if missing or unknown or len(alerts) < 8 else 0)
PY
}
check "every alert has a unit test where it fires and one where it stays quiet" covered

dashboard_rules() { # the dashboard's queries as recording rules, variables replaced as Grafana would
  "$TOOLS_PY" - "$dashboard" "$work/dashboard-queries.yaml" <<'PY'
import json, sys, yaml
dashboard = json.load(open(sys.argv[1]))
rules = []
def panels(ps):
    for p in ps:
        yield p
        yield from panels(p.get("panels", []))
for p in panels(dashboard["panels"]):
    for t in p.get("targets", []):
        expr = t["expr"].replace("$__rate_interval", "1m").replace("$namespace", ".*").replace("$job", ".*")
        assert "$" not in expr, f"{p['title']}: an unknown variable in {t['expr']}"
        rules.append({"record": f"dashboard:query_{len(rules)}", "expr": expr})
assert len(rules) >= 15, len(rules)
yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, open(sys.argv[2], "w"))
print(f"{len(rules)} queries")
PY
  "$PROMTOOL" check rules "$work/dashboard-queries.yaml"
}
check "every query of $dashboard parses as PromQL" dashboard_rules

check "charts/zim-operator/files/zim-operator.rules.yaml is $rules (scripts/generate.sh)" \
  cmp "$rules" charts/zim-operator/files/zim-operator.rules.yaml
check "charts/zim-operator/files/zim-operator-dashboard.json is $dashboard (scripts/generate.sh)" \
  cmp "$dashboard" charts/zim-operator/files/zim-operator-dashboard.json

finish
