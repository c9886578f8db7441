//! `zim-operator apply` and `zim-operator validate`: the reconcile core run once over manifests, without a
//! cluster, and the same checks offline.
//!
//! `apply` reconciles every ZimRoom through the same core the controller uses (retrying retryable failures with
//! backoff a bounded number of times), prints a progress line per room on stderr and every ZimRoom with its
//! resulting status on stdout, and exits 0 only when every room is Ready. Its output can be applied again: the
//! status it carries is the last known state, as the controller reads it from the object.

use std::path::PathBuf;
use std::process::ExitCode;

use futures::StreamExt;

pub use crate::cmd_shared::Output;
use crate::cmd_shared::{self, ZimArgs};
use crate::crd::{ZimRoom, condition};
use crate::manifest::{self, Document};

/// Options of `apply`.
#[derive(Debug, clap::Args)]
#[command(after_help = APPLY_EXIT_CODES)]
pub struct ApplyArgs {
    /// Manifest files or directories (`*.yaml`, `*.yml`); `-` reads standard input. Repeatable.
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<PathBuf>,
    /// Output format of the resulting objects.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: Output,
    /// The ZIM connection: endpoint, credentials, rate, TLS.
    #[command(flatten)]
    pub zim: ZimArgs,
    /// Attempts per room for retryable failures.
    #[arg(long, default_value_t = 5)]
    pub attempts: u32,
    /// Rooms reconciled at once.
    #[arg(long, env = "ZIM_CONCURRENCY", default_value_t = 16)]
    pub concurrency: u16,
}

/// Output format of `validate`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ValidateOutput {
    /// One line per problem (or per valid ZimRoom) on stdout.
    #[default]
    Text,
    /// One JSON object on stdout: every ZimRoom with its problems, field by field, and the documents skipped.
    Json,
}

/// Options of `validate`.
#[derive(Debug, clap::Args)]
#[command(after_help = VALIDATE_EXIT_CODES)]
pub struct ValidateArgs {
    /// Manifest files or directories (`*.yaml`, `*.yml`); `-` reads standard input. Repeatable.
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<PathBuf>,
    /// Output format: `text`, or `json` for tools.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: ValidateOutput,
}

/// The exit codes of `apply`, as `--help` shows them (and docs/running.md lists them).
pub const APPLY_EXIT_CODES: &str = "Exit codes:
  0  every ZimRoom is Ready
  1  a ZimRoom is not Ready, or a manifest is invalid
  2  unusable input, flags or credentials: nothing was applied";

/// The exit codes of `validate`, as `--help` shows them (and docs/running.md lists them).
pub const VALIDATE_EXIT_CODES: &str = "Exit codes:
  0  every ZimRoom is valid
  1  a ZimRoom is invalid
  2  unusable input or flags: nothing was checked";

/// Runs `validate`: exit 0 when every ZimRoom passes, 1 when any has a problem, 2 when input is unreadable.
pub fn validate(args: ValidateArgs) -> ExitCode {
    let docs = match manifest::load(&args.files) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    // A ZimRoomSet is checked as the rooms it declares; one that declares nothing usable is one invalid object.
    let (docs, set_problems) = manifest::expand_sets(docs);
    let mut bad = set_problems.len();
    let mut rooms = set_problems.len();
    let mut objects = Vec::new();
    let mut skipped = Vec::new();
    for set in &set_problems {
        let doc = &set.document;
        match args.output {
            ValidateOutput::Text => {
                for e in &set.problems {
                    println!("{}: ZimRoomSet {}: {e}", doc.location(), doc.object_name());
                }
            }
            ValidateOutput::Json => {
                let mut object = json_object(doc);
                object["valid"] = false.into();
                object["problems"] = set
                    .problems
                    .iter()
                    .map(|e| serde_json::json!({"field": e.path, "message": e.message}))
                    .collect();
                objects.push(object);
            }
        }
    }
    for doc in &docs {
        if !doc.is_zimroom() {
            eprintln!("{}: skipping {} {} (not a ZimRoom)", doc.location(), doc.kind(), doc.object_name());
            skipped.push(json_object(doc));
            continue;
        }
        rooms += 1;
        let problems = match manifest::check(doc).into_result() {
            Ok(_) => Vec::new(),
            Err(errors) => errors,
        };
        if !problems.is_empty() {
            bad += 1;
        }
        match args.output {
            ValidateOutput::Text if problems.is_empty() => {
                println!("{}: ZimRoom {}: valid", doc.location(), doc.object_name());
            }
            ValidateOutput::Text => {
                for e in &problems {
                    println!("{}: ZimRoom {}: {e}", doc.location(), doc.object_name());
                }
            }
            ValidateOutput::Json => {
                let mut object = json_object(doc);
                object["valid"] = problems.is_empty().into();
                object["problems"] = problems
                    .iter()
                    .map(|e| serde_json::json!({"field": e.path, "message": e.message}))
                    .collect();
                objects.push(object);
            }
        }
    }
    if args.output == ValidateOutput::Json {
        let report = serde_json::json!({
            "valid": bad == 0,
            "checked": rooms,
            "invalid": bad,
            "objects": objects,
            "skipped": skipped,
        });
        println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
    }
    eprintln!("{rooms} ZimRoom(s) checked, {bad} invalid");
    if bad > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS }
}

