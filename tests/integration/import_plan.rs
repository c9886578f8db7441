//! `import` and `plan`, the built binary against the simulator over HTTP: import's manifests pass `validate`, have
//! unique names and no secret, and cost read calls only; plan prints what `apply` would do per room, with the
//! exit codes of a detailed plan, and no write reaches ZIM.

use std::collections::{BTreeSet, HashSet};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::cli::{bin, mask_run, readme_example, run_bin, text};
use crate::support::*;
use zim_operator::sim::RunningSim;

/// The calls `import` and `plan` may make: reads, and the registration of the operator's user.
const READS: [&str; 3] = ["QueryRoomUserList", "QueryRoomAttribute", "UserRegister"];

/// `zim-operator COMMAND --endpoint ENDPOINT` with the fixture app's credentials in the environment.
fn zim_cmd(command: &str, endpoint: &str, args: &[&str]) -> Command {
    let mut c = bin();
    c.arg(command).arg("--endpoint").arg(endpoint).args(args);
    c.env("ZEGO_APP_ID", APP.to_string()).env("ZEGO_SERVER_SECRET", SECRET);
    c
}

/// The documents of a YAML stream, as JSON.
fn documents(yaml: &[u8]) -> Vec<serde_json::Value> {
    zim_operator::manifest::parse_documents(Path::new("stdout"), &text(yaml))
        .expect("YAML documents")
        .into_iter()
        .map(|d| d.value)
        .collect()
}

/// Every action the simulator logged after `since` is a read (or UserRegister).
fn only_reads_since(sim: &RunningSim, since: u64) -> Vec<String> {
    let actions = actions_since(sim, since);
    for a in &actions {
        assert!(READS.contains(&a.as_str()), "a write reached ZIM: {a} in {actions:?}");
    }
    actions
}

fn count(actions: &[String], action: &str) -> usize {
    actions.iter().filter(|a| *a == action).count()
}

