//! Writing to the object: the status by server-side apply (field manager `zim-operator`, only when it changed,
//! each write bounded by a timeout), the creation intent before the first CreateRoom, and events.

use std::time::Duration;

use kube::Api;
use kube::Resource;
use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder};
use tracing::warn;

use crate::crd::{ZimRoom, ZimRoomStatus};
use crate::metrics::Metrics;
use crate::reconcile::{IntentSink, Note};

/// The field manager of every status write.
pub const FIELD_MANAGER: &str = "zim-operator";

/// The longest event note; longer messages are cut at a character boundary.
const MAX_EVENT_NOTE_BYTES: usize = 1000;

/// Why a status write failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The API server refused or failed the patch.
    #[error("writing the status failed: {0}")]
    Api(#[source] kube::Error),
    /// No answer within the write timeout.
    #[error("writing the status timed out after {0:?}")]
    Timeout(Duration),
}

/// Writes the status of `name` with server-side apply, bounded by `timeout`; returns the object's new
/// resourceVersion (as an integer, when it is one).
pub(crate) async fn write_status(
    api: &Api<ZimRoom>,
    name: &str,
    status: &ZimRoomStatus,
    timeout: Duration,
    metrics: &Metrics,
) -> Result<Option<u64>, WriteError> {
    let patch = serde_json::json!({
        "apiVersion": "zim.zego.im/v1alpha1",
        "kind": "ZimRoom",
        "status": status,
    });
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let patch = Patch::Apply(&patch);
    match tokio::time::timeout(timeout, api.patch_status(name, &params, &patch)).await {
        Ok(Ok(written)) => {
            metrics.reconcile.status_writes.inc();
            Ok(written.metadata.resource_version.as_deref().and_then(crate::reconcile::decide::stale::parse))
        }
        Ok(Err(e)) => Err(WriteError::Api(e)),
        Err(_) => Err(WriteError::Timeout(timeout)),
    }
}

/// Writes `status` if it differs from what the object carries; returns the new resourceVersion if it wrote.
pub(crate) async fn write_if_changed(
    api: &Api<ZimRoom>,
    room: &ZimRoom,
    status: &ZimRoomStatus,
    timeout: Duration,
    metrics: &Metrics,
) -> Result<Option<u64>, WriteError> {
    if room.status.as_ref() == Some(status) {
        return Ok(None);
    }
    let name = room.metadata.name.as_deref().unwrap_or_default();
    write_status(api, name, status, timeout, metrics).await
}

/// Writes the creation intent to the status before the first CreateRoom.
pub(crate) struct StatusSink<'a> {
    pub(crate) api: &'a Api<ZimRoom>,
    pub(crate) room: &'a ZimRoom,
    pub(crate) timeout: Duration,
    pub(crate) metrics: &'a Metrics,
    pub(crate) objects: &'a super::objects::Objects,
}

impl IntentSink for StatusSink<'_> {
    type Error = WriteError;

    async fn persist_intent(&self, status: &ZimRoomStatus) -> Result<(), WriteError> {
        let name = self.room.metadata.name.as_deref().unwrap_or_default();
        let version = write_status(self.api, name, status, self.timeout, self.metrics).await?;
        self.objects.written(self.room, version);
        Ok(())
    }
}

/// Publishes `note` as an event on `room`; a failure is logged, never fatal.
pub(crate) async fn publish(recorder: &Recorder, room: &ZimRoom, note: &Note) {
    let event = KubeEvent {
        type_: if note.warning { EventType::Warning } else { EventType::Normal },
        reason: note.reason.clone(),
        note: Some(truncate(&note.message, MAX_EVENT_NOTE_BYTES)),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&event, &room.object_ref(&())).await {
        warn!(error = %e, reason = %note.reason, "could not publish an event");
    }
}

/// `text` cut to at most `max` bytes at a character boundary.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text[..cut].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_whole_characters() {
        assert_eq!(truncate("abc", 5), "abc");
        assert_eq!(truncate("ééé", 5), "éé");
        assert_eq!(truncate(&"x".repeat(2000), MAX_EVENT_NOTE_BYTES).len(), MAX_EVENT_NOTE_BYTES);
    }
}
