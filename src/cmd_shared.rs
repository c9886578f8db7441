//! What `apply`, `plan` and `import` share: the flags of the ZIM connection (endpoint, credentials, rate, TLS), the
//! credentials they resolve to, the client they build (or the in-process simulator of `--simulate`), and how
//! ZimRoom documents are read for the reconcile core and which of them claims a room.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::PathBuf;
use std::time::Duration;

use crate::backoff;
use crate::crd::ZimRoom;
use crate::manifest::{self, Document};
use crate::now;
use crate::reconcile::{self, Claim, Facts, NoSink, Outcome, Reconciler, Requeue, ResolvedCredentials};
use crate::sim::{DEMO_APP_ID, DEMO_SERVER_SECRET, RunningSim, Simulator};
use crate::zim::{ClientConfig, Credentials, DEFAULT_ENDPOINT, TlsRoots, ZimApi, ZimClient};

/// The longest wait between two attempts of one room (`apply`, `plan`).
const MAX_WAIT: Duration = Duration::from_secs(5);

/// What `apply` and `plan` start from, in order, each failure before any ZIM call: the credentials, the documents
/// of `files`, and the connection to ZIM.
pub async fn prepare(
    zim: &ZimArgs,
    files: &[PathBuf],
) -> Result<(ResolvedCredentials, Vec<Document>, Connection), String> {
    let creds = zim.credentials()?;
    let docs = manifest::load(files).map_err(|e| e.to_string())?;
    let connection = zim.connect(zim.zim_qps).await?;
    Ok((creds, docs, connection))
}

/// A reconciler over `zim` that trusts the statuses it reads: those of `apply` and `plan` are the user's own files
/// (and are printed without seals).
pub fn trusting_reconciler<Z: ZimApi>(zim: Z, from_user_id: &str) -> Reconciler<Z> {
    Reconciler::new(zim, from_user_id.to_owned())
        .with_sealer(std::sync::Arc::new(crate::reconcile::seal::Sealer::trusting()))
}

/// A ZimRoomSet that declares nothing usable, as one line: its problems, each naming its field.
pub fn set_problems(set: &manifest::SetProblem) -> String {
    set.problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

/// Output format of the printed objects (`apply`, `import`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// YAML documents.
    #[default]
    Yaml,
    /// A JSON `List`.
    Json,
}

/// The ZIM connection of the commands that call ZIM without a cluster: where, as whom, how fast.
#[derive(Debug, clap::Args)]
pub struct ZimArgs {
    /// ZIM API endpoint.
    #[arg(long, env = "ZIM_ENDPOINT", default_value = DEFAULT_ENDPOINT, conflicts_with = "simulate")]
    pub endpoint: String,
    /// Start the ZIM simulator in-process with built-in demo credentials and use it.
    #[arg(long)]
    pub simulate: bool,
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
}

/// A ZIM client, and the in-process simulator it talks to with `--simulate` (stopped when this is dropped).
pub struct Connection {
    /// The rate-limited client.
    pub client: ZimClient,
    _sim: Option<RunningSim>,
}

impl ZimArgs {
    /// The credentials of this run, or why there are none: a missing AppId or server secret, or an unreadable or
    /// empty secret file, stops the command before any ZIM call (exit 2 in `apply` and `import`), as it stops
    /// `simulate`.
    pub fn credentials(&self) -> Result<ResolvedCredentials, String> {
        if self.simulate {
            return Ok(ResolvedCredentials {
                credentials: Credentials::new(DEMO_APP_ID, DEMO_SERVER_SECRET),
                from_user_id: None,
            });
        }
        let simulate = "(or try --simulate)";
        let app_id =
            self.app_id.ok_or_else(|| format!("no AppId: set ZEGO_APP_ID or pass --app-id {simulate}"))?;
        let from_env = std::env::var("ZEGO_SERVER_SECRET").ok();
        let secret = crate::cmd_simulate::read_secret(self.server_secret_file.as_ref(), from_env.as_deref())
            .map_err(|e| e.to_string())?
            .filter(|s| !s.expose().is_empty())
            .ok_or_else(|| match &self.server_secret_file {
                Some(path) => format!("no server secret: --server-secret-file {} is empty", path.display()),
                None => {
                    format!(
                        "no server secret: set ZEGO_SERVER_SECRET or pass --server-secret-file {simulate}"
                    )
                }
            })?;
        Ok(ResolvedCredentials { credentials: Credentials { app_id, secret }, from_user_id: None })
    }

