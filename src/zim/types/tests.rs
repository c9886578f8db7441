use super::*;

#[test]
fn request_bodies_use_documented_field_names() {
    let body = CreateRoomRequest {
        from_user_id: "u".into(),
        room_id: "r".into(),
        room_name: Some("n".into()),
        destroy_delay_time: Some(3600),
        attributes: vec![CreateRoomAttribute { key: "k".into(), value: "v".into(), auto_delete: 0 }],
    };
    assert_eq!(
        serde_json::to_value(&body).unwrap(),
        serde_json::json!({"FromUserId":"u","RoomId":"r","RoomName":"n","DestroyDelayTime":3600,
            "Attributes":[{"Key":"k","Value":"v","AutoDelete":0}]})
    );
    let modify = ModifyRoomAttribute {
        action: AttributeAction::Delete,
        key: "k".into(),
        value: String::new(),
        auto_delete: 0,
        stop_on_error: 0,
    };
    assert_eq!(
        serde_json::to_value(&modify).unwrap(),
        serde_json::json!({"Action":1,"Key":"k","Value":"","AutoDelete":0,"StopOnError":0})
    );
}

#[test]
fn responses_decode_leniently() {
    let r: ModifyRoomAttributeResponse = serde_json::from_str(
        r#"{"Code":0,"Message":"success","RequestId":343649807833778782,"AttributeSeq":"3",
           "SuccKeyList":[{"Key":"a","Seq":3}],"ErrKeyList":null}"#,
    )
    .unwrap();
    assert_eq!(r.envelope.request_id, "343649807833778782");
    assert_eq!(r.attribute_seq, 3);
    assert_eq!(r.succ_key_list, vec![SuccKey { key: "a".into(), seq: 3 }]);
    assert!(r.err_key_list.is_empty());
    let e: Envelope = serde_json::from_str(r#"{"Code":660300014.0}"#).unwrap();
    assert_eq!(e.code, 660300014);
    assert!(serde_json::from_str::<Envelope>(r#"{"Code":"abc"}"#).is_err());
}
