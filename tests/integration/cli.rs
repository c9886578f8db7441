//! The `zim-operator` binary: `apply` (against a simulator over HTTP, and `--simulate` as in the README's quick
//! start), `validate`, `crd`; exit codes and messages; and the quick start's shown output, held to what the binary
//! prints.

use std::process::{Command, Output};

use crate::support::*;
use zim_operator::sim::{Fault, FaultPlan};

pub(crate) fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_zim-operator"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c.env_remove("ZEGO_APP_ID").env_remove("ZEGO_SERVER_SECRET").env_remove("RUST_LOG");
    c
}

pub(crate) async fn run_bin(mut c: Command) -> Output {
    tokio::task::spawn_blocking(move || c.output().expect("binary runs")).await.unwrap()
}

fn apply_cmd(endpoint: &str, secret: &str, files: &[&str]) -> Command {
    let mut c = bin();
    c.arg("apply").arg("--endpoint").arg(endpoint).arg("--attempts").arg("2");
    for f in files {
        c.arg("-f").arg(f);
    }
    c.env("ZEGO_APP_ID", APP.to_string()).env("ZEGO_SERVER_SECRET", secret);
    c
}

pub(crate) fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The README quick start: `apply --simulate -f examples/` makes both example rooms Ready and exits 0.
#[tokio::test]
async fn quick_start_works() {
    let mut c = bin();
    c.args(["apply", "--simulate", "-f", "examples/"]);
    let out = run_bin(c).await;
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("ZimRoom chat/lobby: Ready (Available)"), "{stderr}");
    assert!(stderr.contains("ZimRoom chat/game-room: Ready (Available)"), "{stderr}");
    assert!(stderr.contains("2 ZimRoom(s): 2 Ready, 0 not Ready"), "{stderr}");
    let stdout = text(&out.stdout);
    assert_eq!(stdout.matches("reason: Available").count(), 2, "{stdout}");
}

/// A quick-start command of the README (`cargo run --release -- ARGS`, in a `sh` block of its own) and the output
/// shown under it (the `text` block that follows): the command's arguments and the shown text.
pub(crate) fn readme_example(command: &str) -> (Vec<String>, String) {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let block = format!("```sh\ncargo run --release -- {command}\n```\n");
    let at =
        readme.find(&block).unwrap_or_else(|| panic!("README.md shows `cargo run --release -- {command}`"));
    let rest = &readme[at + block.len()..];
    let start = rest.find("```text\n").expect("its output follows in a text block") + "```text\n".len();
    let end = start + rest[start..].find("\n```\n").expect("the text block is closed") + 1;
    assert!(!rest[..start].contains("```sh"), "the output block follows the command `{command}`");
    (command.split_whitespace().map(String::from).collect(), rest[start..end].to_owned())
}

/// What varies between runs of `apply --simulate`, masked: the simulator's port, request ids, transition times.
pub(crate) fn mask_run(text: &str) -> String {
    let mut out = text.to_owned();
    for (after, with) in [("127.0.0.1:", "PORT"), ("request id ", "ID"), ("requestId: \"", "ID")] {
        let mut masked = String::new();
        let mut rest = out.as_str();
        while let Some(i) = rest.find(after) {
            masked.push_str(&rest[..i + after.len()]);
            rest = &rest[i + after.len()..];
            let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            masked.push_str(if digits > 0 { with } else { "" });
            rest = &rest[digits..];
        }
        masked.push_str(rest);
        out = masked;
    }
    // RFC 3339 times of the conditions: 2026-11-29T04:32:12Z.
    let shape = |w: &[u8]| {
        w.iter()
            .zip(b"0000-00-00T00:00:00Z")
            .all(|(c, s)| if *s == b'0' { c.is_ascii_digit() } else { c == s })
    };
    let bytes = out.as_bytes();
    let mut masked = String::new();
    let mut i = 0;
    while i < bytes.len() {
        if i + 20 <= bytes.len() && shape(&bytes[i..i + 20]) {
            masked.push_str("TIME");
            i += 20;
        } else {
            let c = out[i..].chars().next().unwrap();
            masked.push(c);
            i += c.len_utf8();
        }
    }
    masked
}

