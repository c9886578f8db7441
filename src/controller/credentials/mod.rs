//! Credentials from Secrets: parsing (`appId`, `serverSecret`, optional `fromUserId` and `callbackSecret`), a
//! cache refreshed when the Secret changes, the last good credentials of each Secret (so deletion can finish
//! after the Secret is gone), the callback secrets per AppId (for verifying ZEGO's callbacks), and the
//! metadata-only Secret watch that re-queues the ZimRooms using a Secret — only when its data changed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::PartialObjectMeta;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use tracing::warn;

use super::cached::Declared;
use crate::callback::{CallbackSecret, CallbackSecrets};
use crate::crd::ZimRoom;
use crate::lock;
use crate::reconcile::{CredentialsError, ResolvedCredentials};
use crate::zim::Credentials;

/// A Secret: (namespace, name).
pub(crate) type SecretKey = (String, String);

/// Parses a credentials Secret: `appId` (decimal), `serverSecret`, optional `fromUserId`. Errors never show values.
pub fn parse_secret(name: &str, secret: &Secret) -> Result<ResolvedCredentials, CredentialsError> {
    let invalid =
        |reason: String| CredentialsError::Invalid { source_name: format!("Secret {name}"), reason };
    let data = secret.data.clone().unwrap_or_default();
    let text = |k: &str| -> Result<Option<String>, CredentialsError> {
        match data.get(k) {
            None => Ok(None),
            Some(b) => String::from_utf8(b.0.clone())
                .map(|s| Some(s.trim().to_owned()))
                .map_err(|_| invalid(format!("key {k} is not UTF-8 text"))),
        }
    };
    let app_id = text("appId")?.ok_or_else(|| invalid("key appId is missing".into()))?;
    let app_id: u32 = app_id.parse().map_err(|_| invalid("key appId is not a decimal number".into()))?;
    let secret = text("serverSecret")?.filter(|s| !s.is_empty());
    let secret = secret.ok_or_else(|| invalid("key serverSecret is missing or empty".into()))?;
    let from_user_id = text("fromUserId")?.filter(|s| !s.is_empty());
    Ok(ResolvedCredentials { credentials: Credentials::new(app_id, secret), from_user_id })
}

/// Classifies a failed Secret read: the API server's 404 means the Secret does not exist; anything else (403,
/// a timeout, a broken connection) means it could not be read, which says nothing about the Secret.
fn read_error(ns: &str, name: &str, e: &kube::Error) -> CredentialsError {
    let source_name = format!("Secret {ns}/{name}");
    match e {
        kube::Error::Api(s) if s.code == 404 => CredentialsError::NotFound(source_name),
        kube::Error::Api(s) if s.code == 403 => CredentialsError::Unreadable {
            source_name,
            reason: format!("forbidden ({}); check the operator's RBAC for Secrets in {ns}", s.message),
        },
        other => CredentialsError::Unreadable { source_name, reason: other.to_string() },
    }
}

/// Credentials read from Secrets, cached until the Secret changes; plus the last good ones per Secret.
pub(crate) struct CredentialCache {
    client: Client,
    default_secret: Option<SecretKey>,
    entries: Mutex<HashMap<SecretKey, Result<ResolvedCredentials, CredentialsError>>>,
    last_good: Mutex<HashMap<SecretKey, ResolvedCredentials>>,
    /// The last good credentials of each (namespace, AppId), from the namespace's own Secrets.
    last_good_by_app: Mutex<HashMap<(String, u32), ResolvedCredentials>>,
    /// Secrets seen deleted whose last good credentials are still held.
    deleted: Mutex<std::collections::HashSet<SecretKey>>,
    /// The `callbackSecret` of each Secret read, with the Secret's AppId.
    callback: Mutex<HashMap<SecretKey, (u32, CallbackSecret)>>,
    /// A fingerprint of each Secret's data as last read: a change that leaves it equal re-queues nothing.
    fingerprints: Mutex<HashMap<SecretKey, u64>>,
}

