//! ZIM return codes and how the operator treats each one.
//!
//! The table follows ZEGO's "Return codes" page. Every outcome of a call, including transport
//! failures, lands in one [`Class`]; the reconcile loop decides retries from the class alone.

/// How the operator treats an outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Class {
    /// The call did what was asked.
    Ok,
    /// The thing already exists: 660300014 (room) or 660700002 (user), or 660300008 (an empty room that still
    /// exists, in its delayed-destruction period).
    Exists,
    /// The room does not exist (660300001).
    NotFound,
    /// Retry with backoff: server busy or internal errors, HTTP 5xx, timeouts, connection errors.
    Transient,
    /// A code the table does not know: retried like a transient error, but slowly.
    Unknown,
    /// Rate limited: back off and let the shared limiter slow everyone down.
    Throttled,
    /// Will not succeed until something changes (credentials, spec, plan).
    Terminal(Terminal),
}

/// Why a terminal outcome will not succeed by retrying.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Terminal {
    /// Signature, AppId or timestamp rejected, or the app is not enabled for ZIM: check the credentials and clock.
    Auth,
    /// The request's parameters were refused.
    InvalidParams,
    /// The app's room quota is used up (660300015).
    Quota,
}

impl Class {
    /// Whether a retry may succeed without anything changing.
    pub fn is_retryable(self) -> bool {
        matches!(self, Class::Transient | Class::Unknown | Class::Throttled)
    }

    /// A short fixed label, for metrics and logs.
    pub fn label(self) -> &'static str {
        match self {
            Class::Ok => "ok",
            Class::Exists => "exists",
            Class::NotFound => "not_found",
            Class::Transient => "transient",
            Class::Unknown => "unknown",
            Class::Throttled => "throttled",
            Class::Terminal(Terminal::Auth) => "auth",
            Class::Terminal(Terminal::InvalidParams) => "invalid_params",
            Class::Terminal(Terminal::Quota) => "quota",
        }
    }
}

/// Success.
pub const OK: i64 = 0;
/// Room does not exist (or was destroyed).
pub const ROOM_NOT_FOUND: i64 = 660300001;
/// Room user list empty: the room exists and is in its delayed-destruction period.
pub const ROOM_EMPTY: i64 = 660300008;
/// Room already exists.
pub const ROOM_EXISTS: i64 = 660300014;
/// Room count exceeds the app's quota.
pub const ROOM_QUOTA: i64 = 660300015;
/// AppId-level call rate exceeded.
pub const RATE_LIMITED_APP: i64 = 660300005;
/// Group/room-level call rate exceeded.
pub const RATE_LIMITED_ROOM: i64 = 660300006;
/// Input parameter missing or invalid.
pub const INVALID_PARAMS: i64 = 660000002;
/// Too many users in one request (KickoutRoomUser: more than 50 `UserId[]`).
pub const TOO_MANY_USERS: i64 = 660000011;
/// A UserID longer than 32 bytes.
pub const USER_ID_TOO_LONG: i64 = 660000012;
/// KickoutRoomUser: a user named is not in the room (or does not exist). Retrying the same list will not help;
/// list the room again.
pub const USER_NOT_IN_ROOM: i64 = 660300002;
/// SendRoomMessage: room messages do not support receipts (`HasReceipt`).
pub const ROOM_MESSAGE_NO_RECEIPT: i64 = 660300013;
/// A message larger than allowed.
pub const MESSAGE_TOO_LARGE: i64 = 660400001;
/// UserRegister rate exceeded.
pub const REGISTER_RATE_LIMITED: i64 = 660700001;
/// User already registered.
pub const USER_EXISTS: i64 = 660700002;
/// Operator (FromUserId) not registered.
pub const OPERATOR_NOT_REGISTERED: i64 = 660500002;
/// User ID does not exist, is logged out, or was only registered on the server and never logged in.
pub const USER_NOT_FOUND: i64 = 660200001;
/// User does not exist (not logged in to ZIM).
pub const USER_NOT_LOGGED_IN: i64 = 51102;

/// Whether `code` says the FromUserId is not (or no longer) registered, so registering it again may help.
pub fn is_unregistered_operator(code: i64) -> bool {
    matches!(code, OPERATOR_NOT_REGISTERED | USER_NOT_FOUND | USER_NOT_LOGGED_IN)
}
/// Signature expired (timestamp outside ±10 minutes).
pub const SIGNATURE_EXPIRED: i64 = 100000004;
/// Signature wrong.
pub const SIGNATURE_WRONG: i64 = 100000005;

