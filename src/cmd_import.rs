//! `zim-operator import`: ZimRoom manifests for rooms that already exist in ZIM, to commit to Git and let the
//! operator observe (or, with `--manage`, adopt) them.
//!
//! ZIM has no call that lists an app's rooms, so the room IDs are given (`--room-id`, `--from-file`). Each is
//! checked like a `spec.roomId` (no call for an invalid one), looked up with one QueryRoomUserList (missing rooms
//! are reported on stderr), and its attributes read with QueryRoomAttribute, which needs the operator's user
//! registered: one UserRegister first, the only call that is not a read (it changes no room). The calls go
//! through the client's rate limiter at `--probe-share` of `--zim-qps`, leaving the rest of the app's budget to
//! a running operator.
//!
//! Object names: a room ID that is already a valid object name (a DNS-1123 subdomain: lowercase letters, digits,
//! `-` and `.`, each dot-separated part starting and ending with a letter or digit) is the name. Any other ID is
//! lowercased, every character other than a letter, digit, `-` or `.` becomes `-`, `-` is trimmed from the ends
//! of each dot-separated part (empty parts dropped; `room` if nothing is left), and `-` and the first 8 hex
//! digits of the MD5 of the exact room ID are appended (`Lobby` → `lobby-<md5("Lobby")[..8]>`). The suffix
//! depends on the room ID alone, so a name never depends on which other IDs are imported with it, and two IDs
//! that differ only in case or punctuation never share a name, in one import or across imports. Should a name
//! still be taken in one import (an ID that is literally another's suffixed name), the later one gets 16 hex
//! digits instead.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use futures::StreamExt;
use md5::{Digest, Md5};

use crate::cmd_shared::{Output, ZimArgs};
use crate::crd::{Enforce, ManagementPolicy, RoomAttribute, SecretRef, ZimRoom, ZimRoomSpec};
use crate::manifest::{self, Document};
use crate::zim::limits::check_id;
use crate::zim::types::{RoomProbe, UserInfo};
use crate::zim::{Class, Credentials, Terminal, ZimApi, ZimClient, ZimError};

/// The exit codes of `import`, as `--help` shows them (and docs/running.md lists them).
pub const IMPORT_EXIT_CODES: &str = "Exit codes:
  0  every room was found and printed (with --skip-missing: missing rooms are only reported)
  1  a room is missing, invalid or could not be read: the others are printed
  2  unusable input, flags or credentials: no ZIM call was made";

/// Options of `import`.
#[derive(Debug, clap::Args)]
#[command(after_help = IMPORT_EXIT_CODES)]
pub struct ImportArgs {
    /// A room ID to import. Repeatable.
    #[arg(long = "room-id", value_name = "ID")]
    pub room_ids: Vec<String>,
    /// Read room IDs from FILE, one per line (`-`: standard input). Spaces around an ID, blank lines and lines
    /// starting with `#` are skipped: give such IDs with --room-id.
    #[arg(long, value_name = "FILE")]
    pub from_file: Option<PathBuf>,
    /// Output format of the manifests.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: Output,
    /// `metadata.namespace` of the manifests.
    #[arg(long, default_value = "default")]
    pub namespace: String,
    /// `spec.credentialsSecretRef.name` of the manifests (else the operator's default credentials).
    #[arg(long, value_name = "NAME")]
    pub credentials_secret: Option<String>,
    /// Print managed objects (no managementPolicy, so `Manage`: applying them adopts the rooms) instead of
    /// `managementPolicy: Observe`.
    #[arg(long)]
    pub manage: bool,
    /// Mark the imported attributes `enforce: OnCreate`: the room's clients keep owning them once managed.
    #[arg(long)]
    pub attributes_on_create: bool,
    /// Report missing rooms on stderr but exit 0 for them.
    #[arg(long)]
    pub skip_missing: bool,
    /// The share of --zim-qps the lookups may use, leaving the rest to a running operator.
    #[arg(long, env = "ZIM_PROBE_SHARE", default_value_t = 0.8, value_parser = crate::cmd_run::parse_share)]
    pub probe_share: f64,
    /// Say how far the import got on stderr every N room IDs (0: never).
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub progress_every: usize,
    /// Rooms looked up at once (the rate limiter paces them).
    #[arg(long, env = "ZIM_CONCURRENCY", default_value_t = 16)]
    pub concurrency: u16,
    /// The ZIM connection: endpoint, credentials, rate, TLS.
    #[command(flatten)]
    pub zim: ZimArgs,
}