/// 200 room IDs, 20 of them missing, many of them the same name once lowercased: 180 manifests that `validate`
/// accepts, with unique names, Observe, the room's attributes; the missing ones on stderr; exit 1, or 0 with
/// --skip-missing; no secret anywhere; only QueryRoomUserList, QueryRoomAttribute and one UserRegister.
#[tokio::test]
async fn import_of_200_room_ids() {
    let sim = sim(0, 1000).await;
    let mut ids = Vec::new();
    for i in 0..50 {
        // A valid name as it is; the same once lowercased; the same once '_' is replaced; a space and a colon.
        ids.extend([format!("room-{i}"), format!("Room-{i}"), format!("room_{i}"), format!("Team A:{i}")]);
    }
    let missing: BTreeSet<&String> =
        ids.iter().enumerate().filter(|(i, _)| i % 10 == 7).map(|(_, id)| id).collect();
    assert_eq!(missing.len(), 20);
    for (i, id) in ids.iter().enumerate().filter(|(_, id)| !missing.contains(id)) {
        let attributes: Vec<(String, String)> = match i % 3 {
            0 => vec![("topic".into(), format!("t {i}")), ("host".into(), "ann".into())],
            1 => vec![("note".into(), "multi\nline: {x}".into())],
            _ => vec![],
        };
        sim.sim.seed_room(APP, id, "", 600, &attributes);
    }
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("rooms.txt");
    std::fs::write(&list, format!("# exported from the app's database\n\n{}\n", ids.join("\n"))).unwrap();
    let list = list.to_str().unwrap();
    let before = last_seq(&sim);
    let args = ["--from-file", list, "--zim-qps", "0", "--progress-every", "50"];
    let out = run_bin(zim_cmd("import", &sim.endpoint(), &args)).await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for id in &missing {
        assert!(stderr.contains(&format!("room ID {id:?}: no such room")), "{id} in {stderr}");
    }
    assert_eq!(stderr.matches("no such room").count(), 20, "{stderr}");
    assert!(stderr.contains("looked up 100 of 200 room IDs"), "progress: {stderr}");
    assert!(stderr.contains("200 room ID(s): 180 imported, 20 missing, 0 invalid, 0 failed"), "{stderr}");
    assert!(!stdout.contains(SECRET) && !stderr.contains(SECRET), "no server secret in the output");
    assert!(!stdout.contains("status"), "no status: {stdout}");

    let docs = documents(&out.stdout);
    assert_eq!(docs.len(), 180);
    let names: HashSet<&str> = docs.iter().map(|d| d["metadata"]["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 180, "names are unique");
    for d in &docs {
        let id = d["spec"]["roomId"].as_str().unwrap();
        let i = ids.iter().position(|x| x == id).expect("an imported ID");
        assert!(!missing.contains(&ids[i]));
        assert_eq!(d["kind"], "ZimRoom");
        assert_eq!(d["metadata"]["namespace"], "default");
        assert_eq!(d["spec"]["managementPolicy"], "Observe");
        assert!(d["spec"].get("destroyDelayTime").is_none(), "not read from ZIM, not printed: {d}");
        let attributes: Vec<(&str, &str)> = d["spec"]["attributes"]
            .as_array()
            .map(|a| a.iter().map(|a| (a["key"].as_str().unwrap(), a["value"].as_str().unwrap())).collect())
            .unwrap_or_default();
        let expected: Vec<(&str, String)> = match i % 3 {
            0 => vec![("host", "ann".into()), ("topic", format!("t {i}"))],
            1 => vec![("note", "multi\nline: {x}".into())],
            _ => vec![],
        };
        let expected: Vec<(&str, &str)> = expected.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(attributes, expected, "{id}");
    }
    assert!(names.contains("room-0"), "an ID that is a valid name is the name");

    let actions = only_reads_since(&sim, before);
    assert_eq!(count(&actions, "QueryRoomUserList"), 200);
    assert_eq!(count(&actions, "QueryRoomAttribute"), 180);
    assert_eq!(count(&actions, "UserRegister"), 1);

    // What it printed passes `validate`.
    let printed = dir.path().join("imported.yaml");
    std::fs::write(&printed, &out.stdout).unwrap();
    let mut c = bin();
    c.args(["validate", "-f", printed.to_str().unwrap()]);
    let valid = run_bin(c).await;
    assert!(valid.status.success(), "{}{}", text(&valid.stdout), text(&valid.stderr));
    assert!(text(&valid.stderr).contains("180 ZimRoom(s) checked, 0 invalid"), "{}", text(&valid.stderr));

    // With --skip-missing: the same manifests, exit 0.
    let args = ["--from-file", list, "--zim-qps", "0", "--skip-missing"];
    let again = run_bin(zim_cmd("import", &sim.endpoint(), &args)).await;
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stderr));
    assert_eq!(again.stdout, out.stdout);
    assert_eq!(text(&again.stderr).matches("no such room").count(), 20);
}

/// The lookups keep to `--probe-share` of `--zim-qps`: at 20 and 0.5, no more than 10 QueryRoomUserList calls
/// reach ZIM in any second.
#[tokio::test]
async fn import_keeps_to_its_share_of_the_rate() {
    let sim = sim(0, 100).await;
    let ids: Vec<String> = (0..30).map(|i| format!("paced-{i}")).collect();
    for id in &ids {
        sim.sim.seed_room(APP, id, "", 600, &[]);
    }
    let mut args = vec!["--zim-qps", "20", "--probe-share", "0.5", "--skip-missing"];
    for id in &ids {
        args.extend(["--room-id", id]);
    }
    let before = last_seq(&sim);
    let out = run_bin(zim_cmd("import", &sim.endpoint(), &args)).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let arrivals: Vec<u64> = sim
        .sim
        .log_since(before)
        .into_iter()
        .filter(|e| e.action == "QueryRoomUserList")
        .map(|e| e.at_ms)
        .collect();
    assert_eq!(arrivals.len(), 30);
    for w in arrivals.windows(11) {
        // The 1st and the 11th of any 11 calls are a second apart (a millisecond of rounding aside).
        assert!(w[10] - w[0] >= 999, "11 calls within {} ms: {arrivals:?}", w[10] - w[0]);
    }
}

