//! Pure: what a cluster admin allows the ZimRooms of one namespace, read from annotations on the Namespace
//! (admins own Namespace objects; tenants who may create ZimRooms usually may not edit them — the model ACK and
//! Config Connector use).
//!
//! | annotation on the Namespace | value | absent |
//! |---|---|---|
//! | `zim.zego.im/room-id-prefixes` | comma-separated prefixes a roomId must start with | any roomId |
//! | `zim.zego.im/default-credentials` | `allow` / `deny` | the operator's `--default-credentials-namespaces` (`all`: allow; `annotated`: deny) |
//! | `zim.zego.im/adopt-existing-rooms` | `allow` / `deny` | `allow` |
//! | `zim.zego.im/destroy-adopted-rooms` | `allow` / `deny` | `deny` |
//! | `zim.zego.im/from-user-ids` | comma-separated user IDs `spec.fromUserId` may name | only the Secret's `fromUserId` |
//!
//! A switch accepts exactly `allow` or `deny` (lower case, surrounding blanks ignored). Any other value — `true`,
//! `false`, `Allow`, a typo — counts as `deny`: the refusal's message says so, and every reconcile of the
//! namespace's ZimRooms sends an `InvalidPolicy` warning event naming the annotation ([`Policy::invalid`]). A typo
//! never opens anything. Every refusal is decided before any ZIM call.

use std::collections::BTreeMap;

/// The annotation keys (on Namespaces).
pub mod annotation {
    /// Comma-separated roomId prefixes the namespace may declare.
    pub const ROOM_ID_PREFIXES: &str = "zim.zego.im/room-id-prefixes";
    /// `allow` / `deny`: whether ZimRooms without `spec.credentialsSecretRef` may use the operator's Secret.
    pub const DEFAULT_CREDENTIALS: &str = "zim.zego.im/default-credentials";
    /// `allow` / `deny`: whether a room that already exists may be adopted.
    pub const ADOPT_EXISTING: &str = "zim.zego.im/adopt-existing-rooms";
    /// `allow` / `deny`: whether deleting a ZimRoom with `deletionPolicy: Delete` may destroy an adopted room.
    pub const DESTROY_ADOPTED: &str = "zim.zego.im/destroy-adopted-rooms";
    /// Comma-separated user IDs `spec.fromUserId` may name.
    pub const FROM_USER_IDS: &str = "zim.zego.im/from-user-ids";
    /// Every policy annotation (a change to any of them re-queues the namespace's ZimRooms).
    pub const ALL: [&str; 5] =
        [ROOM_ID_PREFIXES, DEFAULT_CREDENTIALS, ADOPT_EXISTING, DESTROY_ADOPTED, FROM_USER_IDS];
}

/// Whether namespaces without the `default-credentials` annotation may use the operator's default Secret.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum DefaultCredentialsScope {
    /// Every watched namespace (unless it is annotated `deny`).
    #[default]
    All,
    /// Only namespaces annotated `zim.zego.im/default-credentials: allow`.
    Annotated,
}

/// One namespace's policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Where it comes from, for messages (`namespace team-a`).
    pub source: String,
    /// RoomId prefixes; `None`: any roomId.
    pub room_id_prefixes: Option<Vec<String>>,
    /// Whether the operator's default credentials may be used; `Err` carries why not.
    pub default_credentials: Result<(), String>,
    /// Whether an existing room may be adopted; `Err` carries why not.
    pub adopt: Result<(), String>,
    /// Whether an adopted room may be destroyed on deletion; `Err` carries why not.
    pub destroy_adopted: Result<(), String>,
    /// User IDs `spec.fromUserId` may name besides the Secret's; `None`: any (the `apply` command, which acts
    /// with the caller's own credentials).
    pub from_user_ids: Option<Vec<String>>,
    /// One message per switch whose value is neither `allow` nor `deny` (each counts as `deny`).
    pub invalid: Vec<String>,
}

impl Policy {
    /// No restriction: `zim-operator apply` (the caller's own credentials and rooms) and library users.
    pub fn unrestricted() -> Self {
        Self {
            source: "no policy".into(),
            room_id_prefixes: None,
            default_credentials: Ok(()),
            adopt: Ok(()),
            destroy_adopted: Ok(()),
            from_user_ids: None,
            invalid: Vec::new(),
        }
    }