/// What looking up one room found.
enum Found {
    /// The room exists, with these attributes.
    Room(Vec<crate::zim::types::RoomAttribute>),
    /// No such room.
    Missing,
    /// The lookup failed.
    Failed(String),
    /// Not looked up: an earlier answer said the credentials are refused.
    Skipped,
}

/// Runs `import`.
pub async fn import(args: ImportArgs) -> ExitCode {
    let usage = |e: String| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    };
    let creds = match args.zim.credentials() {
        Ok(c) => c.credentials,
        Err(e) => return usage(e),
    };
    if let Err(e) = check_object_fields(&args) {
        return usage(e);
    }
    let ids = match room_ids(&args) {
        Ok(ids) if ids.is_empty() => return usage("no room IDs: pass --room-id or --from-file".into()),
        Ok(ids) => ids,
        Err(e) => return usage(e),
    };
    let mut invalid = 0usize;
    let valid: Vec<String> = ids
        .into_iter()
        .filter(|id| match check_id(id) {
            Ok(()) => true,
            Err(why) => {
                invalid += 1;
                eprintln!("room ID {id:?}: invalid, not looked up: {why}");
                false
            }
        })
        .collect();
    let names = object_names(&valid);
    let rate = rate(args.zim.zim_qps, args.probe_share);
    let connection = match args.zim.connect(rate).await {
        Ok(c) => c,
        Err(e) => return usage(e),
    };
    let client = &connection.client;
    let from = args.zim.from_user_id.as_str();
    if !valid.is_empty()
        && let Err(e) = register(client, &creds, from).await
    {
        eprintln!("error: {e}");
        return ExitCode::from(1);
    }

    let total = valid.len();
    let (done, found_count, stop) = (AtomicUsize::new(0), AtomicUsize::new(0), AtomicBool::new(false));
    let results: Vec<Found> = futures::stream::iter(valid.iter())
        .map(|id| {
            let (creds, done, found_count, stop) = (&creds, &done, &found_count, &stop);
            async move {
                let found = if stop.load(Ordering::Relaxed) {
                    Found::Skipped
                } else {
                    look_up(client, creds, id, from).await
                };
                if let Found::Failed(e) = &found
                    && e.contains(REFUSED)
                {
                    stop.store(true, Ordering::Relaxed);
                }
                if matches!(found, Found::Room(_)) {
                    found_count.fetch_add(1, Ordering::Relaxed);
                }
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                if args.progress_every > 0 && total > args.progress_every && n % args.progress_every == 0 {
                    eprintln!(
                        "looked up {n} of {total} room IDs: {} found",
                        found_count.load(Ordering::Relaxed)
                    );
                }
                found
            }
        })
        .buffered(usize::from(args.concurrency.max(1)))
        .collect()
        .await;

    let (mut missing, mut failed, mut skipped) = (0usize, 0usize, 0usize);
    let mut objects: Vec<serde_json::Value> = Vec::new();
    let mut refused_reported = false;
    for ((id, name), found) in valid.iter().zip(&names).zip(results) {
        match found {
            Found::Room(attributes) => match manifest_for(&args, id, name, attributes) {
                Ok(object) => objects.push(object),
                Err(why) => {
                    failed += 1;
                    eprintln!("room ID {id:?}: not printed: {why}");
                }
            },
            Found::Missing => {
                missing += 1;
                eprintln!("room ID {id:?}: no such room (QueryRoomUserList answered 660300001)");
            }
            Found::Failed(why) => {
                failed += 1;
                if !(refused_reported && why.contains(REFUSED)) {
                    eprintln!("room ID {id:?}: {why}");
                }
                refused_reported |= why.contains(REFUSED);
            }
            Found::Skipped => skipped += 1,
        }
    }
    if skipped > 0 {
        eprintln!("{skipped} room ID(s) not looked up: ZIM refused the credentials");
    }
    match args.output {
        Output::Yaml => {
            for o in &objects {
                print!("---\n{}", manifest::to_yaml(o).unwrap_or_default());
            }
        }
        Output::Json => {
            let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": objects});
            println!("{}", serde_json::to_string_pretty(&list).unwrap_or_default());
        }
    }
    eprintln!(
        "{} room ID(s): {} imported, {missing} missing, {invalid} invalid, {} failed",
        total + invalid,
        objects.len(),
        failed + skipped
    );
    let missing_fails = missing > 0 && !args.skip_missing;
    if invalid + failed + skipped > 0 || missing_fails { ExitCode::from(1) } else { ExitCode::SUCCESS }
}