/// `--manage`, `--attributes-on-create`, `--namespace`, `--credentials-secret`, `-o json`, `--from-file -`; an
/// invalid room ID is reported without a call; unusable input, flags or credentials exit 2 before any call; a
/// refused secret exits 1 after one call.
#[tokio::test]
async fn import_options_and_refusals() {
    let sim = sim(0, 100).await;
    sim.sim.seed_room(APP, "Lobby", "", 600, &[("topic".into(), "general".into())]);
    let args = [
        "--room-id",
        "Lobby",
        "--manage",
        "--attributes-on-create",
        "--namespace",
        "chat",
        "--credentials-secret",
        "zego-app",
        "-o",
        "json",
    ];
    let out = run_bin(zim_cmd("import", &sim.endpoint(), &args)).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON List");
    assert_eq!(list["kind"], "List");
    let item = &list["items"][0];
    assert!(item["metadata"]["name"].as_str().unwrap().starts_with("lobby-"), "{item}");
    assert_eq!(item["metadata"]["namespace"], "chat");
    assert!(item["spec"].get("managementPolicy").is_none(), "--manage: no managementPolicy: {item}");
    assert_eq!(item["spec"]["credentialsSecretRef"]["name"], "zego-app");
    assert_eq!(
        item["spec"]["attributes"],
        serde_json::json!([{"key": "topic", "value": "general", "enforce": "OnCreate"}])
    );
    assert!(item.get("status").is_none());

    // Room IDs on standard input; an invalid one costs no call.
    let before = last_seq(&sim);
    let mut c = zim_cmd("import", &sim.endpoint(), &["--from-file", "-", "--room-id", "no/slash"]);
    c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let out = tokio::task::spawn_blocking(move || {
        let mut child = c.spawn().unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"# rooms\nLobby\n").unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("room ID \"no/slash\": invalid, not looked up: contains '/'"), "{stderr}");
    assert_eq!(documents(&out.stdout).len(), 1);
    assert!(sim.sim.log_since(before).iter().all(|e| e.room_id != "no/slash"), "no call for an invalid ID");

    // Exit 2, one line, nothing on stdout, no call.
    let before = last_seq(&sim);
    let dir = tempfile::tempdir().unwrap();
    let nowhere = dir.path().join("nowhere.txt");
    let cases: Vec<(Command, &str)> = vec![
        (zim_cmd("import", &sim.endpoint(), &[]), "error: no room IDs"),
        (
            zim_cmd("import", &sim.endpoint(), &["--room-id", "a", "--namespace", "Chat"]),
            "--namespace \"Chat\"",
        ),
        (
            zim_cmd("import", &sim.endpoint(), &["--from-file", nowhere.to_str().unwrap()]),
            "cannot read --from-file",
        ),
        (
            {
                let mut c = zim_cmd("import", &sim.endpoint(), &["--room-id", "a"]);
                c.env_remove("ZEGO_SERVER_SECRET");
                c
            },
            "error: no server secret",
        ),
    ];
    for (c, says) in cases {
        let out = run_bin(c).await;
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{says}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(says), "{says:?} in {stderr}");
        assert!(out.stdout.is_empty());
    }
    assert!(sim.sim.log_since(before).is_empty(), "no call");

    // A secret ZIM refuses: exit 1 after the one UserRegister, and the secret is nowhere.
    let wrong = "0000000000000000000000000000000f";
    let mut c = zim_cmd("import", &sim.endpoint(), &["--room-id", "Lobby", "--room-id", "b"]);
    c.env("ZEGO_SERVER_SECRET", wrong);
    let out = run_bin(c).await;
    let output = text(&out.stdout) + &text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{output}");
    assert!(output.contains("ZIM refused the credentials"), "{output}");
    assert!(!output.contains(wrong) && !output.contains(SECRET));
    assert_eq!(actions_since(&sim, before), ["UserRegister"]);
}

