//! The status contract on the real API server with the operator: for each situation, the object as the server
//! returns it gives the kstatus status (Flux, Helm 4 `--wait`) and the Argo CD health of one shared table. Each is
//! read by two implementations that must agree: kstatus by the port in tests/support/kstatus.rs and by cli-utils
//! itself (testbed/kstatus, built by scripts/kstatus-build.sh); health.lua by Lua 5.1 with dkjson and by gopher-lua
//! v1.1.2, the interpreter Argo CD ships (argocd/gopher-lua, built by scripts/gopher-lua-build.sh). Real clients
//! too: `kubectl wait --for=condition=Ready` and Helm 4's `install --wait`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use zim_operator::crd::ZimRoom;
use zim_operator::sim::{Fault, FaultPlan};

use crate::builder::room;
use crate::harness::*;
use crate::kstatus::{KStatus, compute};

const T: Duration = Duration::from_secs(30);

/// The shared table: each situation → kstatus status and Argo CD health status.
const CASES: &[(&str, KStatus, &str)] = &[
    ("not handled yet", KStatus::InProgress, "Progressing"),
    ("converged", KStatus::Current, "Healthy"),
    ("paused", KStatus::Current, "Suspended"),
    ("invalid spec", KStatus::Failed, "Degraded"),
    ("wrong secret", KStatus::Failed, "Degraded"),
    ("quota used up", KStatus::Failed, "Degraded"),
    ("refused parameters", KStatus::Failed, "Degraded"),
    ("immutable change", KStatus::Failed, "Degraded"),
    ("throttled", KStatus::InProgress, "Progressing"),
    ("attribute edit failing transiently", KStatus::InProgress, "Progressing"),
    ("attribute edit applied", KStatus::Current, "Healthy"),
    ("edited while the operator is stopped", KStatus::InProgress, "Progressing"),
    ("deleting", KStatus::Terminating, "Progressing"),
    ("waiting for an empty room", KStatus::Terminating, "Progressing"),
    ("draining", KStatus::Terminating, "Progressing"),
    ("observed, drifted", KStatus::Current, "Healthy"),
    ("observed, missing", KStatus::Failed, "Degraded"),
];

fn expected(situation: &str) -> (KStatus, &'static str) {
    let (_, k, a) = CASES.iter().find(|(s, _, _)| *s == situation).expect("a situation of the table");
    (*k, a)
}

/// Runs `scripts/<script>` (a builder that prints a binary's path) once per test binary; panics with its reason.
fn built(script: &'static str, cell: &'static std::sync::OnceLock<PathBuf>) -> &'static PathBuf {
    cell.get_or_init(|| {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts").join(script);
        let out = std::process::Command::new("bash").arg(&path).output().expect("bash runs");
        assert!(
            out.status.success(),
            "{script} could not build its helper:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    })
}

/// kstatus of each object as sigs.k8s.io/cli-utils computes it: (status, message).
pub fn cli_utils_kstatus(objects: &[serde_json::Value]) -> Vec<(String, String)> {
    use std::io::Write;
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let bin = built("kstatus-build.sh", &BIN);
    let mut child = std::process::Command::new(bin)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the kstatus helper runs");
    let mut input = child.stdin.take().unwrap();
    for o in objects {
        writeln!(input, "{o}").unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the kstatus helper failed");
    let lines: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), objects.len(), "one answer per object");
    lines
        .into_iter()
        .map(|v| match v.get("error").and_then(|e| e.as_str()) {
            // Compute returned an error: its callers (Flux, Helm) read the status as unknown.
            Some(e) => ("Unknown".to_owned(), e.to_owned()),
            None => (
                v["status"].as_str().unwrap().to_owned(),
                v["message"].as_str().unwrap_or_default().to_owned(),
            ),
        })
        .collect()
}

/// The name cli-utils gives a status.
pub fn kstatus_name(k: KStatus) -> &'static str {
    match k {
        KStatus::InProgress => "InProgress",
        KStatus::Failed => "Failed",
        KStatus::Current => "Current",
        KStatus::Terminating => "Terminating",
        KStatus::Unknown => "Unknown",
    }
}