impl CredentialCache {
    pub(crate) fn new(client: Client, default_secret: Option<SecretKey>) -> Self {
        Self {
            client,
            default_secret,
            entries: Mutex::default(),
            last_good: Mutex::default(),
            last_good_by_app: Mutex::default(),
            deleted: Mutex::default(),
            callback: Mutex::default(),
            fingerprints: Mutex::default(),
        }
    }

    /// The Secret a room's credentials come from: `spec.credentialsSecretRef` in its namespace, else the default.
    pub(crate) fn secret_key(&self, room: &impl Declared) -> Option<SecretKey> {
        match room.secret_name() {
            Some(name) => Some((room.meta().namespace.clone().unwrap_or_default(), name.to_owned())),
            None => self.default_secret.clone(),
        }
    }

    /// The credentials for `room`.
    pub(crate) async fn for_room(
        &self,
        room: &impl Declared,
    ) -> Result<ResolvedCredentials, CredentialsError> {
        match self.secret_key(room) {
            Some(key) => self.get(&key).await,
            None => Err(CredentialsError::NotFound(
                "(spec.credentialsSecretRef is unset and the operator has no default credentials Secret)"
                    .into(),
            )),
        }
    }

    /// The last good credentials `room`'s Secret gave, if any.
    pub(crate) fn last_good_for(&self, room: &impl Declared) -> Option<ResolvedCredentials> {
        let key = self.secret_key(room)?;
        lock(&self.last_good).get(&key).cloned()
    }

    /// The last good credentials seen for `app_id` from a Secret of namespace `ns`.
    pub(crate) fn last_good_in(&self, ns: &str, app_id: u32) -> Option<ResolvedCredentials> {
        lock(&self.last_good_by_app).get(&(ns.to_owned(), app_id)).cloned()
    }

    /// The credentials to delete `room`'s room with: those of the app recorded on its status — its Secret's
    /// current or last good ones when they are of that app, else the last good ones of that app from another
    /// Secret of the object's own namespace. Never another namespace's: a tenant who points its object at a
    /// missing Secret and writes another team's AppId into its status gets no credentials at all (the deletion
    /// is blocked and says how to release the room), not that team's.
    pub(crate) async fn for_deletion(&self, room: &ZimRoom) -> Result<ResolvedCredentials, String> {
        let recorded = room.status.as_ref().and_then(|s| s.app_id);
        let of_app = |c: &ResolvedCredentials| recorded.is_none_or(|app| c.credentials.app_id == app);
        let current = self.for_room(room).await;
        if let Ok(c) = &current
            && of_app(c)
        {
            return Ok(c.clone());
        }
        if let Some(c) = self.last_good_for(room).filter(|c| of_app(c)) {
            return Ok(c);
        }
        let ns = room.metadata.namespace.as_deref().unwrap_or_default();
        if let Some(c) = recorded.and_then(|app| self.last_good_in(ns, app)) {
            return Ok(c);
        }
        Err(match (current, recorded) {
            (Ok(c), Some(app)) => format!(
                "the credentials now resolve to AppId {}, the room lives in AppId {app}, and the operator holds no credentials of that app",
                c.credentials.app_id
            ),
            (Err(e), _) => e.to_string(),
            (Ok(_), None) => "no credentials".into(),
        })
    }

    async fn get(&self, key: &SecretKey) -> Result<ResolvedCredentials, CredentialsError> {
        if let Some(hit) = lock(&self.entries).get(key) {
            return hit.clone();
        }
        self.read(key).await.map(|(c, _)| c)?
    }

