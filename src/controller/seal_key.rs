//! The seal key (see [`crate::reconcile::seal`]): a Secret in the operator's own namespace
//! (`--seal-secret`, the chart names it `<release>-seal`), data field `key`, 32 random bytes.
//!
//! - **Created by the operator** at its first start (the chart cannot: Helm has no stable random value, and Argo CD
//!   renders without `lookup`, so a chart-made key would change at every sync). Every replica reads it at start;
//!   two replicas starting together both try to create it and the loser reads the winner's. It is not part of the
//!   Helm release, so `helm uninstall` leaves it (and a reinstall keeps trusting the old records); delete it by
//!   hand with the CRD.
//! - **The legacy sweep.** Objects created before the key carry records without its seal: records of a version
//!   without seals (an upgrade), or sealed with a key that was deleted (a rotation). While the key lacks the
//!   annotation `zim.zego.im/records-sealed`, those objects' records are trusted as they are ([`Sealer`]'s legacy
//!   window) and the leader seals each one (a status patch with the copy's resourceVersion as a precondition, so
//!   it seals exactly what it read). Once a pass finds none left, it annotates the key and closes the window; a
//!   later start reads the annotation and opens no window. The key is read when a replica starts leading, before
//!   its first reconcile (a standby makes no decision that needs it); until it is read, nothing is reconciled. **To rotate the key**, delete the Secret and restart the
//!   operator: the new key re-seals every record present at that moment.
//! - The operator needs `get` and `create` on Secrets in its namespace, and `patch` on that Secret (the chart's
//!   `-self` Role). A tenant cannot read it: it is in the operator's namespace.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::reflector::Store;
use kube::{Api, Client};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::cached::CachedRoom;
use super::status::FIELD_MANAGER;
use crate::crd::ZimRoom;
use crate::reconcile::decide::Trust;
use crate::reconcile::seal::{KEY_BYTES, Sealer, new_key};

/// The data field holding the key.
pub const KEY_FIELD: &str = "key";
/// Set on the key Secret once every record older than the key is sealed.
pub const SWEPT_ANNOTATION: &str = "zim.zego.im/records-sealed";
/// Passes of the sweep before it gives up until the next start (the window then stays open).
const MAX_PASSES: usize = 30;
/// Between passes: long enough for the cache to see the previous pass's writes.
const PASS_INTERVAL: Duration = Duration::from_secs(2);

/// Where the key lives.
#[derive(Clone, Debug)]
pub struct SealSecret {
    /// The operator's namespace.
    pub namespace: String,
    /// The Secret's name.
    pub name: String,
}

