//! `zim-operator plan`: what `apply` (and so the controller) would do to ZIM for some manifests, asking ZIM only
//! read calls.
//!
//! It runs the very reconcile core `apply` runs, over a dry run of ZIM ([`crate::zim::dry_run`]): the reads
//! (existence probes, QueryRoomAttribute, and UserRegister, which QueryRoomAttribute needs and which changes no
//! room) go to ZIM; the writes are recorded and answered as ZIM would answer them, never sent. Each room's line is
//! read from the writes recorded for it and from the status the core came back with:
//!
//! | action | when |
//! |---|---|
//! | `create` | CreateRoom of a room that does not exist (the keys it would set with it) |
//! | `adopt` | CreateRoom of a room that exists: `apply` adopts it (and the keys it would set or delete) |
//! | `update` | ModifyRoomAttribute only: the keys it would set and delete |
//! | `nothing` | no write |
//! | `observe` | `managementPolicy: Observe`: reads only, never a write |
//! | `paused` | the paused annotation: no call |
//! | `conflict` | Ready=False `Conflict`: a document before it manages the same room (first document wins) |
//! | `invalid` | Ready=False `InvalidSpec`, or a document the core cannot read (an unknown field, a wrong type) |
//! | `forbidden` | Ready=False `ForbiddenByPolicy` |
//! | `error` | any other Ready=False reason: ZIM could not be asked (credentials refused, throttled, unreachable) |
//!
//! Like `apply`, `plan` runs without a cluster and so without a namespace policy ([`Facts::owner`] is
//! unrestricted): an existing room is adoptable here, where in a cluster the Namespace's
//! `zim.zego.im/adopt-existing-rooms: deny` would refuse it (Ready=False `ForbiddenByPolicy`) — unless the
//! Namespace's annotations are given with `--namespace-annotation NS:KEY=VALUE`: the plan then applies that
//! namespace's policy (`forbidden` lines) exactly as the controller does (`Policy::from_namespace`).
//!
//! [`Facts::owner`]: crate::reconcile::Facts::owner

use std::path::PathBuf;
use std::process::ExitCode;

use futures::StreamExt;
use serde::Serialize;

use crate::cmd_shared::{self, ZimArgs};
use crate::crd::{ZimRoom, condition, reason};
use crate::manifest::{self, Document};
use crate::zim::dry_run::{self, DryRun, Write};

/// The exit codes of `plan`, as `--help` shows them (and docs/running.md lists them).
pub const PLAN_EXIT_CODES: &str = "Exit codes:
  0  nothing would change
  1  an error: unusable input or credentials, or a room ZIM could not be asked about
  2  something would change: a room created or adopted, attributes set or deleted
(A usage error, such as an unknown flag, also exits 2; it prints nothing on stdout, a plan always does.)";

/// Output format of `plan`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum PlanOutput {
    /// One line per ZimRoom, then a summary line, on stdout.
    #[default]
    Text,
    /// One JSON object on stdout: `changes`, `counts` and every ZimRoom's planned action.
    Json,
}

/// Options of `plan`.
#[derive(Debug, clap::Args)]
#[command(after_help = PLAN_EXIT_CODES)]
pub struct PlanArgs {
    /// Manifest files or directories (`*.yaml`, `*.yml`); `-` reads standard input. Repeatable.
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<PathBuf>,
    /// Output format: `text`, or `json` for tools.
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: PlanOutput,
    /// The ZIM connection: endpoint, credentials, rate, TLS.
    #[command(flatten)]
    pub zim: ZimArgs,
    /// Attempts per room for retryable failures of the read calls.
    #[arg(long, default_value_t = 5)]
    pub attempts: u32,
    /// An annotation of a Namespace, `NAMESPACE:KEY=VALUE` (repeatable), so the plan applies that namespace's
    /// policy as the cluster would (e.g. `chat:zim.zego.im/adopt-existing-rooms=deny` shows `forbidden` for a
    /// room that exists). A namespace without any is planned without a policy.
    #[arg(long = "namespace-annotation", value_name = "NAMESPACE:KEY=VALUE", value_parser = parse_annotation)]
    pub namespace_annotations: Vec<(String, String, String)>,
    /// Rooms planned at once.
    #[arg(long, env = "ZIM_CONCURRENCY", default_value_t = 16)]
    pub concurrency: u16,
}

