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
    /// ZIM calls per second per action.
    #[arg(long, env = "ZIM_QPS", default_value_t = 20)]
    pub qps: u32,
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
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
}

/// Options of `validate`.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// Manifest files or directories (`*.yaml`, `*.yml`); `-` reads standard input. Repeatable.
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<PathBuf>,
}

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
    for doc in &docs {
        if !doc.is_zimroom() {
            eprintln!("{}: skipping {} {} (not a ZimRoom)", doc.location(), doc.kind(), doc.object_name());
            continue;
        }
        rooms += 1;
        match manifest::check(doc).into_result() {
            Ok(_) => println!("{}: ZimRoom {}: valid", doc.location(), doc.object_name()),
            Err(errors) => {
                bad += 1;
                for e in errors {
                    println!("{}: ZimRoom {}: {e}", doc.location(), doc.object_name());
                }
            }
        }
    }
    eprintln!("{rooms} ZimRoom(s) checked, {bad} invalid");
    if bad > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS }
}

fn credentials(args: &ApplyArgs) -> Result<ResolvedCredentials, CredentialsError> {
    if args.simulate {
        return Ok(ResolvedCredentials {
            credentials: Credentials::new(DEMO_APP_ID, DEMO_SERVER_SECRET),
            from_user_id: None,
        });
    }
    let source = "from ZEGO_APP_ID and ZEGO_SERVER_SECRET / --server-secret-file".to_string();
    let app_id =
        args.app_id.ok_or_else(|| CredentialsError::NotFound(format!("{source} (ZEGO_APP_ID is unset)")))?;
    let from_env = std::env::var("ZEGO_SERVER_SECRET").ok();
    let secret = crate::cmd_simulate::read_secret(args.server_secret_file.as_ref(), from_env.as_deref())
        .map_err(|e| CredentialsError::Invalid { source_name: source.clone(), reason: e.to_string() })?
        .ok_or_else(|| CredentialsError::NotFound(format!("{source} (no server secret)")))?;
    Ok(ResolvedCredentials { credentials: Credentials { app_id, secret }, from_user_id: None })
}

/// Runs `apply`.
pub async fn apply(args: ApplyArgs) -> ExitCode {
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
        calls_per_second: args.qps,
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
    let creds = credentials(&args);

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
            let creds = creds.clone();
            let attempts = args.attempts.max(1);
            async move { (i, apply_one(reconciler, room, creds, &claim, attempts).await) }
        })
        .buffer_unordered(args.concurrency.max(1))
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