/// A manifest applied earlier (so its status records the keys it manages: k1, k3), with its spec then changed:
/// k1's value, k2 added, k3 removed.
async fn applied_then_changed(sim: &RunningSim, dir: &Path) -> String {
    let first = dir.join("managed.yaml");
    std::fs::write(&first, room("managed").attribute("k1", "v1").attribute("k3", "v3").yaml()).unwrap();
    let out = run_bin(zim_cmd("apply", &sim.endpoint(), &["-f", first.to_str().unwrap()])).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut applied = documents(&out.stdout).remove(0);
    assert_eq!(applied["status"]["managedAttributeKeys"], serde_json::json!(["k1", "k3"]));
    applied["spec"]["attributes"] =
        serde_json::json!([{"key": "k1", "value": "v1b"}, {"key": "k2", "value": "v2"}]);
    let changed = dir.join("changed.yaml");
    std::fs::write(&changed, zim_operator::yaml::to_yaml(&applied).unwrap()).unwrap();
    changed.to_str().unwrap().to_owned()
}

/// The manifests of the plan tests: a new room, an existing one (adopted), two documents for one room (the second
/// in conflict), an observed room, a typo'd field.
fn plan_manifests(dir: &Path) -> String {
    let typo =
        "apiVersion: zim.zego.im/v1alpha1\nkind: ZimRoom\nmetadata: {name: typo}\nspec: {roomNmae: x}\n";
    let docs = [
        room("fresh").attribute("topic", "x").yaml(),
        room("adopter").room_id("existing-1").attribute("topic", "new").yaml(),
        room("first").room_id("dup").yaml(),
        room("second").room_id("dup").yaml(),
        room("watcher").room_id("watched").observe().yaml(),
        typo.to_owned(),
    ];
    let path = dir.join("rooms.yaml");
    std::fs::write(&path, docs.join("---\n")).unwrap();
    path.to_str().unwrap().to_owned()
}

/// `plan` over manifests that create, adopt, change attributes (set and delete), conflict, observe and are
/// invalid: the expected line for each, the summary, exit 2; the same in `-o json`; no write reaches ZIM and
/// ZIM's rooms are as they were.
#[tokio::test]
async fn plan_shows_what_apply_would_do_and_writes_nothing() {
    let sim = sim(0, 100).await;
    sim.sim.seed_room(APP, "existing-1", "", 600, &[("topic".into(), "old".into())]);
    sim.sim.seed_room(APP, "watched", "", 600, &[]);
    let dir = tempfile::tempdir().unwrap();
    let changed = applied_then_changed(&sim, dir.path()).await;
    let manifests = plan_manifests(dir.path());
    let files = ["-f", manifests.as_str(), "-f", changed.as_str(), "-f", "examples/invalid/"];

    let before = last_seq(&sim);
    let out = run_bin(zim_cmd("plan", &sim.endpoint(), &files)).await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    let at = |file: &str, doc: usize, name: &str| format!("{file} (document {doc}): ZimRoom {name}: ");
    let expected = [
        at(&manifests, 1, "default/fresh") + "create room fresh; set topic",
        at(&manifests, 2, "default/adopter") + "adopt room existing-1 (it exists); set topic",
        at(&manifests, 3, "default/first") + "create room dup",
        at(&manifests, 4, "default/second")
            + &format!("conflict: ZIM room dup of AppId {APP} is owned by ZimRoom default/first"),
        at(&manifests, 5, "default/watcher") + "observe room watched: read only",
        at(&manifests, 6, "default/typo") + "invalid: not applied: spec.roomNmae: unknown field",
        at(&changed, 1, "default/managed") + "update room managed; set k1,k2; delete k3",
        at("examples/invalid/bad-room.yaml", 1, "chat/bad-room") + "invalid: spec.",
    ];
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), expected.len() + 1, "{stdout}");
    for (line, want) in lines.iter().zip(&expected) {
        assert!(line.starts_with(want.as_str()), "expected {want:?}\n     got {line:?}");
    }
    assert_eq!(
        lines[expected.len()],
        "Plan: 2 to create, 1 to adopt, 1 to update, 0 unchanged; 1 observed, 0 paused, 1 conflicts, 2 invalid, 0 forbidden, 0 errors"
    );
    only_reads_since(&sim, before);
    // ZIM is as it was.
    assert!(sim.sim.room(APP, "fresh").is_none() && sim.sim.room(APP, "dup").is_none());
    let attributes = |room: &str| {
        sim.sim.room(APP, room).unwrap().attributes.into_iter().collect::<Vec<(String, String)>>()
    };
    assert_eq!(attributes("existing-1"), [("topic".to_owned(), "old".to_owned())]);
    assert_eq!(
        attributes("managed"),
        [("k1".to_owned(), "v1".to_owned()), ("k3".to_owned(), "v3".to_owned())]
    );

    // The same plan for tools.
    let before = last_seq(&sim);
    let mut args = files.to_vec();
    args.extend(["-o", "json"]);
    let out = run_bin(zim_cmd("plan", &sim.endpoint(), &args)).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(report["changes"], true);
    let counts = &report["counts"];
    assert_eq!((counts["create"].as_u64(), counts["adopt"].as_u64()), (Some(2), Some(1)));
    assert_eq!((counts["update"].as_u64(), counts["conflict"].as_u64()), (Some(1), Some(1)));
    assert_eq!((counts["invalid"].as_u64(), counts["error"].as_u64()), (Some(2), Some(0)));
    let rooms = report["rooms"].as_array().unwrap();
    let actions: Vec<&str> = rooms.iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["create", "adopt", "create", "conflict", "observe", "invalid", "update", "invalid"]);
    let adopter = &rooms[1];
    let keys: BTreeSet<&str> = adopter.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "file",
            "document",
            "namespace",
            "name",
            "roomId",
            "action",
            "keysSet",
            "keysDeleted",
            "reason",
            "message"
        ])
    );
    assert_eq!(adopter["roomId"], "existing-1");
    assert_eq!(adopter["keysSet"], serde_json::json!(["topic"]));
    assert!(adopter["message"].as_str().unwrap().contains("adopt-existing-rooms"), "{adopter}");
    assert_eq!(rooms[3]["reason"], "Conflict");
    assert_eq!(rooms[5]["reason"], "InvalidSpec");
    assert_eq!(rooms[5]["roomId"], serde_json::Value::Null);
    let update = &rooms[6];
    assert_eq!(
        (update["keysSet"].clone(), update["keysDeleted"].clone()),
        (serde_json::json!(["k1", "k2"]), serde_json::json!(["k3"]))
    );
    only_reads_since(&sim, before);
}