/// The README's `validate` example shows exactly what the command prints (the problems on stdout, then the
/// summary on stderr), and the command exits 1.
#[tokio::test]
async fn readme_validate_output_is_what_the_binary_prints() {
    let (args, shown) = readme_example("validate -f examples/invalid/");
    let mut c = bin();
    c.args(&args);
    let out = run_bin(c).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let printed = text(&out.stdout) + &text(&out.stderr);
    assert_eq!(shown, printed, "README.md's validate output differs from what the binary prints");
}

/// The README's quick start shows what `apply --simulate -f examples/` prints (stderr, then stdout), up to its
/// `...`, but for the port, the request ids and the times.
#[tokio::test]
async fn readme_quick_start_output_is_what_the_binary_prints() {
    let (args, shown) = readme_example("apply --simulate -f examples/");
    let shown = shown.strip_suffix("...\n").expect("the shown output ends with `...` (it is cut short)");
    assert!(shown.lines().count() > 20, "{shown}");
    let mut c = bin();
    c.args(&args);
    let out = run_bin(c).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed = mask_run(&(text(&out.stderr) + &text(&out.stdout)));
    let shown = mask_run(shown);
    assert!(
        printed.starts_with(&shown),
        "README.md's quick start output differs from what the binary prints (masked):\n--- shown\n{shown}\n--- printed\n{printed}"
    );
}

#[test]
fn mask_run_hides_only_what_varies() {
    let a = "at http://127.0.0.1:43135 (demo AppId 1000001)\nrequest id 421\n  requestId: \"93\"\n  - lastTransitionTime: \"2026-11-29T04:32:12Z\"\n";
    let b = "at http://127.0.0.1:1 (demo AppId 1000001)\nrequest id 9\n  requestId: \"7\"\n  - lastTransitionTime: \"2027-01-01T00:00:00Z\"\n";
    assert_eq!(mask_run(a), mask_run(b));
    assert_ne!(mask_run(a), mask_run(&a.replace("1000001", "1000002")));
    assert_ne!(mask_run(a), mask_run(&a.replace("\"2026", "2026")));
}

/// Applying the printed output again costs one existence probe per room: no CreateRoom, no attribute writes.
#[tokio::test]
async fn reapplying_output_only_probes() {
    let sim = sim(0, 100).await;
    let out = run_bin(apply_cmd(&sim.endpoint(), SECRET, &["examples/"])).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let dir = tempfile::tempdir().unwrap();
    let printed = dir.path().join("out.yaml");
    std::fs::write(&printed, &out.stdout).unwrap();
    let before = last_seq(&sim);
    let again = run_bin(apply_cmd(&sim.endpoint(), SECRET, &[printed.to_str().unwrap()])).await;
    assert!(again.status.success(), "{}", text(&again.stderr));
    let mut actions = actions_since(&sim, before);
    actions.retain(|a| a != "UserRegister"); // once per process and app
    assert_eq!(actions, ["QueryRoomUserList", "QueryRoomUserList"]);
    // The status is unchanged: the same request ids and transition times come back.
    assert_eq!(text(&again.stdout), text(&out.stdout));
}

/// Invalid values cost no ZIM call: the object reaches the core, whose reason names every problem; exit code 1.
#[tokio::test]
async fn invalid_values_reach_the_core_and_cost_nothing() {
    let sim = sim(0, 100).await;
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bytes.yaml");
    std::fs::write(&f, room("r").room_name(&"é".repeat(33)).yaml()).unwrap();
    let out = run_bin(apply_cmd(&sim.endpoint(), SECRET, &[f.to_str().unwrap(), "examples/invalid/"])).await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("not Ready (InvalidSpec): spec.roomName: is 66 bytes"), "{stderr}");
    // A manifest of the right shape reaches the core, which names every problem on the status.
    assert!(
        stderr.contains("ZimRoom chat/bad-room: not Ready (InvalidSpec): spec.roomId: contains '/'"),
        "{stderr}"
    );
    assert!(stderr.contains("spec.attributes[1].key: duplicates the key"), "{stderr}");
    assert!(sim.sim.log().is_empty(), "no ZIM call");
}

