//! The alert rules (`monitoring/zim-operator.rules.yaml`) and the dashboard (`dashboards/zim-operator.json`) stay
//! true to the operator: every metric they name is one the operator exports, every exported metric appears on the
//! dashboard and in the metrics table of docs/monitoring.md, every alert says what to check and links a runbook
//! section of docs/monitoring.md that exists, and the chart's copies are the sources (scripts/generate.sh). promtool checks and unit tests are in
//! scripts/monitoring-check.sh; tests/e2e/alerting.rs runs both against a live operator and Prometheus.

use crate::support::markdown;

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn rules() -> Value {
    serde_saphyr::from_str(&read("monitoring/zim-operator.rules.yaml")).expect("the rules file is YAML")
}

fn alerts() -> Vec<Value> {
    let rules = rules();
    let alerts: Vec<Value> = rules["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().clone())
        .filter(|r| r.get("alert").is_some())
        .collect();
    assert!(alerts.len() >= 8, "the rules file has the operator's alerts");
    alerts
}

fn dashboard() -> Value {
    serde_json::from_str(&read("dashboards/zim-operator.json")).expect("the dashboard is JSON")
}

/// Every query of the dashboard, with its panel's title.
fn dashboard_queries() -> Vec<(String, String)> {
    fn walk(panels: &[Value], out: &mut Vec<(String, String)>) {
        for p in panels {
            for t in p["targets"].as_array().into_iter().flatten() {
                out.push((p["title"].as_str().unwrap().to_owned(), t["expr"].as_str().unwrap().to_owned()));
            }
            walk(p["panels"].as_array().map_or(&[], Vec::as_slice), out);
        }
    }
    let mut out = Vec::new();
    walk(dashboard()["panels"].as_array().unwrap(), &mut out);
    out
}

/// The metric families the operator exports and their types: the `# TYPE` lines of a registry that has seen one
/// reconcile, one ZIM call and one room with an invalid spec (families whose series appear on first use are listed
/// only then).
fn exported() -> Vec<(String, String)> {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
    use zim_operator::metrics::Readiness;
    use zim_operator::zim::{Action, CallObserver};
    let metrics = zim_operator::metrics::Metrics::new();
    let invalid = Condition {
        type_: "Ready".into(),
        status: "False".into(),
        reason: "InvalidSpec".into(),
        message: String::new(),
        observed_generation: Some(1),
        last_transition_time: Time(jiff::Timestamp::now()),
    };
    let readiness = Readiness::of_conditions(&[invalid], false, jiff::Timestamp::now());
    metrics.rooms.set_ready("team-a/lobby", Some(readiness));
    metrics.rooms.set_members("team-a/lobby", "team-a", 3);
    metrics.reconcile.reconciled(Duration::from_millis(1), None);
    metrics.zim.observe(Action::CreateRoom, "0", Duration::from_millis(1));
    metrics.zim.waited(Action::CreateRoom, Duration::ZERO);
    metrics
        .encode()
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| {
            let (name, kind) = l.split_once(' ').unwrap();
            (name.to_owned(), kind.to_owned())
        })
        .collect()
}

/// The series names the operator exports: counters with `_total`, histograms with `_bucket`, `_sum`, `_count`.
fn exported_series() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (name, kind) in exported() {
        match kind.as_str() {
            "counter" => {
                names.insert(format!("{name}_total"));
            }
            "histogram" => {
                for suffix in ["_bucket", "_sum", "_count"] {
                    names.insert(format!("{name}{suffix}"));
                }
            }
            _ => {
                names.insert(name);
            }
        }
    }
    names
}

