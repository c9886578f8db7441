//! The end-to-end harness: one real etcd + kube-apiserver on 127.0.0.1 per test binary (started by
//! `scripts/kube-env.sh`, stopped when the binary exits), and per test a namespace, a ZIM simulator serving over
//! HTTP, a credentials Secret and operator processes (the real binary, so kills and restarts are real).
//! If the servers cannot start, every test fails with the script's reason: the tier is never skipped.
//!
//! The Kubernetes version is the current one (1.37, built from its Go modules) unless `ZIM_KUBE_VERSION=floor`
//! asks for 1.20; the first test to start the servers prints which version it got. The CRD is installed as users
//! get it from `zim-operator crd`: with its CEL rules and selectable fields on a current server, without them on
//! 1.20 (which refuses them under server-side apply and has neither).

#![allow(dead_code)] // each binary that includes it (the end-to-end tiers, the benchmark) uses part of it

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use zim_operator::crd::ZimRoom;
use zim_operator::sim::{LogEntry, RunningSim, SimConfig, Simulator};
use zim_operator::zim::ServerSecret;

pub use zim_operator::testing::{APP, APP_B, SECRET, SECRET_B};

struct KubeEnv {
    kubeconfig: PathBuf,
    dir: tempfile::TempDir,
    own: bool,
    /// The version kube-apiserver reports (`v1.37.2`).
    version: String,
}

/// Asks the cluster of `kubeconfig` for its version, on a thread of its own (the caller may be inside a runtime).
fn server_version(kubeconfig: PathBuf) -> Result<String, String> {
    let ask = move || -> Result<String, String> {
        let rt =
            tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
        rt.block_on(async {
            let kc = kube::config::Kubeconfig::read_from(&kubeconfig).map_err(|e| e.to_string())?;
            let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
                .await
                .map_err(|e| e.to_string())?;
            let client = Client::try_from(config).map_err(|e| e.to_string())?;
            Ok(client.apiserver_version().await.map_err(|e| e.to_string())?.git_version)
        })
    };
    std::thread::spawn(ask).join().map_err(|_| "asking the cluster for its version panicked".to_owned())?
}

static ENV: OnceLock<Result<KubeEnv, String>> = OnceLock::new();

fn kube_env() -> &'static KubeEnv {
    let env = ENV.get_or_init(|| {
        if let Ok(path) = std::env::var("ZIM_TEST_KUBECONFIG") {
            let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
            let version = server_version(PathBuf::from(&path))?;
            eprintln!(
                "end-to-end tier: the cluster of ZIM_TEST_KUBECONFIG ({path}), kube-apiserver {version}"
            );
            return Ok(KubeEnv { kubeconfig: path.into(), dir, own: false, version });
        }
        let dir = tempfile::Builder::new().prefix("zim-kube-env").tempdir().map_err(|e| e.to_string())?;
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/kube-env.sh");
        let out = std::process::Command::new("bash")
            .arg(script)
            .arg("start")
            .arg(dir.path())
            .arg(std::process::id().to_string())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| format!("cannot run {script}: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "{script} could not start etcd + kube-apiserver:\n{}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let kubeconfig = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let version = std::fs::read_to_string(dir.path().join("version"))
            .map_err(|e| format!("{script} left no version file: {e}"))?
            .trim()
            .to_owned();
        eprintln!(
            "end-to-end tier: kube-apiserver {version} on 127.0.0.1 (scripts/kube-env.sh, {})",
            dir.path().display()
        );
        Ok(KubeEnv { kubeconfig: kubeconfig.into(), dir, own: true, version })
    });
    match env {
        Ok(e) => e,
        Err(why) => panic!("the end-to-end tier needs a kube-apiserver: {why}"),
    }
}

pub async fn client() -> Client {
    let env = kube_env();
    let kc = kube::config::Kubeconfig::read_from(&env.kubeconfig).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.expect("kube config");
    Client::try_from(config).expect("kube client")
}

/// Stops or starts the test's own etcd or kube-apiserver (`stop-apiserver`, `start-etcd`, …).
pub fn control(what: &str) {
    let env = kube_env();
    assert!(env.own, "outage tests need the harness's own kube-apiserver (unset ZIM_TEST_KUBECONFIG)");
    let status = std::process::Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/kube-env.sh"))
        .arg(what)
        .arg(env.dir.path())
        .status()
        .expect("kube-env.sh runs");
    assert!(status.success(), "kube-env.sh {what} failed");
}

