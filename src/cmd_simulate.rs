//! `zim-operator simulate`: runs the ZIM simulator as a server.

use std::net::SocketAddr;
use std::path::PathBuf;

use std::time::Duration;

use crate::sim::{
    CallbackConfig, CallbackSecret, CallbackTarget, FAULT_PRESETS, Fault, FaultPlan, SimConfig, Simulator,
};
use crate::zim::sign::ServerSecret;

/// The exit codes of `simulate`, as `--help` shows them (and docs/running.md lists them).
pub const SIMULATE_EXIT_CODES: &str = "Exit codes:
  0  stopped by SIGTERM or SIGINT
  2  unusable flags or configuration (no server secret, an address in use): nothing was started";

/// Options of `simulate`.
#[derive(Debug, clap::Args)]
#[command(after_help = SIMULATE_EXIT_CODES)]
pub struct SimulateArgs {
    /// Address to listen on.
    #[arg(long, env = "ZIM_SIM_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// The AppId the simulator accepts.
    #[arg(long, env = "ZEGO_APP_ID")]
    pub app_id: u32,
    // The server secret is never an argument (argv is visible to every process): it is read from the
    // environment variable ZEGO_SERVER_SECRET when the command runs, or from --server-secret-file.
    /// Read the server secret from this file instead of `ZEGO_SERVER_SECRET`.
    #[arg(long)]
    pub server_secret_file: Option<PathBuf>,
    /// Calls per second per (AppId, Action) before 660300005; 0 for no limit.
    #[arg(long, default_value_t = 20)]
    pub qps: u32,
    /// Live rooms allowed per app before 660300015.
    #[arg(long, default_value_t = 100_000)]
    pub room_quota: usize,
    /// Probability (0..1) that a request gets an injected fault.
    #[arg(long, default_value_t = 0.0)]
    pub fault_rate: f64,
    /// Faults to draw from: busy, internal, throttle, 5xx, 404, drop, malformed, timeout, delay_reply,
    /// drop_after, 5xx_after, empty_json, huge_body, huge_message, redirect, http_<status>, or a ZIM code.
    #[arg(long, value_delimiter = ',', default_value = "busy,internal,throttle,5xx,drop,malformed")]
    pub fault_kinds: Vec<String>,
    /// Seed for the fault draw.
    #[arg(long)]
    pub fault_seed: Option<u64>,
    /// Latency added to every request, milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Send ZEGO's room server callbacks (room_create, room_destroy) to this http(s) URL, signed with the
    /// callback secret from `ZEGO_CALLBACK_SECRET` or `--callback-secret-file`.
    #[arg(long, env = "ZIM_SIM_CALLBACK_URL")]
    pub callback_url: Option<String>,
    /// Read the callback secret from this file instead of `ZEGO_CALLBACK_SECRET`.
    #[arg(long)]
    pub callback_secret_file: Option<PathBuf>,
    /// Waits before each callback retry, milliseconds, counted from the previous attempt (ZEGO's schedule by
    /// default); after the last one the event is dropped.
    #[arg(long, value_delimiter = ',', default_value = "2000,4000,8000,16000,32000")]
    pub callback_retry_ms: Vec<u64>,
}

/// The environment variable holding the callback secret (never a command-line value).
pub const CALLBACK_SECRET_ENV: &str = "ZEGO_CALLBACK_SECRET";

/// Errors of `simulate`.
#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    /// No secret given.
    #[error("no server secret: set ZEGO_SERVER_SECRET or pass --server-secret-file")]
    NoSecret,
    /// The secret file could not be read.
    #[error("cannot read --server-secret-file {path}: {source}")]
    SecretFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// An unknown fault name.
    #[error(
        "unknown fault kind {0:?} ({presets}, http_<status>, or a ZIM code)",
        presets = FAULT_PRESETS.join(", ")
    )]
    FaultKind(String),
    /// A callback URL without a callback secret.
    #[error(
        "--callback-url needs a callback secret: set ZEGO_CALLBACK_SECRET or pass --callback-secret-file"
    )]
    NoCallbackSecret,
    /// The callback secret file could not be read.
    #[error("cannot read --callback-secret-file {path}: {source}")]
    CallbackSecretFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The callback URL is not usable.
    #[error("--callback-url: {0}")]
    CallbackUrl(String),
    /// The listener failed.
    #[error("cannot serve on {addr}: {source}")]
    Serve {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// Reads the secret from a file or the environment value.
pub fn read_secret(file: Option<&PathBuf>, env: Option<&str>) -> Result<Option<ServerSecret>, SimulateError> {
    if let Some(path) = file {
        let s = std::fs::read_to_string(path)
            .map_err(|source| SimulateError::SecretFile { path: path.clone(), source })?;
        return Ok(Some(ServerSecret::new(s)));
    }
    Ok(env.filter(|s| !s.trim().is_empty()).map(ServerSecret::new))
}

/// The callback target of `--callback-url`, with the secret from `file` or else the environment value `env`.
pub fn callback_target(
    url: Option<&str>,
    file: Option<&PathBuf>,
    env: Option<&str>,
) -> Result<Option<CallbackTarget>, SimulateError> {
    let Some(url) = url else { return Ok(None) };
    let secret = match file {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|source| SimulateError::CallbackSecretFile { path: path.clone(), source })?,
        None => env.unwrap_or_default().to_owned(),
    };
    let secret = CallbackSecret::new(secret);
    if secret.expose().is_empty() {
        return Err(SimulateError::NoCallbackSecret);
    }
    CallbackTarget::new(url, secret).map(Some).map_err(SimulateError::CallbackUrl)
}

/// Runs the simulator until SIGINT/SIGTERM.
pub async fn run(args: SimulateArgs) -> Result<(), SimulateError> {
    let from_env = std::env::var("ZEGO_SERVER_SECRET").ok();
    let secret =
        read_secret(args.server_secret_file.as_ref(), from_env.as_deref())?.ok_or(SimulateError::NoSecret)?;
    let kinds = args
        .fault_kinds
        .iter()
        .map(|k| Fault::preset(k).ok_or_else(|| SimulateError::FaultKind(k.clone())))
        .collect::<Result<Vec<_>, _>>()?;
    let env_secret = std::env::var(CALLBACK_SECRET_ENV).ok();
    let target = callback_target(
        args.callback_url.as_deref(),
        args.callback_secret_file.as_ref(),
        env_secret.as_deref(),
    )?;
    let callbacks = CallbackConfig {
        target,
        retry_after: args.callback_retry_ms.iter().map(|ms| Duration::from_millis(*ms)).collect(),
        ..Default::default()
    };
    let sim = Simulator::new(SimConfig {
        apps: vec![(args.app_id, secret)],
        qps: args.qps,
        room_quota: args.room_quota,
        faults: FaultPlan {
            rate: args.fault_rate.clamp(0.0, 1.0),
            kinds,
            latency_ms: args.latency_ms,
            seed: args.fault_seed,
            ..Default::default()
        },
        callbacks,
    });
    let (addr, handle) = sim
        .serve(args.listen, crate::shutdown_signal())
        .await
        .map_err(|source| SimulateError::Serve { addr: args.listen, source })?;
    let sends_callbacks = args.callback_url.is_some();
    tracing::info!(%addr, app_id = args.app_id, qps = args.qps, sends_callbacks, "ZIM simulator listening");
    // Also on stdout, so scripts can wait for it.
    println!("zim simulator listening on http://{addr}");
    handle
        .await
        .map_err(|e| SimulateError::Serve { addr, source: std::io::Error::other(e) })?
        .map_err(|source| SimulateError::Serve { addr, source })
}
