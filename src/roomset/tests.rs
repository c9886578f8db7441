use super::*;

fn spec(rooms: RoomIds) -> ZimRoomSetSpec {
    ZimRoomSetSpec {
        rooms,
        template: ChildTemplate {
            metadata: None,
            spec: ZimRoomSpec { destroy_delay_time: 600, ..Default::default() },
        },
        ..Default::default()
    }
}

fn range(prefix: &str, start: u32, end: u32, width: u32) -> RoomIds {
    RoomIds {
        ids: None,
        range: Some(IdRange { prefix: prefix.into(), start, end, width, suffix: String::new() }),
    }
}

#[test]
fn a_range_expands_with_its_width() {
    let ids = expand(&spec(range("lobby-eu-", 1, 40, 2))).unwrap();
    assert_eq!(ids.len(), 40);
    assert_eq!((ids[0].as_str(), ids[39].as_str()), ("lobby-eu-01", "lobby-eu-40"));
    let ids = expand(&spec(range("t", 9, 11, 0))).unwrap();
    assert_eq!(ids, ["t9", "t10", "t11"]);
}

#[test]
fn a_generator_that_cannot_be_computed_names_its_field() {
    let cases: Vec<(RoomIds, &str)> = vec![
        (RoomIds::default(), "spec.rooms"),
        (RoomIds { ids: Some(vec!["a".into()]), range: Some(IdRange::default()) }, "spec.rooms"),
        (range("x", 5, 1, 0), "spec.rooms.range"),
        (range("x", 0, 20_000, 0), "spec.rooms.range"),
        (range("way-too-long-a-prefix-for-a-room-", 1, 3, 0), "spec.rooms.range"),
        (RoomIds { ids: Some(vec!["ok".into(), "no/slash".into()]), range: None }, "spec.rooms.ids[1]"),
        (RoomIds { ids: Some(vec!["a".into(), "a".into()]), range: None }, "spec.rooms.ids[1]"),
    ];
    for (rooms, path) in cases {
        let errors = expand(&spec(rooms.clone())).expect_err(&format!("{rooms:?}"));
        assert!(errors.iter().any(|e| e.path == path), "{rooms:?}: {errors:?}");
    }
    let mut bad = spec(range("r", 1, 2, 0));
    bad.template.spec.room_id = Some("fixed".into());
    bad.template.spec.room_name = Some("x".repeat(65));
    let errors = expand(&bad).unwrap_err();
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["spec.template.spec.roomId", "spec.template.spec.roomName"], "{errors:?}");
}

#[test]
fn child_names_are_stable_valid_and_distinct() {
    assert_eq!(child_name("lobbies", "lobby-eu-01"), "lobbies-lobby-eu-01");
    let upper = child_name("lobbies", "Lobby_EU");
    let lower = child_name("lobbies", "lobby-eu");
    assert_ne!(upper, lower, "IDs that clean to the same text keep distinct names");
    assert_eq!(upper, child_name("lobbies", "Lobby_EU"), "stable");
    let long = child_name("a-rather-long-set-name-for-tables", "table-0000000000000000000000001");
    assert!(long.len() <= 63, "{long}");
    for name in [upper, lower, long] {
        assert!(
            name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.'),
            "{name}"
        );
        assert!(!name.ends_with('-') && !name.starts_with('-'), "{name}");
    }
}

#[test]
fn a_child_carries_the_template_the_room_id_and_its_controller() {
    let mut set = ZimRoomSet::new("lobbies", spec(range("l", 1, 2, 0)));
    set.metadata.namespace = Some("games".into());
    set.metadata.uid = Some("uid-1".into());
    set.spec.template.metadata = Some(ChildMetadata {
        labels: BTreeMap::from([("tier".into(), "free".into())]),
        ..Default::default()
    });
    let c = child(&set, "l2");
    assert_eq!(c.metadata.name.as_deref(), Some("lobbies-l2"));
    assert_eq!(c.metadata.namespace.as_deref(), Some("games"));
    assert_eq!(c.spec.room_id.as_deref(), Some("l2"));
    assert_eq!(c.spec.destroy_delay_time, 600);
    let labels = c.metadata.labels.unwrap();
    assert_eq!((labels["tier"].as_str(), labels[SET_LABEL].as_str()), ("free", "lobbies"));
    let owner = &c.metadata.owner_references.unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
        ("ZimRoomSet", "uid-1", Some(true))
    );
}

#[test]
fn the_summary_counts_declared_children_and_the_ones_going() {
    let state =
        |name: &str, room: &str, ready: bool, occupied: bool, deleting: bool, reason: Option<&str>| {
            ChildState {
                name: name.into(),
                room_id: room.into(),
                ready,
                reason: reason.map(Into::into),
                occupied,
                deleting,
            }
        };
    let desired: Vec<String> = vec!["a".into(), "b".into(), "c".into()];
    let children = [
        state("s-a", "a", true, true, false, None),
        state("s-b", "b", false, false, false, Some("Conflict")),
        state("s-x", "x", true, true, true, None),
    ];
    let s = summarize(&desired, &children);
    assert_eq!((s.desired, s.existing, s.ready, s.occupied, s.conflicting, s.deleting), (3, 3, 1, 2, 1, 1));
    assert_eq!(s.not_ready, ["s-b: Conflict"]);
}
