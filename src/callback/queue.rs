//! The bounded queue between the receiver and the controller: one [`RoomEvent`] per (AppId, room) at a time.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use super::Event;

/// A verified room event for the controller: re-check this room now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomEvent {
    /// The AppId the room lives in.
    pub app_id: u32,
    /// The room.
    pub room_id: String,
    /// What ZEGO reported (today always [`Event::RoomDestroy`]).
    pub event: Event,
}

/// The (AppId, room) pairs with an event in the queue.
pub(super) type Queued = Arc<Mutex<HashSet<(u32, String)>>>;

/// The controller's end of the queue.
pub struct RoomEvents {
    pub(super) rx: mpsc::Receiver<RoomEvent>,
    pub(super) queued: Queued,
}

impl RoomEvents {
    /// The next event; `None` once the server is gone and the queue is empty. From this call on, a new
    /// callback for the same room queues a new event.
    pub async fn recv(&mut self) -> Option<RoomEvent> {
        let event = self.rx.recv().await?;
        Some(self.taken(event))
    }

    /// The next event if one is queued, without waiting.
    pub fn try_recv(&mut self) -> Option<RoomEvent> {
        let event = self.rx.try_recv().ok()?;
        Some(self.taken(event))
    }

    /// Events waiting.
    pub fn len(&self) -> usize {
        self.rx.len()
    }

    /// Whether no event is waiting.
    pub fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }

    fn taken(&self, event: RoomEvent) -> RoomEvent {
        // The server inserts the key under this lock right after queueing, so it is there to remove.
        crate::lock(&self.queued).remove(&(event.app_id, event.room_id.clone()));
        event
    }
}
