//! The Lease itself: reading, taking, renewing and releasing it through the API server, with optimistic
//! concurrency (every write carries the resourceVersion it was based on, so of two writers one gets a conflict).

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use tokio::time::Instant;

use super::{Attempt, Config, Hold};

/// The version of the Lease this process last read or wrote.
struct Observed {
    resource_version: Option<String>,
    /// When this version was first seen (this process's clock).
    since: Instant,
}

/// Takes and renews the Lease through the API server.
pub(super) struct Elector {
    api: Api<Lease>,
    pub(super) config: Config,
    observed: Option<Observed>,
    /// The Lease as this replica last wrote it while holding it (the next renewal's base).
    mine: Option<Lease>,
}

impl Elector {
    /// An elector for `config`'s Lease (nothing is read yet).
    pub(super) fn new(client: kube::Client, config: Config) -> Self {
        Self { api: Api::namespaced(client, &config.namespace), config, observed: None, mine: None }
    }

    /// Notes `lease` as read or written now, and returns since when this process has seen its record unchanged:
    /// the validity clock restarts only when the record changed.
    fn observe(&mut self, lease: &Lease) -> Instant {
        let resource_version = lease.metadata.resource_version.clone();
        let since = match &self.observed {
            Some(o) if o.resource_version == resource_version => o.since,
            _ => Instant::now(),
        };
        self.observed = Some(Observed { resource_version, since });
        since
    }

    async fn try_hold_inner(&mut self) -> Result<Hold, kube::Error> {
        let name = self.config.name.clone();
        // The holder renews from the record it wrote last: one request per renewal. A conflict means someone
        // else wrote the Lease: read it and decide below.
        if let Some(mut lease) = self.mine.take() {
            lease.spec.get_or_insert_default().renew_time = Some(MicroTime(jiff::Timestamp::now()));
            match self.api.replace(&name, &PostParams::default(), &lease).await {
                Ok(written) => {
                    self.observe(&written);
                    self.mine = Some(written);
                    return Ok(Hold::Held);
                }
                Err(kube::Error::Api(e)) if e.code == 409 => {}
                Err(e) => {
                    self.mine = Some(lease);
                    return Err(e);
                }
            }
        }
        let Some(lease) = self.api.get_opt(&name).await? else {
            let lease = Lease {
                metadata: ObjectMeta { name: Some(name), ..Default::default() },
                spec: Some(claim(&LeaseSpec::default(), &self.config)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(written) => {
                    self.observe(&written);
                    self.mine = Some(written);
                    Ok(Hold::Held)
                }
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(Hold::Other(None)),
                Err(e) => Err(e),
            };
        };
        let since = self.observe(&lease);
        let current = lease.spec.clone().unwrap_or_default();
        let (identity, duration) = (&self.config.identity, self.config.lease_duration);
        if let Some(holder) = valid_other_holder(&current, identity, since, duration, Instant::now()) {
            return Ok(Hold::Other(Some(holder)));
        }
        let mut next = lease;
        next.spec = Some(claim(&current, &self.config));
        match self.api.replace(&name, &PostParams::default(), &next).await {
            Ok(written) => {
                self.observe(&written);
                self.mine = Some(written);
                Ok(Hold::Held)
            }
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(Hold::Other(None)),
            Err(e) => Err(e),
        }
    }

    /// Gives the Lease up if this replica holds it (holder, times and duration cleared, as kube-lease-manager
    /// did): a standby takes it at its next attempt instead of waiting for the lease duration.
    pub(super) async fn release(&mut self) -> Result<bool, kube::Error> {
        let Some(mut lease) = self.mine.take() else { return Ok(false) };
        for _ in 0..2 {
            let spec = lease.spec.get_or_insert_default();
            spec.holder_identity = None;
            spec.acquire_time = None;
            spec.renew_time = None;
            spec.lease_duration_seconds = None;
            match self.api.replace(&self.config.name, &PostParams::default(), &lease).await {
                Ok(_) => return Ok(true),
                // Written since (metadata only, or a take-over): release only a Lease that is still ours.
                Err(kube::Error::Api(e)) if e.code == 409 => {
                    let Some(current) = self.api.get_opt(&self.config.name).await? else { return Ok(false) };
                    let holder = current.spec.as_ref().and_then(|s| s.holder_identity.as_deref());
                    if holder != Some(self.config.identity.as_str()) {
                        return Ok(false);
                    }
                    lease = current;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(false)
    }
}

impl Attempt for Elector {
    async fn try_hold(&mut self) -> Result<Hold, String> {
        self.try_hold_inner().await.map_err(|e| e.to_string())
    }
}

/// The holder of `spec` if it is another replica whose Lease is still valid: the record, unchanged since `since`
/// on this process's clock, lasts its `leaseDurationSeconds` (or `duration` when it has none).
pub(super) fn valid_other_holder(
    spec: &LeaseSpec,
    identity: &str,
    since: Instant,
    duration: Duration,
    now: Instant,
) -> Option<String> {
    let holder = spec.holder_identity.as_deref().filter(|h| !h.is_empty() && *h != identity)?;
    let lasts =
        spec.lease_duration_seconds.and_then(|s| u64::try_from(s).ok()).map_or(duration, Duration::from_secs);
    (now < since + lasts).then(|| holder.to_owned())
}

/// The record this replica writes to hold the Lease after `current`: a renewal keeps the acquisition; taking it
/// from another holder, or after a release, starts a new one and counts a transition.
pub(super) fn claim(current: &LeaseSpec, config: &Config) -> LeaseSpec {
    let now = MicroTime(jiff::Timestamp::now());
    let ours = current.holder_identity.as_deref() == Some(config.identity.as_str());
    LeaseSpec {
        holder_identity: Some(config.identity.clone()),
        lease_duration_seconds: Some(i32::try_from(config.lease_duration.as_secs()).unwrap_or(i32::MAX)),
        acquire_time: if ours {
            current.acquire_time.clone().or(Some(now.clone()))
        } else {
            Some(now.clone())
        },
        renew_time: Some(now),
        lease_transitions: Some(current.lease_transitions.unwrap_or(0).saturating_add(i32::from(!ours))),
        ..current.clone()
    }
}