    /// The policy of namespace `ns` from its annotations.
    pub fn from_namespace(
        ns: &str,
        annotations: Option<&BTreeMap<String, String>>,
        scope: DefaultCredentialsScope,
    ) -> Self {
        let get = |key: &str| annotations.and_then(|a| a.get(key)).map(|v| v.trim());
        let list = |key: &str| {
            get(key)
                .map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect())
        };
        let invalid = std::cell::RefCell::new(Vec::new());
        let switch = |key: &str, absent_allows: bool, absent_why: &str| -> Result<(), String> {
            match get(key) {
                None if absent_allows => Ok(()),
                None => Err(format!("namespace {ns} is not annotated {key}: allow ({absent_why})")),
                Some("allow") => Ok(()),
                Some("deny") => Err(format!("namespace {ns} is annotated {key}: deny")),
                Some(v) => {
                    let why = format!(
                        "namespace {ns} is annotated {key}: {v:?}, which is neither allow nor deny and counts as deny"
                    );
                    invalid.borrow_mut().push(why.clone());
                    Err(why)
                }
            }
        };
        Self {
            source: format!("namespace {ns}"),
            room_id_prefixes: list(annotation::ROOM_ID_PREFIXES),
            default_credentials: switch(
                annotation::DEFAULT_CREDENTIALS,
                scope == DefaultCredentialsScope::All,
                "the operator runs with --default-credentials-namespaces annotated",
            ),
            adopt: switch(annotation::ADOPT_EXISTING, true, ""),
            destroy_adopted: switch(
                annotation::DESTROY_ADOPTED,
                false,
                "adopted rooms are never destroyed unless the namespace allows it",
            ),
            from_user_ids: Some(list(annotation::FROM_USER_IDS).unwrap_or_default()),
            invalid: invalid.into_inner(),
        }
    }

    /// Whether the namespace may declare `room_id`; `Err` says why not and how to change it.
    pub fn check_room_id(&self, room_id: &str) -> Result<(), String> {
        let Some(prefixes) = &self.room_id_prefixes else { return Ok(()) };
        if prefixes.iter().any(|p| room_id.starts_with(p.as_str())) {
            return Ok(());
        }
        Err(format!(
            "roomId {room_id} is outside the room IDs {} may declare (annotation {}: {}); no ZIM call is made. Use a roomId with one of those prefixes, or ask a cluster admin to extend the annotation",
            self.source,
            annotation::ROOM_ID_PREFIXES,
            prefixes.join(","),
        ))
    }

    /// The refusal a reconcile would make of an object declaring `room_id`, with or without its own credentials
    /// Secret (`own_secret`), acting as `spec_from_user` where the Secret names `secret_from_user` — the checks
    /// made before any ZIM call. The controller asks this of a converged object it finds at a start before leaving
    /// it to the prober, so a policy changed while the operator was down applies at once.
    pub fn refusal(
        &self,
        room_id: &str,
        own_secret: bool,
        spec_from_user: Option<&str>,
        secret_from_user: Option<&str>,
    ) -> Option<String> {
        if let Err(why) = self.check_room_id(room_id) {
            return Some(why);
        }
        if !own_secret && let Err(why) = &self.default_credentials {
            return Some(why.clone());
        }
        self.from_user_id(spec_from_user, secret_from_user, "").err()
    }

    /// The user to act as: `spec` (`spec.fromUserId`) only if it is the Secret's (`secret`) or on the
    /// namespace's allow-list; else the Secret's, else `default`. `Err` says why the spec's is refused.
    pub fn from_user_id(
        &self,
        spec: Option<&str>,
        secret: Option<&str>,
        default: &str,
    ) -> Result<String, String> {
        match spec {
            None => Ok(secret.unwrap_or(default).to_owned()),
            Some(s) if secret == Some(s) => Ok(s.to_owned()),
            Some(s) => match &self.from_user_ids {
                None => Ok(s.to_owned()),
                Some(allowed) if allowed.iter().any(|a| a == s) => Ok(s.to_owned()),
                Some(allowed) => Err(format!(
                    "spec.fromUserId {s} is not allowed in {}: the operator acts as the credentials Secret's fromUserId, or a user ID listed in the namespace annotation {} (now: {}). Remove spec.fromUserId, or ask a cluster admin to list it",
                    self.source,
                    annotation::FROM_USER_IDS,
                    if allowed.is_empty() { "not set".to_owned() } else { allowed.join(",") },
                )),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_is_each_check_made_before_a_call() {
        let annotations: BTreeMap<String, String> = [
            (annotation::ROOM_ID_PREFIXES.to_owned(), "ta-".to_owned()),
            (annotation::DEFAULT_CREDENTIALS.to_owned(), "deny".to_owned()),
            (annotation::FROM_USER_IDS.to_owned(), "bot".to_owned()),
        ]
        .into();
        let p = Policy::from_namespace("a", Some(&annotations), DefaultCredentialsScope::All);
        assert_eq!(p.refusal("ta-1", true, None, None), None);
        assert_eq!(p.refusal("ta-1", true, Some("bot"), None), None);
        assert_eq!(p.refusal("ta-1", true, Some("ops"), Some("ops")), None, "the Secret's own user");
        assert!(p.refusal("tb-1", true, None, None).unwrap().contains(annotation::ROOM_ID_PREFIXES));
        assert!(p.refusal("ta-1", false, None, None).unwrap().contains(annotation::DEFAULT_CREDENTIALS));
        assert!(p.refusal("ta-1", true, Some("ceo"), None).unwrap().contains(annotation::FROM_USER_IDS));
        assert_eq!(Policy::unrestricted().refusal("x", false, Some("ceo"), None), None);
    }

    fn ns(pairs: &[(&str, &str)]) -> Policy {
        let a: BTreeMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Policy::from_namespace("team-a", Some(&a), DefaultCredentialsScope::All)
    }

    #[test]
    fn absent_annotations_keep_the_safe_defaults() {
        let p = ns(&[]);
        assert!(p.check_room_id("anything").is_ok());
        assert!(p.default_credentials.is_ok());
        assert!(p.adopt.is_ok());
        let why = p.destroy_adopted.clone().unwrap_err();
        assert!(why.contains("zim.zego.im/destroy-adopted-rooms: allow"), "{why}");
        // fromUserId: only the Secret's when no allow-list is set.
        assert_eq!(p.from_user_id(None, None, "zim-operator").unwrap(), "zim-operator");
        assert_eq!(p.from_user_id(None, Some("bot"), "zim-operator").unwrap(), "bot");
        assert_eq!(p.from_user_id(Some("bot"), Some("bot"), "zim-operator").unwrap(), "bot");
        let why = p.from_user_id(Some("ceo"), Some("bot"), "zim-operator").unwrap_err();
        assert!(why.contains("spec.fromUserId ceo is not allowed in namespace team-a"), "{why}");
        assert!(why.contains("(now: not set)"), "{why}");
    }

    #[test]
    fn prefixes_allow_only_their_room_ids() {
        let p = ns(&[(annotation::ROOM_ID_PREFIXES, " team-a-, shared- ,")]);
        assert!(p.check_room_id("team-a-lobby").is_ok());
        assert!(p.check_room_id("shared-news").is_ok());
        let why = p.check_room_id("team-b-lobby").unwrap_err();
        assert!(why.contains("roomId team-b-lobby is outside") && why.contains("team-a-,shared-"), "{why}");
        // An empty list allows nothing.
        assert!(ns(&[(annotation::ROOM_ID_PREFIXES, "")]).check_room_id("x").is_err());
    }

    /// Each value of a switch: only `allow` allows, only `allow` and `deny` are valid; every other value denies
    /// and is listed in `invalid` (for the warning event).
    #[test]
    fn switches_accept_exactly_allow_and_deny() {
        let cases: &[(&str, bool, bool)] = &[
            // value, allowed, valid
            ("allow", true, true),
            (" allow ", true, true),
            ("deny", false, true),
            ("true", false, false),
            ("false", false, false),
            ("Allow", false, false),
            ("DENY", false, false),
            ("yes please", false, false),
            ("", false, false),
        ];
        for &(value, allowed, valid) in cases {
            for key in
                [annotation::ADOPT_EXISTING, annotation::DESTROY_ADOPTED, annotation::DEFAULT_CREDENTIALS]
            {
                let p = ns(&[(key, value)]);
                let switch = match key {
                    annotation::ADOPT_EXISTING => &p.adopt,
                    annotation::DESTROY_ADOPTED => &p.destroy_adopted,
                    _ => &p.default_credentials,
                };
                assert_eq!(switch.is_ok(), allowed, "{key}: {value:?}");
                assert_eq!(p.invalid.is_empty(), valid, "{key}: {value:?}: {:?}", p.invalid);
                if !valid {
                    let why = switch.as_ref().unwrap_err();
                    assert!(why.contains("neither allow nor deny and counts as deny"), "{why}");
                    assert_eq!(p.invalid, std::slice::from_ref(why));
                }
            }
        }
    }

    #[test]
    fn annotated_scope_needs_an_explicit_allow_for_default_credentials() {
        let none = Policy::from_namespace("t", None, DefaultCredentialsScope::Annotated);
        assert!(none.default_credentials.unwrap_err().contains("--default-credentials-namespaces annotated"));
        let a: BTreeMap<String, String> = [(annotation::DEFAULT_CREDENTIALS.into(), "allow".into())].into();
        let allowed = Policy::from_namespace("t", Some(&a), DefaultCredentialsScope::Annotated);
        assert!(allowed.default_credentials.is_ok());
    }

    #[test]
    fn the_allow_list_admits_listed_users_and_unrestricted_admits_any() {
        let p = ns(&[(annotation::FROM_USER_IDS, "bot-a,bot-b")]);
        assert_eq!(p.from_user_id(Some("bot-b"), None, "op").unwrap(), "bot-b");
        assert!(p.from_user_id(Some("bot-c"), None, "op").unwrap_err().contains("(now: bot-a,bot-b)"));
        assert_eq!(Policy::unrestricted().from_user_id(Some("x"), None, "op").unwrap(), "x");
    }
}