    /// Reads `key`'s Secret from the API server into the cache; also returns whether its data differs from the
    /// last read (true when there was none). `Err`: it could not be read (nothing cached).
    async fn read(
        &self,
        key: &SecretKey,
    ) -> Result<(Result<ResolvedCredentials, CredentialsError>, bool), CredentialsError> {
        let (ns, name) = key;
        let api: Api<Secret> = Api::namespaced(self.client.clone(), ns);
        let (result, fingerprint) = match api.get_opt(name).await {
            Ok(Some(secret)) => {
                let parsed = parse_secret(&format!("{ns}/{name}"), &secret);
                match (&parsed, callback_secret(&secret)) {
                    (Ok(c), Some(cb)) => lock(&self.callback).insert(key.clone(), (c.credentials.app_id, cb)),
                    _ => lock(&self.callback).remove(key),
                };
                (parsed, Some(data_fingerprint(&secret)))
            }
            Ok(None) => {
                lock(&self.callback).remove(key);
                (Err(CredentialsError::NotFound(format!("Secret {ns}/{name}"))), None)
            }
            // Not cached: the next attempt asks again.
            Err(e) => return Err(read_error(ns, name, &e)),
        };
        let changed = {
            let mut prints = lock(&self.fingerprints);
            let before = match fingerprint {
                Some(f) => prints.insert(key.clone(), f),
                None => prints.remove(key),
            };
            before.is_none() || before != fingerprint
        };
        if let Ok(good) = &result {
            lock(&self.last_good).insert(key.clone(), good.clone());
            lock(&self.last_good_by_app).insert((ns.clone(), good.credentials.app_id), good.clone());
        }
        lock(&self.entries).insert(key.clone(), result.clone());
        Ok((result, changed))
    }

    /// Whether `key`'s Secret, reported changed by the watch, changed its data: read again when the operator
    /// has read it before (a label or annotation change re-queues nothing), else assumed changed (an object may
    /// be waiting for it to appear).
    pub(crate) async fn data_changed(&self, key: &SecretKey) -> bool {
        if !lock(&self.fingerprints).contains_key(key) {
            self.invalidate(key);
            return true;
        }
        match self.read(key).await {
            Ok((_, changed)) => {
                if !changed {
                    tracing::debug!(secret = %format!("{}/{}", key.0, key.1), "Secret changed without a data change: its rooms are not re-queued");
                }
                changed
            }
            Err(_) => {
                self.invalidate(key);
                true
            }
        }
    }

    /// Reads the Secrets in `keys` not read yet (so the callback secrets of every app in use are known soon
    /// after a start, before any room needs its credentials).
    pub(crate) async fn warm(&self, keys: impl IntoIterator<Item = SecretKey>) {
        for key in keys {
            if !lock(&self.entries).contains_key(&key) {
                let _ = self.get(&key).await;
            }
        }
    }

    /// Drops the cached credentials of `key` (its Secret changed).
    pub(crate) fn invalidate(&self, key: &SecretKey) {
        lock(&self.entries).remove(key);
    }

    /// Notes that `key`'s Secret was deleted: its last good credentials are kept only while an object still uses
    /// them (see [`CredentialCache::evict_unused`]).
    pub(crate) fn deleted(&self, key: &SecretKey) {
        lock(&self.entries).remove(key);
        lock(&self.callback).remove(key);
        lock(&self.fingerprints).remove(key);
        lock(&self.deleted).insert(key.clone());
    }

    /// Evicts the last good credentials of deleted Secrets that no object refers to any more (`used`: the Secrets
    /// the cached objects refer to), and those of apps no object's status records (`apps`). Returns how many
    /// were evicted.
    pub(crate) fn evict_unused(
        &self,
        used: &std::collections::HashSet<SecretKey>,
        apps: &std::collections::HashSet<u32>,
    ) -> usize {
        let mut evicted = 0;
        let mut deleted = lock(&self.deleted);
        let mut last_good = lock(&self.last_good);
        deleted.retain(|key| {
            if used.contains(key) {
                return true;
            }
            evicted += usize::from(last_good.remove(key).is_some());
            false
        });
        let last_good_keys: Vec<(SecretKey, u32)> =
            last_good.iter().map(|(k, c)| (k.clone(), c.credentials.app_id)).collect();
        drop(last_good);
        // Cached reads of Secrets no object refers to (e.g. names that never existed): read again if needed.
        for map_len in [
            retain_len(&self.entries, |k| used.contains(k)),
            retain_len(&self.fingerprints, |k| used.contains(k)),
            retain_len(&self.callback, |k| used.contains(k)),
        ] {
            evicted += map_len;
        }
        let live_apps: std::collections::HashSet<(&str, u32)> =
            last_good_keys.iter().map(|((ns, _), app)| (ns.as_str(), *app)).collect();
        lock(&self.last_good_by_app).retain(|(ns, app), _| {
            let keep = apps.contains(app) || live_apps.contains(&(ns.as_str(), *app));
            evicted += usize::from(!keep);
            keep
        });
        evicted
    }
}