/// The directory of the harness's own etcd and kube-apiserver (their pid files and logs).
pub fn env_dir() -> PathBuf {
    kube_env().dir.path().to_path_buf()
}

pub fn kubeconfig() -> PathBuf {
    kube_env().kubeconfig.clone()
}

/// The version the test's kube-apiserver reports (`v1.37.2`).
pub fn kube_version() -> &'static str {
    &kube_env().version
}

/// Whether the server is the promised floor, Kubernetes 1.20 (no CEL rules, no selectable fields).
pub fn on_floor() -> bool {
    kube_version().starts_with("v1.20.")
}

/// Polls `check` every 100 ms until it returns `Some`, or fails after `timeout` with `what`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Installs the CRD (once; idempotent) and waits until it is served.
pub async fn ensure_crd(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    // Kubernetes 1.20 does not know x-kubernetes-validations (CEL) or selectableFields, and its server-side apply
    // refuses them; they are stripped there, as the server itself would drop them on a plain create. The operator
    // checks immutability itself. A current server gets the CRD exactly as `zim-operator crd` prints it.
    for (crd, name) in [
        (zim_operator::crd::crd(), "zimrooms.zim.zego.im"),
        (zim_operator::crd::set_crd(), "zimroomsets.zim.zego.im"),
    ] {
        let mut crd = serde_json::to_value(crd).unwrap();
        if on_floor() {
            strip_cel(&mut crd);
            crd["spec"]["versions"].as_array_mut().unwrap().iter_mut().for_each(|v| {
                v.as_object_mut().unwrap().remove("selectableFields");
            });
        }
        let crd: CustomResourceDefinition = serde_json::from_value(crd).unwrap();
        match crds.create(&PostParams::default(), &crd).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => panic!("cannot create the CRD {name}: {e}"),
        }
        eventually(&format!("the CRD {name} to be established"), Duration::from_secs(30), || async {
            let c = crds.get_opt(name).await.ok()??;
            let ok = c.status?.conditions?.iter().any(|c| c.type_ == "Established" && c.status == "True");
            ok.then_some(())
        })
        .await;
    }
}

fn strip_cel(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(o) => {
            o.remove("x-kubernetes-validations");
            o.values_mut().for_each(strip_cel);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(strip_cel),
        _ => {}
    }
}

/// A test's world: a namespace, a simulator, a Secret.
pub struct World {
    pub client: Client,
    pub ns: String,
    pub sim: RunningSim,
}

impl World {
    pub async fn new(ns: &str) -> World {
        let client = client().await;
        ensure_crd(&client).await;
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let _ = namespaces.delete(ns, &DeleteParams::default()).await;
        // A namespace from an earlier run of the same binary cannot exist (fresh etcd), but a reused
        // ZIM_TEST_KUBECONFIG may have one: wait for it to go (there is no namespace controller on 1.20 here, so
        // names are unique per test instead).
        let ns_obj: Namespace =
            serde_json::from_value(serde_json::json!({"metadata": {"name": ns}})).unwrap();
        namespaces.create(&PostParams::default(), &ns_obj).await.expect("create namespace");
        let sim = Simulator::new(SimConfig {
            apps: vec![(APP, ServerSecret::new(SECRET)), (APP_B, ServerSecret::new(SECRET_B))],
            qps: 0,
            ..Default::default()
        })
        .start_local()
        .await
        .expect("simulator");
        World { client, ns: ns.to_owned(), sim }
    }

    pub async fn create_secret(&self, name: &str) {
        self.create_secret_with(name, &[]).await;
    }