/// Argo CD's health of `obj` by our health.lua, under Lua 5.1 + dkjson (installed by scripts/tools.sh) and under
/// gopher-lua v1.1.2 with Argo CD's object conversion and libraries; the two must agree.
fn argo_health(obj: &serde_json::Value) -> String {
    static GOPHER: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("argocd");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("obj.json");
    std::fs::write(&file, serde_json::to_vec(obj).unwrap()).unwrap();
    let gopher = built("gopher-lua-build.sh", &GOPHER);
    let out = std::process::Command::new(gopher)
        .arg(root.join("resource_customizations/zim.zego.im/ZimRoom/health.lua"))
        .arg(&file)
        .output()
        .expect("the gopher-lua runner runs");
    assert!(
        out.status.success(),
        "health.lua under gopher-lua failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let by_gopher: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let by_lua = lua51_health(&file);
    assert_eq!(by_gopher, by_lua, "gopher-lua v1.1.2 and Lua 5.1 read {obj} differently");
    by_lua["status"].as_str().unwrap().to_owned()
}

/// health.lua's answer for the object in `file` under Lua 5.1 + dkjson.
fn lua51_health(file: &std::path::Path) -> serde_json::Value {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("argocd");
    let lua = std::env::var("LUA").unwrap_or_else(|_| "lua5.1".into());
    let out = std::process::Command::new(&lua)
        .current_dir(&root)
        .arg("run_health.lua")
        .arg("resource_customizations/zim.zego.im/ZimRoom/health.lua")
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {lua} (install it with scripts/tools.sh): {e}"));
    assert!(out.status.success(), "health.lua failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Asserts that `r` reads as `situation` says, to kstatus and to Argo CD.
fn assert_reads(r: &ZimRoom, situation: &str) {
    let obj = serde_json::to_value(r).unwrap();
    let (k, argo) = expected(situation);
    let (got, message) = compute(&obj);
    assert_eq!(got, k, "{situation}: kstatus ({message}); object: {obj}");
    let [(original, original_message)] =
        <[_; 1]>::try_from(cli_utils_kstatus(std::slice::from_ref(&obj))).unwrap();
    assert_eq!(
        (original.as_str(), original_message.as_str()),
        (kstatus_name(got), message.as_str()),
        "{situation}: cli-utils and the port disagree; object: {obj}"
    );
    assert_eq!(argo_health(&obj), argo, "{situation}: Argo CD; object: {obj}");
}

async fn kstatus_of(w: &World, name: &str) -> Option<(KStatus, ZimRoom)> {
    let r = w.get(name).await?;
    Some((compute(&serde_json::to_value(&r).unwrap()).0, r))
}

/// Waits until kstatus reads `want` for `name`; returns the object and the time it took.
async fn wait_kstatus(w: &World, name: &str, want: KStatus) -> (ZimRoom, Duration) {
    let start = Instant::now();
    let r = eventually(&format!("{name} to read {want:?}"), T, || async {
        let (k, r) = kstatus_of(w, name).await?;
        (k == want).then_some(r)
    })
    .await;
    (r, start.elapsed())
}

/// An object no operator has handled reads InProgress (the schema defaults observedGeneration to 0), and so does
/// one whose spec changed while the operator was stopped.
#[tokio::test]
async fn unhandled_objects_read_in_progress() {
    let w = World::new("e2e-contract-unhandled").await;
    w.create_secret("zego").await;
    w.apply_room(room("fresh").destroy_delay(600)).await;
    let fresh = w.get("fresh").await.unwrap();
    assert_eq!(fresh.status.as_ref().and_then(|s| s.observed_generation), Some(0), "the schema default");
    assert_reads(&fresh, "not handled yet");

    let mut op = w.operator(&[]).await;
    wait_kstatus(&w, "fresh", KStatus::Current).await;
    op.terminate().await;
    w.apply_room(room("fresh").destroy_delay(600).attribute("topic", "edited")).await;
    let stale = w.get("fresh").await.unwrap();
    assert_eq!(stale.metadata.generation, Some(2));
    assert_reads(&stale, "edited while the operator is stopped");
}

/// A converged room is Current/Healthy, and `kubectl wait --for=condition=Ready` returns for it; a paused one is
/// Suspended in Argo CD.
#[tokio::test]
async fn converged_and_paused() {
    let w = World::new("e2e-contract-ok").await;
    w.create_secret("zego").await;
    let _op = w.operator(&[]).await;
    w.apply_room(room("ok").destroy_delay(600).attribute("topic", "general")).await;
    let (r, _) = wait_kstatus(&w, "ok", KStatus::Current).await;
    assert_eq!(r.condition("Ready").unwrap().status, "True");
    assert_reads(&r, "converged");
    let kubectl = std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into());
    let out = tokio::process::Command::new(&kubectl)
        .arg("--kubeconfig")
        .arg(kubeconfig())
        .args(["wait", "--for=condition=Ready", "zimroom/ok", "-n", &w.ns, "--timeout=20s"])
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run {kubectl} (install it with scripts/tools.sh): {e}"));
    assert!(out.status.success(), "kubectl wait: {}", String::from_utf8_lossy(&out.stderr));

    w.apply_room(room("held").destroy_delay(600).paused()).await;
    let r = eventually("the paused object to be handled", T, || async {
        let r = w.get("held").await?;
        (r.condition("Synced")?.reason == "ReconcilePaused").then_some(r)
    })
    .await;
    assert_reads(&r, "paused");
}

/// Rooms ZIM or the operator refuse for good read Failed within seconds (kstatus) and Degraded (Argo CD).
#[tokio::test]
async fn refused_for_good_fails_within_seconds() {
    let w = World::new("e2e-contract-failed").await;
    w.create_secret("zego").await;
    let secrets: Api<Secret> = Api::namespaced(w.client.clone(), &w.ns);
    let wrong: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "wrong"},
        "stringData": {"appId": APP.to_string(), "serverSecret": "ffffffffffffffffffffffffffffffff"},
    }))
    .unwrap();
    secrets.create(&PostParams::default(), &wrong).await.unwrap();
    let _op = w.operator(&[]).await;

    // A room the API server admits on every version but the operator refuses: the object's name (35 bytes)
    // is the room ID and ZIM allows 32 bytes.
    let invalid = "an-object-name-longer-than-32-bytes";
    w.apply_room(room(invalid).destroy_delay(600)).await;
    let (r, took) = wait_kstatus(&w, invalid, KStatus::Failed).await;
    assert_eq!(r.condition("Ready").unwrap().reason, "InvalidSpec");
    assert_reads(&r, "invalid spec");
    println!("status contract: invalid spec Failed after {:.1} s", took.as_secs_f64());

    w.apply_room(room("auth").secret_ref("wrong").destroy_delay(600)).await;
    let (r, took) = wait_kstatus(&w, "auth", KStatus::Failed).await;
    assert_eq!(r.condition("Ready").unwrap().reason, "AuthFailed");
    assert_reads(&r, "wrong secret");
    println!("status contract: wrong secret Failed after {:.1} s", took.as_secs_f64());

    w.apply_room(room("lobby").destroy_delay(600)).await;
    w.wait_reason("lobby", "Available", T).await;
    if on_floor() {
        // No CEL on 1.20: the edit is admitted and the operator refuses it.
        w.apply_room(room("lobby").destroy_delay(60)).await;
        let (r, _) = wait_kstatus(&w, "lobby", KStatus::Failed).await;
        assert_eq!(r.condition("Ready").unwrap().reason, "ImmutableFieldChanged");
        assert_reads(&r, "immutable change");
    } else {
        // A current server refuses the edit at apply (the CRD's CEL rule): the object still reads converged.
        let refused = w.try_apply_room(room("lobby").destroy_delay(60)).await;
        assert!(matches!(&refused, Err(kube::Error::Api(e)) if e.code == 422), "{refused:?}");
        assert_reads(&w.get("lobby").await.unwrap(), "converged");
    }

    w.sim.sim.set_faults(FaultPlan {
        next: [Fault::Code { code: 660000002 }].into(),
        actions: vec!["CreateRoom".into()],
        ..Default::default()
    });
    w.apply_room(room("refused").destroy_delay(600)).await;
    let (r, took) = wait_kstatus(&w, "refused", KStatus::Failed).await;
    assert_eq!(r.condition("Ready").unwrap().reason, "InvalidSpec");
    assert_reads(&r, "refused parameters");
    println!("status contract: refused parameters Failed after {:.1} s", took.as_secs_f64());

    w.sim.sim.set_limits(None, Some(w.sim.sim.rooms(APP).len()));
    w.apply_room(room("over").destroy_delay(600)).await;
    let (r, took) = wait_kstatus(&w, "over", KStatus::Failed).await;
    assert_eq!(r.condition("Ready").unwrap().reason, "QuotaExceeded");
    assert_reads(&r, "quota used up");
    println!("status contract: quota Failed after {:.1} s", took.as_secs_f64());
}