/// Classifies a ZIM `Code`.
pub fn classify(code: i64) -> Class {
    use Class::*;
    match code {
        0 => Ok,
        ROOM_EXISTS | USER_EXISTS | ROOM_EMPTY => Exists,
        ROOM_NOT_FOUND => NotFound,
        // Rate limits: the gateway (7), AppId level, room level, UserRegister, SendMessageToAllUsers.
        7 | RATE_LIMITED_APP | RATE_LIMITED_ROOM | REGISTER_RATE_LIMITED | 660500003 => Throttled,
        // Busy and internal errors: "please try again later". 100000010/11 may also mean an unknown AppId
        // (UNCONFIRMED), so they are retried rather than declared fatal.
        1 | 105001 | 100000010 | 100000011 | 100000012 | 100000015 | 660000001 | 660000003 | 660300007
        | 660600015 | 660700013 | 660700016 | 660700017 => Transient,
        // A FromUserId that is (no longer) registered: registration is retried on the next attempt.
        USER_NOT_LOGGED_IN | USER_NOT_FOUND | OPERATOR_NOT_REGISTERED | 660700012 | 660700015 => Transient,
        // Authentication and app configuration.
        3 | 100000000 | 100000001 | SIGNATURE_EXPIRED | SIGNATURE_WRONG | 100000016 | 100000017 => {
            Terminal(self::Terminal::Auth)
        }
        // Malformed requests and refused parameters.
        2
        | 50014
        | 100000002
        | 100000003
        | 100000006
        | 100000007
        | 100000008
        | 100000009
        | 100000013
        | 100000014
        | INVALID_PARAMS
        | TOO_MANY_USERS
        | USER_ID_TOO_LONG
        | USER_NOT_IN_ROOM
        | 660300012
        | ROOM_MESSAGE_NO_RECEIPT
        | 660300019
        | MESSAGE_TOO_LARGE => Terminal(self::Terminal::InvalidParams),
        ROOM_QUOTA => Terminal(self::Terminal::Quota),
        _ => Unknown,
    }
}

/// The metric label of a ZIM `Code`: the code itself when the table above knows it, else `other`, so an
/// endpoint that answers arbitrary codes cannot create new label values.
pub fn code_label(code: i64) -> std::borrow::Cow<'static, str> {
    if code == OK || classify(code) != Class::Unknown {
        std::borrow::Cow::Owned(code.to_string())
    } else {
        std::borrow::Cow::Borrowed("other")
    }
}

/// The metric label of a non-success HTTP status: `http_NNN` for a status registered with IANA (a fixed set of
/// about sixty), else `http_other`.
pub fn http_status_label(status: u16) -> std::borrow::Cow<'static, str> {
    match reqwest::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()) {
        Some(_) => std::borrow::Cow::Owned(format!("http_{status}")),
        None => std::borrow::Cow::Borrowed("http_other"),
    }
}

/// Classifies a non-success HTTP status. ZIM documents only HTTP 200 with a `Code`; any other status came from
/// something in between (a proxy, a gateway, a wrong endpoint path), so it says nothing about the request's
/// parameters or credentials: it is a transport failure, retried with backoff (429 slows down like a ZIM rate
/// limit).
pub fn classify_http_status(status: u16) -> Class {
    match status {
        429 => Class::Throttled,
        _ => Class::Transient,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every code of the documented table has the class the design assigns to it.
    #[test]
    fn documented_codes_have_their_class() {
        let transient =
            [1, 105001, 100000012, 100000015, 660000001, 660000003, 660300007, 100000010, 100000011];
        for code in transient {
            assert_eq!(classify(code), Class::Transient, "code {code}");
        }
        for code in [7, 660300005, 660300006, 660700001, 660500003] {
            assert_eq!(classify(code), Class::Throttled, "code {code}");
        }
        for code in [3, 100000001, 100000004, 100000005, 100000016, 100000017, 100000000] {
            assert_eq!(classify(code), Class::Terminal(Terminal::Auth), "code {code}");
        }
        for code in
            [2, 660000002, 100000002, 100000003, 100000006, 100000007, 100000008, 100000009, 100000013]
        {
            assert_eq!(classify(code), Class::Terminal(Terminal::InvalidParams), "code {code}");
        }
        assert_eq!(classify(660300015), Class::Terminal(Terminal::Quota));
        // KickoutRoomUser's and SendRoomMessage's own codes (remove-user-from-the-room.yaml, the return-code
        // table): refused parameters, not worth retrying as they are.
        for code in [660000011, 660000012, 660300002, 660300012, 660300013, 660400001] {
            assert_eq!(classify(code), Class::Terminal(Terminal::InvalidParams), "code {code}");
        }
        assert_eq!(classify(660300014), Class::Exists);
        assert_eq!(classify(660700002), Class::Exists);
        assert_eq!(classify(660300008), Class::Exists);
        assert_eq!(classify(660300001), Class::NotFound);
        assert_eq!(classify(0), Class::Ok);
        assert_eq!(classify(123456789), Class::Unknown);
        assert!(classify(123456789).is_retryable());
    }

    #[test]
    fn http_statuses_have_their_class() {
        assert_eq!(classify_http_status(503), Class::Transient);
        assert_eq!(classify_http_status(429), Class::Throttled);
        // Not ZIM's answers: never read as refused parameters or credentials.
        assert_eq!(classify_http_status(403), Class::Transient);
        assert_eq!(classify_http_status(404), Class::Transient);
    }
}
