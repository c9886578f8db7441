//! R4, bad input: property-based fuzzing of the manifest path (YAML → schema → CEL → operator checks) and of the
//! ZIM response decoder. Properties: nothing panics, and every rejected manifest names a field.
//!
//! This short run is part of the test command. The longer campaign:
//!   PROPTEST_CASES=100000 cargo test --release --test fuzz
//! (docs/RELIABILITY.md records its last result).

use std::path::Path;

use proptest::prelude::*;
use serde_json::{Value, json};
use zim_operator::manifest::{Document, check_zimroom, parse_documents};
use zim_operator::zim::types::*;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(512)
}

/// Any JSON value, with long strings, odd characters and huge numbers.
fn any_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        prop_oneof![any::<f64>(), Just(1e300), Just(-0.0)].prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::String),
        (0usize..3000).prop_map(|n| Value::String("é".repeat(n))),
        "[a-z/{}|~ !#$%&()+:;<=.>?@^_,\\-\\[\\]]{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 40, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..25).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z]{1,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn field(name: &'static str) -> impl Strategy<Value = (String, Value)> {
    any_value().prop_map(move |v| (name.to_string(), v))
}

/// A ZimRoom-shaped object whose fields take arbitrary values (and sometimes well-formed ones).
fn zimroom_like() -> impl Strategy<Value = Value> {
    let attribute = (any_value(), any_value(), any_value())
        .prop_map(|(k, v, a)| json!({"key": k, "value": v, "autoDelete": a}));
    let good_attribute = ("[a-z]{1,20}", "[a-z]{0,30}").prop_map(|(k, v)| json!({"key": k, "value": v}));
    let attributes = prop_oneof![
        prop::collection::vec(attribute, 0..25).prop_map(Value::Array),
        prop::collection::vec(good_attribute, 0..25).prop_map(Value::Array),
        any_value(),
    ];
    let spec_fields = prop::collection::vec(
        prop_oneof![
            field("roomId"),
            field("roomName"),
            field("destroyDelayTime"),
            field("fromUserId"),
            field("credentialsSecretRef"),
            field("deletionPolicy"),
            field("unknownField"),
            attributes.prop_map(|a| ("attributes".to_string(), a)),
        ],
        0..8,
    );
    (spec_fields, any_value(), prop_oneof![Just(json!("lobby")), any_value()]).prop_map(
        |(fields, status, name)| {
            let spec: serde_json::Map<String, Value> = fields.into_iter().collect();
            json!({
                "apiVersion": "zim.zego.im/v1alpha1",
                "kind": "ZimRoom",
                "metadata": {"name": name, "namespace": "chat"},
                "spec": spec,
                "status": status,
            })
        },
    )
}

fn check(value: Value) -> Result<(), TestCaseError> {
    let doc = Document { file: "fuzz.yaml".into(), index: 1, value };
    if let Err(errors) = check_zimroom(&doc) {
        prop_assert!(!errors.is_empty());
        for e in errors {
            let named = ["spec", "metadata", "status", "<object>"].iter().any(|p| e.path.starts_with(p));
            prop_assert!(named && !e.message.is_empty(), "unnamed problem: {e:?}");
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    /// Arbitrary ZimRoom-shaped objects: no panic; every rejection names its field.
    #[test]
    fn manifests_never_panic_and_name_fields(value in zimroom_like()) {
        check(value)?;
    }

    /// Arbitrary text as a manifest file: no panic; parse errors name the file and document.
    #[test]
    fn yaml_text_never_panics(text in ".{0,400}") {
        match parse_documents(Path::new("f.yaml"), &text) {
            Ok(docs) => for d in docs { if d.is_zimroom() { check(d.value)?; } },
            Err(e) => prop_assert!(e.to_string().starts_with("f.yaml (document "), "{e}"),
        }
    }

    /// Arbitrary bytes as a ZIM response: the decoder never panics.
    #[test]
    fn zim_responses_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300), value in any_value()) {
        let _ = serde_json::from_slice::<ModifyRoomAttributeResponse>(&bytes);
        let _ = serde_json::from_slice::<QueryRoomUserListResponse>(&bytes);
        let text = serde_json::to_vec(&value).unwrap();
        let _ = serde_json::from_slice::<ModifyRoomAttributeResponse>(&text);
        let _ = serde_json::from_slice::<QueryRoomAttributeResponse>(&text);
        let _ = serde_json::from_slice::<UserRegisterResponse>(&text);
        let _ = serde_json::from_slice::<RoomResponse>(&text);
        let wrapped = serde_json::to_vec(&json!({"Code": value.clone(), "RequestId": value.clone(), "SuccKeyList": value.clone(),
            "ErrKeyList": [value.clone()], "Attributes": [value.clone()], "UserList": value, "AttributeSeq": 1})).unwrap();
        let _ = serde_json::from_slice::<ModifyRoomAttributeResponse>(&wrapped);
        let _ = serde_json::from_slice::<QueryRoomAttributeResponse>(&wrapped);
        let _ = serde_json::from_slice::<QueryRoomUserListResponse>(&wrapped);
    }
}

/// The cases the issue names, one by one: each is refused with a message naming the field.
#[test]
fn named_bad_inputs_are_refused_with_their_field() {
    let base = |spec: Value| json!({"apiVersion": "zim.zego.im/v1alpha1", "kind": "ZimRoom", "metadata": {"name": "r"}, "spec": spec});
    let many: Vec<Value> = (0..21).map(|i| json!({"key": format!("k{i}"), "value": "v"})).collect();
    let cases = [
        (json!({"roomName": "x".repeat(100_000)}), "spec.roomName"),
        (json!({"roomId": "é"}), "spec.roomId"),
        (json!({"destroyDelayTime": "3600"}), "spec.destroyDelayTime"),
        (json!({"destroyDelayTime": 1e300}), "spec.destroyDelayTime"),
        (json!({"destroyDelayTime": 18446744073709551615u64}), "spec.destroyDelayTime"),
        (json!({"attributes": many}), "spec.attributes"),
        (
            json!({"attributes": [{"key": "a", "value": "1"}, {"key": "a", "value": "2"}]}),
            "spec.attributes[1]",
        ),
        (json!({"attributes": [{"key": "a", "value": "x".repeat(1025)}]}), "spec.attributes[0].value"),
        (json!({"attributes": "topic=general"}), "spec.attributes"),
        (json!({"roomNmae": "typo"}), "spec.roomNmae"),
        (json!({"deletionPolicy": "delete"}), "spec.deletionPolicy"),
    ];
    for (spec, path) in cases {
        let doc = Document { file: "t.yaml".into(), index: 1, value: base(spec.clone()) };
        let errors = check_zimroom(&doc).expect_err(&spec.to_string());
        assert!(errors.iter().any(|e| e.path == path), "{spec}: {errors:?}");
    }
}

/// A file with bytes that are not UTF-8 is refused naming the file.
#[test]
fn non_utf8_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bin.yaml");
    std::fs::write(&f, b"spec: {roomName: \"\xc3\x28\"}\n").unwrap();
    let err = zim_operator::manifest::load(&[f]).unwrap_err().to_string();
    assert!(err.contains("bin.yaml: not UTF-8 text"), "{err}");
}
