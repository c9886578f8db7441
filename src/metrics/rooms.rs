//! Rooms by Ready state: each object's [`Readiness`] (from its Ready condition) is recorded as the controller
//! sees it, and the gauges are computed from those records at each scrape — by Ready status; for rooms not
//! Ready, by [`NotReadyCategory`] and [`Owner`] with the age of the longest-waiting one; and for rooms whose fix is
//! their tenant's, by namespace, so that tenant alerts can be routed to the team that owns the namespace.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::crd::{condition, reason};
use crate::lock;
use crate::reconcile::{NotReadyCategory, Owner, reasons};

/// A Ready condition's status.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum ReadyState {
    /// Ready=True.
    True,
    /// Ready=False.
    False,
    /// No Ready condition.
    Unknown,
}

impl ReadyState {
    const ALL: [ReadyState; 3] = [ReadyState::True, ReadyState::False, ReadyState::Unknown];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            ReadyState::True => "true",
            ReadyState::False => "false",
            ReadyState::Unknown => "unknown",
        }
    }
}

/// Labels: a Ready state.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReadyLabel {
    /// `true`, `false`, or `unknown`.
    pub ready: ReadyState,
}

/// Labels: why rooms are not Ready, and whose fix they need.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NotReadyLabel {
    /// A [`NotReadyCategory`].
    pub category: NotReadyCategory,
    /// `platform` or `tenant`.
    pub owner: Owner,
}

/// Labels: a namespace's rooms not Ready for their tenant's reasons. `room_namespace`, not `namespace`: Prometheus
/// sets `namespace` to the operator's own on scrape (a clash would rename this one `exported_namespace`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TenantLabel {
    /// The rooms' namespace.
    pub room_namespace: String,
    /// A [`NotReadyCategory`].
    pub category: NotReadyCategory,
}

/// One object's Ready state as the metrics see it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Readiness {
    /// `Some(true)` for Ready=True, `Some(false)` for Ready=False, `None` without a Ready condition.
    pub ready: Option<bool>,
    /// Why it is not Ready (`None` when it is).
    pub category: Option<NotReadyCategory>,
    /// Whose fix it needs (meaningless while Ready): see [`reasons::Blame`].
    pub owner: Owner,
    /// Since when it has not been Ready: the Ready condition's lastTransitionTime (else the Synced condition's,
    /// else when the operator first saw it so).
    pub since: jiff::Timestamp,
}

impl Readiness {
    /// The readiness an object's conditions describe; `own_credentials` when the object names its own credentials
    /// Secret (a failing app is then its tenant's); `now` stands in for a missing transition time.
    pub fn of_conditions(conditions: &[Condition], own_credentials: bool, now: jiff::Timestamp) -> Self {
        let find = |t: &str| conditions.iter().find(|c| c.type_ == t);
        let ready = find(condition::READY);
        let synced = find(condition::SYNCED);
        let paused = synced.is_some_and(|c| c.reason == reason::RECONCILE_PAUSED);
        let state = ready.map(|c| c.status == "True");
        if state == Some(true) {
            return Readiness { ready: state, category: None, owner: Owner::Platform, since: now };
        }
        let row = ready.and_then(|c| reasons::ready_reason_row(&c.reason));
        let (category, owner) = match row {
            // Paused on purpose by whoever may annotate the object: never alerted.
            _ if paused => (NotReadyCategory::Paused, Owner::Tenant),
            Some(row) => (row.not_ready, row.blame.owner(own_credentials)),
            // No Ready condition yet, or a reason this version does not know: the operator's to explain.
            None => (NotReadyCategory::Other, Owner::Platform),
        };
        let since = ready.or(synced).map_or(now, |c| c.last_transition_time.0);
        Readiness { ready: state, category: Some(category), owner, since }
    }

    fn state(&self) -> ReadyState {
        match self.ready {
            Some(true) => ReadyState::True,
            Some(false) => ReadyState::False,
            None => ReadyState::Unknown,
        }
    }
}

