//! Attributes: converging the declared keys with one ModifyRoomAttribute, touching only owned keys, and keeping
//! track of which keys were actually written when ZIM refuses some.

use std::collections::HashSet;

use tracing::debug;

use crate::crd::ZimRoom;
use crate::zim::types::ModifyRoomAttributeRequest;
use crate::zim::{Class, Credentials, Terminal, ZimApi, ZimError, codes};

use super::failure::ErrorCategory;
use super::run::Run;
use super::{Outcome, Reconciler, Requeue, plan};

impl<Z: ZimApi> Reconciler<Z> {
    pub(super) async fn sync_attributes(
        &self,
        run: &mut Run<'_>,
        room: &ZimRoom,
        creds: &Credentials,
        from: &str,
        current: &[crate::zim::types::RoomAttribute],
    ) -> Outcome {
        // Only `enforce: Always` attributes are kept; an `OnCreate` key is the clients' after creation: never
        // rewritten, and never deleted as a formerly owned key (switching a key to OnCreate releases it).
        let declared = &room.spec.enforced_attributes();
        let owned: Vec<String> = run
            .status
            .managed_attribute_keys
            .iter()
            .filter(|k| !room.spec.is_on_create(k))
            .cloned()
            .collect();
        let planned = plan::plan_attributes(declared, &owned, current);
        let hash = plan::attributes_hash(declared);
        if planned.is_empty() {
            debug!("attributes already as declared");
            run.mark_attributes_applied(declared, hash);
            return run.succeed();
        }
        let request = ModifyRoomAttributeRequest {
            from_user_id: from.to_owned(),
            room_id: room.room_id(),
            attributes: planned.to_items(),
        };
        let failed: Vec<(String, i64)> = match self.zim.modify_room_attribute(creds, &request).await {
            Ok(resp) => {
                run.status.request_id = Some(resp.envelope.request_id.clone());
                resp.err_key_list.iter().map(|e| (e.key.clone(), e.sub_code)).collect()
            }
            // Every key failed: ZIM answers the code with the per-key list.
            Err(e @ ZimError::Api { .. }) if e.class() == Class::Terminal(Terminal::InvalidParams) => {
                if let Some(id) = e.request_id() {
                    run.status.request_id = Some(id.to_owned());
                }
                planned.to_items().into_iter().map(|i| (i.key, e.code().unwrap_or_default())).collect()
            }
            Err(e) => return run.zim_failure(&e),
        };
        if failed.is_empty() {
            run.mark_attributes_applied(declared, hash);
            return run.succeed();
        }
        // Partial failure. Owned are only the keys actually written: a declared key whose write failed is not
        // owned unless it was before, and a key whose deletion failed stays owned. The fingerprint stays unapplied
        // so a later attempt retries; refusals for good retry slowly.
        let previously: HashSet<&str> =
            run.status.managed_attribute_keys.iter().map(String::as_str).collect();
        let failed_keys: HashSet<&str> = failed.iter().map(|(k, _)| k.as_str()).collect();
        let mut owned: Vec<String> = plan::declared_keys(declared)
            .into_iter()
            .filter(|k| !failed_keys.contains(k.as_str()) || previously.contains(k.as_str()))
            .collect();
        owned.extend(failed.iter().filter(|(k, _)| planned.delete.contains(k)).map(|(k, _)| k.clone()));
        owned.sort();
        owned.dedup();
        run.status.managed_attribute_keys = owned;
        let refused = failed.iter().all(|(_, code)| matches!(codes::classify(*code), Class::Terminal(_)));
        let list: Vec<String> = failed.iter().map(|(k, c)| format!("{k} (code {c})")).collect();
        let mut message = format!(
            "ModifyRoomAttribute did not apply {} of {} attribute changes: {}",
            failed.len(),
            planned.to_items().len(),
            list.join(", ")
        );
        run.attributes_refused = refused;
        let requeue = if refused {
            message.push_str(
                "; ZIM refuses them (a room holds at most 20 attributes, clients' keys included, and 5120 bytes of values): change spec.attributes or free keys in the room",
            );
            Requeue::Slow
        } else {
            Requeue::Backoff { slow: false }
        };
        run.fail_keep_ready(&message, requeue, ErrorCategory::Attributes)
    }
}