/// Identifiers in a PromQL expression that name series: the ones followed by a selector or a range, or starting
/// with the operator's prefix (label names inside `by (...)` or `{...}` are neither).
fn series_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let chars: Vec<char> = expr.chars().collect();
    let mut i = 0;
    let mut in_string = false;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' {
            in_string = !in_string;
            i += 1;
            continue;
        }
        if !in_string
            && (c.is_ascii_alphabetic() || c == '_')
            && (i == 0 || !chars[i - 1].is_ascii_alphanumeric())
        {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let next = chars[i..].iter().find(|c| !c.is_whitespace());
            if word.starts_with("zim_operator_") || matches!(next, Some('{') | Some('[')) {
                names.insert(word);
            }
            continue;
        }
        i += 1;
    }
    names
}

/// The page the alerts' runbook_url points into: the runbooks, the metrics table, how the monitoring is tested.
const PAGE: &str = "docs/monitoring.md";

#[test]
fn anchors_follow_github() {
    use markdown::anchor;
    assert_eq!(anchor(" Install on a cluster"), "install-on-a-cluster");
    assert_eq!(anchor("ZimRoomsNotReady"), "zimroomsnotready");
    assert_eq!(anchor("The CRD with kubectl"), "the-crd-with-kubectl");
    assert_eq!(anchor("ZEGO callbacks (optional)"), "zego-callbacks-optional");
    assert!(markdown::anchors(&read("README.md")).contains("install-on-a-cluster"));
    assert!(markdown::anchors(&read(PAGE)).contains("zimoperatordown"));
}

#[test]
fn series_names_are_found_in_queries() {
    let names = series_names(
        r#"sum by (le, action) (rate(zim_operator_zim_call_duration_seconds_bucket{job=~"a|b", code="x"}[5m])) or absent(up{job="z"}) > 0.5 * zim_operator_leader"#,
    );
    let want: BTreeSet<String> =
        ["zim_operator_zim_call_duration_seconds_bucket", "up", "zim_operator_leader"]
            .map(String::from)
            .into();
    assert_eq!(names, want);
}

/// Every alert has a severity, a summary, a description that says what to check, and a runbook_url whose anchor
/// is a heading of docs/monitoring.md.
#[test]
fn every_alert_is_documented_and_links_an_existing_runbook_section() {
    let page = read(PAGE);
    let anchors = markdown::anchors(&page);
    let mut names = BTreeSet::new();
    for alert in alerts() {
        let name = alert["alert"].as_str().unwrap();
        assert!(names.insert(name.to_owned()), "{name} is defined twice");
        let severity = alert["labels"]["severity"].as_str().unwrap_or_default();
        assert!(["warning", "critical"].contains(&severity), "{name}: severity {severity:?}");
        let a = &alert["annotations"];
        assert!(a["summary"].as_str().is_some_and(|s| s.len() > 10), "{name}: summary");
        let description = a["description"].as_str().unwrap_or_default();
        assert!(description.contains("Check") || description.contains("check"), "{name}: what to check");
        let url = a["runbook_url"].as_str().unwrap_or_else(|| panic!("{name}: runbook_url"));
        let (file, fragment) = url.split_once('#').unwrap_or_else(|| panic!("{name}: {url} has no anchor"));
        assert_eq!(file, PAGE, "{name}: runbook_url points into {PAGE}");
        assert!(anchors.contains(fragment), "{name}: {PAGE} has no section #{fragment}");
        assert_eq!(fragment, name.to_lowercase(), "{name}: its runbook section is named after it");
        assert!(page.contains(&format!("`{name}`")), "{name}: {PAGE}'s alerts table names it");
    }
}