/// Throttling and a failing attribute edit read InProgress, never Failed, until they clear; then Current.
#[tokio::test]
async fn transient_trouble_stays_in_progress() {
    let w = World::new("e2e-contract-transient").await;
    w.create_secret("zego").await;
    let _op = w.operator(&[]).await;
    w.apply_room(room("edited").destroy_delay(600).attribute("topic", "a")).await;
    wait_kstatus(&w, "edited", KStatus::Current).await;

    let throttled = Fault::Code { code: 660300005 };
    w.sim.sim.set_faults(FaultPlan {
        next: std::iter::repeat_n(throttled, 4).collect(),
        actions: vec!["CreateRoom".into()],
        ..Default::default()
    });
    w.apply_room(room("busy").destroy_delay(600)).await;
    let (r, _) = wait_kstatus(&w, "busy", KStatus::InProgress).await;
    let r = if r.condition("Ready").is_none() { w.wait_reason("busy", "Throttled", T).await } else { r };
    assert_reads(&r, "throttled");
    let start = Instant::now();
    loop {
        let (k, r) = kstatus_of(&w, "busy").await.unwrap();
        assert_ne!(k, KStatus::Failed, "throttling must never read Failed: {r:?}");
        if k == KStatus::Current {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "the throttled room never converged");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    w.sim.sim.set_faults(FaultPlan {
        next: std::iter::repeat_n(Fault::Code { code: 1 }, 3).collect(),
        actions: vec!["ModifyRoomAttribute".into()],
        ..Default::default()
    });
    w.apply_room(room("edited").destroy_delay(600).attribute("topic", "b")).await;
    let r = eventually("the failing attribute edit to show", T, || async {
        let r = w.get("edited").await?;
        (r.condition("Synced")?.status == "False" && r.status.as_ref()?.observed_generation == Some(2))
            .then_some(r)
    })
    .await;
    assert_eq!(r.condition("Ready").unwrap().observed_generation, Some(2), "Ready kept is current");
    assert_reads(&r, "attribute edit failing transiently");
    let (r, _) = wait_kstatus(&w, "edited", KStatus::Current).await;
    assert_eq!(r.condition("Synced").unwrap().status, "True");
    assert_reads(&r, "attribute edit applied");
}

/// An object being deleted reads Terminating (kstatus) and Progressing (Argo CD).
#[tokio::test]
async fn deleting_reads_terminating() {
    let w = World::new("e2e-contract-deleting").await;
    w.create_secret("zego").await;
    let _op = w.operator(&[]).await;
    w.apply_room(room("going").destroy_delay(600)).await;
    w.wait_reason("going", "Available", T).await;
    // Another controller's finalizer holds the object in deletion.
    let hold = serde_json::json!({"metadata": {"finalizers": ["zim.zego.im/destroy-room", "e2e.test/hold"]}});
    w.rooms().patch("going", &PatchParams::default(), &Patch::Merge(&hold)).await.unwrap();
    w.rooms().delete("going", &DeleteParams::default()).await.unwrap();
    let r = eventually("the deletion to start", T, || async {
        let r = w.get("going").await?;
        r.metadata.deletion_timestamp.is_some().then_some(r)
    })
    .await;
    assert_reads(&r, "deleting");
    let release = serde_json::json!({"metadata": {"finalizers": null}});
    w.rooms().patch("going", &PatchParams::default(), &Patch::Merge(&release)).await.unwrap();
    w.wait_gone("going", T).await;
}

/// A deletion that waits for an occupied room, then drains it, reads Terminating (kstatus) and Progressing with
/// the operator's message (Argo CD).
#[tokio::test]
async fn an_occupied_room_s_deletion_reads_terminating() {
    let w = World::new("e2e-contract-occupied").await;
    w.create_secret("zego").await;
    let _op = w.operator(&["--occupied-recheck", "1s"]).await;
    w.apply_room(room("busy").destroy_delay(600)).await;
    w.wait_reason("busy", "Available", T).await;
    w.sim.sim.enter_room(APP, "busy", &["amy".to_owned()]).unwrap();
    w.rooms().delete("busy", &DeleteParams::default()).await.unwrap();
    let r = w.wait_reason("busy", "WaitingForEmptyRoom", T).await;
    assert_reads(&r, "waiting for an empty room");
    let drain = serde_json::json!({"spec": {"whenOccupied": {"policy": "Drain", "drainGraceSeconds": 600}}});
    w.rooms().patch("busy", &PatchParams::default(), &Patch::Merge(&drain)).await.unwrap();
    let r = w.wait_reason("busy", "Draining", T).await;
    assert_reads(&r, "draining");
    let destroy = serde_json::json!({"spec": {"whenOccupied": {"policy": "Destroy"}}});
    w.rooms().patch("busy", &PatchParams::default(), &Patch::Merge(&destroy)).await.unwrap();
    w.wait_gone("busy", T).await;
    assert!(w.sim.sim.room(APP, "busy").is_none(), "forced: destroyed with its member");
}

/// An observed room that exists but differs from the spec reads Current/Healthy (drift is reported, nothing is
/// wrong with the object); one that does not exist reads Failed/Degraded.
#[tokio::test]
async fn observed_rooms_read_current_or_failed() {
    let w = World::new("e2e-contract-observed").await;
    w.create_secret("zego").await;
    w.sim.sim.seed_room(APP, "seen", "Seen", 600, &[("topic".into(), "theirs".into())]);
    let _op = w.operator(&[]).await;
    w.apply_room(room("seen").attribute("topic", "ours").observe()).await;
    w.apply_room(room("unseen").observe()).await;
    let r = eventually("the drift to show", T, || async {
        let r = w.get("seen").await?;
        (r.condition("Synced")?.reason == "Drifted").then_some(r)
    })
    .await;
    assert_reads(&r, "observed, drifted");
    let r = w.wait_reason("unseen", "RoomNotFound", T).await;
    assert_reads(&r, "observed, missing");
}

/// Helm 4's `install --wait` (its kstatus watcher) succeeds once a release's ZimRoom is Ready, and fails before
/// its timeout when ZIM refuses the room for good.
#[tokio::test]
async fn helm4_wait_follows_the_room() {
    let Ok(helm) = std::env::var("HELM4") else {
        panic!("HELM4 is not set: run the tests through scripts/test.sh (scripts/tools.sh installs helm 4)");
    };
    let w = World::new("e2e-contract-helm").await;
    w.create_secret("zego").await;
    let _op = w.operator(&[]).await;
    let chart = |name: &str, delay: u32, room_name: &str| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("templates")).unwrap();
        std::fs::write(
            dir.path().join("Chart.yaml"),
            format!("apiVersion: v2\nname: {name}\nversion: 0.1.0\n"),
        )
        .unwrap();
        let r = room(name).destroy_delay(delay).room_name(room_name).yaml();
        std::fs::write(dir.path().join("templates/room.yaml"), r).unwrap();
        dir
    };
    // Asynchronously: the simulator serves from this test's runtime while helm waits.
    let install = |release: &str, dir: &std::path::Path| {
        let mut cmd = tokio::process::Command::new(&helm);
        cmd.arg("--kubeconfig").arg(kubeconfig()).args(["install", release]).arg(dir).args([
            "-n",
            &w.ns,
            "--wait",
            "--timeout",
            "60s",
        ]);
        async move {
            let start = Instant::now();
            let out = cmd.output().await.unwrap();
            (out, start.elapsed())
        }
    };
    let good = chart("good-room", 600, "Good");
    let (out, took) = install("good", good.path()).await;
    assert!(out.status.success(), "helm install --wait: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(w.get("good-room").await.unwrap().condition("Ready").unwrap().status, "True");
    println!(
        "status contract: helm 4 install --wait of a good room returned after {:.1} s",
        took.as_secs_f64()
    );

    w.sim.sim.set_limits(None, Some(w.sim.sim.rooms(APP).len()));
    let bad = chart("bad-room", 600, "Bad");
    let (out, took) = install("bad", bad.path()).await;
    assert!(!out.status.success(), "a room ZIM refuses must fail the release");
    assert!(took < Duration::from_secs(50), "failed only at the timeout: {took:?}");
    println!(
        "status contract: helm 4 install --wait of a room over quota failed after {:.1} s (timeout 60 s)",
        took.as_secs_f64()
    );
}

