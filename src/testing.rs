//! A `ZimRoom` builder for test fixtures, so a fixture says what it is instead of editing YAML text:
//!
//! ```ignore
//! let r = room("lobby").namespace("chat").room_name("Lobby").destroy_delay(600).attribute("topic", "general").build();
//! ```
//!
//! `build()` gives the object as the API server would hand it to the operator (generation 1); `manifest()` and
//! `yaml()` give it as a user writes it (no generation, no status), for the CLI and the real API server.
//! Shared by the unit tests in `src/` and by every integration-test binary (through `tests/support`). Not part of
//! the product: hidden from the documentation, and nothing outside the tests calls it.

use crate::crd::{DeletionPolicy, PAUSED_ANNOTATION, RoomAttribute, SecretRef, ZimRoom, ZimRoomSpec};

/// The AppId of the test fixtures' ZEGO app (the simulator is configured with it).
pub const APP: u32 = 777001;
/// The server secret of [`APP`] (a throwaway value: the md5 of "1").
pub const SECRET: &str = "c4ca4238a0b923820dcc509a6f75849b";
/// A second ZEGO app, another team's (the end-to-end simulator knows both).
pub const APP_B: u32 = 777002;
/// The server secret of [`APP_B`] (the md5 of "2").
pub const SECRET_B: &str = "c81e728d9d4c2f636f067f89cc14862c";

/// A ZimRoom named `name` with nothing else set: the spec's schema defaults (destroyDelayTime 10800), no
/// namespace (the CLI reads that as `default`; the end-to-end harness puts it in the test's namespace).
pub fn room(name: &str) -> RoomBuilder {
    // Through serde, so the defaults are the ones a manifest that omits the fields gets.
    let spec: ZimRoomSpec =
        serde_json::from_value(serde_json::json!({})).expect("an empty spec deserializes");
    RoomBuilder { room: ZimRoom::new(name, spec) }
}

/// Builds a [`ZimRoom`]; see [`room`].
#[derive(Clone, Debug)]
#[must_use]
pub struct RoomBuilder {
    room: ZimRoom,
}

impl RoomBuilder {
    /// `metadata.namespace`.
    pub fn namespace(mut self, namespace: &str) -> Self {
        self.room.metadata.namespace = Some(namespace.into());
        self
    }

    /// A `metadata.annotations` entry.
    pub fn annotation(mut self, key: &str, value: &str) -> Self {
        self.room.metadata.annotations.get_or_insert_default().insert(key.into(), value.into());
        self
    }

    /// The paused annotation, `"true"`.
    pub fn paused(self) -> Self {
        self.annotation(PAUSED_ANNOTATION, "true")
    }

    /// A `metadata.labels` entry.
    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.room.metadata.labels.get_or_insert_default().insert(key.into(), value.into());
        self
    }

    /// `spec.roomId`.
    pub fn room_id(mut self, room_id: &str) -> Self {
        self.room.spec.room_id = Some(room_id.into());
        self
    }

    /// `spec.roomName`.
    pub fn room_name(mut self, room_name: &str) -> Self {
        self.room.spec.room_name = Some(room_name.into());
        self
    }

    /// `spec.destroyDelayTime`, in seconds.
    pub fn destroy_delay(mut self, seconds: u32) -> Self {
        self.room.spec.destroy_delay_time = seconds;
        self
    }

    /// Sets the attribute `key` in `spec.attributes` (appended, or its value replaced where the key is already
    /// there; autoDelete false). Duplicate keys, which only a manifest can have, need YAML.
    pub fn attribute(mut self, key: &str, value: &str) -> Self {
        let attributes = &mut self.room.spec.attributes;
        match attributes.iter_mut().find(|a| a.key == key) {
            Some(a) => a.value = value.into(),
            None => attributes.push(RoomAttribute {
                key: key.into(),
                value: value.into(),
                auto_delete: false,
                enforce: None,
            }),
        }
        self
    }

    /// Sets the attribute `key` with `enforce: OnCreate` (sent with CreateRoom only).
    pub fn attribute_on_create(mut self, key: &str, value: &str) -> Self {
        self = self.attribute(key, value);
        if let Some(a) = self.room.spec.attributes.iter_mut().find(|a| a.key == key) {
            a.enforce = Some(crate::crd::Enforce::OnCreate);
        }
        self
    }

    /// `spec.managementPolicy: Observe`.
    pub fn observe(mut self) -> Self {
        self.room.spec.management_policy = Some(crate::crd::ManagementPolicy::Observe);
        self
    }

    /// `spec.deletionPolicy`.
    pub fn deletion_policy(mut self, policy: DeletionPolicy) -> Self {
        self.room.spec.deletion_policy = Some(policy);
        self
    }

    /// `spec.credentialsSecretRef.name`.
    pub fn secret_ref(mut self, secret: &str) -> Self {
        self.room.spec.credentials_secret_ref = Some(SecretRef { name: secret.into() });
        self
    }

    /// `spec.fromUserId`.
    #[allow(clippy::wrong_self_convention)] // named after the field, not a conversion
    pub fn from_user(mut self, user: &str) -> Self {
        self.room.spec.from_user_id = Some(user.into());
        self
    }

    /// The object as the API server hands it to the operator: generation 1, no status.
    pub fn build(self) -> ZimRoom {
        let mut room = self.room;
        room.metadata.generation = Some(1);
        room
    }

    /// The object as a user writes it, as JSON: no generation, no status.
    pub fn manifest(&self) -> serde_json::Value {
        serde_json::to_value(&self.room).expect("a ZimRoom serializes")
    }

    /// The object as a user writes it, as a YAML document.
    pub fn yaml(&self) -> String {
        crate::yaml::to_yaml(&self.room).expect("a ZimRoom serializes")
    }
}

impl From<RoomBuilder> for ZimRoom {
    fn from(b: RoomBuilder) -> ZimRoom {
        b.build()
    }
}

/// The form a ZimRoom takes in the operator's watch cache (for the benchmark's memory table).
pub use crate::controller::CachedRoom;
