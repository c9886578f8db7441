//! `zim-operator run`: the controller process — Kubernetes client, ZIM client, admin server, leader election,
//! graceful shutdown on SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::admin::auth::{KubeReviewer, MetricsAuth};
use crate::admin::{self, AdminConfig, Health};
use crate::controller::{self, Context};
use crate::leader;
use crate::metrics::Metrics;
use crate::reconcile::{DEFAULT_FROM_USER_ID, DefaultCredentialsScope, Reconciler};
use crate::zim::{ClientConfig, DEFAULT_ENDPOINT, TlsRoots, ZimClient};

/// Options of `run`. Every flag has an environment variable.
#[derive(Debug, clap::Args)]
#[command(after_help = RUN_EXIT_CODES)]
pub struct RunArgs {
    /// ZIM server-API endpoint: the unified host, a regional host (e.g. https://zim-api-fra.zego.im), or a
    /// simulator.
    #[arg(long, env = "ZIM_ENDPOINT", default_value = DEFAULT_ENDPOINT)]
    pub endpoint: String,
    /// Default credentials Secret for ZimRooms without spec.credentialsSecretRef, as NAMESPACE/NAME (or NAME in
    /// the operator's namespace). Keys: appId, serverSecret, optional fromUserId.
    #[arg(long, env = "ZIM_CREDENTIALS_SECRET")]
    pub credentials_secret: Option<String>,
    /// Which namespaces may use the default credentials Secret: `all` (unless a Namespace is annotated
    /// zim.zego.im/default-credentials: deny) or `annotated` (only Namespaces annotated ... : allow).
    #[arg(long, env = "ZIM_DEFAULT_CREDENTIALS_NAMESPACES", value_enum, default_value_t)]
    pub default_credentials_namespaces: DefaultCredentialsScope,
    /// The only Secret names the operator may read (the chart's rbac.secretNames), comma-separated: Secrets are
    /// then watched one name at a time (RBAC resourceNames) instead of namespace-wide.
    #[arg(long, env = "ZIM_SECRET_NAMES", value_delimiter = ',')]
    pub secret_names: Vec<String>,
    /// ZIM user the operator acts as when neither the ZimRoom nor its Secret names one.
    #[arg(long, env = "ZIM_FROM_USER_ID", default_value = DEFAULT_FROM_USER_ID)]
    pub from_user_id: String,
    /// Namespaces to watch, comma-separated; empty watches all namespaces.
    #[arg(long, env = "ZIM_NAMESPACES", value_delimiter = ',')]
    pub namespaces: Vec<String>,
    /// Only reconcile ZimRooms matching this label selector.
    #[arg(long, env = "ZIM_LABEL_SELECTOR")]
    pub label_selector: Option<String>,
    /// ZimRooms reconciled at once.
    #[arg(long, env = "ZIM_CONCURRENCY", default_value_t = 16)]
    pub concurrency: u16,
    /// How often a converged room's existence is re-checked (jittered ±10 %), e.g. 600s, 10m, 1h. Default: 10m,
    /// or 1h with --callback-addr (the poll is then the safety net under ZEGO's callbacks).
    #[arg(long, env = "ZIM_RESYNC_PERIOD", value_parser = parse_duration)]
    pub resync_period: Option<Duration>,
    /// Serve ZEGO's server callbacks on this address (e.g. 0.0.0.0:8090; off when unset): a verified
    /// room_destroy re-checks the room at once. The Secret's `callbackSecret` key verifies the signature, once
    /// ZIM has accepted the Secret's serverSecret for that AppId; only the leader verifies.
    #[arg(long, env = "ZIM_CALLBACK_ADDR")]
    pub callback_addr: Option<SocketAddr>,
    /// The share of QueryRoomUserList's rate (--zim-qps) the periodic re-check may use per app; past it the
    /// effective period stretches (zim_operator_probe_effective_period_seconds). The rest is for probes a person
    /// waits for (a new room's ownership probe, a callback's re-check), which go first anyway.
    #[arg(long, env = "ZIM_PROBE_SHARE", default_value_t = 0.8, value_parser = parse_share)]
    pub probe_share: f64,
    /// ZIM calls per second per (AppId, Action), spaced evenly; ZEGO's published limit is 20.
    #[arg(long, env = "ZIM_QPS", default_value_t = 20)]
    pub zim_qps: u32,
    /// Root certificates trusted for the ZIM endpoint: `webpki` (compiled in) or `system` (SSL_CERT_FILE,
    /// SSL_CERT_DIR, else the distribution's bundle).
    #[arg(long, env = "ZIM_TLS_ROOTS", value_enum, default_value_t)]
    pub tls_roots: TlsRoots,
    /// A PEM bundle of extra root certificates for the ZIM endpoint (a corporate CA or TLS-inspecting proxy),
    /// trusted besides --tls-roots.
    #[arg(long, env = "ZIM_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Timeout of one ZIM call, e.g. 10s.
    #[arg(long, env = "ZIM_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub zim_timeout: Duration,
    /// Retry period after a terminal failure (auth, quota, refused parameters), e.g. 1h.
    #[arg(long, env = "ZIM_SLOW_RETRY", default_value = "1h", value_parser = parse_duration)]
    pub slow_retry: Duration,
    /// How often a deletion that waits for an occupied room (spec.whenOccupied) counts its members again, e.g.
    /// 60s (jittered ±10 %; a drain's grace period is waited out to its deadline).
    #[arg(long, env = "ZIM_OCCUPIED_RECHECK", default_value = "60s", value_parser = parse_duration)]
    pub occupied_recheck: Duration,
    /// Address of the admin server (/healthz, /readyz, and /metrics unless --metrics-addr is set).
    #[arg(long, env = "ZIM_ADMIN_ADDR", default_value = "127.0.0.1:8081")]
    pub admin_addr: SocketAddr,
    /// Serve /metrics on this address instead of the admin address (probes stay on --admin-addr).
    #[arg(long, env = "ZIM_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// Protection of /metrics: `none`, or `kubernetes` (a bearer token checked with a TokenReview, its user with
    /// a SubjectAccessReview for `get` on the non-resource URL /metrics, as kube-rbac-proxy does).
    #[arg(long, env = "ZIM_METRICS_AUTH", value_enum, default_value_t)]
    pub metrics_auth: MetricsAuthMode,
    /// Elect a leader with a coordination.k8s.io Lease so that only one replica reconciles.
    #[arg(long, env = "ZIM_LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_election: bool,
    /// Name of the leader-election Lease.
    #[arg(long, env = "ZIM_LEASE_NAME", default_value = "zim-operator")]
    pub lease_name: String,
    /// Namespace of the Lease and of a default Secret given without a namespace (default: the pod's namespace
    /// from POD_NAMESPACE, else "default").
    #[arg(long, env = "ZIM_LEASE_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// Name of the Secret, in the Lease's namespace, holding the key that seals each status's ownership record
    /// (created by the operator if it does not exist; see docs/RELIABILITY.md, "Status records").
    #[arg(long, env = "ZIM_SEAL_SECRET", default_value = "zim-operator-seal")]
    pub seal_secret: String,
    /// Seconds a leader's Lease lasts without renewal: a standby takes over when the Lease has not changed for
    /// this long.
    #[arg(long, env = "ZIM_LEASE_DURATION", default_value_t = 15)]
    pub lease_duration: u64,
    /// How long the leader goes on without a successful renewal of its Lease, e.g. 10s; then it exits (code 1) to
    /// restart as a standby. Shorter than --lease-duration; default two thirds of it. It renews every fifth of it.
    #[arg(long, env = "ZIM_LEASE_RENEW_DEADLINE", value_parser = parse_duration)]
    pub lease_renew_deadline: Option<Duration>,
    /// Identity in the Lease and in events (default: POD_NAME, else host name and process id).
    #[arg(long, env = "ZIM_IDENTITY")]
    pub identity: Option<String>,
    /// After SIGTERM, how long in-flight reconciles may take to finish before the process exits anyway (the
    /// lease is then released, at most 5 s more). Keep it below the pod's terminationGracePeriodSeconds.
    #[arg(long, env = "ZIM_SHUTDOWN_GRACE", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
    /// Kubeconfig file (default: KUBECONFIG, ~/.kube/config, or the in-cluster service account).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
}