/// Marks the failures that say the credentials are refused: the import stops looking up after the first.
const REFUSED: &str = "ZIM refused the credentials";

/// The calls per second the lookups may make per action: `share` of `zim_qps`, at least 1 (0: unlimited).
pub fn rate(zim_qps: u32, share: f64) -> u32 {
    if zim_qps == 0 {
        return 0;
    }
    ((f64::from(zim_qps) * share).floor() as u32).max(1)
}

fn check_object_fields(args: &ImportArgs) -> Result<(), String> {
    let ns = &args.namespace;
    if ns.len() > 63 || ns.contains('.') || !manifest::is_dns_subdomain(ns) {
        return Err(format!(
            "--namespace {ns:?} is not a namespace name: lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters"
        ));
    }
    if let Some(secret) = &args.credentials_secret
        && !manifest::is_dns_subdomain(secret)
    {
        return Err(format!(
            "--credentials-secret {secret:?} is not a Secret name: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit"
        ));
    }
    Ok(())
}

/// The room IDs of `--room-id`, then of `--from-file`, each once, in the order first given.
fn room_ids(args: &ImportArgs) -> Result<Vec<String>, String> {
    let mut ids = args.room_ids.clone();
    if let Some(path) = &args.from_file {
        let text = if path.as_os_str() == "-" {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| format!("cannot read room IDs from standard input: {e}"))?;
            s
        } else {
            std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read --from-file {}: {e}", path.display()))?
        };
        ids.extend(parse_room_ids(&text));
    }
    let mut seen = HashSet::new();
    ids.retain(|id| seen.insert(id.clone()));
    Ok(ids)
}

/// The room IDs of a file: one per line, spaces around it dropped; blank lines and `#` comments skipped.
pub fn parse_room_ids(text: &str) -> Vec<String> {
    text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_owned).collect()
}

/// The object name of each room ID (see the module's documentation), unique among `ids` (which are unique).
pub fn object_names(ids: &[String]) -> Vec<String> {
    let exact = |id: &str| manifest::is_dns_subdomain(id);
    // The IDs that are names already come first: theirs never changes.
    let mut taken: HashSet<String> = ids.iter().filter(|id| exact(id)).cloned().collect();
    let mut names: HashMap<&str, String> = HashMap::new();
    for id in ids {
        if exact(id) {
            names.insert(id, id.clone());
            continue;
        }
        let mut name = format!("{}-{}", name_base(id), &md5_hex(id)[..8]);
        if !taken.insert(name.clone()) {
            name = format!("{}-{}", name_base(id), &md5_hex(id)[..16]);
            taken.insert(name.clone());
        }
        names.insert(id, name);
    }
    ids.iter().map(|id| names[id.as_str()].clone()).collect()
}

/// A room ID made a valid name, without the suffix.
fn name_base(id: &str) -> String {
    let mapped: String = id
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-' { c } else { '-' })
        .collect();
    let parts: Vec<&str> = mapped.split('.').map(|p| p.trim_matches('-')).filter(|p| !p.is_empty()).collect();
    if parts.is_empty() { "room".into() } else { parts.join(".") }
}

fn md5_hex(s: &str) -> String {
    hex::encode(Md5::digest(s.as_bytes()))
}

/// Registers the operator's user (QueryRoomAttribute needs it); the error is one line.
async fn register(client: &ZimClient, creds: &Credentials, from: &str) -> Result<(), String> {
    let user = UserInfo { user_id: from.to_owned(), ..Default::default() };
    match client.user_register(creds, &[user]).await {
        Ok(resp) => match resp.error_list.first() {
            Some(e) => {
                Err(format!("cannot register the operator's user {from}: {} ({})", e.sub_message, e.sub_code))
            }
            None => Ok(()),
        },
        Err(e) => Err(failure("registering the operator's user", &e)),
    }
}

/// One failed call, in one line; a refusal of the credentials says so (the import stops looking up).
fn failure(what: &str, e: &ZimError) -> String {
    match e.class() {
        Class::Terminal(Terminal::Auth) => format!("{REFUSED}: {what}: {e}"),
        _ => format!("{what}: {e}"),
    }
}

