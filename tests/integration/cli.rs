//! The `zim-operator` binary: `apply` (against a simulator over HTTP, and `--simulate` as in the README's quick
//! start), `validate`, `crd`; exit codes and messages; and the quick start's shown output, held to what the binary
//! prints.

use std::process::{Command, Output};

use crate::support::*;
use zim_operator::sim::{Fault, FaultPlan};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_zim-operator"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c.env_remove("ZEGO_APP_ID").env_remove("ZEGO_SERVER_SECRET").env_remove("RUST_LOG");
    c
}

async fn run_bin(mut c: Command) -> Output {
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

fn text(b: &[u8]) -> String {
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
fn readme_example(command: &str) -> (Vec<String>, String) {
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
fn mask_run(text: &str) -> String {
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

/// `crd` prints exactly the committed CRD.
#[tokio::test]
async fn crd_command_prints_committed_crd() {
    let mut c = bin();
    c.arg("crd");
    let out = run_bin(c).await;
    assert!(out.status.success());
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/crds/zimroom.yaml")).unwrap();
    assert_eq!(text(&out.stdout), committed);
}