/// How `/metrics` is protected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum MetricsAuthMode {
    /// Anyone who can connect may read it (restrict with a NetworkPolicy, or bind to 127.0.0.1 behind a proxy).
    #[default]
    None,
    /// TokenReview + SubjectAccessReview through the API server.
    Kubernetes,
}

/// Parses a fraction in (0, 1].
pub(crate) fn parse_share(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 1.0 => Ok(v),
        _ => Err(format!("{s:?} is not a fraction between 0 (excluded) and 1, e.g. 0.8")),
    }
}

/// Parses `90`, `90s`, `15m`, `2h`, `500ms`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, unit) =
        s.find(|c: char| !c.is_ascii_digit() && c != '.').map_or((s, "s"), |i| s.split_at(i));
    let n: f64 = number.parse().map_err(|_| format!("{s:?} is not a duration like 30s, 10m or 1h"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (use ms, s, m or h)")),
    };
    if !(secs.is_finite() && secs > 0.0) {
        return Err(format!("{s:?} must be positive"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// The exit codes of `run`, as `--help` shows them (and docs/running.md lists them).
pub const RUN_EXIT_CODES: &str = "Exit codes:
  0  stopped by SIGTERM or SIGINT
  1  this replica lost its leadership (it restarts as a standby)
  2  unusable flags or configuration (no Kubernetes configuration, an address in use): nothing was started";

/// Runs the operator until SIGTERM/SIGINT. An error is a configuration that cannot start (exit code 2): the
/// caller reports it, once.
pub async fn run(args: RunArgs) -> Result<ExitCode, String> {
    let own_namespace = args
        .lease_namespace
        .clone()
        .or_else(|| std::env::var("POD_NAMESPACE").ok())
        .unwrap_or_else(|| "default".into());
    let identity = args.identity.clone().or_else(|| std::env::var("POD_NAME").ok()).unwrap_or_else(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        format!("{}-{}", host.trim(), std::process::id())
    });
    let lease = args
        .leader_election
        .then(|| {
            let lease_duration = Duration::from_secs(args.lease_duration);
            let config = leader::Config {
                name: args.lease_name.clone(),
                namespace: own_namespace.clone(),
                identity: identity.clone(),
                lease_duration,
                renew_deadline: args
                    .lease_renew_deadline
                    .unwrap_or_else(|| leader::Config::default_renew_deadline(lease_duration)),
            };
            config.check().map(|()| config)
        })
        .transpose()?;
    let (kube_config, source) = crate::kube_config::load(args.kubeconfig.as_deref()).await?;
    // The proxy URL may carry credentials: only whether there is one is logged.
    info!(source = ?source, proxied = kube_config.proxy_url.is_some(), "Kubernetes client configured");
    let client = kube::Client::try_from(kube_config)
        .map_err(|e| format!("cannot build the Kubernetes client: {e}"))?;
    let default_secret = args.credentials_secret.as_ref().map(|s| match s.split_once('/') {
        Some((ns, name)) => (ns.to_owned(), name.to_owned()),
        None => (own_namespace.clone(), s.clone()),
    });

    let metrics = Arc::new(Metrics::new());
    let health = Arc::new(Health::default());
    health.beat();
    let zim = ZimClient::new(&ClientConfig {
        endpoint: args.endpoint.clone(),
        calls_per_second: args.zim_qps,
        timeout: args.zim_timeout,
        roots: args.tls_roots,
        ca_file: args.ca_file.clone(),
        ..Default::default()
    })
    .map_err(|e| e.to_string())?
    .with_observer(Arc::new(metrics.zim.clone()));
    let seal_secret =
        controller::SealSecret { namespace: own_namespace.clone(), name: args.seal_secret.clone() };
    // Keyed when this replica starts leading (controller::run), before its first reconcile.
    let sealer = Arc::new(crate::reconcile::seal::Sealer::unkeyed());
    let reconciler = Reconciler::new(zim, args.from_user_id.clone()).with_sealer(sealer);
    let config = controller::Config {
        namespaces: args.namespaces.iter().filter(|n| !n.is_empty()).cloned().collect(),
        label_selector: args.label_selector.clone(),
        concurrency: args.concurrency.max(1),
        resync: args.resync_period.unwrap_or(if args.callback_addr.is_some() {
            Duration::from_secs(3600)
        } else {
            Duration::from_secs(600)
        }),
        default_secret,
        default_credentials_scope: args.default_credentials_namespaces,
        probe_budget: (args.zim_qps > 0)
            .then(|| crate::zim::limiter::granted_per_second(args.zim_qps) * args.probe_share),
        secret_names: args.secret_names.iter().filter(|n| !n.is_empty()).cloned().collect(),
        slow_retry: args.slow_retry,
        occupied_recheck: args.occupied_recheck,
        seal_secret: Some(seal_secret),
        callbacks: args.callback_addr.is_some(),
        ..Default::default()
    };

    let shutdown = CancellationToken::new();
    {
        let shutdown = shutdown.clone();
        let signal = crate::shutdown_signal();
        tokio::spawn(async move {
            signal.await;
            info!("shutdown signal received; finishing in-flight work");
            shutdown.cancel();
        });
    }
    let metrics_auth = match args.metrics_auth {
        MetricsAuthMode::None => None,
        MetricsAuthMode::Kubernetes => {
            Some(Arc::new(MetricsAuth::new(Arc::new(KubeReviewer::new(client.clone())))))
        }
    };
    let admin_config = AdminConfig { addr: args.admin_addr, metrics_addr: args.metrics_addr, metrics_auth };
    let serving =
        admin::serve(admin_config, health.clone(), metrics.clone(), shutdown.clone()).await.map_err(|e| {
            let metrics = args.metrics_addr.map(|m| format!(" / {m}")).unwrap_or_default();
            format!("cannot serve the admin endpoints on {}{metrics}: {e}", args.admin_addr)
        })?;
    let (admin_addr, metrics_addr, admin) = (serving.addr, serving.metrics_addr, serving.task);
    info!(%admin_addr, %metrics_addr, metrics_auth = ?args.metrics_auth, endpoint = %args.endpoint, identity, "zim-operator starting");

    let ctx = Arc::new(Context::new(
        client.clone(),
        reconciler,
        metrics.clone(),
        health.clone(),
        config,
        identity.clone(),
    ));
    let (leading, leading_rx) = tokio::sync::watch::channel(false);
    let callbacks = match args.callback_addr {
        None => None,
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("cannot serve ZEGO callbacks on {addr}: {e}"))?;
            let bound = listener.local_addr().map_err(|e| e.to_string())?;
            let (server, events) = crate::callback::CallbackServer::new(
                controller::callback_trust(ctx.clone(), leading_rx.clone()),
                Arc::new(metrics.callbacks.clone()),
                crate::callback::DEFAULT_QUEUE_CAPACITY,
            );
            info!(callback_addr = %bound, path = crate::callback::CALLBACK_PATH, "serving ZEGO callbacks");
            let serving = tokio::spawn(crate::callback::serve(listener, server, shutdown.clone()));
            let bridge =
                tokio::spawn(controller::callback_bridge(ctx.clone(), events, leading_rx, shutdown.clone()));
            Some((serving, bridge))
        }
    };
    let grace = args.shutdown_grace;
    let work = finish_within(controller::run(ctx, shutdown.clone()), &shutdown, &health, grace);
    if let Some(config) = lease {
        let code = leader::run(client.clone(), config, &health, &metrics, &leading, &shutdown, work).await;
        if code != ExitCode::SUCCESS {
            // Leadership was lost: nothing of this process may act any more, and returning drops every task.
            return Ok(code);
        }
    } else {
        // Without leader election this replica reconciles: it counts as the leader for zim_operator_leader.
        metrics.leader.set(1);
        let _ = leading.send(true);
        work.await;
        metrics.leader.set(0);
    }
    shutdown.cancel();
    if let Some((serving, bridge)) = callbacks {
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            let _ = serving.await;
            let _ = bridge.await;
        })
        .await;
    }
    if tokio::time::timeout(Duration::from_secs(2), admin).await.is_err() {
        warn!("the admin server did not stop within 2 s");
    }
    info!("zim-operator stopped");
    Ok(ExitCode::SUCCESS)
}