/// `plan` over `apply`'s own output: nothing would change (exit 0), at the cost of one probe per room.
#[tokio::test]
async fn plan_of_converged_rooms_is_nothing() {
    let sim = sim(0, 100).await;
    let out = run_bin(zim_cmd("apply", &sim.endpoint(), &["-f", "examples/"])).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let dir = tempfile::tempdir().unwrap();
    let printed = dir.path().join("out.yaml");
    std::fs::write(&printed, &out.stdout).unwrap();
    let before = last_seq(&sim);
    let plan = run_bin(zim_cmd("plan", &sim.endpoint(), &["-f", printed.to_str().unwrap()])).await;
    let stdout = text(&plan.stdout);
    assert_eq!(plan.status.code(), Some(0), "{stdout}{}", text(&plan.stderr));
    let file = printed.display();
    assert_eq!(
        stdout,
        format!(
            "{file} (document 1): ZimRoom chat/game-room: nothing (room game-42 is as declared)\n\
             {file} (document 2): ZimRoom chat/lobby: nothing (room lobby is as declared)\n\
             Plan: 0 to create, 0 to adopt, 0 to update, 2 unchanged; 0 observed, 0 paused, 0 conflicts, 0 invalid, 0 forbidden, 0 errors\n"
        )
    );
    assert_eq!(only_reads_since(&sim, before), ["QueryRoomUserList", "QueryRoomUserList"]);
}

/// Credentials: none at all is an error before any call (exit 1: for `plan`, 2 says that something would
/// change); a secret ZIM refuses is an `error: AuthFailed` line per room (exit 1), without the secret.
#[tokio::test]
async fn plan_credential_problems_exit_1() {
    let sim = sim(0, 100).await;
    let mut c = zim_cmd("plan", &sim.endpoint(), &["-f", "examples/"]);
    c.env_remove("ZEGO_APP_ID");
    let out = run_bin(c).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).starts_with("error: no AppId"), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr).lines().count(), 1);
    assert!(out.stdout.is_empty());
    assert!(sim.sim.log().is_empty(), "no call");

    let wrong = "0000000000000000000000000000000f";
    let mut c = zim_cmd("plan", &sim.endpoint(), &["-f", "examples/"]);
    c.env("ZEGO_SERVER_SECRET", wrong);
    let out = run_bin(c).await;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    assert_eq!(stdout.matches(": error: AuthFailed: ").count(), 2, "{stdout}");
    assert!(stdout.ends_with("0 forbidden, 2 errors\n"), "{stdout}");
    let output = stdout + &text(&out.stderr);
    assert!(!output.contains(wrong) && !output.contains(SECRET));
    only_reads_since(&sim, 0);
}