/// Keeps the entries of `map` whose key `keep` accepts; returns how many went.
fn retain_len<V>(map: &Mutex<HashMap<SecretKey, V>>, keep: impl Fn(&SecretKey) -> bool) -> usize {
    let mut map = lock(map);
    let before = map.len();
    map.retain(|k, _| keep(k));
    before - map.len()
}

#[cfg(test)]
impl CredentialCache {
    /// How many entries each map holds: cached reads, fingerprints, callback secrets, last good per Secret and per
    /// app, deleted Secrets still held.
    pub(crate) fn sizes(&self) -> [usize; 6] {
        [
            lock(&self.entries).len(),
            lock(&self.fingerprints).len(),
            lock(&self.callback).len(),
            lock(&self.last_good).len(),
            lock(&self.last_good_by_app).len(),
            lock(&self.deleted).len(),
        ]
    }
}

impl CallbackSecrets for CredentialCache {
    fn secrets(&self, app_id: u32) -> Vec<CallbackSecret> {
        lock(&self.callback).values().filter(|(app, _)| *app == app_id).map(|(_, s)| s.clone()).collect()
    }
}

/// The optional `callbackSecret` key (the console's CallbackSecret, for verifying ZEGO's callbacks).
fn callback_secret(secret: &Secret) -> Option<CallbackSecret> {
    let value = secret.data.as_ref()?.get("callbackSecret")?;
    let text = String::from_utf8(value.0.clone()).ok()?;
    let trimmed = text.trim();
    (!trimmed.is_empty()).then(|| CallbackSecret::new(trimmed))
}

/// A fingerprint of a Secret's data (in memory only; never logged).
fn data_fingerprint(secret: &Secret) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    if let Some(data) = &secret.data {
        for (k, v) in data {
            k.hash(&mut h);
            v.0.hash(&mut h);
        }
    }
    h.finish()
}

/// The Secret of a watch event.
pub(crate) fn key_of(secret: &PartialObjectMeta<Secret>) -> SecretKey {
    (secret.namespace().unwrap_or_default(), secret.name_any())
}

/// Secret changes that should re-queue ZimRooms. The watch's initial listing (at start and after a reconnect)
/// only drops cached credentials: the rooms read them afresh on their next reconcile, and start-up does not
/// reconcile every room a second time.
pub(crate) fn secret_changes(
    cache: Arc<CredentialCache>,
    events: impl futures::Stream<Item = Result<watcher::Event<PartialObjectMeta<Secret>>, watcher::Error>>
    + Send
    + 'static,
) -> futures::stream::BoxStream<'static, Result<PartialObjectMeta<Secret>, watcher::Error>> {
    events
        .default_backoff()
        .filter_map(move |event| {
            let cache = cache.clone();
            async move {
                match event {
                    // Only a change of the data re-queues: a label, an annotation or another controller's
                    // metadata write does not.
                    Ok(watcher::Event::Apply(s)) => cache.data_changed(&key_of(&s)).await.then_some(Ok(s)),
                    Ok(watcher::Event::Delete(s)) => {
                        cache.deleted(&key_of(&s));
                        Some(Ok(s))
                    }
                    Ok(watcher::Event::InitApply(s)) => {
                        cache.invalidate(&key_of(&s));
                        None
                    }
                    Ok(_) => None,
                    Err(e) => {
                        warn!(error = %e, "Secret watch failed; retrying");
                        None
                    }
                }
            }
        })
        .boxed()
}

#[cfg(test)]
mod tests;