/// Runs `work` (the controllers, which stop by themselves once `shutdown` is cancelled and their in-flight
/// reconciles are done) and, once `shutdown` is cancelled, waits for it at most `grace` — or not at all while the
/// watches have never synced: kube-runtime starts no reconcile before its first listing, so nothing is in
/// flight, and its graceful shutdown would wait for that listing forever (kube-runtime 5's Runner returns
/// Pending until its store is ready, even after its queue ended). Returns whether `work` finished.
async fn finish_within(
    work: impl std::future::Future<Output = ()>,
    shutdown: &CancellationToken,
    health: &Health,
    grace: Duration,
) -> bool {
    tokio::pin!(work);
    tokio::select! {
        _ = &mut work => return true,
        _ = shutdown.cancelled() => {}
    }
    let grace = if health.ever_watched() { grace } else { Duration::ZERO };
    match tokio::time::timeout(grace, work).await {
        Ok(()) => true,
        Err(_) if grace.is_zero() => {
            info!("the watches never synced, so no reconcile is in flight; stopping now");
            false
        }
        Err(_) => {
            warn!(
                grace_seconds = grace.as_secs_f64(),
                "in-flight reconciles did not finish in time; stopping anyway"
            );
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5d").is_err());
        assert!(parse_duration("soon").is_err());
    }
}