/// The README's `plan` example shows what `plan --simulate -f examples/` prints (stderr, then stdout), but for
/// the port; it exits 2.
#[tokio::test]
async fn readme_plan_output_is_what_the_binary_prints() {
    let (args, shown) = readme_example("plan --simulate -f examples/");
    let mut c = bin();
    c.args(&args);
    let out = run_bin(c).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let printed = mask_run(&(text(&out.stderr) + &text(&out.stdout)));
    assert_eq!(mask_run(&shown), printed, "README.md's plan output differs from what the binary prints");
}

/// The shell script of the README's CI step (`run: |` of its `Plan ZIM rooms` block), dedented.
fn readme_ci_script() -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let at = readme.find("```yaml\n- name: Plan ZIM rooms\n").expect("README.md shows the CI step");
    let block = &readme[at..];
    let block = &block[..block.find("\n```\n").expect("the block is closed")];
    let script = &block[block.find("  run: |\n").expect("a run: | script") + "  run: |\n".len()..];
    script.lines().map(|l| l.strip_prefix("    ").unwrap_or(l)).collect::<Vec<_>>().join("\n") + "\n"
}

/// The README's CI step does what it says, run as written (bash -e, as CI runners do) with the built binary as
/// `zim-operator`: rooms to create pass with "review", converged rooms (with their status) pass with "no room
/// would change", a refused secret fails the step.
#[tokio::test]
async fn readme_ci_step_reads_the_exit_codes() {
    let sim = sim(0, 100).await;
    let dir = tempfile::tempdir().unwrap();
    let bin_dir = dir.path().join("bin");
    std::fs::create_dir_all(&bin_dir).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_zim-operator"), bin_dir.join("zim-operator")).unwrap();
    let rooms = dir.path().join("rooms");
    std::fs::create_dir_all(&rooms).unwrap();
    std::fs::copy("examples/lobby.yaml", rooms.join("lobby.yaml")).unwrap();
    let script = readme_ci_script();
    let step = |secret: &str| {
        let mut c = Command::new("bash");
        c.arg("-e").arg("-c").arg(&script).current_dir(dir.path());
        c.env("PATH", format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default()));
        c.env("ZIM_ENDPOINT", sim.endpoint()).env("ZEGO_APP_ID", APP.to_string());
        c.env("ZEGO_SERVER_SECRET", secret);
        c
    };
    let out = run_bin(step(SECRET)).await;
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).contains("create room lobby"), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("rooms would change: review plan.txt"), "{}", text(&out.stdout));

    let mut apply = bin();
    apply.args(["apply", "--endpoint", &sim.endpoint(), "-f", rooms.to_str().unwrap()]);
    apply.env("ZEGO_APP_ID", APP.to_string()).env("ZEGO_SERVER_SECRET", SECRET);
    let applied = run_bin(apply).await;
    assert!(applied.status.success());
    // Statuses come from the files: over apply's output (the rooms with their status), nothing changes.
    std::fs::write(rooms.join("lobby.yaml"), &applied.stdout).unwrap();
    let out = run_bin(step(SECRET)).await;
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).contains("no room would change"), "{}", text(&out.stdout));

    let out = run_bin(step("0000000000000000000000000000000f")).await;
    assert_eq!(out.status.code(), Some(1), "{}{}", text(&out.stdout), text(&out.stderr));
}