/// Where a document is and what it names, for `validate -o json`: file, document, apiVersion, kind, namespace,
/// name (`null` where the document does not say; the namespace is `default` then, as `apply` reads it).
fn json_object(doc: &Document) -> serde_json::Value {
    let field = |v: Option<&serde_json::Value>| v.and_then(serde_json::Value::as_str).map(str::to_owned);
    let meta = doc.value.get("metadata");
    serde_json::json!({
        "file": doc.file.display().to_string(),
        "document": doc.index,
        "apiVersion": field(doc.value.get("apiVersion")),
        "kind": field(doc.value.get("kind")),
        "namespace": field(meta.and_then(|m| m.get("namespace"))).unwrap_or_else(|| "default".into()),
        "name": field(meta.and_then(|m| m.get("name"))),
    })
}

/// Runs `apply`.
pub async fn apply(args: ApplyArgs) -> ExitCode {
    let (creds, docs, connection) = match cmd_shared::prepare(&args.zim, &args.files).await {
        Ok(prepared) => prepared,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let reconciler = cmd_shared::trusting_reconciler(connection.client.clone(), &args.zim.from_user_id);

    // A ZimRoomSet is applied as the rooms it declares; one that declares nothing usable counts as invalid.
    let (docs, set_problems) = manifest::expand_sets(docs);
    for set in &set_problems {
        let (location, name) = (set.document.location(), set.document.object_name());
        eprintln!("{location}: ZimRoomSet {name}: invalid, not applied: {}", cmd_shared::set_problems(set));
    }
    let mut invalid = set_problems.len();
    let mut rooms: Vec<(usize, ZimRoom)> = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        if !doc.is_zimroom() {
            eprintln!("{}: skipping {} {} (not a ZimRoom)", doc.location(), doc.kind(), doc.object_name());
            continue;
        }
        match cmd_shared::parse_room(doc) {
            Ok(room) => rooms.push((i, room)),
            Err(message) => {
                invalid += 1;
                eprintln!(
                    "{}: ZimRoom {}: invalid, not applied: {message}",
                    doc.location(),
                    doc.object_name()
                );
            }
        }
    }

    // Claims among the manifests of this run (one app): the first document that manages a room owns it.
    let rooms = cmd_shared::claims(rooms);
    let results: Vec<(usize, ZimRoom)> = futures::stream::iter(rooms)
        .map(|(i, room, claim)| {
            let reconciler = &reconciler;
            let creds = &creds;
            let attempts = args.attempts;
            async move {
                let mut room = room;
                cmd_shared::reconcile_with_retries(
                    reconciler,
                    &mut room,
                    creds,
                    &claim,
                    crate::reconcile::Policy::unrestricted(),
                    attempts,
                    || {},
                )
                .await;
                (i, room)
            }
        })
        .buffer_unordered(usize::from(args.concurrency.max(1)))
        .collect()
        .await;
    let mut results = results;
    results.sort_by_key(|(i, _)| *i);

    let mut not_ready = invalid;
    for (i, room) in &results {
        let ready = room.condition(condition::READY);
        let synced = room.condition(condition::SYNCED);
        let ok = ready.is_some_and(|c| c.status == "True");
        let line = match (ready, synced) {
            (Some(r), _) if r.status == "True" => {
                let request = room.status.as_ref().and_then(|s| s.request_id.clone()).unwrap_or_default();
                let sync = synced
                    .filter(|s| s.status != "True")
                    .map(|s| format!("; not synced: {}", s.message))
                    .unwrap_or_default();
                format!("Ready ({}), request id {request}{sync}", r.reason)
            }
            (Some(r), _) => format!("not Ready ({}): {}", r.reason, r.message),
            (None, Some(s)) => format!("not Ready ({}): {}", s.reason, s.message),
            (None, None) => "not reconciled".into(),
        };
        if !ok {
            not_ready += 1;
        }
        eprintln!("{}: ZimRoom {}: {line}", docs[*i].location(), docs[*i].object_name());
    }
    let objects: Vec<&ZimRoom> = results.iter().map(|(_, r)| r).collect();
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
        "{} ZimRoom(s): {} Ready, {not_ready} not Ready",
        results.len() + invalid,
        results.len() + invalid - not_ready
    );
    if not_ready == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) }
}
