//! A lossless, smaller form of the JSON text of a ZimRoom's spec or status, for the watch cache (see `cached.rs`).
//!
//! The JSON the operator keeps for every cached object repeats the same fragments: field names, and the
//! conditions' types, reasons and fixed messages the operator itself writes (`{"lastTransitionTime":"`,
//! `","status":"False","type":"`, `not reconciling`, …). [`pack`] replaces each fragment of [`FRAGMENTS`] with
//! one byte below 0x20 — a byte compact JSON text never holds: serde_json writes no whitespace and escapes every
//! control character inside strings — and [`unpack`] puts them back. The fragments are ASCII, so the packed text
//! stays valid UTF-8. A text that already holds such a byte (never, for serde_json's output) is kept as it is,
//! behind a marker.

/// The fragments, each replaced by its index + 1 (0x01 …). At most 31; longer ones first where one contains
/// another (the packer takes the first that matches).
const FRAGMENTS: [&str; 31] = [
    "reconciliation is paused by the zim.zego.im/paused annotation",
    "{\"lastTransitionTime\":\"",
    "\",\"status\":\"False\",\"type\":\"",
    "\",\"status\":\"True\",\"type\":\"",
    ",\"observedGeneration\":",
    "\",\"message\":\"",
    ",\"reason\":\"",
    "not reconciling",
    "not stalled",
    "ReconcilePaused",
    "Reconciling\"}",
    "Stalled\"}",
    "Synced\"}",
    "Ready\"}",
    ",\"conditions\":[",
    "Available",
    "Converged",
    "ZIM room ",
    " exists",
    ",\"applied\":{\"roomId\":\"",
    ",\"destroyDelayTime\":",
    ",\"attributesHash\":\"",
    "\"roomName\":\"",
    ",\"managedAttributeKeys\":[",
    ",\"requestId\":\"",
    "{\"roomId\":\"",
    "\",\"appId\":",
    "\"attributes\":[{\"key\":\"",
    "\",\"value\":\"",
    "\"},{\"key\":\"",
    "\"credentialsSecretRef\":{\"name\":\"",
];

/// The first byte of a text kept as it is.
const RAW: u8 = 0;

/// `json` in packed form.
pub(crate) fn pack(json: &str) -> Box<str> {
    if json.bytes().any(|b| b < 0x20) {
        let mut raw = String::with_capacity(json.len() + 1);
        raw.push(char::from(RAW));
        raw.push_str(json);
        return raw.into_boxed_str();
    }
    let mut out = String::with_capacity(json.len());
    let mut rest = json;
    while !rest.is_empty() {
        let first = rest.as_bytes()[0];
        match FRAGMENTS.iter().position(|f| f.as_bytes()[0] == first && rest.starts_with(f)) {
            Some(i) => {
                out.push(char::from(i as u8 + 1));
                rest = &rest[FRAGMENTS[i].len()..];
            }
            None => {
                let c = rest.chars().next().expect("not empty");
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    out.into_boxed_str()
}

/// The JSON text `packed` was made from.
pub(crate) fn unpack(packed: &str) -> String {
    if let Some(raw) = packed.strip_prefix(char::from(RAW)) {
        return raw.to_owned();
    }
    let mut out = String::with_capacity(packed.len() * 2);
    for c in packed.chars() {
        match u32::from(c) {
            n @ 1..=31 => out.push_str(FRAGMENTS[n as usize - 1]),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn fragments_are_ascii_and_fit_below_0x20() {
        assert!(FRAGMENTS.len() < 32);
        for f in FRAGMENTS {
            assert!(f.is_ascii() && !f.is_empty() && !f.bytes().any(|b| b < 0x20), "{f:?}");
        }
    }

    #[test]
    fn an_operator_status_packs_to_less_than_half_and_back() {
        let status = serde_json::json!({
            "roomId": "lobby", "appId": 777001, "observedGeneration": 1, "requestId": "r-1",
            "managedAttributeKeys": ["topic"],
            "applied": {"roomId": "lobby", "roomName": "Lobby", "destroyDelayTime": 600, "attributesHash": "abc"},
            "conditions": [
                {"type": "Ready", "status": "True", "reason": "Available", "message": "ZIM room lobby exists",
                 "lastTransitionTime": "2026-01-05T10:00:01Z", "observedGeneration": 1},
                {"type": "Reconciling", "status": "False", "reason": "ReconcilePaused",
                 "message": "not reconciling", "lastTransitionTime": "2026-01-05T10:00:01Z", "observedGeneration": 1},
                {"type": "Synced", "status": "False", "reason": "ReconcilePaused",
                 "message": "reconciliation is paused by the zim.zego.im/paused annotation",
                 "lastTransitionTime": "2026-01-05T10:00:01Z", "observedGeneration": 1},
            ],
        });
        let status: crate::crd::ZimRoomStatus = serde_json::from_value(status).unwrap();
        let json = serde_json::to_string(&status).unwrap();
        let packed = pack(&json);
        assert!(packed.len() * 2 < json.len(), "{} → {} bytes", json.len(), packed.len());
        assert_eq!(unpack(&packed), json);
    }

    #[test]
    fn a_text_with_a_control_byte_is_kept_as_it_is() {
        for text in ["a\u{1}b", "\u{0}", "{\"x\":\"\u{1f}\"}"] {
            let packed = pack(text);
            assert_eq!(unpack(&packed), text);
        }
    }

    proptest! {
        /// Any text, and any JSON string value, comes back exactly.
        #[test]
        fn any_text_round_trips(text in ".*", value in "\\PC*") {
            prop_assert_eq!(unpack(&pack(&text)), text.clone());
            let json = serde_json::to_string(&serde_json::json!({"message": value, "text": text})).unwrap();
            prop_assert_eq!(unpack(&pack(&json)), json);
        }
    }
}