/// `validate`, `apply` and `plan` understand ZimRoomSets: a set is checked, applied and planned as the rooms it
/// declares; a set whose room IDs cannot be computed is one invalid object named by its field.
#[tokio::test]
async fn validate_apply_and_plan_expand_sets() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("fleet.yaml");
    std::fs::write(
        &good,
        "apiVersion: zim.zego.im/v1alpha1\nkind: ZimRoomSet\nmetadata: {name: fleet, namespace: games}\nspec:\n  rooms: {range: {prefix: table-, start: 1, end: 3, width: 2}}\n  template: {spec: {destroyDelayTime: 60, attributes: [{key: game, value: chess}]}}\n",
    )
    .unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: zim.zego.im/v1alpha1\nkind: ZimRoomSet\nmetadata: {name: broken, namespace: games}\nspec:\n  rooms: {ids: [ok-1, \"no/slash\"]}\n  template: {spec: {}}\n",
    )
    .unwrap();
    let (good, bad) = (good.to_str().unwrap(), bad.to_str().unwrap());

    let mut c = bin();
    c.args(["validate", "-f", good, "-f", bad]);
    let out = run_bin(c).await;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    for child in ["games/fleet-table-01", "games/fleet-table-02", "games/fleet-table-03"] {
        assert!(stdout.contains(&format!("ZimRoom {child}: valid")), "{stdout}");
    }
    assert!(stdout.contains("ZimRoomSet games/broken: spec.rooms.ids[1]"), "{stdout}");

    let sim = sim(0, 100).await;
    let before = last_seq(&sim);
    let out = run_bin(zim_cmd("plan", &sim.endpoint(), &["-f", good])).await;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "three rooms to create: {stdout}{}", text(&out.stderr));
    assert_eq!(stdout.matches(": create room table-").count(), 3, "{stdout}");
    only_reads_since(&sim, before);

    let out = run_bin(zim_cmd("apply", &sim.endpoint(), &["-f", good])).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr).matches(": Ready (Available)").count(), 3, "{}", text(&out.stderr));
    for id in ["table-01", "table-02", "table-03"] {
        let room = sim.sim.room(APP, id).expect("created");
        assert_eq!(room.attributes.get("game").map(String::as_str), Some("chess"));
    }
    let out = run_bin(zim_cmd("apply", &sim.endpoint(), &["-f", bad])).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("ZimRoomSet games/broken: invalid, not applied: spec.rooms.ids[1]"));
}

/// `plan --namespace-annotation NS:KEY=VALUE` applies that namespace's policy as the controller does: an existing
/// room the namespace may not adopt is `forbidden` (without the annotation: `adopt`), and a roomId outside its
/// prefixes too; nothing is written.
#[tokio::test]
async fn plan_applies_a_namespace_s_policy_when_given() {
    let sim = sim(0, 100).await;
    sim.sim.seed_room(APP, "legacy", "Legacy", 600, &[]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rooms.yaml");
    std::fs::write(
        &file,
        "apiVersion: zim.zego.im/v1alpha1\nkind: ZimRoom\nmetadata: {name: legacy, namespace: chat}\nspec: {destroyDelayTime: 600}\n---\napiVersion: zim.zego.im/v1alpha1\nkind: ZimRoom\nmetadata: {name: fresh, namespace: chat}\nspec: {destroyDelayTime: 600}\n",
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let before = last_seq(&sim);
    let out = run_bin(zim_cmd("plan", &sim.endpoint(), &["-f", file])).await;
    let stdout = text(&out.stdout);
    assert!(stdout.contains("chat/legacy: adopt"), "{stdout}");
    let policy = [
        "-f",
        file,
        "--namespace-annotation",
        "chat:zim.zego.im/adopt-existing-rooms=deny",
        "--namespace-annotation",
        "chat:zim.zego.im/room-id-prefixes=legacy",
    ];
    let out = run_bin(zim_cmd("plan", &sim.endpoint(), &policy)).await;
    let stdout = text(&out.stdout);
    assert!(stdout.contains("chat/legacy: forbidden"), "{stdout}");
    assert!(stdout.contains("chat/fresh: forbidden"), "outside the prefixes: {stdout}");
    only_reads_since(&sim, before);
    let mut c = bin();
    c.args(["plan", "-f", file, "--namespace-annotation", "no-colon"]);
    assert_eq!(run_bin(c).await.status.code(), Some(2), "a malformed annotation is a usage error");
}