/// A typo'd field is refused outright (exit code 1, no ZIM call), not applied with the field silently ignored.
#[tokio::test]
async fn unknown_field_is_refused_not_applied() {
    let sim = sim(0, 100).await;
    let dir = tempfile::tempdir().unwrap();
    let typo = dir.path().join("typo.yaml");
    std::fs::write(
        &typo,
        "apiVersion: zim.zego.im/v1alpha1\nkind: ZimRoom\nmetadata: {name: t}\nspec: {roomNmae: x}\n",
    )
    .unwrap();
    let out = run_bin(apply_cmd(&sim.endpoint(), SECRET, &[typo.to_str().unwrap()])).await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("ZimRoom default/t: invalid, not applied: spec.roomNmae: unknown field"),
        "{stderr}"
    );
    assert!(sim.sim.log().is_empty(), "no ZIM call for a typo'd manifest");
}

/// A wrong server secret gives AuthFailed and exit 1, and apply's output holds no secret, signature or signed URL.
#[tokio::test]
async fn auth_failure_exits_1_without_leaking_secrets() {
    let sim = sim(0, 1).await;
    let out =
        run_bin(apply_cmd(&sim.endpoint(), "0000000000000000000000000000000f", &["examples/lobby.yaml"]))
            .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("not Ready (AuthFailed)"), "{}", text(&out.stderr));
    // Neither secret, nor a signature the simulator saw, nor a signed URL in apply's output.
    let output = format!("{}{}", text(&out.stderr), text(&out.stdout));
    assert!(!output.contains("0000000000000000000000000000000f") && !output.contains(SECRET));
    assert!(!output.contains("Signature="));
    for sig in sim.sim.signatures() {
        assert!(!output.contains(&sig), "a signature in apply's output");
    }
}

/// With a quota of one room, the second room is QuotaExceeded and apply exits 1.
#[tokio::test]
async fn quota_exceeded_exits_1() {
    let sim = sim(0, 1).await;
    let out = run_bin(apply_cmd(&sim.endpoint(), SECRET, &["examples/"])).await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("not Ready (QuotaExceeded)"), "{stderr}");
    assert!(stderr.contains("1 Ready, 1 not Ready"), "{stderr}");
}

/// Persistent throttling gives Throttled and exit 1 after a bounded number of attempts (two: two CreateRoom calls).
#[tokio::test]
async fn persistent_throttling_exits_1_after_bounded_retries() {
    let sim = sim(0, 100).await;
    let before = last_seq(&sim);
    sim.sim.set_faults(FaultPlan {
        rate: 1.0,
        kinds: vec![Fault::Code { code: 660300005 }],
        actions: vec!["CreateRoom".into()],
        ..Default::default()
    });
    let out = run_bin(apply_cmd(&sim.endpoint(), SECRET, &["examples/game-room.yaml"])).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("not Ready (Throttled)"), "{}", text(&out.stderr));
    // Bounded retries: two attempts, two CreateRoom calls.
    let creates = sim.sim.log_since(before).iter().filter(|e| e.action == "CreateRoom").count();
    assert_eq!(creates, 2);
}

/// A transient fault (one HTTP 503) is retried and apply succeeds.
#[tokio::test]
async fn transient_fault_is_retried() {
    let sim = sim(0, 100).await;
    sim.sim.set_faults(FaultPlan { next: [Fault::HttpStatus { status: 503 }].into(), ..Default::default() });
    let out = run_bin(apply_cmd(&sim.endpoint(), SECRET, &["examples/game-room.yaml"])).await;
    assert!(out.status.success(), "a transient fault is retried: {}", text(&out.stderr));
}