/// What `apply` would do to one room.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Create the room.
    Create,
    /// Adopt the existing room.
    Adopt,
    /// Set or delete attributes.
    Update,
    /// Nothing.
    Nothing,
    /// Only read the room (`managementPolicy: Observe`).
    Observe,
    /// Nothing: reconciliation is paused.
    Paused,
    /// Nothing: another document manages the room.
    Conflict,
    /// Nothing: the document is invalid.
    Invalid,
    /// Nothing: the policy forbids it.
    Forbidden,
    /// Unknown: ZIM could not be asked.
    Error,
}

impl Action {
    const ALL: [Action; 10] = [
        Action::Create,
        Action::Adopt,
        Action::Update,
        Action::Nothing,
        Action::Observe,
        Action::Paused,
        Action::Conflict,
        Action::Invalid,
        Action::Forbidden,
        Action::Error,
    ];

    fn name(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Adopt => "adopt",
            Action::Update => "update",
            Action::Nothing => "nothing",
            Action::Observe => "observe",
            Action::Paused => "paused",
            Action::Conflict => "conflict",
            Action::Invalid => "invalid",
            Action::Forbidden => "forbidden",
            Action::Error => "error",
        }
    }

    /// Whether `apply` would write to ZIM.
    fn changes(self) -> bool {
        matches!(self, Action::Create | Action::Adopt | Action::Update)
    }
}

/// One ZimRoom's plan (an entry of `rooms` in `-o json`).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomPlan {
    /// The file.
    pub file: String,
    /// The document's index in the file, from 1.
    pub document: usize,
    /// `metadata.namespace` (`default` when absent).
    pub namespace: String,
    /// `metadata.name`.
    pub name: Option<String>,
    /// The ZIM room ID (`spec.roomId`, else the name); `null` for an unusable document.
    pub room_id: Option<String>,
    /// What `apply` would do.
    pub action: Action,
    /// The attribute keys it would set (with CreateRoom, or with ModifyRoomAttribute), sorted.
    pub keys_set: Vec<String>,
    /// The attribute keys it would delete, sorted.
    pub keys_deleted: Vec<String>,
    /// The Ready reason the core reached (`InvalidSpec` for an unusable document).
    pub reason: Option<String>,
    /// What it means, in words.
    pub message: String,
}

impl RoomPlan {
    /// The line `plan` prints for it (after the document's location and name).
    fn line(&self) -> String {
        let room = self.room_id.as_deref().unwrap_or_default();
        let keys = || {
            let mut parts = Vec::new();
            if !self.keys_set.is_empty() {
                parts.push(format!("set {}", self.keys_set.join(",")));
            }
            if !self.keys_deleted.is_empty() {
                parts.push(format!("delete {}", self.keys_deleted.join(",")));
            }
            parts.iter().map(|p| format!("; {p}")).collect::<String>()
        };
        match self.action {
            Action::Create => format!("create room {room}{}", keys()),
            Action::Adopt => format!("adopt room {room} (it exists){}", keys()),
            Action::Update => format!("update room {room}{}", keys()),
            Action::Nothing => format!("nothing (room {room} is as declared)"),
            Action::Observe | Action::Paused => {
                format!("{} room {room}: {}", self.action.name(), self.message)
            }
            Action::Error => {
                format!("error: {}: {}", self.reason.as_deref().unwrap_or_default(), self.message)
            }
            Action::Conflict | Action::Invalid | Action::Forbidden => {
                format!("{}: {}", self.action.name(), self.message)
            }
        }
    }
}