/// The alerts cover what the operator's users must hear about.
#[test]
fn the_alerts_cover_the_failure_modes() {
    let text: Vec<(String, String)> = alerts()
        .iter()
        .map(|a| (a["alert"].as_str().unwrap().to_owned(), a["expr"].as_str().unwrap().to_owned()))
        .collect();
    let covered = |what: &str, pattern: &str| {
        assert!(text.iter().any(|(_, expr)| expr.contains(pattern)), "no alert for {what} ({pattern})");
    };
    covered("rooms not Ready by category", "zim_operator_rooms_not_ready_oldest_seconds");
    covered("ZIM throttling", "660300005|660300006");
    covered("sustained reconcile errors", "zim_operator_reconcile_failures_total");
    covered("auth failures", "category=~\"auth|credentials\", owner=\"platform\"");
    covered("tenant rooms, by their namespace", "zim_operator_tenant_rooms_not_ready");
    covered("quota", "category=\"quota\"");
    covered("the prober behind", "zim_operator_probe_effective_period_seconds");
    covered("no leader", "zim_operator_leader");
    covered("the operator down", "absent(up");
    for (name, expr) in &text {
        assert!(!expr.contains("room_id") && !expr.contains("name=\""), "{name}: no per-room labels");
    }
}

/// The rules read only metrics the operator exports (and `up`).
#[test]
fn rules_use_only_exported_metrics() {
    let exported = exported_series();
    for alert in alerts() {
        let name = alert["alert"].as_str().unwrap();
        for series in series_names(alert["expr"].as_str().unwrap()) {
            assert!(
                series == "up" || exported.contains(&series),
                "{name} reads {series}, which is not exported"
            );
        }
    }
}

/// Every dashboard query names only metrics the operator exports, with the dashboard's own variables; and every
/// metric the operator exports is on the dashboard.
#[test]
fn dashboard_queries_use_exported_metrics_and_cover_them_all() {
    let series = exported_series();
    let queries = dashboard_queries();
    assert!(queries.len() >= 15, "{queries:?}");
    let mut used = BTreeSet::new();
    for (title, expr) in &queries {
        let names = series_names(expr);
        let series_known = |s: &String| series.contains(s);
        assert!(!names.is_empty(), "{title}: {expr} reads no metric");
        for series in names {
            assert!(
                series_known(&series),
                "panel {title:?} reads {series}, which the operator does not export"
            );
            used.insert(series);
        }
        let rest = expr.replace("$__rate_interval", "").replace("$namespace", "").replace("$job", "");
        assert!(!rest.contains('$'), "panel {title:?} uses an undefined variable: {expr}");
    }
    for (family, kind) in exported() {
        let on_dashboard = used.iter().any(|s| s.starts_with(&family));
        assert!(on_dashboard, "{family} ({kind}) is on no dashboard panel");
    }
    let dashboard = dashboard();
    let variables: Vec<&str> = dashboard["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(variables, ["datasource", "namespace", "job"]);
    for panel in dashboard["panels"].as_array().unwrap().iter().filter(|p| p["type"] != "row") {
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{}", panel["title"]);
        assert!(panel["description"].as_str().is_some_and(|d| !d.is_empty()), "{}", panel["title"]);
    }
}

/// The metrics table of docs/monitoring.md lists every metric the operator exports (tests/e2e checks the converse
/// on a live /metrics).
#[test]
fn metrics_table_lists_every_exported_metric() {
    let page = read(PAGE);
    let mut rows = markdown::rows(&page, "| `zim_operator_");
    assert!(rows.len() >= 10, "{PAGE} has the metrics table");
    rows.extend(markdown::rows(&page, "| `process_"));
    for (family, kind) in exported() {
        let series = match kind.as_str() {
            "counter" => format!("{family}_total"),
            _ => family.clone(),
        };
        assert!(
            rows.iter().any(|r| r.starts_with(&format!("| `{series}` |"))),
            "{PAGE}'s metrics table lacks {series}"
        );
    }
}

/// The chart's copies are the sources (scripts/generate.sh copies them).
#[test]
fn chart_copies_are_the_sources() {
    for (source, copy) in [
        ("monitoring/zim-operator.rules.yaml", "charts/zim-operator/files/zim-operator.rules.yaml"),
        ("dashboards/zim-operator.json", "charts/zim-operator/files/zim-operator-dashboard.json"),
    ] {
        assert!(read(source) == read(copy), "{copy} differs from {source}: run scripts/generate.sh");
    }
}