    /// A namespace `ns` (besides the world's own), with a credentials Secret `zego` of `app`.
    pub async fn tenant_namespace(&self, ns: &str, app: u32, secret: &str) {
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        let ns_obj: Namespace =
            serde_json::from_value(serde_json::json!({"metadata": {"name": ns}})).unwrap();
        namespaces.create(&PostParams::default(), &ns_obj).await.expect("create namespace");
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), ns);
        let s: Secret = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "zego"},
            "stringData": {"appId": app.to_string(), "serverSecret": secret},
        }))
        .unwrap();
        secrets.create(&PostParams::default(), &s).await.expect("create secret");
    }

    /// The calls of `action` the simulator received for `app`.
    pub fn calls_in(&self, app: u32, action: &str) -> usize {
        self.sim.sim.log().iter().filter(|e| e.app_id == app && e.action == action).count()
    }

    /// A credentials Secret with more keys (e.g. `callbackSecret`).
    pub async fn create_secret_with(&self, name: &str, extra: &[(&str, &str)]) {
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &self.ns);
        let mut data = serde_json::json!({"appId": APP.to_string(), "serverSecret": SECRET});
        for (k, v) in extra {
            data[*k] = (*v).into();
        }
        let s: Secret =
            serde_json::from_value(serde_json::json!({"metadata": {"name": name}, "stringData": data}))
                .unwrap();
        secrets.create(&PostParams::default(), &s).await.expect("create secret");
    }

    pub fn rooms(&self) -> Api<ZimRoom> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    /// Applies a ZimRoom manifest given as YAML in this world's namespace.
    pub async fn apply(&self, yaml: &str) -> ZimRoom {
        let room: ZimRoom = serde_saphyr::from_str(yaml).expect("manifest");
        self.apply_room(room).await
    }

    /// Applies `room` in this world's namespace (server-side apply, as a user would): its generation and status
    /// are the server's, so they are not sent.
    pub async fn apply_room(&self, room: impl Into<ZimRoom>) -> ZimRoom {
        self.try_apply_room(room).await.expect("apply ZimRoom")
    }

    /// [`World::apply_room`], returning the API server's refusal (a CEL rule, an admission policy) instead of
    /// failing. Field validation is strict: a field the schema does not know is an error, not a warning.
    pub async fn try_apply_room(&self, room: impl Into<ZimRoom>) -> Result<ZimRoom, kube::Error> {
        let room: ZimRoom = room.into();
        let name = room.metadata.name.clone().unwrap();
        let mut value = serde_json::to_value(&room).unwrap();
        value["metadata"]["namespace"] = self.ns.clone().into();
        value["metadata"].as_object_mut().unwrap().remove("generation");
        value.as_object_mut().unwrap().remove("status");
        let mut params = PatchParams::apply("e2e-user").force();
        params.field_validation = Some(kube::api::ValidationDirective::Strict);
        self.rooms().patch(&name, &params, &Patch::Apply(&value)).await
    }

    pub async fn get(&self, name: &str) -> Option<ZimRoom> {
        self.rooms().get_opt(name).await.expect("get ZimRoom")
    }

    /// Waits until `name`'s Ready condition has `reason` for the current generation.
    pub async fn wait_reason(&self, name: &str, reason: &str, timeout: Duration) -> ZimRoom {
        eventually(&format!("ZimRoom {}/{name} to reach Ready reason {reason}", self.ns), timeout, || async {
            let r = self.get(name).await?;
            let c = r.condition("Ready")?;
            (c.reason == reason && c.observed_generation == r.metadata.generation).then_some(r)
        })
        .await
    }

    /// Applies `room` in namespace `ns` (another than the world's own), as a user would.
    pub async fn apply_room_in(&self, ns: &str, room: impl Into<ZimRoom>) {
        let r: ZimRoom = room.into();
        let name = r.metadata.name.clone().expect("a named ZimRoom");
        let mut value = serde_json::to_value(&r).unwrap();
        value["metadata"]["namespace"] = ns.into();
        value["metadata"].as_object_mut().unwrap().remove("generation");
        value.as_object_mut().unwrap().remove("status");
        let api: Api<ZimRoom> = Api::namespaced(self.client.clone(), ns);
        api.patch(&name, &PatchParams::apply("e2e-user").force(), &Patch::Apply(&value))
            .await
            .expect("apply");
    }

    /// Waits until `ns/name`'s Ready condition has `reason`.
    pub async fn wait_reason_in(&self, ns: &str, name: &str, reason: &str, timeout: Duration) -> ZimRoom {
        let api: Api<ZimRoom> = Api::namespaced(self.client.clone(), ns);
        eventually(&format!("ZimRoom {ns}/{name} to reach Ready reason {reason}"), timeout, || async {
            let r = api.get_opt(name).await.ok()??;
            (r.condition("Ready")?.reason == reason).then_some(r)
        })
        .await
    }

    pub async fn wait_gone(&self, name: &str, timeout: Duration) {
        eventually(&format!("ZimRoom {}/{name} to be gone", self.ns), timeout, || async {
            self.get(name).await.is_none().then_some(())
        })
        .await
    }

    pub fn log(&self) -> Vec<LogEntry> {
        self.sim.sim.log()
    }

    pub fn calls(&self, action: &str) -> usize {
        self.log().iter().filter(|e| e.action == action).count()
    }

    pub fn last_seq(&self) -> u64 {
        self.log().last().map_or(0, |e| e.seq)
    }

    /// Starts an operator watching this world's namespace.
    pub async fn operator(&self, extra: &[&str]) -> Operator {
        Operator::start(self, extra, &[]).await
    }

    /// Renders the chart's RBAC (release named after this world's namespace, installed in it, with `sets` as
    /// `--set` values) with helm 4, applies it, and returns a kubeconfig holding a token of the chart's
    /// ServiceAccount: an operator started with it has exactly the rights the chart grants. Unless `sets` name
    /// `rbac.secretNames`, `rbac.allSecrets=true` is added: these tests give their rooms Secrets of any name and
    /// start the operator without `--secret-names` (the chart's default, Secrets by name only, is checked by
    /// `scripts/chart-check.sh` and `named_secret_watches_work_under_resource_names_rbac`).
    pub async fn chart_kubeconfig(&self, sets: &[&str]) -> PathBuf {
        let helm = std::env::var("HELM4").unwrap_or_else(|_| {
            panic!(
                "HELM4 is not set: run the tests through scripts/test.sh (scripts/tools.sh installs helm 4)"
            )
        });
        let kubectl = std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into());
        let chart = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/zim-operator");
        let mut cmd = tokio::process::Command::new(&helm);
        cmd.args(["template", &self.ns, chart, "-n", &self.ns]);
        if !sets.iter().any(|s| s.starts_with("rbac.secretNames")) {
            cmd.args(["--set", "rbac.allSecrets=true"]);
        }
        for set in sets {
            cmd.args(["--set", set]);
        }
        let out = cmd.output().await.expect("helm runs");
        assert!(out.status.success(), "helm template: {}", String::from_utf8_lossy(&out.stderr));
        let rendered = String::from_utf8(out.stdout).unwrap();
        let kinds = ["ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"];
        let rbac: Vec<String> = rendered
            .split("\n---")
            .filter(|doc| kinds.iter().any(|k| doc.contains(&format!("\nkind: {k}\n"))))
            .map(str::to_owned)
            .collect();
        assert!(rbac.len() >= 5, "the chart renders its RBAC: {rendered}");
        let mut apply = tokio::process::Command::new(&kubectl);
        apply
            .arg("--kubeconfig")
            .arg(kubeconfig())
            .args(["apply", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = apply.spawn().expect("kubectl runs");
        {
            use tokio::io::AsyncWriteExt;
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(rbac.join("\n---").as_bytes()).await.unwrap();
        }
        let out = child.wait_with_output().await.unwrap();
        assert!(out.status.success(), "kubectl apply: {}", String::from_utf8_lossy(&out.stderr));

        self.token_kubeconfig(&format!("{}-zim-operator", self.ns)).await
    }

    /// A kubeconfig holding a token of ServiceAccount `sa` of this world's namespace.
    pub async fn token_kubeconfig(&self, sa: &str) -> PathBuf {
        let accounts: Api<k8s_openapi::api::core::v1::ServiceAccount> =
            Api::namespaced(self.client.clone(), &self.ns);
        let request: k8s_openapi::api::authentication::v1::TokenRequest =
            serde_json::from_value(serde_json::json!({"spec": {"audiences": [], "expirationSeconds": 3600}}))
                .unwrap();
        let issued =
            accounts.create_token_request(sa, &PostParams::default(), &request).await.expect("token");
        let token = issued.status.expect("token issued").token;
        let mut kc = kube::config::Kubeconfig::read_from(kubeconfig()).expect("kubeconfig");
        for user in &mut kc.auth_infos {
            user.auth_info =
                Some(kube::config::AuthInfo { token: Some(token.clone().into()), ..Default::default() });
        }
        let path =
            std::env::temp_dir().join(format!("zim-e2e-{}-{sa}-{}.kubeconfig", self.ns, std::process::id()));
        std::fs::write(&path, serde_json::to_vec(&kc).unwrap()).unwrap();
        path
    }

    /// A client acting as ServiceAccount `sa` of this world's namespace (its RBAC, nothing more).
    pub async fn client_as(&self, sa: &str) -> Client {
        let path = self.token_kubeconfig(sa).await;
        let kc = kube::config::Kubeconfig::read_from(&path).expect("kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.expect("config");
        Client::try_from(config).expect("client")
    }

    /// Starts an operator that talks to the API server through `kubeconfig` (e.g. [`World::chart_kubeconfig`]).
    pub async fn operator_as(&self, kubeconfig: &std::path::Path, extra: &[&str]) -> Operator {
        Operator::start_with(self, Some(kubeconfig), extra, &[]).await
    }

    /// Starts an operator with extra environment variables.
    pub async fn operator_env(&self, extra: &[&str], env: &[(&str, &str)]) -> Operator {
        Operator::start(self, extra, env).await
    }

    /// Applies many rooms at once.
    pub async fn apply_all(&self, yamls: Vec<String>) {
        let mut pending =
            futures::stream::iter(yamls.into_iter().map(|y| async move { self.apply(&y).await }))
                .buffer_unordered(16);
        while pending.next().await.is_some() {}
    }

    /// Applies many rooms at once.
    pub async fn apply_rooms(&self, rooms: Vec<ZimRoom>) {
        let mut pending =
            futures::stream::iter(rooms.into_iter().map(|r| async move { self.apply_room(r).await }))
                .buffer_unordered(16);
        while pending.next().await.is_some() {}
    }

    /// All ZimRooms of the namespace.
    pub async fn list(&self) -> Vec<ZimRoom> {
        self.rooms().list(&Default::default()).await.expect("list ZimRooms").items
    }
}

/// An operator process.
pub struct Operator {
    pub child: tokio::process::Child,
    pub admin: SocketAddr,
    pub log: PathBuf,
    _logdir: tempfile::TempDir,
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Operator {
    /// Starts an operator on `world` (its simulator, unless `extra` names another `--endpoint`).
    pub async fn start(world: &World, extra: &[&str], env: &[(&str, &str)]) -> Operator {
        Self::start_with(world, None, extra, env).await
    }

    pub async fn start_with(
        world: &World,
        kubeconfig_path: Option<&std::path::Path>,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Operator {
        let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let logdir = tempfile::tempdir().unwrap();
        let log = logdir.path().join("operator.log");
        let file = std::fs::File::create(&log).unwrap();
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_zim-operator"));
        cmd.arg("run")
            .arg("--kubeconfig")
            .arg(kubeconfig_path.map_or_else(kubeconfig, std::path::Path::to_path_buf))
            .args(if extra.contains(&"--endpoint") {
                Vec::new()
            } else {
                vec!["--endpoint".to_owned(), world.sim.endpoint()]
            })
            .arg("--namespaces")
            .arg(&world.ns)
            .arg("--credentials-secret")
            .arg(format!("{}/zego", world.ns))
            .arg("--admin-addr")
            .arg(admin.to_string())
            .arg("--lease-namespace")
            .arg(&world.ns)
            // The name the chart gives it (release named after the namespace), which its RBAC allows.
            .arg("--seal-secret")
            .arg(format!("{}-zim-operator-seal", world.ns))
            // Long enough that a leader on a loaded test machine renews within its renew deadline (two thirds:
            // 6.7 s, each attempt cut at 3.3 s); a leader that cannot exits (src/leader/mod.rs).
            .arg("--lease-duration")
            .arg("10")
            .args(extra)
            .env(
                "RUST_LOG",
                std::env::var("ZIM_OPERATOR_LOG").unwrap_or_else(|_| "info,zim_operator=debug".into()),
            )
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(file)
            .kill_on_drop(true);
        let child = cmd.spawn().expect("operator starts");
        let op = Operator { child, admin, log, _logdir: logdir };
        eventually("the operator's admin server", Duration::from_secs(20), || async {
            op.get("/healthz").await.map(|_| ())
        })
        .await;
        op
    }

    /// GET on the admin server: `Some(body)` on 200.
    pub async fn get(&self, path: &str) -> Option<String> {
        let r = reqwest::get(format!("http://{}{path}", self.admin)).await.ok()?;
        if r.status().is_success() { r.text().await.ok() } else { None }
    }

    pub async fn metric(&self, line_prefix: &str) -> f64 {
        let text = self.get("/metrics").await.unwrap_or_default();
        text.lines()
            .filter(|l| l.starts_with(line_prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    pub async fn wait_ready(&self) {
        eventually("the operator's /readyz", Duration::from_secs(30), || async {
            self.get("/readyz").await.filter(|b| b == "ok").map(|_| ())
        })
        .await;
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }

    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().expect("running") as i32;
        let _ = std::process::Command::new("kill").arg("-TERM").arg(pid.to_string()).status();
        tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .expect("exits on SIGTERM")
            .unwrap()
    }
}