/// Helm 4's `install --wait` follows a release's ZimRoomSet the same way: it returns once the set is Ready (every
/// child Ready, `AllReady`), and fails well before its timeout when the operator refuses the set's template (six
/// attribute values of 1000 bytes: each within the schema's 1024, together over ZIM's 5120, so the set is Stalled
/// `InvalidRooms` and creates no child).
#[tokio::test]
async fn helm4_wait_follows_a_set() {
    use zim_operator::roomset::ZimRoomSet;
    let Ok(helm) = std::env::var("HELM4") else {
        panic!("HELM4 is not set: run the tests through scripts/test.sh (scripts/tools.sh installs helm 4)");
    };
    let w = World::new("e2e-contract-helm-set").await;
    w.create_secret("zego").await;
    let _op = w.operator(&[]).await;
    let chart = |name: &str, ids: &[&str], attributes: serde_json::Value| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("templates")).unwrap();
        std::fs::write(
            dir.path().join("Chart.yaml"),
            format!("apiVersion: v2\nname: {name}\nversion: 0.1.0\n"),
        )
        .unwrap();
        let set = serde_json::json!({
            "apiVersion": "zim.zego.im/v1alpha1",
            "kind": "ZimRoomSet",
            "metadata": {"name": name},
            "spec": {
                "rooms": {"ids": ids},
                "template": {"spec": {"destroyDelayTime": 600, "credentialsSecretRef": {"name": "zego"},
                                      "attributes": attributes}},
            },
        });
        // JSON is YAML: Helm reads the manifest as it is.
        std::fs::write(dir.path().join("templates/set.yaml"), serde_json::to_string_pretty(&set).unwrap())
            .unwrap();
        dir
    };
    let install = |release: &str, dir: &std::path::Path| {
        let mut cmd = tokio::process::Command::new(&helm);
        cmd.arg("--kubeconfig").arg(kubeconfig()).args(["install", release]).arg(dir).args([
            "-n",
            &w.ns,
            "--wait",
            "--timeout",
            "60s",
        ]);
        async move {
            let start = Instant::now();
            let out = cmd.output().await.unwrap();
            (out, start.elapsed())
        }
    };
    let sets: Api<ZimRoomSet> = Api::namespaced(w.client.clone(), &w.ns);
    let reason = |s: &ZimRoomSet, t: &str| {
        s.status
            .as_ref()?
            .conditions
            .iter()
            .find(|c| c.type_ == t)
            .map(|c| (c.status.clone(), c.reason.clone()))
    };

    let good =
        chart("good-set", &["hs-1", "hs-2", "hs-3"], serde_json::json!([{"key": "topic", "value": "hi"}]));
    let (out, took) = install("good", good.path()).await;
    assert!(out.status.success(), "helm install --wait: {}", String::from_utf8_lossy(&out.stderr));
    // When helm returns, the set is Ready with its three children Ready, and the rooms exist.
    let set = sets.get("good-set").await.unwrap();
    assert_eq!(reason(&set, "Ready"), Some(("True".into(), "AllReady".into())), "{:?}", set.status);
    let st = set.status.unwrap();
    assert_eq!((st.desired, st.ready, st.existing), (3, 3, 3));
    assert_eq!(st.observed_generation, set.metadata.generation);
    for id in ["hs-1", "hs-2", "hs-3"] {
        assert!(w.sim.sim.rooms(APP).iter().any(|r| r.room_id == id), "room {id} in ZIM");
    }
    println!(
        "status contract: helm 4 install --wait of a set of 3 rooms returned after {:.1} s",
        took.as_secs_f64()
    );

    let big: Vec<serde_json::Value> =
        (0..6).map(|i| serde_json::json!({"key": format!("k{i}"), "value": "x".repeat(1000)})).collect();
    let bad = chart("bad-set", &["hb-1", "hb-2", "hb-3"], serde_json::Value::Array(big));
    let (out, took) = install("bad", bad.path()).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a set the operator refuses must fail the release");
    assert!(
        stderr.contains("ZimRoomSet") && stderr.contains("bad-set") && stderr.contains("status: Failed"),
        "helm fails on the set's status, not for another reason: {stderr}"
    );
    assert!(took < Duration::from_secs(30), "failed only near the timeout (60 s): {took:?}");
    let set = sets.get("bad-set").await.unwrap();
    assert_eq!(reason(&set, "Stalled"), Some(("True".into(), "InvalidRooms".into())), "{:?}", set.status);
    let message = set.status.as_ref().unwrap().conditions.iter().find(|c| c.type_ == "Stalled").unwrap();
    assert!(message.message.contains("5120"), "the message names the limit: {}", message.message);
    assert_eq!(set.status.as_ref().unwrap().existing, 0, "no child of a refused set");
    assert!(!w.sim.sim.rooms(APP).iter().any(|r| r.room_id.starts_with("hb-")), "no room of a refused set");
    println!(
        "status contract: helm 4 install --wait of a set with 6000 bytes of attribute values failed after {:.1} s (timeout 60 s)",
        took.as_secs_f64()
    );
}