impl std::fmt::Display for SealSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Reads the key Secret into `sealer` before the first reconcile, creating the Secret if it does not exist
/// (with its legacy window open while the key has not swept the older records); retried until it succeeds or
/// `shutdown`, each failure logged with what to fix.
pub(crate) async fn install(
    client: &Client,
    at: &SealSecret,
    sealer: &Sealer,
    shutdown: &CancellationToken,
) -> bool {
    let mut delay = Duration::from_millis(500);
    loop {
        match load(client.clone(), at, sealer).await {
            Ok(()) => return true,
            Err(e) => {
                warn!(error = %e, retry_in = ?delay, "cannot load the seal key; no reconcile runs until it is loaded")
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return false,
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(30));
    }
}

/// Reads the key Secret into `sealer`, creating the Secret if it does not exist.
async fn load(client: Client, at: &SealSecret, sealer: &Sealer) -> Result<(), String> {
    let api: Api<Secret> = Api::namespaced(client, &at.namespace);
    let rbac = "the operator needs get and create on Secrets in its own namespace (the chart's -self Role)";
    let secret = match api.get_opt(&at.name).await {
        Ok(Some(secret)) => secret,
        Ok(None) => {
            let new = Secret {
                metadata: ObjectMeta {
                    name: Some(at.name.clone()),
                    labels: Some(
                        [("app.kubernetes.io/managed-by".to_owned(), "zim-operator".to_owned())].into(),
                    ),
                    ..Default::default()
                },
                type_: Some("Opaque".into()),
                data: Some([(KEY_FIELD.to_owned(), ByteString(new_key().to_vec()))].into()),
                ..Default::default()
            };
            match api.create(&PostParams::default(), &new).await {
                Ok(created) => {
                    info!(secret = %at, "created the seal key");
                    created
                }
                // Another replica created it first.
                Err(kube::Error::Api(e)) if e.code == 409 => api
                    .get(&at.name)
                    .await
                    .map_err(|e| format!("cannot read the seal key Secret {at}: {e} ({rbac})"))?,
                Err(e) => return Err(format!("cannot create the seal key Secret {at}: {e} ({rbac})")),
            }
        }
        Err(e) => return Err(format!("cannot read the seal key Secret {at}: {e} ({rbac})")),
    };
    let key = secret.data.as_ref().and_then(|d| d.get(KEY_FIELD)).map(|b| b.0.as_slice()).unwrap_or_default();
    if key.len() < KEY_BYTES {
        return Err(format!(
            "the seal key Secret {at} has no data.{KEY_FIELD} of at least {KEY_BYTES} bytes; delete it and restart the operator to have a new one made"
        ));
    }
    if !sealer.set_key(key) {
        // A leader that lost its lease exits, so a key is never set twice in one process; keep the first.
        warn!(secret = %at, "the seal key was loaded already");
    }
    if !swept(&secret) {
        let created = secret.metadata.creation_timestamp.as_ref().map_or(i64::MAX, |t| t.0.as_second());
        sealer.open_legacy(created);
        info!(secret = %at, "records older than the seal key are trusted until the leader has sealed them");
    } else {
        sealer.close_legacy();
    }
    Ok(())
}

fn swept(secret: &Secret) -> bool {
    secret.metadata.annotations.as_ref().is_some_and(|a| a.contains_key(SWEPT_ANNOTATION))
}

/// The leader's sweep: seals every cached record the legacy window trusts, then marks the key. Returns at once
/// when the window is closed (the key was read at this leader's start).
pub(crate) async fn sweep(
    client: Client,
    at: SealSecret,
    sealer: Arc<Sealer>,
    stores: Vec<Store<CachedRoom>>,
    shutdown: CancellationToken,
) {
    if !sealer.legacy_open() {
        return;
    }
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &at.namespace);
    // Polled, not awaited: a second waiter on a store's readiness is not always woken (the prober polls too).
    while !stores.iter().all(|s| s.wait_until_ready().now_or_never().is_some()) {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
    for pass in 1..=MAX_PASSES {
        let legacy: Vec<ZimRoom> = stores
            .iter()
            .flat_map(|s| s.state())
            .map(|o| o.room())
            .filter(|r| sealer.trust(r) == Trust::Legacy)
            .collect();
        if legacy.is_empty() {
            let mark = serde_json::json!({"metadata": {"annotations": {SWEPT_ANNOTATION: jiff::Timestamp::now().to_string()}}});
            match secrets.patch(&at.name, &PatchParams::default(), &Patch::Merge(&mark)).await {
                Ok(_) => {
                    sealer.close_legacy();
                    info!(secret = %at, passes = pass, "every record older than the seal key is sealed");
                }
                Err(e) => {
                    warn!(secret = %at, error = %e, "cannot mark the seal key as swept; the next start sweeps again")
                }
            }
            return;
        }
        let mut sealed = 0usize;
        for room in &legacy {
            if shutdown.is_cancelled() {
                return;
            }
            if seal_one(&client, &sealer, room).await {
                sealed += 1;
            }
        }
        info!(pass, found = legacy.len(), sealed, "sealing records older than the seal key");
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(PASS_INTERVAL) => {}
        }
    }
    warn!(secret = %at, "records older than the seal key are still unsealed after {MAX_PASSES} passes; the next start sweeps again");
}

/// Seals `room`'s record as read: the patch carries the copy's resourceVersion, so a record changed meanwhile is
/// left for the next pass.
async fn seal_one(client: &Client, sealer: &Sealer, room: &ZimRoom) -> bool {
    let (Some(ns), Some(name), Some(status)) =
        (room.metadata.namespace.as_deref(), room.metadata.name.as_deref(), room.status.as_ref())
    else {
        return false;
    };
    let uid = room.metadata.uid.as_deref().unwrap_or_default();
    let patch = serde_json::json!({
        "metadata": {"resourceVersion": room.metadata.resource_version},
        "status": {"seal": sealer.seal(uid, status)},
    });
    let api: Api<ZimRoom> = Api::namespaced(client.clone(), ns);
    match api
        .patch_status(
            name,
            &PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() },
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => true,
        Err(kube::Error::Api(e)) if e.code == 409 || e.code == 404 => false,
        Err(e) => {
            warn!(namespace = ns, name, error = %e, "cannot seal a record older than the seal key");
            false
        }
    }
}
