//! The CRDs: the committed YAML matches the code (ZimRoom and ZimRoomSet), and the CEL rules (evaluated client-side
//! with kube's `cel` feature) refuse edits of immutable fields with messages that say so.

use zim_operator::crd::{ZimRoom, crd_yaml, set_crd_yaml};

fn room(yaml: &str) -> ZimRoom {
    serde_saphyr::from_str(yaml).unwrap()
}

const BASE: &str =
    "apiVersion: zim.zego.im/v1alpha1\nkind: ZimRoom\nmetadata: {name: lobby, namespace: chat}\n";

/// What `scripts/chart-crd.py KIND` makes of `crd`: the chart's template for it.
fn chart_template(kind: &str, crd: &str) -> Vec<u8> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut child = std::process::Command::new("python3")
        .arg(root.join("scripts/chart-crd.py"))
        .arg(kind)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs scripts/chart-crd.py");
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), crd.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "scripts/chart-crd.py {kind} failed");
    out.stdout
}

/// `crds/zimroom.yaml` is exactly what `zim-operator crd --kind ZimRoom` prints, and the chart's template
/// `charts/zim-operator/templates/crd.yaml` is what `scripts/chart-crd.py` makes of it (both written by
/// `scripts/generate.sh`; the chart has no `crds/` copy, which Helm would install next to the template).
#[test]
fn committed_crd_matches_the_code() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let committed = std::fs::read_to_string(root.join("crds/zimroom.yaml")).unwrap_or_default();
    assert!(committed == crd_yaml(), "crds/zimroom.yaml is stale: run scripts/generate.sh");
    let template =
        std::fs::read_to_string(root.join("charts/zim-operator/templates/crd.yaml")).unwrap_or_default();
    assert!(
        template.as_bytes() == chart_template("ZimRoom", &crd_yaml()),
        "charts/zim-operator/templates/crd.yaml is stale: run scripts/generate.sh"
    );
    assert!(!root.join("charts/zim-operator/crds").exists(), "the chart must not also ship the CRD in crds/");
}

/// The same for the ZimRoomSet CRD: `crds/zimroomset.yaml` is `zim-operator crd --kind ZimRoomSet`, and
/// `charts/zim-operator/templates/crd-zimroomset.yaml` is what `scripts/chart-crd.py` makes of it. The template
/// gates the CEL rules like the ZimRoom CRD's and has no selectable fields to gate.
#[test]
fn committed_set_crd_matches_the_code() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let committed = std::fs::read_to_string(root.join("crds/zimroomset.yaml")).unwrap_or_default();
    assert!(committed == set_crd_yaml(), "crds/zimroomset.yaml is stale: run scripts/generate.sh");
    let template = std::fs::read_to_string(root.join("charts/zim-operator/templates/crd-zimroomset.yaml"))
        .unwrap_or_default();
    assert!(
        template.as_bytes() == chart_template("ZimRoomSet", &set_crd_yaml()),
        "charts/zim-operator/templates/crd-zimroomset.yaml is stale: run scripts/generate.sh"
    );
    assert!(template.contains("{{- if $cel }}"), "the set's CEL rules are gated on the server's version");
    assert!(!template.contains("selectable"), "the set CRD declares no selectable fields");
    // Each kind is checked against its input: the ZimRoom CRD is not a ZimRoomSet's.
    let mut child = std::process::Command::new("python3")
        .arg(root.join("scripts/chart-crd.py"))
        .arg("ZimRoomSet")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), crd_yaml().as_bytes()).unwrap();
    assert!(!child.wait().unwrap().success(), "chart-crd.py ZimRoomSet accepted the ZimRoom CRD");
}