/// The kstatus port (tests/support/kstatus.rs) and cli-utils give the same status and message for every object
/// the status contract knows without a server: each testdata object of the Argo CD health cases (every Ready
/// reason the operator writes, paused, deleting, no status, a stale generation) and the rule-order cases of
/// tests/integration/kstatus.rs. Together with `assert_reads` (every object the server returned above) the port cannot drift
/// from the library Flux and Helm 4 use.
#[test]
fn the_kstatus_port_agrees_with_cli_utils() {
    use serde_json::json;
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("argocd/resource_customizations/zim.zego.im/ZimRoom/testdata");
    let mut objects: Vec<(String, serde_json::Value)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| {
            let v: serde_json::Value = serde_saphyr::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            (p.file_name().unwrap().to_string_lossy().into_owned(), v)
        })
        .collect();
    assert!(objects.len() >= 15, "the Argo CD testdata objects: {}", objects.len());
    let cr = |status: serde_json::Value| json!({"apiVersion": "zim.zego.im/v1alpha1", "kind": "ZimRoom", "metadata": {"name": "x", "generation": 2}, "status": status});
    for (name, status) in [
        (
            "stalled before reconciling",
            json!({"observedGeneration": 2, "conditions": [
            {"type": "Stalled", "status": "True", "message": "a"}, {"type": "Reconciling", "status": "True", "message": "b"}]}),
        ),
        (
            "reconciling before stalled",
            json!({"observedGeneration": 2, "conditions": [
            {"type": "Reconciling", "status": "True", "message": "b"}, {"type": "Stalled", "status": "True", "message": "a"}]}),
        ),
        (
            "ready false alone",
            json!({"observedGeneration": 2, "conditions": [{"type": "Ready", "status": "False"}]}),
        ),
        ("no observedGeneration", json!({"conditions": [{"type": "Ready", "status": "True"}]})),
        ("observedGeneration 0", json!({"observedGeneration": 0})),
        (
            "ready unknown",
            json!({"observedGeneration": 2, "conditions": [{"type": "Ready", "status": "Unknown", "message": "m"}]}),
        ),
        (
            "ready true after synced false",
            json!({"observedGeneration": 2, "conditions": [
            {"type": "Synced", "status": "False"}, {"type": "Ready", "status": "True"}]}),
        ),
        ("null observedGeneration", json!({"observedGeneration": null})),
        ("null status", serde_json::Value::Null),
        ("conditions not a list", json!({"observedGeneration": 2, "conditions": {}})),
        (
            "a condition type that is a number",
            json!({"observedGeneration": 2, "conditions": [{"type": 1, "status": "True"}]}),
        ),
    ] {
        objects.push((name.to_owned(), cr(status)));
    }
    let mut deleting =
        cr(json!({"observedGeneration": 1, "conditions": [{"type": "Stalled", "status": "True"}]}));
    deleting["metadata"]["deletionTimestamp"] = json!("2026-11-29T00:00:00Z");
    objects.push(("deleting with a stale generation".into(), deleting));
    let values: Vec<serde_json::Value> = objects.iter().map(|(_, v)| v.clone()).collect();
    let original = cli_utils_kstatus(&values);
    for ((name, obj), (status, message)) in objects.iter().zip(&original) {
        let (port, port_message) = compute(obj);
        if port == KStatus::Unknown {
            // Both fail; the port's error text is its own.
            assert_eq!(
                status, "Unknown",
                "{name}: the port fails ({port_message}) where cli-utils reads {status}"
            );
            continue;
        }
        assert_eq!(
            (kstatus_name(port), port_message.as_str()),
            (status.as_str(), message.as_str()),
            "{name}: the port and cli-utils disagree"
        );
    }
    println!("status contract: the kstatus port and cli-utils agree on {} objects", objects.len());
}