    /// The client, allowing `calls_per_second` per (AppId, Action) (0: unlimited); with `--simulate`, after
    /// starting the simulator and saying where on stderr. The error is one line for stderr.
    pub async fn connect(&self, calls_per_second: u32) -> Result<Connection, String> {
        let mut sim = None;
        let endpoint = if self.simulate {
            let running = Simulator::demo()
                .start_local()
                .await
                .map_err(|e| format!("cannot start the simulator: {e}"))?;
            let endpoint = running.endpoint();
            eprintln!("started the ZIM simulator at {endpoint} (demo AppId {DEMO_APP_ID})");
            sim = Some(running);
            endpoint
        } else {
            self.endpoint.clone()
        };
        let config = ClientConfig {
            endpoint,
            calls_per_second,
            timeout: self.zim_timeout,
            roots: self.tls_roots,
            ca_file: self.ca_file.clone(),
            ..Default::default()
        };
        let client = ZimClient::new(&config).map_err(|e| e.to_string())?;
        Ok(Connection { client, _sim: sim })
    }
}

/// Parses a ZimRoom document for the core, from one check of it ([`manifest::Checked::for_core`]). An object
/// whose every problem is one the reconcile core reports itself (byte lengths, charsets, ranges, duplicate keys)
/// goes to the core, which records InvalidSpec on its status without a ZIM call; any other schema problem (an
/// unknown field, a wrong type) makes the document unusable. The namespace defaults to `default`.
pub fn parse_room(doc: &Document) -> Result<ZimRoom, String> {
    manifest::check(doc)
        .for_core()
        .map(|mut room| {
            if room.metadata.namespace.is_none() {
                room.metadata.namespace = Some("default".into());
            }
            room
        })
        .map_err(|errors| errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))
}

/// The claims among the manifests of one run (one app): the first document that manages a room owns it, a later
/// one that manages the same room is in conflict with it. An observing object (`managementPolicy: Observe`) claims
/// nothing and is never in conflict: it only reads.
pub fn claims<T>(rooms: Vec<(T, ZimRoom)>) -> Vec<(T, ZimRoom, Claim)> {
    let mut owners: HashMap<String, String> = HashMap::new();
    rooms
        .into_iter()
        .map(|(at, room)| {
            if room.is_observing() {
                return (at, room, Claim::Owner);
            }
            let key = format!(
                "{}/{}",
                room.metadata.namespace.as_deref().unwrap_or_default(),
                room.metadata.name.as_deref().unwrap_or_default()
            );
            let claim = match owners.entry(room.room_id()) {
                Entry::Occupied(o) => Claim::Conflict { owner: o.get().clone() },
                Entry::Vacant(v) => {
                    v.insert(key);
                    Claim::Owner
                }
            };
            (at, room, claim)
        })
        .collect()
}

/// Reconciles `room` through the core, retrying retryable failures up to `attempts` times with the controller's
/// backoff (never more than [`MAX_WAIT`] between two: a person is waiting). `before_attempt` runs before each
/// attempt. The room's status is the last outcome's; the last outcome is returned.
pub async fn reconcile_with_retries<Z: ZimApi>(
    reconciler: &Reconciler<Z>,
    room: &mut ZimRoom,
    creds: &ResolvedCredentials,
    claim: &Claim,
    policy: crate::reconcile::Policy,
    attempts: u32,
    mut before_attempt: impl FnMut(),
) -> Outcome {
    let facts = Facts { claims: claim.clone(), policy, ..Facts::owner(Ok(creds.clone())) };
    let attempts = attempts.max(1);
    let mut attempt = 1;
    loop {
        before_attempt();
        let outcome = reconciler.reconcile(room, &facts, &NoSink, now()).await;
        room.status = Some(outcome.status.clone());
        match outcome.requeue {
            Requeue::Backoff { .. } if attempt < attempts => {
                tokio::time::sleep(backoff::FAST.delay(attempt).min(MAX_WAIT)).await;
                attempt += 1;
            }
            _ => return outcome,
        }
    }
}