/// A file that is not UTF-8 is an error (exit 2) naming the file and the offset.
#[tokio::test]
async fn non_utf8_input_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let bin_file = dir.path().join("bin.yaml");
    std::fs::write(&bin_file, b"kind: ZimRoom\nname: \xff\xfe\n").unwrap();
    let mut c = bin();
    c.args(["validate", "-f", bin_file.to_str().unwrap()]);
    let out = run_bin(c).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("bin.yaml: not UTF-8 text (invalid byte at offset 20)"),
        "{}",
        text(&out.stderr)
    );
}

/// A document that is not valid YAML is an error (exit 2) naming the file and the document.
#[tokio::test]
async fn bad_yaml_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "kind: ConfigMap\n---\nkind: [\n").unwrap();
    let mut c = bin();
    c.args(["apply", "--simulate", "-f", bad.to_str().unwrap()]);
    let out = run_bin(c).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("bad.yaml (document 2): not valid YAML"), "{}", text(&out.stderr));
}

/// Objects of other kinds are skipped with a notice; the ZimRooms beside them are still checked.
#[tokio::test]
async fn other_kinds_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let mixed = dir.path().join("mixed.yaml");
    std::fs::write(&mixed, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\n").unwrap();
    let mut c = bin();
    c.args(["validate", "-f", mixed.to_str().unwrap(), "-f", "examples/"]);
    let out = run_bin(c).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("skipping v1 ConfigMap default/c (not a ZimRoom)"));
    assert_eq!(text(&out.stdout).matches(": valid").count(), 2);
}

