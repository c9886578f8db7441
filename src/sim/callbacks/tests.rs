//! Unit tests of the callback signature, bodies, nonces and targets.

use super::*;

/// ZEGO's published vector: timestamp 1470820198, nonce 123412, secret "secret".
#[test]
fn signature_matches_the_documented_vector() {
    assert_eq!(signature("secret", "1470820198", "123412"), "5bd59fd62953a8059fb7eaba95720f66d19e4517");
    // The order of the arguments does not matter: they are sorted.
    assert_eq!(signature("123412", "secret", "1470820198"), "5bd59fd62953a8059fb7eaba95720f66d19e4517");
}

/// The bodies carry the documented fields, a signature over their own timestamp and nonce, and no secret.
#[test]
fn event_bodies_have_the_documented_fields() {
    let secret = CallbackSecret::new("cb-secret");
    let created = Effect::Created {
        app_id: 42,
        room_id: "r".into(),
        operator: "ops".into(),
        name: "Lobby".into(),
        attributes: vec![("topic".into(), "general".into(), 0)],
    };
    let (event, room, body) = event_body(&created, 1_700_000_000, "123456", &secret);
    assert_eq!((event, room), ("room_create", "r"));
    assert_eq!(
        body,
        json!({"appid": "42", "event": "room_create", "timestamp": 1_700_000_000, "nonce": "123456",
            "signature": signature("cb-secret", "1700000000", "123456"), "room_id": "r",
            "operator_account": "ops", "room_name": "Lobby",
            "attributes": [{"key": "topic", "value": "general", "auto_delete": 0}]})
    );
    let destroyed =
        Effect::Destroyed { app_id: 42, room_id: "r".into(), operator: String::new(), user_ids: Vec::new() };
    let (event, _, body) = event_body(&destroyed, 1_700_000_000, "123456", &secret);
    assert_eq!(event, "room_destroy");
    assert_eq!((&body["operator_account"], &body["user_ids"]), (&json!(""), &json!([])));
    assert!(!body.to_string().contains("cb-secret"));
}

/// room_enter and room_exit carry the fields of ZEGO's room-entered and room-left pages (the shape of their
/// samples, which the receiver's body tests read).
#[test]
fn membership_bodies_have_the_documented_fields() {
    use crate::sim::rooms::ExitType;
    let secret = CallbackSecret::new("cb-secret");
    let entered = Effect::Entered { app_id: 42, room_id: "r".into(), user_id: "alice".into() };
    let (event, room, body) = event_body(&entered, 1_700_000_000, "123456", &secret);
    assert_eq!((event, room), ("room_enter", "r"));
    assert_eq!(
        body,
        json!({"appid": "42", "event": "room_enter", "timestamp": 1_700_000_000, "nonce": "123456",
            "signature": signature("cb-secret", "1700000000", "123456"), "room_id": "r",
            "operator_account": "alice"})
    );
    let kicked = Effect::Left {
        app_id: 42,
        room_id: "r".into(),
        exit_type: ExitType::Kickout,
        operator: "ops".into(),
        user_ids: vec!["Tony".into(), "Jenny".into()],
    };
    let (event, _, body) = event_body(&kicked, 1_700_000_000, "123456", &secret);
    assert_eq!(event, "room_exit");
    let quit = Effect::Left {
        app_id: 42,
        room_id: "r".into(),
        exit_type: ExitType::Quit,
        operator: "bob".into(),
        user_ids: vec!["bob".into()],
    };
    let (_, _, quit) = event_body(&quit, 1_700_000_000, "123456", &secret);
    assert_eq!((&quit["exit_type"], &quit["exit_user_ids"]), (&json!("Quit"), &json!(["bob"])));
    assert_eq!(
        (&body["exit_type"], &body["operator_account"], &body["exit_user_ids"]),
        (&json!("Kickout"), &json!("ops"), &json!(["Tony", "Jenny"]))
    );
    assert!(!body.to_string().contains("cb-secret"));
}

#[test]
fn nonces_are_digits() {
    for _ in 0..100 {
        let n = nonce();
        assert!(n.len() >= 6 && n.bytes().all(|b| b.is_ascii_digit()), "{n}");
    }
}

#[test]
fn targets_need_an_http_url_and_hide_the_secret() {
    assert!(CallbackTarget::new("ftp://x/", CallbackSecret::new("s")).is_err());
    assert!(CallbackTarget::new("not a url", CallbackSecret::new("s")).is_err());
    let t = CallbackTarget::new("http://127.0.0.1:1/cb", CallbackSecret::new("topsecret")).unwrap();
    assert!(!format!("{t:?}").contains("topsecret"));
}