/// The ZimRoomSet CRD's names, short name, scope, status subresource and printer columns are as designed; its
/// status defaults to observedGeneration 0 (kstatus reads a set not handled yet as InProgress), its conditions
/// are a list map keyed by type, and every spec and status field documents itself.
#[test]
fn set_crd_shape() {
    let crd = zim_operator::crd::set_crd();
    assert_eq!(crd.metadata.name.as_deref(), Some("zimroomsets.zim.zego.im"));
    assert_eq!(crd.spec.group, "zim.zego.im");
    assert_eq!(crd.spec.scope, "Namespaced");
    assert_eq!(crd.spec.names.kind, "ZimRoomSet");
    assert_eq!(crd.spec.names.short_names, Some(vec!["zrs".to_string()]));
    assert_eq!(crd.spec.names.categories, Some(vec!["zim".to_string()]));
    let v = &crd.spec.versions[0];
    assert_eq!(v.name, "v1alpha1");
    assert!(v.served && v.storage);
    assert!(v.subresources.as_ref().and_then(|s| s.status.as_ref()).is_some(), "a status subresource");
    assert!(v.subresources.as_ref().and_then(|s| s.scale.as_ref()).is_none());
    let columns: Vec<(String, &str, &str)> = v
        .additional_printer_columns
        .iter()
        .flatten()
        .map(|c| (c.name.to_uppercase(), c.type_.as_str(), c.json_path.as_str()))
        .collect();
    assert_eq!(
        columns,
        [
            ("DESIRED".to_string(), "integer", ".status.desired"),
            ("READY".to_string(), "integer", ".status.ready"),
            ("OCCUPIED".to_string(), "integer", ".status.occupied"),
            ("STATUS".to_string(), "string", ".status.conditions[?(@.type==\"Ready\")].reason"),
            ("AGE".to_string(), "date", ".metadata.creationTimestamp"),
        ]
    );
    assert!(
        v.additional_printer_columns
            .iter()
            .flatten()
            .filter(|c| c.name != "Age")
            .all(|c| c.description.is_some() && c.priority.unwrap_or(0) == 0)
    );
    assert!(v.selectable_fields.is_none(), "no selectable fields");
    let json = serde_json::to_value(v.schema.as_ref().unwrap()).unwrap();
    let root = &json["openAPIV3Schema"];
    assert_eq!(root["required"], serde_json::json!(["spec"]));
    let status = &root["properties"]["status"];
    assert_eq!(status["default"], serde_json::json!({"observedGeneration": 0}));
    assert_eq!(status["properties"]["conditions"]["x-kubernetes-list-map-keys"][0], "type");
    for part in ["spec", "status"] {
        for (name, field) in root["properties"][part]["properties"].as_object().unwrap() {
            assert!(
                field["description"].as_str().is_some_and(|d| !d.is_empty()),
                "ZimRoomSet {part}.{name} has no description"
            );
        }
    }
    let yaml = set_crd_yaml();
    assert!(!yaml.contains("uint32"), "no integer format a current API server warns about");
    assert!(!yaml.contains("nullable"), "tidied like the ZimRoom CRD");
}

