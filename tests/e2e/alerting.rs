//! The alert rules and the dashboard against a real Prometheus server (Debian's, `PROMETHEUS` from
//! scripts/tools.sh, else `prometheus` on PATH) scraping a running operator every second on 127.0.0.1.
//!
//! Prometheus loads a test copy of `monitoring/zim-operator.rules.yaml` with two mechanical changes, so that alerts
//! fire within seconds: every `for:` becomes 1 s and ZimRoomsNotReady's 900 s age threshold becomes 5 s (the test
//! fails if either change no longer applies). Everything else — expressions, windows, labels, annotations — is the
//! shipped file.
//! - Faulty run: the simulator throttles CreateRoom twice and refuses a room over the app's quota, and one room has
//!   an invalid spec; Prometheus' API shows ZimThrottled, ZimQuotaExhausted, ZimRoomsNotReady (category quota),
//!   ZimReconcileErrors and ZimTenantRoomsNotReady (the invalid room's namespace) firing, no platform alert for the
//!   invalid spec, and none of the alerts for conditions that do not hold. Every query of the dashboard is then evaluated and
//!   returns series.
//! - Healthy run: rooms become Ready and no alert is active over several rule evaluations.
//!
//! If Prometheus cannot start, the tests fail and say why.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use zim_operator::sim::{Fault, FaultPlan};

use crate::builder::room;
use crate::harness::*;

const T: Duration = Duration::from_secs(60);
const JOB: &str = "zim-operator";

/// The shipped rules with short `for:` durations and a 5 s age threshold (see the module doc).
fn test_rules() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/monitoring/zim-operator.rules.yaml");
    let source = std::fs::read_to_string(path).expect("the rules file");
    let mut fors = 0;
    let mut out: Vec<String> = source
        .lines()
        .map(|line| {
            let trimmed = line.trim_start();
            if trimmed.starts_with("for: ") {
                fors += 1;
                format!("{}for: 1s", &line[..line.len() - trimmed.len()])
            } else {
                line.to_owned()
            }
        })
        .collect();
    assert!(fors >= 6, "the rules file's `for:` durations were not found ({fors})");
    let threshold = ") > 900";
    let ages: Vec<usize> = (0..out.len()).filter(|&i| out[i].contains(threshold)).collect();
    assert_eq!(ages.len(), 1, "ZimRoomsNotReady's 900 s threshold was not found once");
    out[ages[0]] = out[ages[0]].replace(threshold, ") > 5");
    out.join("\n") + "\n"
}