/// `crd --kind K` prints exactly the committed CRD of K, and `crd` both, as two YAML documents.
#[tokio::test]
async fn crd_command_prints_committed_crd() {
    let committed =
        |file: &str| std::fs::read_to_string(format!("{}/crds/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let printed = |args: &[&str]| {
        let mut c = bin();
        c.arg("crd").args(args);
        let out = c.output().unwrap();
        assert!(out.status.success());
        text(&out.stdout)
    };
    assert_eq!(printed(&["--kind", "ZimRoom"]), committed("zimroom.yaml"));
    assert_eq!(printed(&["--kind", "ZimRoomSet"]), committed("zimroomset.yaml"));
    assert_eq!(printed(&[]), format!("{}---\n{}", committed("zimroom.yaml"), committed("zimroomset.yaml")));
}

/// The help text of `args` (`zim-operator ARGS --help`).
pub(crate) fn help(args: &[&str]) -> String {
    let out = bin().args(args).arg("--help").output().expect("binary runs");
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
}

/// The block of `--help` that documents `flag` (from its line to the next flag's), or None.
pub(crate) fn flag_help(help: &str, flag: &str) -> Option<String> {
    let lines: Vec<&str> = help.lines().collect();
    let is_flag = |l: &str| l.trim_start().starts_with('-') && l.len() - l.trim_start().len() <= 6;
    let at = lines.iter().position(|l| {
        is_flag(l) && l.trim_start().split([' ', ',']).any(|w| w == flag || w.strip_prefix("=") == Some(flag))
    })?;
    let end = lines[at + 1..].iter().position(|l| is_flag(l)).map_or(lines.len(), |i| at + 1 + i);
    Some(lines[at..end].join("\n"))
}

/// The settings `run`, `apply`, `plan` and `import` share have one flag name and one environment variable in
/// each; `simulate`, `apply`, `plan` and `import` share the credentials' flags; `apply`, `plan` and `validate` the
/// input's.
#[test]
fn the_same_setting_has_the_same_flag_in_every_command() {
    let shared: &[(&[&str], &str, Option<&str>)] = &[
        (&["run", "apply", "plan", "import"], "--endpoint", Some("ZIM_ENDPOINT")),
        (&["run", "apply", "plan", "import"], "--from-user-id", Some("ZIM_FROM_USER_ID")),
        (&["run", "apply", "plan", "import"], "--zim-qps", Some("ZIM_QPS")),
        (&["run", "apply", "plan", "import"], "--zim-timeout", Some("ZIM_TIMEOUT")),
        (&["run", "apply", "plan", "import"], "--tls-roots", Some("ZIM_TLS_ROOTS")),
        (&["run", "apply", "plan", "import"], "--ca-file", Some("ZIM_CA_FILE")),
        (&["run", "apply", "plan", "import"], "--concurrency", Some("ZIM_CONCURRENCY")),
        (&["run", "import"], "--probe-share", Some("ZIM_PROBE_SHARE")),
        (&["apply", "plan", "import", "simulate"], "--app-id", Some("ZEGO_APP_ID")),
        (&["apply", "plan", "import", "simulate"], "--server-secret-file", None),
        (&["apply", "plan", "import"], "--simulate", None),
        (&["apply", "plan", "validate"], "--filename", None),
        (&["apply", "plan", "import", "validate"], "--output", None),
    ];
    for (commands, flag, env) in shared {
        for command in *commands {
            let block = flag_help(&help(&[command]), flag)
                .unwrap_or_else(|| panic!("`{command} --help` documents {flag}"));
            if let Some(env) = env {
                assert!(block.contains(&format!("[env: {env}=")), "`{command} {flag}` reads {env}:\n{block}");
            }
        }
    }
    // The old name is gone from the help text (a hidden alias, not a visible one).
    let apply = help(&["apply"]);
    assert!(
        flag_help(&apply, "--zim-qps").is_some() && !apply.contains("--qps"),
        "`apply --qps` is hidden:\n{apply}"
    );
}

/// The old `apply --qps` is still accepted (a hidden alias of `--zim-qps`), and so is the new name; an unknown
/// flag is a usage error (exit 2), so the alias is not accepted by accident.
#[tokio::test]
async fn old_flag_names_are_still_accepted() {
    for flag in ["--qps", "--zim-qps"] {
        let mut c = bin();
        c.args(["apply", "--simulate", flag, "7", "-f", "examples/lobby.yaml"]);
        let out = run_bin(c).await;
        assert!(out.status.success(), "apply {flag} 7: {}", text(&out.stderr));
    }
    let mut c = bin();
    c.args(["apply", "--simulate", "--qpss", "7", "-f", "examples/lobby.yaml"]);
    let out = run_bin(c).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

/// `apply` without credentials stops at once (exit 2, one error line on stderr, nothing on stdout, no ZIM call).
#[tokio::test]
async fn apply_without_credentials_fails_fast() {
    let sim = sim(0, 100).await;
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n").unwrap();
    let missing = dir.path().join("missing");
    // (extra arguments, environment, what the one error line says)
    type Case<'a> = (Vec<String>, Vec<(&'a str, String)>, &'a str);
    let cases: Vec<Case> = vec![
        (vec![], vec![("ZEGO_APP_ID", APP.to_string())], "error: no server secret: set ZEGO_SERVER_SECRET"),
        (vec![], vec![("ZEGO_SERVER_SECRET", SECRET.into())], "error: no AppId: set ZEGO_APP_ID"),
        (
            vec!["--server-secret-file".into(), empty.display().to_string()],
            vec![("ZEGO_APP_ID", APP.to_string())],
            "is empty",
        ),
        (
            vec!["--server-secret-file".into(), missing.display().to_string()],
            vec![("ZEGO_APP_ID", APP.to_string())],
            "error: cannot read --server-secret-file",
        ),
    ];
    for (args, env, says) in cases {
        let mut c = bin();
        c.args(["apply", "--endpoint", &sim.endpoint(), "-f", "examples/"]).args(&args);
        for (k, v) in &env {
            c.env(k, v);
        }
        let started = std::time::Instant::now();
        let out = run_bin(c).await;
        let took = started.elapsed();
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?} {env:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains(says), "{says:?} in {stderr}");
        assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
        assert!(took < std::time::Duration::from_secs(3), "fails fast: took {took:?}");
    }
    assert!(sim.sim.log().is_empty(), "no ZIM call");
}