/// The room gauges and the per-object records they are computed from.
pub struct RoomMetrics {
    /// Rooms by Ready status.
    pub rooms: Family<ReadyLabel, Gauge>,
    /// Rooms not Ready, by category.
    pub not_ready: Family<NotReadyLabel, Gauge>,
    /// Per category, seconds since the longest-waiting room of the category stopped being Ready (0 when none).
    pub not_ready_oldest: Family<NotReadyLabel, Gauge<f64, AtomicU64>>,
    /// Rooms not Ready for their tenant's reasons, by namespace and category: a series only while non-zero, so at
    /// most one per namespace and category that has such rooms.
    pub tenant_not_ready: Family<TenantLabel, Gauge>,
    /// Members in the rooms of each namespace, as last counted (a series only while non-zero).
    pub members: Family<NamespaceLabel, Gauge>,
    /// Rooms with at least one member, by namespace (a series only while non-zero).
    pub occupied: Family<NamespaceLabel, Gauge>,
    /// Each object's readiness, by [`room_key`], with its namespace while its owner is the tenant.
    readiness: Mutex<HashMap<u64, Record>>,
    /// The member count of each occupied room, by [`room_key`], with its namespace (empty rooms are not kept).
    counts: Mutex<HashMap<u64, (Box<str>, u64)>>,
}

/// Labels: a rooms' namespace (`room_namespace`, as for [`TenantLabel`]).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NamespaceLabel {
    /// The rooms' namespace.
    pub room_namespace: String,
}

/// One object's readiness, and its namespace while the tenant owns its not-Ready state.
type Record = (Readiness, Option<Box<str>>);

/// The key of an object in the readiness records: a fingerprint of its namespace and name (8 bytes per object
/// instead of a copy of both). Two of 100 000 objects share one with a chance of about 10⁻¹⁰ (the gauges would
/// then count them as one).
pub fn room_key(namespace: &str, name: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    namespace.hash(&mut h);
    name.hash(&mut h);
    h.finish()
}