/// Whether room `id` exists (QueryRoomUserList), and its attributes (QueryRoomAttribute).
async fn look_up(client: &ZimClient, creds: &Credentials, id: &str, from: &str) -> Found {
    match client.probe_room(creds, id).await {
        Ok(RoomProbe::Missing) => return Found::Missing,
        Ok(RoomProbe::Exists { .. }) => {}
        Err(e) => return Found::Failed(failure("looking it up", &e)),
    }
    match client.query_room_attribute(creds, id, from).await {
        Ok(resp) => Found::Room(resp.attributes),
        Err(e) if e.class() == Class::NotFound => Found::Missing,
        Err(e) => Found::Failed(failure("reading its attributes", &e)),
    }
}

/// The ZimRoom of one found room, as JSON, checked like `validate` checks it. Neither status nor secret:
/// `spec.credentialsSecretRef` names a Secret, it does not hold one. `destroyDelayTime` is left out (ZIM cannot
/// say what the room was created with; the schema's default applies).
fn manifest_for(
    args: &ImportArgs,
    id: &str,
    name: &str,
    attributes: Vec<crate::zim::types::RoomAttribute>,
) -> Result<serde_json::Value, String> {
    let mut spec: ZimRoomSpec =
        serde_json::from_value(serde_json::json!({})).map_err(|e| format!("an empty spec: {e}"))?;
    spec.room_id = Some(id.to_owned());
    spec.management_policy = (!args.manage).then_some(ManagementPolicy::Observe);
    spec.credentials_secret_ref = args.credentials_secret.clone().map(|name| SecretRef { name });
    let mut attributes: Vec<RoomAttribute> = attributes
        .into_iter()
        .map(|a| RoomAttribute {
            key: a.key,
            value: a.value,
            auto_delete: a.auto_delete == 1,
            enforce: args.attributes_on_create.then_some(Enforce::OnCreate),
        })
        .collect();
    attributes.sort_by(|a, b| a.key.cmp(&b.key));
    spec.attributes = attributes;
    let mut room = ZimRoom::new(name, spec);
    room.metadata.namespace = Some(args.namespace.clone());
    let mut value = serde_json::to_value(&room).map_err(|e| e.to_string())?;
    if let Some(spec) = value.get_mut("spec").and_then(serde_json::Value::as_object_mut) {
        spec.remove("destroyDelayTime");
    }
    let doc = Document { file: PathBuf::from("<import>"), index: 1, value };
    if let Err(problems) = manifest::check(&doc).into_result() {
        let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
        return Err(format!("the room's attributes make an invalid ZimRoom: {}", list.join("; ")));
    }
    Ok(doc.value)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names are valid, unique, stable; an ID that is a name already keeps it.
    #[test]
    fn names_are_valid_unique_and_stable() {
        let ids: Vec<String> =
            ["lobby", "Lobby", "LOBBY", "team A:1", "team-a-1", "a.-b", "...", "x_y", "x-y"]
                .map(String::from)
                .into();
        let names = object_names(&ids);
        assert_eq!(names[0], "lobby");
        assert_eq!(names[4], "team-a-1");
        assert_eq!(names[8], "x-y");
        assert_eq!(names[1], format!("lobby-{}", &md5_hex("Lobby")[..8]));
        assert!(names[3].starts_with("team-a-1-"), "{}", names[3]);
        assert!(names[5].starts_with("a.b-"), "{}", names[5]);
        assert!(names[6].starts_with("room-"), "{}", names[6]);
        let unique: HashSet<&String> = names.iter().collect();
        assert_eq!(unique.len(), ids.len(), "{names:?}");
        for n in &names {
            assert!(manifest::is_dns_subdomain(n), "{n}");
        }
        // A name does not depend on the other IDs imported with it.
        assert_eq!(object_names(&ids[1..2]), [names[1].clone()]);
        // An ID that is literally another's suffixed name keeps it; the other gets the long suffix.
        let taken = vec!["Lobby".to_owned(), names[1].clone()];
        let both = object_names(&taken);
        assert_eq!(both[1], names[1]);
        assert_eq!(both[0], format!("lobby-{}", &md5_hex("Lobby")[..16]));
    }

    #[test]
    fn room_id_files_skip_blanks_and_comments() {
        let ids = parse_room_ids("# rooms\nlobby\n\n  game 1  \r\n#x\nLobby\n");
        assert_eq!(ids, ["lobby", "game 1", "Lobby"]);
    }

    #[test]
    fn the_rate_is_the_share_of_the_limit() {
        assert_eq!(rate(20, 0.8), 16);
        assert_eq!(rate(20, 0.01), 1);
        assert_eq!(rate(0, 0.8), 0);
    }
}