/// `run` without a Kubernetes configuration says so once, in one line with the path it tried (not `'"…"'`).
#[tokio::test]
async fn run_without_kubeconfig_reports_once() {
    let home = tempfile::tempdir().unwrap();
    let mut c = bin();
    c.arg("run")
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT")
        .env("HOME", home.path());
    let out = run_bin(c).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let config = home.path().join(".kube/config");
    assert_eq!(
        stderr,
        format!(
            "error: no Kubernetes configuration: not in a pod (KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT \
             are unset), and cannot read the kubeconfig {}: No such file or directory (os error 2); pass \
             --kubeconfig or set KUBECONFIG\n",
            config.display()
        )
    );
    // With JSON logs: one JSON line.
    let mut c = bin();
    c.args(["--log-format", "json", "run", "--kubeconfig", "/nonexistent/kubeconfig"]);
    let out = run_bin(c).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let line: serde_json::Value = serde_json::from_str(stderr.trim()).expect("a JSON log line");
    assert_eq!(line["level"], "ERROR");
    assert_eq!(
        line["message"],
        "cannot read the kubeconfig /nonexistent/kubeconfig: No such file or directory (os error 2)"
    );
}

/// `validate -o json`: one object on stdout with the counts, every ZimRoom with its problems field by field, and
/// the skipped documents; the same findings as the text output, line for line; exit codes as in text.
#[tokio::test]
async fn validate_json_output_has_every_problem_by_field() {
    let dir = tempfile::tempdir().unwrap();
    let mixed = dir.path().join("mixed.yaml");
    std::fs::write(&mixed, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: n}\n").unwrap();
    let files = ["-f", "examples/invalid/", "-f", "examples/lobby.yaml", "-f", mixed.to_str().unwrap()];
    let mut c = bin();
    c.arg("validate").args(files).args(["-o", "json"]);
    let out = run_bin(c).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON object");
    assert_eq!(report["valid"], false);
    assert_eq!(report["checked"], 2);
    assert_eq!(report["invalid"], 1);
    let objects = report["objects"].as_array().unwrap();
    assert_eq!(objects.len(), 2);
    let bad = &objects[0];
    assert_eq!(bad["file"], "examples/invalid/bad-room.yaml");
    assert_eq!(bad["document"], 1);
    assert_eq!(bad["apiVersion"], "zim.zego.im/v1alpha1");
    assert_eq!(bad["kind"], "ZimRoom");
    assert_eq!(bad["namespace"], "chat");
    assert_eq!(bad["name"], "bad-room");
    assert_eq!(bad["valid"], false);
    let fields: Vec<&str> =
        bad["problems"].as_array().unwrap().iter().map(|p| p["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["spec.attributes[1]", "spec.destroyDelayTime", "spec.roomId", "spec.roomName"]);
    assert_eq!(bad["problems"][1]["message"], "is 20000, at most 10800 is allowed");
    let good = &objects[1];
    assert_eq!((good["name"].as_str(), good["valid"].as_bool()), (Some("lobby"), Some(true)));
    assert_eq!(good["problems"], serde_json::json!([]));
    let skipped = report["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1);
    assert_eq!(
        (skipped[0]["kind"].as_str(), skipped[0]["namespace"].as_str()),
        (Some("ConfigMap"), Some("n"))
    );

    // The README names exactly these keys (report, object, problem), in its paragraph on `validate -o json`.
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let paragraph =
        readme.split("\n\n").find(|p| p.starts_with("`validate -o json` prints")).expect("README");
    let named: std::collections::BTreeSet<&str> =
        paragraph.split('`').skip(1).step_by(2).filter(|w| !w.contains(' ')).collect();
    let keys = |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    let mut actual: std::collections::BTreeSet<String> = keys(&report).into_iter().collect();
    actual.extend(keys(bad));
    actual.extend(keys(&bad["problems"][0]));
    assert_eq!(named, actual.iter().map(String::as_str).collect(), "README.md's keys of validate -o json");

    // The text output says the same, problem for problem.
    let mut c = bin();
    c.arg("validate").args(files);
    let text_out = run_bin(c).await;
    assert_eq!(text_out.status.code(), Some(1));
    let from_json: Vec<String> = objects
        .iter()
        .flat_map(|o| {
            let at = format!(
                "{} (document {}): ZimRoom {}/{}",
                o["file"].as_str().unwrap(),
                o["document"],
                o["namespace"].as_str().unwrap(),
                o["name"].as_str().unwrap()
            );
            let problems = o["problems"].as_array().unwrap();
            if problems.is_empty() {
                vec![format!("{at}: valid")]
            } else {
                problems
                    .iter()
                    .map(|p| {
                        format!("{at}: {}: {}", p["field"].as_str().unwrap(), p["message"].as_str().unwrap())
                    })
                    .collect()
            }
        })
        .collect();
    let printed: Vec<String> = text(&text_out.stdout).lines().map(String::from).collect();
    assert_eq!(from_json, printed);

    // All valid: exit 0, `valid: true`; unreadable input: exit 2 and nothing on stdout.
    let mut c = bin();
    c.args(["validate", "-o", "json", "-f", "examples/"]);
    let out = run_bin(c).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((report["valid"].as_bool(), report["invalid"].as_u64()), (Some(true), Some(0)));
    let mut c = bin();
    c.args(["validate", "-o", "json", "-f", "examples/no-such-file.yaml"]);
    let out = run_bin(c).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}

/// The exit-code table of docs/running.md: (command, code, when).
fn documented_exit_codes() -> Vec<(String, u8, String)> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/running.md")).unwrap();
    let section = doc.split("\n## Exit codes\n").nth(1).expect("docs/running.md has an Exit codes section");
    let section = section.split("\n## ").next().unwrap();
    section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            assert_eq!(cells.len(), 3, "{l}");
            (cells[0].trim_matches('`').to_owned(), cells[1].parse().expect("a code"), cells[2].to_owned())
        })
        .collect()
}

