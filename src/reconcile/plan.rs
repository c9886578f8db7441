//! Pure planning: which attribute changes bring a room to its declared state. No I/O.

use std::collections::{BTreeMap, HashMap};

use md5::{Digest, Md5};

use crate::crd::RoomAttribute;
use crate::zim::types::{AttributeAction, ModifyRoomAttribute, RoomAttribute as ZimAttribute};

/// The attribute changes one ModifyRoomAttribute call should make.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AttributePlan {
    /// Keys to set: (key, value, autoDelete).
    pub set: Vec<(String, String, bool)>,
    /// Owned keys the spec no longer declares and the room still has.
    pub delete: Vec<String>,
}

impl AttributePlan {
    /// Whether nothing needs to change.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.delete.is_empty()
    }

    /// The plan as ModifyRoomAttribute items (sets first, then deletes; every item continues on error).
    pub fn to_items(&self) -> Vec<ModifyRoomAttribute> {
        let sets = self.set.iter().map(|(k, v, auto)| ModifyRoomAttribute {
            action: AttributeAction::Set,
            key: k.clone(),
            value: v.clone(),
            auto_delete: u8::from(*auto),
            stop_on_error: 0,
        });
        let deletes = self.delete.iter().map(|k| ModifyRoomAttribute {
            action: AttributeAction::Delete,
            key: k.clone(),
            value: String::new(),
            auto_delete: 0,
            stop_on_error: 0,
        });
        sets.chain(deletes).collect()
    }
}

/// Plans the changes from `current` (as read from ZIM) to `declared`, touching only declared keys and keys the
/// object owned before (`owned`). Keys set by anyone else are left alone.
pub fn plan_attributes(
    declared: &[RoomAttribute],
    owned: &[String],
    current: &[ZimAttribute],
) -> AttributePlan {
    let current: HashMap<&str, (&str, bool)> =
        current.iter().map(|a| (a.key.as_str(), (a.value.as_str(), a.auto_delete == 1))).collect();
    let mut plan = AttributePlan::default();
    for a in declared {
        if current.get(a.key.as_str()) != Some(&(a.value.as_str(), a.auto_delete)) {
            plan.set.push((a.key.clone(), a.value.clone(), a.auto_delete));
        }
    }
    for key in owned {
        if !declared.iter().any(|a| &a.key == key) && current.contains_key(key.as_str()) {
            plan.delete.push(key.clone());
        }
    }
    plan.set.sort();
    plan.delete.sort();
    plan
}

/// A fingerprint of the declared attributes, independent of their order.
pub fn attributes_hash(declared: &[RoomAttribute]) -> String {
    let sorted: BTreeMap<&str, (&str, bool)> =
        declared.iter().map(|a| (a.key.as_str(), (a.value.as_str(), a.auto_delete))).collect();
    let canonical = serde_json::to_vec(&sorted).unwrap_or_default();
    hex::encode(Md5::digest(&canonical))
}

/// The declared keys, sorted.
pub fn declared_keys(declared: &[RoomAttribute]) -> Vec<String> {
    let mut keys: Vec<String> = declared.iter().map(|a| a.key.clone()).collect();
    keys.sort();
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decl(k: &str, v: &str) -> RoomAttribute {
        RoomAttribute { key: k.into(), value: v.into(), auto_delete: false, enforce: None }
    }
    fn cur(k: &str, v: &str) -> ZimAttribute {
        ZimAttribute { key: k.into(), value: v.into(), seq: 1, auto_delete: 0 }
    }

    #[test]
    fn plans_sets_and_owned_deletes_only() {
        let declared = [decl("topic", "general"), decl("mode", "quiet")];
        let owned = ["topic".to_string(), "old".to_string(), "gone".to_string()];
        let current = [cur("topic", "general"), cur("mode", "loud"), cur("old", "x"), cur("client", "y")];
        let plan = plan_attributes(&declared, &owned, &current);
        assert_eq!(plan.set, vec![("mode".into(), "quiet".into(), false)]);
        // "client" was set by someone else; "gone" is already absent.
        assert_eq!(plan.delete, vec!["old".to_string()]);
        assert_eq!(plan.to_items().len(), 2);
    }

    #[test]
    fn nothing_to_do_when_in_sync() {
        let declared = [decl("a", "1")];
        assert!(plan_attributes(&declared, &["a".into()], &[cur("a", "1")]).is_empty());
        let auto = [RoomAttribute { key: "a".into(), value: "1".into(), auto_delete: true, enforce: None }];
        assert!(!plan_attributes(&auto, &[], &[cur("a", "1")]).is_empty());
    }

    #[test]
    fn hash_ignores_order_but_not_values() {
        let a = attributes_hash(&[decl("a", "1"), decl("b", "2")]);
        assert_eq!(a, attributes_hash(&[decl("b", "2"), decl("a", "1")]));
        assert_ne!(a, attributes_hash(&[decl("a", "1"), decl("b", "3")]));
    }
}