/// Names, short name, scope, status subresource, printer columns, selectable fields and list-map keys are as
/// designed.
#[test]
fn crd_shape() {
    let crd = zim_operator::crd::crd();
    assert_eq!(crd.metadata.name.as_deref(), Some("zimrooms.zim.zego.im"));
    assert_eq!(crd.spec.scope, "Namespaced");
    assert_eq!(crd.spec.names.short_names, Some(vec!["zr".to_string()]));
    let v = &crd.spec.versions[0];
    assert_eq!(v.name, "v1alpha1");
    assert!(v.subresources.as_ref().and_then(|s| s.status.as_ref()).is_some());
    let columns: Vec<String> =
        v.additional_printer_columns.iter().flatten().map(|c| c.name.to_uppercase()).collect();
    assert_eq!(columns, ["ROOM-ID", "READY", "SYNCED", "REASON", "MEMBERS", "AGE", "APP-ID", "MESSAGE"]);
    // `kubectl get` shows the first six; `-o wide` adds the AppId and the Ready message. Every column but Age
    // says what it shows (kubectl explain and API clients read the descriptions).
    let wide: Vec<i32> =
        v.additional_printer_columns.iter().flatten().map(|c| c.priority.unwrap_or(0)).collect();
    assert_eq!(wide, [0, 0, 0, 0, 0, 0, 1, 1]);
    assert!(
        v.additional_printer_columns
            .iter()
            .flatten()
            .filter(|c| c.name != "Age")
            .all(|c| c.description.is_some())
    );
    // Field selectors: which object declares a room, the rooms of an app.
    let selectable: Vec<&str> = v.selectable_fields.iter().flatten().map(|f| f.json_path.as_str()).collect();
    assert_eq!(selectable, [".spec.roomId", ".status.roomId", ".status.appId"]);
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
    let crd = zim_operator::crd::crd();
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

/// The object the CEL update tests start from: roomId a, roomName A, destroyDelayTime 60, and a status saying
/// whether its room exists (`applied` recorded) or not yet.
fn old_room(exists: bool) -> ZimRoom {
    let status = if exists {
        "status: {roomId: a, applied: {roomId: a, roomName: A, destroyDelayTime: 60}}\n"
    } else {
        "status: {observedGeneration: 0}\n"
    };
    room(&format!("{BASE}spec: {{roomId: a, roomName: A, destroyDelayTime: 60}}\n{status}"))
}

fn edit(spec: &str, old: &ZimRoom) -> ZimRoom {
    let mut new = room(&format!("{BASE}{spec}"));
    new.status = old.status.clone();
    new
}

/// CEL: once the room exists, roomId, roomName and destroyDelayTime cannot change (nor roomId be removed, nor
/// roomName be added), with messages that say what to do.
#[test]
fn cel_rules_fix_fields_once_the_room_exists() {
    let old = old_room(true);
    assert!(old.validate_cel().is_ok());
    assert!(old.validate_cel_update(&old).is_ok());
    let cases = [
        ("spec: {roomId: b, roomName: A, destroyDelayTime: 60}", "spec.roomId cannot change"),
        ("spec: {roomName: A, destroyDelayTime: 60}", "spec.roomId cannot change"),
        ("spec: {roomId: a, roomName: B, destroyDelayTime: 60}", "spec.roomName cannot be set or changed"),
        ("spec: {roomId: a, roomName: A, destroyDelayTime: 61}", "spec.destroyDelayTime cannot change"),
    ];
    for (spec, message) in cases {
        let errors = edit(spec, &old).validate_cel_update(&old).expect_err(spec);
        assert!(errors.as_slice().iter().any(|e| e.message.contains(message)), "{spec}: {errors:?}");
        assert!(
            errors
                .as_slice()
                .iter()
                .any(|e| e.message.contains("delete and recreate")
                    || e.message.contains("create a new ZimRoom")),
            "{spec}: the message says what to do"
        );
    }
}

/// CEL: adding a roomName once the room exists is refused (ZIM cannot rename it); removing it is allowed.
#[test]
fn cel_rules_refuse_adding_a_room_name_once_the_room_exists() {
    let mut unnamed = room(&format!(
        "{BASE}spec: {{roomId: a, destroyDelayTime: 60}}\nstatus: {{roomId: a, applied: {{roomId: a, destroyDelayTime: 60}}}}\n"
    ));
    let named = edit("spec: {roomId: a, roomName: A, destroyDelayTime: 60}", &unnamed);
    assert!(named.validate_cel_update(&unnamed).is_err());
    unnamed.status = old_room(true).status;
    assert!(unnamed.validate_cel_update(&old_room(true)).is_ok(), "removing roomName is allowed");
}

/// CEL: before any room exists, every field may still be corrected (e.g. a bad destroyDelayTime).
#[test]
fn cel_rules_allow_corrections_before_the_room_exists() {
    let old = old_room(false);
    for spec in [
        "spec: {roomId: b, roomName: A, destroyDelayTime: 60}",
        "spec: {roomId: a, roomName: B, destroyDelayTime: 60}",
        "spec: {roomId: a, roomName: A, destroyDelayTime: 600}",
    ] {
        assert!(edit(spec, &old).validate_cel_update(&old).is_ok(), "{spec}");
    }
}

/// CEL: a pending creation counts as an existing room.
#[test]
fn cel_rules_treat_a_pending_creation_as_existing() {
    let old = room(&format!(
        "{BASE}spec: {{roomId: a, destroyDelayTime: 60}}\nstatus: {{roomId: a, pendingCreation: true}}\n"
    ));
    let moved = edit("spec: {roomId: b, destroyDelayTime: 60}", &old);
    assert!(moved.validate_cel_update(&old).is_err());
}

/// CEL: the mutable fields (attributes, deletionPolicy) may change once the room exists.
#[test]
fn cel_rules_allow_mutable_edits() {
    let old = old_room(true);
    let edited = edit(
        "spec: {roomId: a, roomName: A, destroyDelayTime: 60, attributes: [{key: k, value: v}], deletionPolicy: Orphan}",
        &old,
    );
    assert!(edited.validate_cel_update(&old).is_ok());
}

/// CEL: byte lengths the schema's maxLength (characters) cannot state: 40 CJK characters are 120 bytes.
#[test]
fn cel_rules_count_bytes() {
    let cjk = "\u{623f}".repeat(40);
    let r = room(&format!("{BASE}spec: {{roomName: \"{cjk}\", destroyDelayTime: 60}}"));
    let errors = r.validate_cel().expect_err("120 bytes of roomName");
    assert!(errors.as_slice().iter().any(|e| e.message.contains("64 bytes")), "{errors:?}");
    let ok = room(&format!("{BASE}spec: {{roomName: \"{}\", destroyDelayTime: 60}}", "\u{623f}".repeat(21)));
    assert!(ok.validate_cel().is_ok());
    let key = room(&format!(
        "{BASE}spec: {{destroyDelayTime: 60, attributes: [{{key: \"{}\", value: v}}]}}",
        "\u{e9}".repeat(9)
    ));
    assert!(key.validate_cel().is_err(), "an 18-byte key");
}

/// The schema declares no format a current API server warns about (uint32).
#[test]
fn no_unrecognized_integer_formats() {
    assert!(!crd_yaml().contains("uint32"));
}

/// A new object's status defaults to observedGeneration 0, so kstatus reads it InProgress until handled.
#[test]
fn status_defaults_to_observed_generation_zero() {
    let crd = serde_json::to_value(zim_operator::crd::crd()).unwrap();
    let status = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"];
    assert_eq!(status["default"], serde_json::json!({"observedGeneration": 0}));
}

/// Descriptions are paragraphs (no line breaks inside one), so `kubectl explain` wraps them to the terminal.
#[test]
fn descriptions_are_paragraphs() {
    fn walk(v: &serde_json::Value, path: &str, bad: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                if let Some(serde_json::Value::String(d)) = m.get("description")
                    && d.replace("\n\n", "").contains('\n')
                {
                    bad.push(path.to_owned());
                }
                for (k, v) in m {
                    walk(v, &format!("{path}.{k}"), bad);
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, path, bad)),
            _ => {}
        }
    }
    let crd = serde_json::to_value(zim_operator::crd::crd()).unwrap();
    let mut bad = Vec::new();
    walk(&crd, "", &mut bad);
    assert!(bad.is_empty(), "descriptions with line breaks inside a paragraph: {bad:?}");
    let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"];
    assert!(
        spec["roomId"]["description"]
            .as_str()
            .unwrap()
            .starts_with("The ZIM room ID. Defaults to metadata.name.")
    );
}