/// Starts `simulate` with `env`, waits (with a deadline) until it says it listens, sends SIGTERM, and returns its
/// exit code.
async fn simulate_until_sigterm() -> Option<i32> {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_zim-operator"))
        .args(["simulate", "--listen", "127.0.0.1:0"])
        .env("ZEGO_APP_ID", APP.to_string())
        .env("ZEGO_SERVER_SECRET", SECRET)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines =
        tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(child.stdout.take().unwrap()));
    let first = tokio::time::timeout(std::time::Duration::from_secs(20), lines.next_line())
        .await
        .expect("the simulator says it listens within 20 s")
        .unwrap()
        .unwrap_or_default();
    assert!(first.starts_with("zim simulator listening on"), "{first}");
    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill").arg("-TERM").arg(&pid).status().unwrap().success());
    let status = tokio::time::timeout(std::time::Duration::from_secs(20), child.wait())
        .await
        .expect("the simulator stops within 20 s of SIGTERM")
        .unwrap();
    status.code()
}

/// Every exit code docs/running.md lists is in the command's `--help`, with the same words, and is what the binary
/// returns in that case; a usage error is 2 in every command.
#[tokio::test]
async fn documented_exit_codes_are_what_the_binary_returns() {
    let documented = documented_exit_codes();
    assert!(documented.len() >= 18, "{documented:?}");
    let home = tempfile::tempdir().unwrap();
    for (command, code, when) in &documented {
        let help = help(&[command]);
        assert!(
            help.contains("Exit codes:\n") && help.contains(&format!("\n  {code}  {when}")),
            "`{command} --help` lists exit code {code}: {when}\n{help}"
        );
        // The case of each row, run.
        let case = |args: &[&str]| {
            let mut c = bin();
            c.args(args);
            c
        };
        let got = match (command.as_str(), code) {
            ("apply", 0) => run_bin(case(&["apply", "--simulate", "-f", "examples/"])).await.status.code(),
            ("apply", 1) => {
                run_bin(case(&["apply", "--simulate", "-f", "examples/invalid/"])).await.status.code()
            }
            ("apply", 2) => run_bin(case(&["apply", "-f", "examples/"])).await.status.code(),
            ("validate", 0) => run_bin(case(&["validate", "-f", "examples/"])).await.status.code(),
            ("validate", 1) => run_bin(case(&["validate", "-f", "examples/invalid/"])).await.status.code(),
            ("validate", 2) => run_bin(case(&["validate", "-f", "examples/none.yaml"])).await.status.code(),
            ("run", 0) => {
                let server = format!("https://{}", crate::shutdown::closed_port());
                let (_, status, _) =
                    crate::shutdown::sigterm_after(&server, false, std::time::Duration::from_millis(200))
                        .await;
                status.code()
            }
            ("run", 1) => {
                // Losing the Lease needs an API server that stops answering a leader: the e2e tier's split-brain
                // test does that and holds the exit code to 1. Here: that it still does.
                let e2e =
                    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/split_brain.rs"))
                        .unwrap();
                assert!(e2e.contains(
                    "async fn a_leader_cut_off_from_the_api_server_stops_before_the_standby_leads"
                ));
                assert!(e2e.contains("assert_eq!(status.code(), Some(1)"));
                Some(1)
            }
            ("run", 2) => {
                let mut c = case(&["run"]);
                c.env_remove("KUBECONFIG")
                    .env_remove("KUBERNETES_SERVICE_HOST")
                    .env_remove("KUBERNETES_SERVICE_PORT")
                    .env("HOME", home.path());
                run_bin(c).await.status.code()
            }
            ("simulate", 0) => simulate_until_sigterm().await,
            ("simulate", 2) => {
                let mut c = case(&["simulate", "--listen", "127.0.0.1:0"]);
                c.env("ZEGO_APP_ID", APP.to_string());
                run_bin(c).await.status.code()
            }
            ("crd", 0) => run_bin(case(&["crd"])).await.status.code(),
            ("plan", 0) => {
                let observed = home.path().join("observed.yaml");
                std::fs::write(&observed, room("seen").observe().yaml()).unwrap();
                let observed = observed.to_str().unwrap();
                run_bin(case(&["plan", "--simulate", "-f", observed])).await.status.code()
            }
            ("plan", 1) => run_bin(case(&["plan", "-f", "examples/"])).await.status.code(),
            ("plan", 2) => run_bin(case(&["plan", "--simulate", "-f", "examples/"])).await.status.code(),
            ("import", 0) => run_bin(case(&["import", "--simulate", "--room-id", "x", "--skip-missing"]))
                .await
                .status
                .code(),
            ("import", 1) => run_bin(case(&["import", "--simulate", "--room-id", "x"])).await.status.code(),
            ("import", 2) => run_bin(case(&["import", "--room-id", "x"])).await.status.code(),
            other => panic!("no case for the documented exit code {other:?}: add one here"),
        };
        assert_eq!(got, Some(i32::from(*code)), "`{command}`: {when}");
    }
    // A usage error: 2 in every command.
    for command in ["run", "apply", "plan", "validate", "import", "simulate", "crd"] {
        let out = run_bin(case_usage(command)).await;
        assert_eq!(out.status.code(), Some(2), "`{command} --no-such-flag`: {}", text(&out.stderr));
    }
    let top = help(&[]);
    assert!(top.contains("Exit codes: each command's --help lists its own"), "{top}");
}

fn case_usage(command: &str) -> Command {
    let mut c = bin();
    c.args([command, "--no-such-flag"]);
    c
}
