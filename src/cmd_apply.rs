//! `zim-operator apply` and `zim-operator validate`: the reconcile core run once over manifests, without a
//! cluster, and the same checks offline.
//!
//! `apply` reconciles every ZimRoom through the same core the controller uses (retrying retryable failures with
//! backoff a bounded number of times), prints a progress line per room on stderr and every ZimRoom with its
//! resulting status on stdout, and exits 0 only when every room is Ready. Its output can be applied again: the
//! status it carries is the last known state, as the controller reads it from the object.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use futures::StreamExt;

use crate::backoff;
use crate::crd::{ZimRoom, condition};
use crate::manifest::{self, Document};
use crate::now;
use crate::reconcile::{
    self, Claim, CredentialsError, Facts, NoSink, Reconciler, Requeue, ResolvedCredentials,
};
use crate::sim::{DEMO_APP_ID, DEMO_SERVER_SECRET, Simulator};
use crate::zim::{ClientConfig, Credentials, DEFAULT_ENDPOINT, TlsRoots, ZimClient};

/// The longest wait between two attempts of one room.
const APPLY_MAX_WAIT: Duration = Duration::from_secs(5);

/// Output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// YAML documents.
    #[default]
    Yaml,
    /// A JSON `List`.
    Json,
}

/// Options of `apply`.
#[derive(Debug, clap::Args)]
#[command(after_help = APPLY_EXIT_CODES)]
pub struct ApplyArgs {
    /// Manifest files or directories (`*.yaml`, `*.yml`); `-` reads standard input. Repeatable.
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<PathBuf>,
    /// ZIM API endpoint.
    #[arg(long, env = "ZIM_ENDPOINT", default_value = DEFAULT_ENDPOINT, conflicts_with = "simulate")]
    pub endpoint: String,
    /// Start the ZIM simulator in-process with built-in demo credentials and use it.
    #[arg(long)]
    pub simulate: bool,
    /// Output format of the resulting objects.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: Output,
    /// The ZIM user to act as when a room does not name one.
    #[arg(long, env = "ZIM_FROM_USER_ID", default_value = reconcile::DEFAULT_FROM_USER_ID)]
    pub from_user_id: String,
    /// AppId (not needed with --simulate).
    #[arg(long, env = "ZEGO_APP_ID")]
    pub app_id: Option<u32>,
    // The server secret is never an argument (argv is world-readable in /proc): it comes from the environment
    // variable ZEGO_SERVER_SECRET, read in `credentials`, or from --server-secret-file.
    /// Read the server secret from this file instead of the environment variable `ZEGO_SERVER_SECRET`.
    #[arg(long)]
    pub server_secret_file: Option<PathBuf>,
    /// ZIM calls per second per (AppId, Action), spaced evenly; ZEGO's published limit is 20.
    // `--qps`, the old name, is a hidden alias for one release (CHANGELOG).
    #[arg(long = "zim-qps", alias = "qps", env = "ZIM_QPS", default_value_t = 20)]
    pub zim_qps: u32,
    /// Timeout of one ZIM call, e.g. 10s.
    #[arg(long, env = "ZIM_TIMEOUT", default_value = "10s", value_parser = crate::cmd_run::parse_duration)]
    pub zim_timeout: Duration,
    /// Root certificates trusted for the ZIM endpoint: `webpki` (compiled in) or `system`.
    #[arg(long, env = "ZIM_TLS_ROOTS", value_enum, default_value_t)]
    pub tls_roots: TlsRoots,
    /// A PEM bundle of extra root certificates for the ZIM endpoint, trusted besides --tls-roots.
    #[arg(long, env = "ZIM_CA_FILE")]
    pub ca_file: Option<PathBuf>,
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
    let mut bad = 0;
    let mut rooms = 0;
    let mut objects = Vec::new();
    let mut skipped = Vec::new();
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

/// The credentials of this run, or why there are none: a missing AppId or server secret, or an unreadable or
/// empty secret file, stops `apply` before any ZIM call (exit 2), as it stops `simulate`.
fn credentials(args: &ApplyArgs) -> Result<ResolvedCredentials, String> {
    if args.simulate {
        return Ok(ResolvedCredentials {
            credentials: Credentials::new(DEMO_APP_ID, DEMO_SERVER_SECRET),
            from_user_id: None,
        });
    }
    let simulate = "(or try --simulate)";
    let app_id =
        args.app_id.ok_or_else(|| format!("no AppId: set ZEGO_APP_ID or pass --app-id {simulate}"))?;
    let from_env = std::env::var("ZEGO_SERVER_SECRET").ok();
    let secret = crate::cmd_simulate::read_secret(args.server_secret_file.as_ref(), from_env.as_deref())
        .map_err(|e| e.to_string())?
        .filter(|s| !s.expose().is_empty())
        .ok_or_else(|| match &args.server_secret_file {
            Some(path) => format!("no server secret: --server-secret-file {} is empty", path.display()),
            None => {
                format!("no server secret: set ZEGO_SERVER_SECRET or pass --server-secret-file {simulate}")
            }
        })?;
    Ok(ResolvedCredentials { credentials: Credentials { app_id, secret }, from_user_id: None })
}

/// Runs `apply`.
pub async fn apply(args: ApplyArgs) -> ExitCode {
    let creds = match credentials(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let docs = match manifest::load(&args.files) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let _sim;
    let endpoint = if args.simulate {
        match Simulator::demo().start_local().await {
            Ok(running) => {
                let endpoint = running.endpoint();
                eprintln!("started the ZIM simulator at {endpoint} (demo AppId {DEMO_APP_ID})");
                _sim = running;
                endpoint
            }
            Err(e) => {
                eprintln!("error: cannot start the simulator: {e}");
                return ExitCode::from(2);
            }
        }
    } else {
        args.endpoint.clone()
    };
    let config = ClientConfig {
        endpoint,
        calls_per_second: args.zim_qps,
        timeout: args.zim_timeout,
        roots: args.tls_roots,
        ca_file: args.ca_file.clone(),
        ..Default::default()
    };
    let client = match ZimClient::new(&config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    // The statuses `apply` reads are the user's own files: trusted as they are, and printed without seals.
    let reconciler = Reconciler::new(client, args.from_user_id.clone())
        .with_sealer(std::sync::Arc::new(crate::reconcile::seal::Sealer::trusting()));

    let mut invalid = 0usize;
    let mut rooms: Vec<(usize, ZimRoom)> = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        if !doc.is_zimroom() {
            eprintln!("{}: skipping {} {} (not a ZimRoom)", doc.location(), doc.kind(), doc.object_name());
            continue;
        }
        match parse_room(doc) {
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

    // Claims among the manifests of this run (one app): the first document that declares a room owns it.
    let mut owners: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let rooms: Vec<(usize, ZimRoom, Claim)> = rooms
        .into_iter()
        .map(|(i, room)| {
            let key = format!(
                "{}/{}",
                room.metadata.namespace.as_deref().unwrap_or_default(),
                room.metadata.name.as_deref().unwrap_or_default()
            );
            let claim = match owners.entry(room.room_id()) {
                std::collections::hash_map::Entry::Occupied(o) => Claim::Conflict { owner: o.get().clone() },
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(key);
                    Claim::Owner
                }
            };
            (i, room, claim)
        })
        .collect();
    let results: Vec<(usize, ZimRoom)> = futures::stream::iter(rooms)
        .map(|(i, room, claim)| {
            let reconciler = &reconciler;
            let creds = Ok(creds.clone());
            let attempts = args.attempts.max(1);
            async move { (i, apply_one(reconciler, room, creds, &claim, attempts).await) }
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

/// Parses a ZimRoom document for the core, from one check of it ([`manifest::Checked::for_core`]). An object
/// whose every problem is one the reconcile core reports itself (byte lengths, charsets, ranges, duplicate keys)
/// goes to the core, which records InvalidSpec on its status without a ZIM call; any other schema problem (an
/// unknown field, a wrong type) makes the document unusable.
fn parse_room(doc: &Document) -> Result<ZimRoom, String> {
    manifest::check(doc)
        .for_core()
        .map(with_defaults)
        .map_err(|errors| errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))
}

fn with_defaults(mut room: ZimRoom) -> ZimRoom {
    if room.metadata.namespace.is_none() {
        room.metadata.namespace = Some("default".into());
    }
    room
}

async fn apply_one(
    reconciler: &Reconciler<ZimClient>,
    mut room: ZimRoom,
    creds: Result<ResolvedCredentials, CredentialsError>,
    claim: &Claim,
    attempts: u32,
) -> ZimRoom {
    let facts = Facts { claims: claim.clone(), ..Facts::owner(creds) };
    for attempt in 1..=attempts {
        let outcome = reconciler.reconcile(&room, &facts, &NoSink, now()).await;
        room.status = Some(outcome.status);
        match outcome.requeue {
            Requeue::Backoff { .. } if attempt < attempts => {
                // The controller's schedule, but never longer than APPLY_MAX_WAIT: a person is waiting.
                tokio::time::sleep(backoff::FAST.delay(attempt).min(APPLY_MAX_WAIT)).await;
            }
            _ => break,
        }
    }
    room
}
