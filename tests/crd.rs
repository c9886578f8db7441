//! The CRD: the committed YAML matches the code, and the CEL rules (evaluated client-side with kube's `cel`
//! feature) refuse edits of immutable fields with messages that say so.

use kube::CustomResourceExt;
use zim_operator::crd::{ZimRoom, crd_yaml};

fn room(yaml: &str) -> ZimRoom {
    serde_saphyr::from_str(yaml).unwrap()
}

const BASE: &str =
    "apiVersion: zim.zego.im/v1alpha1\nkind: ZimRoom\nmetadata: {name: lobby, namespace: chat}\n";

/// `crds/zimroom.yaml` (and the chart's copy, once it exists) is exactly what `zim-operator crd` prints.
#[test]
fn committed_crd_matches_the_code() {
    let root = env!("CARGO_MANIFEST_DIR");
    for path in ["crds/zimroom.yaml", "charts/zim-operator/crds/zimroom.yaml"] {
        let file = std::path::Path::new(root).join(path);
        if path.starts_with("charts/") && !file.parent().unwrap().parent().unwrap().exists() {
            continue;
        }
        let committed = std::fs::read_to_string(&file).unwrap_or_default();
        assert!(committed == crd_yaml(), "{path} is stale: run scripts/generate.sh");
    }
}

/// Names, short name, scope, status subresource, printer columns and list-map keys are as designed.
#[test]
fn crd_shape() {
    let crd = ZimRoom::crd();
    assert_eq!(crd.metadata.name.as_deref(), Some("zimrooms.zim.zego.im"));
    assert_eq!(crd.spec.scope, "Namespaced");
    assert_eq!(crd.spec.names.short_names, Some(vec!["zr".to_string()]));
    let v = &crd.spec.versions[0];
    assert_eq!(v.name, "v1alpha1");
    assert!(v.subresources.as_ref().and_then(|s| s.status.as_ref()).is_some());
    let columns: Vec<String> =
        v.additional_printer_columns.iter().flatten().map(|c| c.name.to_uppercase()).collect();
    assert_eq!(columns, ["ROOM-ID", "READY", "SYNCED", "REASON", "AGE"]);
    let json = serde_json::to_value(v.schema.as_ref().unwrap()).unwrap();
    let spec = &json["openAPIV3Schema"]["properties"]["spec"]["properties"];
    assert_eq!(spec["destroyDelayTime"]["default"], 10800);
    assert_eq!(spec["attributes"]["maxItems"], 20);
    assert_eq!(spec["attributes"]["x-kubernetes-list-map-keys"][0], "key");
    let conditions = &json["openAPIV3Schema"]["properties"]["status"]["properties"]["conditions"];
    assert_eq!(conditions["x-kubernetes-list-map-keys"][0], "type");
}

/// Every spec and status field documents itself (kubectl explain).
#[test]
fn every_field_has_a_description() {
    let crd = ZimRoom::crd();
    let json = serde_json::to_value(crd.spec.versions[0].schema.as_ref().unwrap()).unwrap();
    for part in ["spec", "status"] {
        for (name, field) in json["openAPIV3Schema"]["properties"][part]["properties"].as_object().unwrap() {
            assert!(
                field["description"].as_str().is_some_and(|d| !d.is_empty()),
                "{part}.{name} has no description"
            );
        }
    }
}

/// The object the CEL update tests start from: roomId a, roomName A, destroyDelayTime 60.
fn old_room() -> ZimRoom {
    room(&format!("{BASE}spec: {{roomId: a, roomName: A, destroyDelayTime: 60}}"))
}

/// CEL: roomId, roomName and destroyDelayTime cannot change (or be removed) once set, with messages that say so.
#[test]
fn cel_rules_make_fields_immutable() {
    let old = old_room();
    assert!(old.validate_cel().is_ok());
    assert!(old.validate_cel_update(&old).is_ok());
    let cases = [
        ("spec: {roomId: b, roomName: A, destroyDelayTime: 60}", "roomId is immutable"),
        ("spec: {roomName: A, destroyDelayTime: 60}", "roomId is immutable"),
        ("spec: {roomId: a, roomName: B, destroyDelayTime: 60}", "roomName is immutable"),
        ("spec: {roomId: a, destroyDelayTime: 60}", "roomName is immutable"),
        ("spec: {roomId: a, roomName: A, destroyDelayTime: 61}", "destroyDelayTime is immutable"),
    ];
    for (spec, message) in cases {
        let new = room(&format!("{BASE}{spec}"));
        let errors = new.validate_cel_update(&old).expect_err(spec);
        assert!(errors.as_slice().iter().any(|e| e.message.contains(message)), "{spec}: {errors:?}");
    }
}

/// CEL: the mutable fields (attributes, deletionPolicy) may change.
#[test]
fn cel_rules_allow_mutable_edits() {
    let old = old_room();
    let edited = room(&format!(
        "{BASE}spec: {{roomId: a, roomName: A, destroyDelayTime: 60, attributes: [{{key: k, value: v}}], deletionPolicy: Orphan}}"
    ));
    assert!(edited.validate_cel_update(&old).is_ok());
}

/// CEL: an immutable field unset before may be set.
#[test]
fn cel_rules_allow_setting_an_unset_field() {
    let unnamed = room(&format!("{BASE}spec: {{roomId: a, destroyDelayTime: 60}}"));
    let named = room(&format!("{BASE}spec: {{roomId: a, roomName: A, destroyDelayTime: 60}}"));
    assert!(named.validate_cel_update(&unnamed).is_ok());
}