/// A Prometheus server scraping one operator, with the test rules.
struct Prometheus {
    child: tokio::process::Child,
    addr: SocketAddr,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping `target` every second (job `zim-operator`, label `namespace`), evaluating rules
    /// every second, and waits until it is ready; fails with the reason if it cannot start.
    async fn start(target: SocketAddr, namespace: &str) -> Prometheus {
        let binary = std::env::var("PROMETHEUS").unwrap_or_else(|_| "prometheus".into());
        let dir = tempfile::Builder::new().prefix("zim-prometheus").tempdir().unwrap();
        std::fs::write(dir.path().join("rules.yaml"), test_rules()).unwrap();
        let config = format!(
            r#"global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files: [rules.yaml]
scrape_configs:
  - job_name: {JOB}
    static_configs:
      - targets: ["{target}"]
        labels: {{namespace: {namespace}}}
"#
        );
        std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
        let addr: SocketAddr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let log = dir.path().join("prometheus.log");
        let mut child = tokio::process::Command::new(&binary)
            .arg(format!("--config.file={}", dir.path().join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address={addr}"))
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start Prometheus ({binary}): {e}. scripts/tools.sh installs Debian's prometheus and \
                     prints PROMETHEUS"
                )
            });
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("Prometheus ({binary}) exited at start with {status}:\n{log}");
            }
            let ready = reqwest::get(format!("http://{addr}/-/ready")).await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            if std::time::Instant::now() > deadline {
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("Prometheus ({binary}) was not ready on {addr} within 30 s:\n{log}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Prometheus { child, addr, log, _dir: dir }
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// GET on Prometheus' HTTP API: the `data` of a successful answer; fails on an error answer.
    async fn api(&self, path: &str, query: &[(&str, &str)]) -> Value {
        let url = format!("http://{}/api/v1/{path}", self.addr);
        let answer: Value = reqwest::Client::new()
            .get(&url)
            .query(query)
            .send()
            .await
            .unwrap_or_else(|e| panic!("Prometheus API {path}: {e}\n{}", self.logs()))
            .json()
            .await
            .expect("Prometheus answers JSON");
        assert_eq!(answer["status"], "success", "Prometheus API {path} {query:?}: {answer}");
        answer["data"].clone()
    }

    /// The result vector of an instant query.
    async fn query(&self, promql: &str) -> Vec<Value> {
        let data = self.api("query", &[("query", promql)]).await;
        assert_eq!(data["resultType"], "vector", "{promql}: {data}");
        data["result"].as_array().unwrap().clone()
    }

    /// The active (pending or firing) alerts.
    async fn alerts(&self) -> Vec<Value> {
        self.api("alerts", &[]).await["alerts"].as_array().unwrap().clone()
    }

    /// The last evaluation time of the operator's rule group (whole milliseconds since the epoch), once it has
    /// been evaluated.
    async fn last_evaluation(&self) -> Option<i64> {
        let data = self.api("rules", &[]).await;
        let group = data["groups"].as_array()?.iter().find(|g| g["name"] == "zim-operator")?.clone();
        let at: jiff::Timestamp = group["lastEvaluation"].as_str()?.parse().ok()?;
        (at.as_second() > 0).then(|| at.as_millisecond())
    }

    /// Waits until `promql` returns at least one series.
    async fn wait_for(&self, what: &str, promql: &str) -> Vec<Value> {
        eventually(&format!("Prometheus to see {what} ({promql})"), T, || async {
            let result = self.query(promql).await;
            (!result.is_empty()).then_some(result)
        })
        .await
    }

    /// Waits until the operator is scraped, leads, and its pre-initialised series are in the database.
    async fn wait_scraped(&self) {
        self.wait_for("the operator's target up", &format!("up{{job=\"{JOB}\"}} == 1")).await;
        self.wait_for("the leader", "zim_operator_leader == 1").await;
        self.wait_for("the throttling series at 0", "zim_operator_zim_calls_total{code=\"660300005\"} == 0")
            .await;
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

fn alert_summary(alerts: &[Value]) -> Vec<String> {
    alerts.iter().map(|a| format!("{} {} {}", a["labels"]["alertname"], a["state"], a["labels"])).collect()
}

/// Every query of the dashboard, with the panel's title, variables replaced as Grafana would for this job.
fn dashboard_queries(namespace: &str) -> Vec<(String, String)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/dashboards/zim-operator.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"]
                .as_str()
                .unwrap()
                .replace("$__rate_interval", "1m")
                .replace("$namespace", namespace)
                .replace("$job", JOB);
            out.push((panel["title"].as_str().unwrap().to_owned(), expr));
        }
    }
    out
}

