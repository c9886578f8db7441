//! Documented limits of ZIM room fields.
//!
//! Sources: the CreateRoom/ModifyRoomAttribute OpenAPI files (IDs ≤32 bytes, RoomName ≤64 bytes,
//! DestroyDelayTime ≤10800, 20 attributes per room in the description) and the client room-attribute guide (key
//! ≤16 bytes, value ≤1024 bytes, ≤5120 bytes for all values together). The server pages do not state attribute
//! sizes; we apply the client guide's limits on both sides rather than let a room fail half-way (not
//! confirmed by ZEGO's server pages). The ID charset is the union of the characters the different doc versions list.

/// Maximum bytes of a RoomId or UserId.
pub const MAX_ID_BYTES: usize = 32;
/// Maximum bytes of a RoomName.
pub const MAX_ROOM_NAME_BYTES: usize = 64;
/// Maximum DestroyDelayTime, seconds.
pub const MAX_DESTROY_DELAY_SECS: u32 = 10800;
/// Maximum attributes per room.
pub const MAX_ATTRIBUTES: usize = 20;
/// Maximum bytes of an attribute key.
pub const MAX_ATTRIBUTE_KEY_BYTES: usize = 16;
/// Maximum bytes of an attribute value.
pub const MAX_ATTRIBUTE_VALUE_BYTES: usize = 1024;
/// Maximum bytes of all attribute values of a room together.
pub const MAX_ATTRIBUTE_TOTAL_BYTES: usize = 5120;
/// The special characters ZIM allows in IDs besides ASCII letters and digits.
pub const ID_SPECIAL_CHARS: &str = "!#$%&()+-:;<=.>?@[]^_ ,{}|~";

/// Whether `c` may appear in a ZIM RoomId or UserId.
pub fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || ID_SPECIAL_CHARS.contains(c)
}

/// Checks a RoomId or UserId: non-empty, ≤32 bytes, ZIM charset. The error says what is wrong.
pub fn check_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("must not be empty".into());
    }
    if id.len() > MAX_ID_BYTES {
        return Err(format!("is {} bytes, at most {MAX_ID_BYTES} are allowed", id.len()));
    }
    if let Some(c) = id.chars().find(|c| !is_id_char(*c)) {
        return Err(format!(
            "contains {c:?}; only ASCII letters, digits and the characters {ID_SPECIAL_CHARS:?} are allowed"
        ));
    }
    Ok(())
}

/// The ID charset as a regular expression, for the CRD schema (a test holds it to [`ID_SPECIAL_CHARS`]).
pub const ID_PATTERN: &str = r"^[A-Za-z0-9!#$%&()+\-:;<=.>?@\[\]\^_ ,{}|~]+$";

/// Seconds of clock difference ZEGO's signature check tolerates.
pub const SIGNATURE_WINDOW_SECS: i64 = 600;

/// Users one KickoutRoomUser may name (`UserId[]`, `maxItems: 50` in remove-user-from-the-room.yaml; more is
/// 660000011).
pub const MAX_KICKOUT_USERS: usize = 50;
/// Bytes of KickoutRoomUser's `CustomReason` (the page recommends no more, its schema says `maxLength: 32`).
pub const MAX_CUSTOM_REASON_BYTES: usize = 32;
/// The largest `Limit` of QueryRoomUserList: one page holds at most 500 users (empty or larger means 500).
pub const MAX_ROOM_USER_PAGE: u32 = 500;
/// The most members [`crate::zim::ZimApi::room_member_ids`] collects: 20 full pages. ZEGO documents no room
/// size limit; a room with more is listed in part, and the caller lists again after acting on those.
pub const MAX_LISTED_MEMBERS: usize = 10_000;
/// Bytes of a room message's `Message` ("MessageBody introduction": 2 KB by default, up to 32 KB on request).
pub const MAX_ROOM_MESSAGE_BYTES: usize = 2048;
/// Bytes of a message's `ExtendedData` ("MessageBody introduction": 1 KB).
pub const MAX_EXTENDED_DATA_BYTES: usize = 1024;

/// The rate ZEGO documents for most actions, calls per second per AppId (and the client's default).
pub const DOCUMENTED_CALLS_PER_SECOND: u32 = 20;

/// The calls per second ZEGO documents for `action`, per AppId: 10 for SendRoomMessage (its page and the
/// overview), [`DOCUMENTED_CALLS_PER_SECOND`] for every other action the operator uses.
pub fn documented_calls_per_second(action: crate::zim::types::Action) -> u32 {
    match action {
        crate::zim::types::Action::SendRoomMessage => 10,
        _ => DOCUMENTED_CALLS_PER_SECOND,
    }
}

/// The calls per second to allow for `action` when `configured` is the rate of the 20/s actions: scaled by the
/// action's documented share of 20 (SendRoomMessage gets half), at least 1; 0 (no limit) stays 0. So the default
/// 20 paces SendRoomMessage at its documented 10/s, and a limit raised with ZEGO (say 40) raises it in proportion.
pub fn calls_per_second(action: crate::zim::types::Action, configured: u32) -> u32 {
    if configured == 0 {
        return 0;
    }
    let scaled = u64::from(configured) * u64::from(documented_calls_per_second(action))
        / u64::from(DOCUMENTED_CALLS_PER_SECOND);
    scaled.clamp(1, u64::from(u32::MAX)) as u32
}

#[cfg(test)]
fn id_pattern() -> String {
    let mut class = String::from("^[A-Za-z0-9");
    for c in ID_SPECIAL_CHARS.chars() {
        if matches!(c, '[' | ']' | '^' | '-' | '\\') {
            class.push('\\');
        }
        class.push(c);
    }
    class.push_str("]+$");
    class
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_pattern_is_the_charset() {
        assert_eq!(ID_PATTERN, id_pattern());
        let re = regex::Regex::new(ID_PATTERN).unwrap();
        for c in (0u8..128).map(char::from) {
            assert_eq!(re.is_match(&c.to_string()), is_id_char(c), "{c:?}");
        }
    }

    #[test]
    fn per_action_rates_follow_the_documented_ones() {
        use crate::zim::types::Action;
        assert_eq!(calls_per_second(Action::SendRoomMessage, 20), 10);
        assert_eq!(calls_per_second(Action::SendRoomMessage, 40), 20);
        assert_eq!(calls_per_second(Action::SendRoomMessage, 1), 1);
        assert_eq!(calls_per_second(Action::SendRoomMessage, 0), 0);
        assert_eq!(calls_per_second(Action::KickoutRoomUser, 20), 20);
        for action in Action::ALL {
            // The actions documented at 20/s run at exactly the configured rate, as before.
            let documented = documented_calls_per_second(action);
            assert!(documented <= DOCUMENTED_CALLS_PER_SECOND, "{action}");
            assert_eq!(calls_per_second(action, 20), documented, "{action}");
            if documented == DOCUMENTED_CALLS_PER_SECOND {
                assert_eq!(calls_per_second(action, 37), 37, "{action}");
            }
        }
    }

    #[test]
    fn ids_follow_the_documented_charset_and_length() {
        assert!(check_id("lobby-1").is_ok());
        assert!(check_id("a b{c}|~").is_ok());
        assert!(check_id(&"x".repeat(32)).is_ok());
        assert!(check_id(&"x".repeat(33)).unwrap_err().contains("33 bytes"));
        assert!(check_id("").is_err());
        assert!(check_id("caf\u{e9}").unwrap_err().contains("'\u{e9}'"));
        assert!(check_id("a/b").is_err());
    }
}