/// Runs `plan`: exit 0 when nothing would change, 2 when something would, 1 on an error.
pub async fn plan(args: PlanArgs) -> ExitCode {
    // Errors are exit 1 here: 2 means "something would change".
    let (creds, docs, connection) = match cmd_shared::prepare(&args.zim, &args.files).await {
        Ok(prepared) => prepared,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let reconciler =
        cmd_shared::trusting_reconciler(DryRun::new(connection.client.clone()), &args.zim.from_user_id);

    // A ZimRoomSet is planned as the rooms it declares; one that declares nothing usable is `invalid`.
    let (docs, set_problems) = manifest::expand_sets(docs);
    let mut plans: Vec<(usize, RoomPlan)> = Vec::new();
    let set_plans: Vec<RoomPlan> =
        set_problems.iter().map(|set| unusable(&set.document, cmd_shared::set_problems(set))).collect();
    let mut rooms: Vec<(usize, ZimRoom)> = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        if !doc.is_zimroom() {
            eprintln!("{}: skipping {} {} (not a ZimRoom)", doc.location(), doc.kind(), doc.object_name());
            continue;
        }
        match cmd_shared::parse_room(doc) {
            Ok(room) => rooms.push((i, room)),
            Err(message) => plans.push((i, unusable(doc, message))),
        }
    }
    let rooms = cmd_shared::claims(rooms);
    let mut annotations: std::collections::HashMap<String, std::collections::BTreeMap<String, String>> =
        std::collections::HashMap::new();
    for (ns, key, value) in &args.namespace_annotations {
        annotations.entry(ns.clone()).or_default().insert(key.clone(), value.clone());
    }
    let annotations = &annotations;
    let planned: Vec<(usize, RoomPlan)> = futures::stream::iter(rooms)
        .map(|(i, room, claim)| {
            let (reconciler, creds, doc) = (&reconciler, &creds, &docs[i]);
            let attempts = args.attempts;
            async move {
                let mut room = room;
                let dry = reconciler.zim();
                let ns = room.metadata.namespace.clone().unwrap_or_default();
                let policy = match annotations.get(&ns) {
                    Some(a) => crate::reconcile::Policy::from_namespace(
                        &ns,
                        Some(a),
                        crate::reconcile::DefaultCredentialsScope::All,
                    ),
                    None => crate::reconcile::Policy::unrestricted(),
                };
                let run = cmd_shared::reconcile_with_retries(
                    reconciler,
                    &mut room,
                    creds,
                    &claim,
                    policy,
                    attempts,
                    || {
                        // Only the last attempt's writes count.
                        dry.take(i);
                    },
                );
                dry_run::scoped(i, run).await;
                (i, room_plan(doc, &room, &dry.take(i)))
            }
        })
        .buffer_unordered(usize::from(args.concurrency.max(1)))
        .collect()
        .await;
    plans.extend(planned);
    plans.sort_by_key(|(i, _)| *i);
    let plans: Vec<RoomPlan> = set_plans.into_iter().chain(plans.into_iter().map(|(_, p)| p)).collect();

    let count = |a: Action| plans.iter().filter(|p| p.action == a).count();
    let changes = plans.iter().any(|p| p.action.changes());
    let errors = count(Action::Error);
    match args.output {
        PlanOutput::Text => {
            for (p, doc) in plans.iter().map(|p| (p, location(p))) {
                println!("{doc}: {}", p.line());
            }
            println!(
                "Plan: {} to create, {} to adopt, {} to update, {} unchanged; {} observed, {} paused, {} conflicts, {} invalid, {} forbidden, {} errors",
                count(Action::Create),
                count(Action::Adopt),
                count(Action::Update),
                count(Action::Nothing),
                count(Action::Observe),
                count(Action::Paused),
                count(Action::Conflict),
                count(Action::Invalid),
                count(Action::Forbidden),
                errors,
            );
        }
        PlanOutput::Json => {
            let counts: serde_json::Map<String, serde_json::Value> =
                Action::ALL.iter().map(|a| (a.name().to_owned(), count(*a).into())).collect();
            let report = serde_json::json!({"changes": changes, "counts": counts, "rooms": plans});
            println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
        }
    }
    if errors > 0 {
        ExitCode::from(1)
    } else if changes {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}

/// `file (document N): ZimRoom namespace/name`, as `apply` and `validate` name a document.
fn location(p: &RoomPlan) -> String {
    format!(
        "{} (document {}): ZimRoom {}/{}",
        p.file,
        p.document,
        p.namespace,
        p.name.as_deref().unwrap_or("<no name>")
    )
}

fn base(doc: &Document) -> RoomPlan {
    let meta = doc.value.get("metadata");
    let field = |k: &str| meta.and_then(|m| m.get(k)).and_then(serde_json::Value::as_str).map(str::to_owned);
    RoomPlan {
        file: doc.file.display().to_string(),
        document: doc.index,
        namespace: field("namespace").unwrap_or_else(|| "default".into()),
        name: field("name"),
        room_id: None,
        action: Action::Nothing,
        keys_set: Vec::new(),
        keys_deleted: Vec::new(),
        reason: None,
        message: String::new(),
    }
}

/// The plan of a document the core cannot read.
fn unusable(doc: &Document, message: String) -> RoomPlan {
    RoomPlan {
        action: Action::Invalid,
        reason: Some(reason::INVALID_SPEC.into()),
        message: format!("not applied: {message}"),
        ..base(doc)
    }
}

/// The plan of one room, from the writes the core made in its last attempt and the status it came back with.
pub fn room_plan(doc: &Document, room: &ZimRoom, writes: &[Write]) -> RoomPlan {
    let room_id = room.room_id();
    let mut plan = RoomPlan { room_id: Some(room_id.clone()), ..base(doc) };
    let ready = room.condition(condition::READY);
    plan.reason = ready.map(|c| c.reason.clone());
    let ready_false = ready.filter(|c| c.status != "True");
    let refused = |action: Action, message: &str| (action, message.to_owned());
    let (action, message) = match ready_false.map(|c| (c.reason.as_str(), c.message.as_str())) {
        Some((reason::INVALID_SPEC | reason::IMMUTABLE_FIELD_CHANGED, m)) => refused(Action::Invalid, m),
        Some((reason::CONFLICT, m)) => refused(Action::Conflict, m),
        Some((reason::FORBIDDEN_BY_POLICY, m)) => refused(Action::Forbidden, m),
        _ if room.is_paused() => {
            (Action::Paused, "reconciliation is paused by the zim.zego.im/paused annotation: no call".into())
        }
        Some((reason::ROOM_NOT_FOUND, _)) if room.is_observing() => {
            (Action::Observe, "read only; the room does not exist (the operator will not create it)".into())
        }
        Some((_, m)) => (Action::Error, m.to_owned()),
        None if room.is_observing() => (Action::Observe, observed(room)),
        None => from_writes(&mut plan, writes),
    };
    plan.action = action;
    plan.message = message;
    plan
}

/// What an observing object found: read only, and the declared attributes that differ.
fn observed(room: &ZimRoom) -> String {
    let drifted = room.status.as_ref().and_then(|s| s.observed.as_ref()).map(|o| o.drifted_keys.clone());
    match drifted {
        Some(keys) if !keys.is_empty() => format!("read only; drifted: {}", keys.join(",")),
        _ => "read only".into(),
    }
}

/// Create, adopt, update or nothing, from the writes; the keys into `plan`.
fn from_writes(plan: &mut RoomPlan, writes: &[Write]) -> (Action, String) {
    let mut action = Action::Nothing;
    let mut set = std::collections::BTreeSet::new();
    let mut deleted = std::collections::BTreeSet::new();
    for w in writes {
        match w {
            Write::CreateRoom { exists: false, attribute_keys, .. } => {
                action = Action::Create;
                set.extend(attribute_keys.iter().cloned());
            }
            Write::CreateRoom { exists: true, .. } => action = Action::Adopt,
            Write::ModifyRoomAttribute { set: s, delete: d, .. } => {
                if action == Action::Nothing {
                    action = Action::Update;
                }
                set.extend(s.iter().cloned());
                deleted.extend(d.iter().cloned());
            }
            // Deletion only (never reached by a plan, which reconciles and does not delete).
            Write::DestroyRoom { .. } | Write::KickoutRoomUsers { .. } | Write::SendRoomMessage { .. } => {}
        }
    }
    plan.keys_set = set.into_iter().collect();
    plan.keys_deleted = deleted.into_iter().collect();
    let room = plan.room_id.clone().unwrap_or_default();
    let message = match action {
        Action::Create => format!("ZIM room {room} does not exist: apply creates it"),
        Action::Adopt => format!(
            "ZIM room {room} exists: apply adopts it (deletionPolicy defaults to Orphan). Outside a cluster no namespace policy applies; in a cluster the Namespace's zim.zego.im/adopt-existing-rooms: deny refuses it (ForbiddenByPolicy)"
        ),
        Action::Update => format!("apply changes the attributes of ZIM room {room}"),
        _ => format!("ZIM room {room} is as declared"),
    };
    (action, message)
}

/// `NAMESPACE:KEY=VALUE` → (namespace, key, value).
fn parse_annotation(text: &str) -> Result<(String, String, String), String> {
    let (ns, rest) = text.split_once(':').ok_or("expected NAMESPACE:KEY=VALUE")?;
    let (key, value) = rest.split_once('=').ok_or("expected NAMESPACE:KEY=VALUE")?;
    if ns.is_empty() || key.is_empty() {
        return Err("expected NAMESPACE:KEY=VALUE with a namespace and a key".into());
    }
    Ok((ns.to_owned(), key.to_owned(), value.to_owned()))
}