/// Throttled CreateRoom calls and a room refused over the quota fire the matching alerts, and only those; every
/// dashboard query then returns series from the scraped data.
#[tokio::test]
async fn faults_fire_the_matching_alerts_and_the_dashboard_has_data() {
    let w = World::new("alerting-faults").await;
    w.create_secret("zego").await;
    w.sim.sim.set_limits(None, Some(2));
    let op = w.operator(&["--resync-period", "2s"]).await;
    let prometheus = Prometheus::start(op.admin, &w.ns).await;
    prometheus.wait_scraped().await;

    w.apply_room(room("alpha-room").destroy_delay(600)).await;
    w.wait_reason("alpha-room", "Available", T).await;
    // A member in alpha-room, so the dashboard's occupancy panels have series (their gauges exist while non-zero).
    w.sim.sim.enter_room(APP, "alpha-room", &["guest".to_owned()]).unwrap();
    eventually("the member to be counted", T, || async {
        (op.metric("zim_operator_rooms_occupied{").await >= 1.0).then_some(())
    })
    .await;
    w.sim.sim.set_faults(FaultPlan {
        next: [Fault::Code { code: 660300005 }, Fault::Code { code: 660300005 }].into(),
        actions: vec!["CreateRoom".into()],
        ..Default::default()
    });
    w.apply_room(room("beta-room").destroy_delay(600)).await;
    w.wait_reason("beta-room", "Available", T).await;
    w.apply_room(room("gamma-room").destroy_delay(600)).await;
    w.wait_reason("gamma-room", "QuotaExceeded", T).await;
    // Longer than a room ID may be: the tenant's own mistake.
    w.apply_room(room("an-object-name-longer-than-32-bytes")).await;
    w.wait_reason("an-object-name-longer-than-32-bytes", "InvalidSpec", T).await;
    assert!(op.metric("zim_operator_zim_calls_total{action=\"CreateRoom\",code=\"660300005\"}").await >= 2.0);

    let expected = [
        ("ZimThrottled", "action", "CreateRoom"),
        ("ZimQuotaExhausted", "namespace", w.ns.as_str()),
        ("ZimRoomsNotReady", "category", "quota"),
        ("ZimReconcileErrors", "category", "throttled"),
        ("ZimTenantRoomsNotReady", "category", "invalid_spec"),
    ];
    let alerts = eventually("the alerts for throttling and the quota to fire", T, || async {
        let alerts = prometheus.alerts().await;
        let firing = |(name, label, value): &(&str, &str, &str)| {
            alerts.iter().any(|a| {
                a["state"] == "firing" && a["labels"]["alertname"] == *name && a["labels"][*label] == *value
            })
        };
        expected.iter().all(firing).then_some(alerts)
    })
    .await;
    let names: BTreeSet<&str> = alerts.iter().filter_map(|a| a["labels"]["alertname"].as_str()).collect();
    for quiet in ["ZimOperatorDown", "ZimOperatorNoLeader", "ZimAuthFailed", "ZimProberBehind"] {
        assert!(!names.contains(quiet), "{quiet} is active: {:#?}", alert_summary(&alerts));
    }
    for a in &alerts {
        let annotations = &a["annotations"];
        assert!(
            annotations["runbook_url"].as_str().is_some_and(|u| u.starts_with("docs/monitoring.md#")),
            "{a}"
        );
        let description = annotations["description"].as_str().unwrap_or_default();
        assert!(!description.contains("{{"), "the description's template rendered: {description}");
        assert!(!description.contains("gamma-room"), "no room names in annotations: {description}");
    }
    // The invalid spec is its tenant's: routed by the room's namespace, and in no platform alert.
    let tenant = alerts.iter().find(|a| a["labels"]["alertname"] == "ZimTenantRoomsNotReady").unwrap();
    assert_eq!(tenant["labels"]["namespace"], w.ns.as_str(), "{tenant}");
    assert_eq!(tenant["labels"]["owner"], "tenant", "{tenant}");
    for a in &alerts {
        let category = a["labels"]["category"].as_str().unwrap_or_default();
        let platform = a["labels"]["alertname"] != "ZimTenantRoomsNotReady";
        assert!(
            !(platform && ["invalid_spec", "immutable_field"].contains(&category)),
            "a platform alert for a tenant's spec: {a}"
        );
    }
    let quota = alerts.iter().find(|a| a["labels"]["alertname"] == "ZimRoomsNotReady").unwrap();
    assert!(quota["annotations"]["summary"].as_str().unwrap().contains("(quota)"), "{quota}");

    // The dashboard: every query parses and returns series for this operator.
    let queries = dashboard_queries(&w.ns);
    assert!(queries.len() >= 15);
    for (title, expr) in queries {
        let result = prometheus.query(&expr).await;
        assert!(!result.is_empty(), "dashboard panel {title:?}: {expr} returns no series");
    }
    let refused = prometheus.query("zim_operator_rooms_not_ready{category=\"quota\"} == 1").await;
    assert_eq!(refused[0]["metric"]["owner"], "platform", "the default credentials' app: {refused:?}");
    assert_eq!(refused.len(), 1, "the scraped gauge counts the refused room: {refused:?}");
}

/// A healthy operator: no alert is active over five rule evaluations once the rooms are Ready and scraped.
#[tokio::test]
async fn healthy_run_has_no_alerts() {
    let w = World::new("alerting-healthy").await;
    w.create_secret("zego").await;
    let op = w.operator(&[]).await;
    let prometheus = Prometheus::start(op.admin, &w.ns).await;
    prometheus.wait_scraped().await;
    for name in ["one", "two"] {
        w.apply_room(room(name).destroy_delay(600).attribute("topic", "t")).await;
    }
    for name in ["one", "two"] {
        w.wait_reason(name, "Available", T).await;
    }
    prometheus.wait_for("both rooms Ready", "zim_operator_rooms{ready=\"true\"} == 2").await;
    prometheus.wait_for("no room not Ready", "sum(zim_operator_rooms_not_ready) == 0").await;
    let since = jiff::Timestamp::now().as_millisecond();
    let evaluations = std::cell::RefCell::new(BTreeSet::new());
    eventually("five rule evaluations after the rooms became Ready", T, || async {
        // Evaluations after the scraped data showed the rooms Ready: from the first on, no alert is active.
        let at = prometheus.last_evaluation().await.filter(|&at| at > since)?;
        let alerts = prometheus.alerts().await;
        assert!(alerts.is_empty(), "alerts in a healthy run: {:#?}", alert_summary(&alerts));
        let mut seen = evaluations.borrow_mut();
        seen.insert(at);
        (seen.len() >= 5).then_some(())
    })
    .await;
    let rules = prometheus.api("rules", &[("type", "alert")]).await;
    let evaluated: usize = rules["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["rules"].as_array().unwrap().iter().filter(|r| r["health"] == "ok").count())
        .sum();
    assert!(evaluated >= 8, "every alert rule evaluates without error: {rules}");
}