impl RoomMetrics {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let rooms = Family::<ReadyLabel, Gauge>::default();
        registry.register("rooms", "ZimRooms by Ready condition status", rooms.clone());
        let not_ready = Family::<NotReadyLabel, Gauge>::default();
        registry.register(
            "rooms_not_ready",
            "ZimRooms not Ready, by category of their Ready reason",
            not_ready.clone(),
        );
        let not_ready_oldest = Family::<NotReadyLabel, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "rooms_not_ready_oldest_seconds",
            "Seconds since the longest-waiting not-Ready ZimRoom of each category stopped being Ready (0 when none)",
            not_ready_oldest.clone(),
        );
        let tenant_not_ready = Family::<TenantLabel, Gauge>::default();
        registry.register(
            "tenant_rooms_not_ready",
            "ZimRooms not Ready for their tenant's reasons (spec, policy, ownership, own credentials), by namespace",
            tenant_not_ready.clone(),
        );
        let members = Family::<NamespaceLabel, Gauge>::default();
        registry.register(
            "room_members",
            "Members in the ZimRooms' rooms as last counted (QueryRoomUserList's Count at each probe), by namespace",
            members.clone(),
        );
        let occupied = Family::<NamespaceLabel, Gauge>::default();
        registry.register(
            "rooms_occupied",
            "ZimRooms whose room had at least one member when last counted, by namespace",
            occupied.clone(),
        );
        let m = Self {
            rooms,
            not_ready,
            not_ready_oldest,
            tenant_not_ready,
            members,
            occupied,
            readiness: Mutex::default(),
            counts: Mutex::default(),
        };
        m.refresh(jiff::Timestamp::now());
        m
    }

    /// Records the Ready state of one object (`None` when it is gone); the gauges follow at the next scrape.
    /// An object that stays not Ready in the same category keeps the earliest `since` seen (a missing transition
    /// time does not restart its clock).
    pub fn set_ready(&self, key: &str, readiness: Option<Readiness>) {
        let (namespace, name) = key.split_once('/').unwrap_or(("", key));
        let key = room_key(namespace, name);
        let mut states = lock(&self.readiness);
        match readiness {
            Some(mut r) => {
                if let Some((old, _)) = states.get(&key)
                    && r.category.is_some()
                    && old.category == r.category
                {
                    r.since = r.since.min(old.since);
                }
                let tenant = (r.category.is_some() && r.owner == Owner::Tenant).then(|| Box::from(namespace));
                states.insert(key, (r, tenant));
            }
            None => {
                states.remove(&key);
                lock(&self.counts).remove(&key);
            }
        }
    }

    /// Records the member count of one object's room (`key` is `namespace/name`); the gauges follow at the next
    /// scrape. Empty rooms are not kept, so the records grow with occupied rooms only.
    pub fn set_members(&self, key: &str, namespace: &str, members: u64) {
        let (ns, name) = key.split_once('/').unwrap_or(("", key));
        let key = room_key(ns, name);
        let mut counts = lock(&self.counts);
        if members == 0 {
            counts.remove(&key);
        } else {
            counts.insert(key, (Box::from(namespace), members));
        }
    }

    /// Forgets every object for whose [`room_key`] `keep` is false (objects gone without passing through the
    /// operator's cleanup, e.g. their finalizer removed by hand).
    pub fn retain(&self, mut keep: impl FnMut(u64) -> bool) {
        lock(&self.readiness).retain(|k, _| keep(*k));
        lock(&self.counts).retain(|k, _| keep(*k));
    }

    /// Sets the gauges from the recorded Ready states, with ages as of `now`.
    pub(super) fn refresh(&self, now: jiff::Timestamp) {
        let states = lock(&self.readiness);
        let mut by_ready: HashMap<ReadyState, i64> = HashMap::new();
        let mut by_category: HashMap<(NotReadyCategory, Owner), (i64, jiff::Timestamp)> = HashMap::new();
        let mut by_namespace: HashMap<(&str, NotReadyCategory), i64> = HashMap::new();
        for (r, tenant) in states.values() {
            *by_ready.entry(r.state()).or_default() += 1;
            if let Some(category) = r.category {
                let entry = by_category.entry((category, r.owner)).or_insert((0, r.since));
                entry.0 += 1;
                entry.1 = entry.1.min(r.since);
                if let Some(namespace) = tenant {
                    *by_namespace.entry((namespace, category)).or_default() += 1;
                }
            }
        }
        // Series of namespaces whose rooms are fixed go away (their alert resolves).
        self.tenant_not_ready.clear();
        for ((namespace, category), n) in by_namespace {
            let label = TenantLabel { room_namespace: namespace.to_owned(), category };
            self.tenant_not_ready.get_or_create(&label).set(n);
        }
        drop(states);
        let mut by_ns: HashMap<&str, (i64, i64)> = HashMap::new();
        let counts = lock(&self.counts);
        for (ns, members) in counts.values() {
            let entry = by_ns.entry(ns).or_default();
            entry.0 += i64::try_from(*members).unwrap_or(i64::MAX);
            entry.1 += 1;
        }
        self.members.clear();
        self.occupied.clear();
        for (ns, (members, rooms)) in by_ns {
            let label = NamespaceLabel { room_namespace: ns.to_owned() };
            self.members.get_or_create(&label).set(members);
            self.occupied.get_or_create(&label).set(rooms);
        }
        drop(counts);
        for ready in ReadyState::ALL {
            self.rooms.get_or_create(&ReadyLabel { ready }).set(by_ready.get(&ready).copied().unwrap_or(0));
        }
        for category in NotReadyCategory::ALL {
            for owner in Owner::ALL {
                let label = NotReadyLabel { category, owner };
                let (n, age) = match by_category.get(&(category, owner)) {
                    Some((n, since)) => (*n, now.duration_since(*since).as_secs_f64().max(0.0)),
                    None => (0, 0.0),
                };
                self.not_ready.get_or_create(&label).set(n);
                self.not_ready_oldest.get_or_create(&label).set(age);
            }
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;
    use crate::metrics::Metrics;
    use crate::metrics::tests::line;

    pub(crate) fn cond(type_: &str, status: &str, reason: &str, at: i64) -> Condition {
        Condition {
            type_: type_.into(),
            status: status.into(),
            reason: reason.into(),
            message: String::new(),
            observed_generation: Some(1),
            last_transition_time: Time(jiff::Timestamp::from_second(at).unwrap()),
        }
    }

    pub(crate) fn ts(at: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(at).unwrap()
    }

    /// Every Ready reason maps to a category through the reason table, a paused room is paused whatever its
    /// reason, and the category names stay distinct.
    #[test]
    fn ready_reasons_map_to_categories() {
        let cases = [
            (reason::CREATING, "progressing"),
            (reason::THROTTLED, "throttled"),
            (reason::API_UNAVAILABLE, "transient"),
            (reason::AUTH_FAILED, "auth"),
            (reason::CREDENTIALS_NOT_FOUND, "credentials"),
            (reason::CREDENTIALS_INVALID, "credentials"),
            (reason::QUOTA_EXCEEDED, "quota"),
            (reason::INVALID_SPEC, "invalid_spec"),
            (reason::IMMUTABLE_FIELD_CHANGED, "invalid_spec"),
            (reason::CONFLICT, "conflict"),
            (reason::APP_ID_CHANGED, "conflict"),
            (reason::UNVERIFIED_STATUS, "conflict"),
            (reason::FORBIDDEN_BY_POLICY, "policy"),
            (reason::DELETING, "deleting"),
            ("SomethingNew", "other"),
        ];
        for (r, want) in cases {
            let readiness = Readiness::of_conditions(&[cond("Ready", "False", r, 1)], false, ts(2));
            assert_eq!(readiness.category.map(NotReadyCategory::as_str), Some(want), "{r}");
        }
    }

    /// Members and occupied rooms per namespace, from the last count of each room; an emptied or deleted room
    /// leaves them, and a namespace without occupied rooms has no series.
    #[test]
    fn members_and_occupied_rooms_by_namespace() {
        let m = Metrics::new();
        m.rooms.set_members("a/one", "a", 5);
        m.rooms.set_members("a/two", "a", 2);
        m.rooms.set_members("b/one", "b", 1);
        m.rooms.set_members("b/one", "b", 3);
        m.rooms.set_members("c/one", "c", 0);
        let text = m.encode();
        assert_eq!(line(&text, "zim_operator_room_members{room_namespace=\"a\"}"), 7.0, "{text}");
        assert_eq!(line(&text, "zim_operator_rooms_occupied{room_namespace=\"a\"}"), 2.0);
        assert_eq!(
            line(&text, "zim_operator_room_members{room_namespace=\"b\"}"),
            3.0,
            "the last count counts"
        );
        assert!(!text.contains("room_namespace=\"c\"}"), "an empty room makes no series: {text}");
        m.rooms.set_members("a/one", "a", 0);
        m.rooms.set_ready("a/two", None);
        let text = m.encode();
        assert!(!text.contains("zim_operator_rooms_occupied{room_namespace=\"a\"}"), "{text}");
    }

    /// Counts and the oldest age per category, from the Ready condition's transition time; a paused room counts as
    /// paused whatever its reason; a room without conditions keeps the time it was first seen so.
    #[test]
    fn not_ready_gauges_count_and_age_by_category() {
        let m = Metrics::new();
        let rooms = &m.rooms;
        let quota = |at| [cond("Ready", "False", reason::QUOTA_EXCEEDED, at)];
        rooms.set_ready("a/q1", Some(Readiness::of_conditions(&quota(1000), false, ts(1500))));
        rooms.set_ready("b/q2", Some(Readiness::of_conditions(&quota(1200), false, ts(1500))));
        let paused = [
            cond("Ready", "False", reason::INVALID_SPEC, 1100),
            cond("Synced", "False", reason::RECONCILE_PAUSED, 1300),
        ];
        rooms.set_ready("a/p", Some(Readiness::of_conditions(&paused, false, ts(1500))));
        rooms.set_ready("a/new", Some(Readiness::of_conditions(&[], false, ts(1400))));
        // Seen again later, still without conditions: its clock does not restart.
        rooms.set_ready("a/new", Some(Readiness::of_conditions(&[], false, ts(1450))));
        rooms.set_ready(
            "a/ok",
            Some(Readiness::of_conditions(&[cond("Ready", "True", reason::AVAILABLE, 900)], false, ts(1500))),
        );
        rooms.refresh(ts(2000));
        let text = {
            let mut out = String::new();
            prometheus_client::encoding::text::encode(&mut out, &m.registry).unwrap();
            out
        };
        assert_eq!(line(&text, "zim_operator_rooms_not_ready{category=\"quota\",owner=\"platform\"}"), 2.0);
        assert_eq!(
            line(&text, "zim_operator_rooms_not_ready_oldest_seconds{category=\"quota\",owner=\"platform\"}"),
            1000.0
        );
        assert_eq!(line(&text, "zim_operator_rooms_not_ready{category=\"paused\",owner=\"tenant\"}"), 1.0);
        assert_eq!(
            line(&text, "zim_operator_rooms_not_ready_oldest_seconds{category=\"paused\",owner=\"tenant\"}"),
            900.0
        );
        assert_eq!(
            line(&text, "zim_operator_rooms_not_ready{category=\"invalid_spec\",owner=\"platform\"}"),
            0.0
        );
        assert_eq!(line(&text, "zim_operator_rooms_not_ready{category=\"other\",owner=\"platform\"}"), 1.0);
        assert_eq!(
            line(&text, "zim_operator_rooms_not_ready_oldest_seconds{category=\"other\",owner=\"platform\"}"),
            600.0
        );
        assert_eq!(line(&text, "zim_operator_rooms{ready=\"false\"}"), 3.0);
        assert_eq!(line(&text, "zim_operator_rooms{ready=\"unknown\"}"), 1.0);
        assert_eq!(line(&text, "zim_operator_rooms{ready=\"true\"}"), 1.0);
        // Gone objects leave the gauges, including through retain.
        rooms.set_ready("a/q1", None);
        rooms.retain(|k| k != room_key("a", "new"));
        rooms.refresh(ts(2000));
        let quota = NotReadyLabel { category: NotReadyCategory::Quota, owner: Owner::Platform };
        assert_eq!(rooms.not_ready.get_or_create(&quota).get(), 1);
        assert_eq!(rooms.not_ready_oldest.get_or_create(&quota).get(), 800.0);
        let other = NotReadyLabel { category: NotReadyCategory::Other, owner: Owner::Platform };
        assert_eq!(rooms.not_ready.get_or_create(&other).get(), 0);
    }

    /// Whose fix a room needs: the spec, policy and ownership are always the tenant's; a failing app is the
    /// tenant's only when the room names its own Secret; everything else is the platform's. Tenant rooms are
    /// counted by namespace, and a namespace's series goes away once its rooms are fixed.
    #[test]
    fn owners_and_tenant_rooms_by_namespace() {
        let platform =
            |r: &str, own| Readiness::of_conditions(&[cond("Ready", "False", r, 1)], own, ts(2)).owner;
        assert_eq!(platform(reason::INVALID_SPEC, false), Owner::Tenant);
        assert_eq!(platform(reason::FORBIDDEN_BY_POLICY, false), Owner::Tenant);
        assert_eq!(platform(reason::CONFLICT, false), Owner::Tenant);
        assert_eq!(platform(reason::UNVERIFIED_STATUS, false), Owner::Tenant);
        assert_eq!(platform(reason::AUTH_FAILED, false), Owner::Platform);
        assert_eq!(platform(reason::AUTH_FAILED, true), Owner::Tenant);
        assert_eq!(platform(reason::CREDENTIALS_NOT_FOUND, false), Owner::Platform);
        assert_eq!(platform(reason::CREDENTIALS_NOT_FOUND, true), Owner::Tenant);
        assert_eq!(platform(reason::QUOTA_EXCEEDED, true), Owner::Tenant);
        assert_eq!(platform(reason::API_UNAVAILABLE, true), Owner::Platform);
        assert_eq!(platform(reason::CREATING, true), Owner::Platform);
        assert_eq!(platform("SomethingNew", true), Owner::Platform);

        let m = Metrics::new();
        let rooms = &m.rooms;
        let spec = [cond("Ready", "False", reason::INVALID_SPEC, 1000)];
        let auth = [cond("Ready", "False", reason::AUTH_FAILED, 1000)];
        rooms.set_ready("team-a/x", Some(Readiness::of_conditions(&spec, false, ts(1500))));
        rooms.set_ready("team-a/y", Some(Readiness::of_conditions(&spec, false, ts(1500))));
        rooms.set_ready("team-b/z", Some(Readiness::of_conditions(&auth, true, ts(1500))));
        rooms.set_ready("team-c/w", Some(Readiness::of_conditions(&auth, false, ts(1500))));
        rooms.refresh(ts(2000));
        let text = m.encode();
        let tenant = |ns: &str, c: &str| {
            line(
                &text,
                &format!("zim_operator_tenant_rooms_not_ready{{room_namespace=\"{ns}\",category=\"{c}\"}}"),
            )
        };
        assert_eq!(tenant("team-a", "invalid_spec"), 2.0);
        assert_eq!(tenant("team-b", "auth"), 1.0);
        assert!(
            !text.contains("room_namespace=\"team-c\""),
            "default credentials failing are the platform's"
        );
        assert_eq!(line(&text, "zim_operator_rooms_not_ready{category=\"auth\",owner=\"platform\"}"), 1.0);
        assert_eq!(line(&text, "zim_operator_rooms_not_ready{category=\"auth\",owner=\"tenant\"}"), 1.0);
        assert_eq!(
            line(&text, "zim_operator_rooms_not_ready{category=\"invalid_spec\",owner=\"tenant\"}"),
            2.0
        );
        assert_eq!(
            line(&text, "zim_operator_rooms_not_ready{category=\"invalid_spec\",owner=\"platform\"}"),
            0.0
        );
        // Fixed: team-a's series goes; a room that becomes Ready leaves the tenant count.
        rooms.set_ready("team-a/x", None);
        let ready = [cond("Ready", "True", reason::AVAILABLE, 1900)];
        rooms.set_ready("team-a/y", Some(Readiness::of_conditions(&ready, false, ts(1900))));
        let text = m.encode();
        assert!(!text.contains("room_namespace=\"team-a\""), "{text}");
        assert!(text.contains("room_namespace=\"team-b\""));
    }
}
