//! ZimRoom manifests: checked the way the cluster and the operator would check them — the apiserver's own rule for
//! `metadata.name`, the generated CRD's OpenAPI schema (the walk in `schema.rs`), its CEL rules (kube's `cel`
//! feature), then the operator's own checks (UTF-8 byte lengths and the like, `reconcile::validate`). Every
//! problem names its field path. Finding the documents in files, directories and standard input is `load.rs`.

mod load;
mod schema;

use serde_json::Value;

pub use self::load::{Document, LoadError, MAX_FILE_BYTES, MAX_TOTAL_BYTES, load, parse_documents};
pub use self::schema::check_schema;
use crate::crd::ZimRoom;
use crate::reconcile::validate::{FieldError, validate_spec};
pub use crate::yaml::to_yaml;

/// A ZimRoomSet document that declares no rooms: it could not be read, or its room IDs or template could not be
/// used. Every problem names its field.
#[derive(Clone, Debug)]
pub struct SetProblem {
    /// The set's document.
    pub document: Document,
    /// What is wrong.
    pub problems: Vec<FieldError>,
}

/// Whether `doc` is a ZimRoomSet.
pub fn is_zimroomset(doc: &Document) -> bool {
    doc.value.get("kind").and_then(Value::as_str) == Some("ZimRoomSet")
        && doc.value.get("apiVersion").and_then(Value::as_str) == Some("zim.zego.im/v1alpha1")
}

/// Replaces each ZimRoomSet document by the ZimRoom documents it declares (its children, as the set controller
/// makes them, at the set's place: same file and document index), so `validate`, `apply` and `plan` check and act
/// on the rooms a set declares. A set that declares nothing usable is returned as a [`SetProblem`] and expands to
/// nothing.
pub fn expand_sets(docs: Vec<Document>) -> (Vec<Document>, Vec<SetProblem>) {
    use crate::roomset::{ZimRoomSet, child, expand};
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for doc in docs {
        if !is_zimroomset(&doc) {
            out.push(doc);
            continue;
        }
        let set: ZimRoomSet = match serde_json::from_value(doc.value.clone()) {
            Ok(set) => set,
            Err(e) => {
                let problem =
                    FieldError { path: "spec".into(), message: format!("not a valid ZimRoomSet: {e}") };
                problems.push(SetProblem { document: doc, problems: vec![problem] });
                continue;
            }
        };
        match expand(&set.spec) {
            Ok(ids) => {
                for id in ids {
                    let mut room = child(&set, &id);
                    room.metadata.owner_references = None;
                    let mut value = serde_json::to_value(&room).expect("a ZimRoom serializes");
                    if let Some(o) = value.as_object_mut() {
                        o.remove("status");
                    }
                    if set.metadata.namespace.is_none()
                        && let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut)
                    {
                        meta.remove("namespace");
                    }
                    out.push(Document { file: doc.file.clone(), index: doc.index, value });
                }
            }
            Err(errors) => problems.push(SetProblem { document: doc, problems: errors }),
        }
    }
    (out, problems)
}

/// What checking one ZimRoom document found: everything `validate` and `apply` need, from one check.
#[derive(Clone, Debug)]
pub struct Checked {
    /// The document as a ZimRoom, when it has that shape (its values may still be invalid). `None` only when it
    /// does not deserialize, and then `problems` says why.
    pub room: Option<ZimRoom>,
    /// Every problem, in the order found; empty when the document is valid.
    pub problems: Vec<Problem>,
}

/// One problem with a document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The field and what is wrong with it.
    pub error: FieldError,
    /// Whether the reconcile core finds this problem itself: its own checks flag this field, or one within or
    /// around it. The core then reports it on the status as `InvalidSpec`, without a ZIM call.
    pub core_reports: bool,
}

impl Checked {
    /// The verdict of `validate` (and of the cluster): the room when it has no problem, else every problem.
    pub fn into_result(self) -> Result<ZimRoom, Vec<FieldError>> {
        match self.room {
            Some(room) if self.problems.is_empty() => Ok(room),
            _ => Err(self.problems.into_iter().map(|p| p.error).collect()),
        }
    }

    /// The verdict of `apply`: the room when it is valid or when the core reports every problem itself (byte
    /// lengths, charsets, ranges, duplicate keys: it records InvalidSpec without a ZIM call); otherwise every
    /// problem, because the object cannot be used as written (an unknown field would be dropped silently, a
    /// wrong type cannot be read).
    pub fn for_core(self) -> Result<ZimRoom, Vec<FieldError>> {
        match self.room {
            Some(room) if self.problems.iter().all(|p| p.core_reports) => Ok(room),
            _ => Err(self.problems.into_iter().map(|p| p.error).collect()),
        }
    }
}

/// Checks a ZimRoom document like the cluster and the operator would, and parses it. Every problem names its
/// field path; each says whether the reconcile core reports it itself.
pub fn check(doc: &Document) -> Checked {
    let schema = crd_schema();
    let mut errors = Vec::new();
    check_metadata(&doc.value, &mut errors);
    // The CRD schema covers spec and status; apiVersion, kind and metadata are the apiserver's own.
    let mut body = doc.value.clone();
    if let Some(o) = body.as_object_mut() {
        for k in ["apiVersion", "kind", "metadata"] {
            o.remove(k);
        }
    }
    check_schema(&schema, &body, "", &mut errors);
    let unreadable = |errors: Vec<FieldError>| Checked {
        room: None,
        problems: errors.into_iter().map(|error| Problem { error, core_reports: false }).collect(),
    };
    // Keep going when the object still has the right shape, so one run reports every problem; the operator's
    // own checks add only fields the schema did not already flag.
    let room: ZimRoom = match serde_json::from_value(doc.value.clone()) {
        Ok(room) => room,
        Err(e) if errors.is_empty() => {
            return unreadable(vec![FieldError { path: "<object>".into(), message: e.to_string() }]);
        }
        Err(_) => return unreadable(errors),
    };
    let mut more = Vec::new();
    if let Err(cel) = ZimRoom::validate_cel(&room) {
        more.extend(cel.into_vec().into_iter().map(|e| FieldError {
            path: if e.field_path.is_empty() { "spec".into() } else { e.field_path },
            message: e.message,
        }));
    }
    let name = room.metadata.name.as_deref().unwrap_or_default();
    let core = validate_spec(name, &room.spec);
    more.extend(core.iter().cloned());
    for e in more {
        if !errors.iter().any(|s| s.path == e.path || e.path.starts_with(&format!("{}.", s.path))) {
            errors.push(e);
        }
    }
    let related =
        |a: &str, b: &str| a == b || a.starts_with(&format!("{b}.")) || b.starts_with(&format!("{a}."));
    let problems = errors
        .into_iter()
        .map(|error| {
            let core_reports = core.iter().any(|c| related(&error.path, &c.path));
            Problem { error, core_reports }
        })
        .collect();
    Checked { room: Some(room), problems }
}

/// [`check`], as the cluster decides: the room, or every problem.
pub fn check_zimroom(doc: &Document) -> Result<ZimRoom, Vec<FieldError>> {
    check(doc).into_result()
}

fn crd_schema() -> Value {
    let crd = crate::crd::crd();
    let schema = crd.spec.versions[0].schema.as_ref().and_then(|s| s.open_api_v3_schema.as_ref());
    serde_json::to_value(schema).unwrap_or(Value::Null)
}

fn check_metadata(value: &Value, errors: &mut Vec<FieldError>) {
    let name = value.get("metadata").and_then(|m| m.get("name"));
    match name.and_then(Value::as_str) {
        None => errors.push(FieldError { path: "metadata.name".into(), message: "is required".into() }),
        Some(n) if !is_dns_subdomain(n) => errors.push(FieldError {
            path: "metadata.name".into(),
            message: format!(
                "{n:?} is not a valid object name: lowercase letters, digits, '-' and '.', starting and ending with an alphanumeric character, at most 253 characters"
            ),
        }),
        Some(_) => {}
    }
}

pub(crate) fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn doc(yaml: &str) -> Document {
        parse_documents(Path::new("t.yaml"), yaml).unwrap().remove(0)
    }

    fn problems(yaml: &str) -> Vec<String> {
        match check_zimroom(&doc(yaml)) {
            Ok(_) => Vec::new(),
            Err(e) => e.into_iter().map(|e| e.path).collect(),
        }
    }

    /// The problems' paths when the document is refused for the core, `None` when it goes to the core.
    fn refused_for_core(yaml: &str) -> Option<Vec<String>> {
        check(&doc(yaml)).for_core().err().map(|e| e.into_iter().map(|e| e.path).collect())
    }

    const HEAD: &str = "apiVersion: zim.zego.im/v1alpha1\nkind: ZimRoom\nmetadata: {name: lobby}\n";

    /// A minimal and a complete well-formed manifest both pass.
    #[test]
    fn good_manifests_pass() {
        assert!(problems(&format!("{HEAD}spec: {{}}\n")).is_empty());
        let full = format!(
            "{HEAD}spec:\n  roomId: 'lobby-1'\n  roomName: Lobby\n  destroyDelayTime: 0\n  attributes:\n  - {{key: topic, value: general}}\n  - {{key: mode, value: q, autoDelete: true}}\n  fromUserId: ops-bot\n  credentialsSecretRef: {{name: zego-app}}\n  deletionPolicy: Orphan\n"
        );
        assert!(problems(&full).is_empty(), "{:?}", problems(&full));
    }

    /// Each schema limit (charset, length, range, type, enum, unknown field, list-map key, required field) flags
    /// the field it concerns.
    #[test]
    fn schema_limits_name_the_field() {
        let cases = [
            ("spec: {roomId: 'a/b'}", "spec.roomId"),
            ("spec: {roomId: ''}", "spec.roomId"),
            ("spec: {destroyDelayTime: 10801}", "spec.destroyDelayTime"),
            ("spec: {destroyDelayTime: -1}", "spec.destroyDelayTime"),
            ("spec: {destroyDelayTime: 1.0e+30}", "spec.destroyDelayTime"),
            ("spec: {destroyDelayTime: 'soon'}", "spec.destroyDelayTime"),
            ("spec: {deletionPolicy: Keep}", "spec.deletionPolicy"),
            ("spec: {roomNmae: typo}", "spec.roomNmae"),
            ("spec: {attributes: [{key: a, value: b}, {key: a, value: c}]}", "spec.attributes[1]"),
            ("spec: {attributes: [{key: a}]}", "spec.attributes[0].value"),
            ("spec: {attributes: [{key: a, value: b, autoDelete: 'yes'}]}", "spec.attributes[0].autoDelete"),
            ("spec: {credentialsSecretRef: {}}", "spec.credentialsSecretRef.name"),
        ];
        for (spec, path) in cases {
            let p = problems(&format!("{HEAD}{spec}\n"));
            assert!(p.iter().any(|x| x == path), "{spec}: {p:?}");
        }
    }

    /// Too many attributes is one problem, on the list itself (the operator's own count adds no second one).
    #[test]
    fn too_many_attributes_is_one_problem_on_the_list() {
        let many: Vec<String> = (0..21).map(|i| format!("{{key: k{i}, value: v}}")).collect();
        let p = problems(&format!("{HEAD}spec: {{attributes: [{}]}}\n", many.join(",")));
        assert_eq!(p, ["spec.attributes"]);
    }

    /// Byte length: 33 two-byte characters pass the schema's 64-character limit but not ZIM's 64 bytes.
    #[test]
    fn room_name_over_64_bytes_is_flagged() {
        let p = problems(&format!("{HEAD}spec: {{roomName: '{}'}}\n", "é".repeat(33)));
        assert_eq!(p, ["spec.roomName"]);
    }

    /// An object name the apiserver would refuse is flagged on metadata.name.
    #[test]
    fn invalid_object_name_is_flagged() {
        let p = problems(
            "apiVersion: zim.zego.im/v1alpha1\nkind: ZimRoom\nmetadata: {name: Bad_Name}\nspec: {}\n",
        );
        assert_eq!(p, ["metadata.name"]);
    }

    /// Problems the reconcile core reports itself (a byte length, a duplicate key) still let the object reach it.
    #[test]
    fn core_reported_problems_reach_the_core() {
        let bytes = format!("{HEAD}spec: {{roomName: '{}'}}\n", "é".repeat(33));
        let checked = check(&doc(&bytes));
        assert_eq!(checked.problems.len(), 1);
        assert!(checked.problems[0].core_reports);
        assert_eq!(refused_for_core(&bytes), None);
        assert!(check_zimroom(&doc(&bytes)).is_err(), "still invalid for validate");
        let duplicate = format!("{HEAD}spec: {{attributes: [{{key: a, value: b}}, {{key: a, value: c}}]}}\n");
        assert_eq!(refused_for_core(&duplicate), None);
    }

    /// An unknown field or a wrong type keeps the object from the core, even beside a problem the core reports.
    #[test]
    fn other_schema_problems_keep_the_object_from_the_core() {
        assert_eq!(
            refused_for_core(&format!("{HEAD}spec: {{roomNmae: typo}}\n")).unwrap(),
            ["spec.roomNmae"]
        );
        let wrong_type = format!("{HEAD}spec: {{destroyDelayTime: 'soon'}}\n");
        assert!(check(&doc(&wrong_type)).room.is_none());
        assert_eq!(refused_for_core(&wrong_type).unwrap(), ["spec.destroyDelayTime"]);
        let mixed = format!("{HEAD}spec: {{roomNmae: typo, roomName: '{}'}}\n", "é".repeat(33));
        assert_eq!(refused_for_core(&mixed).unwrap(), ["spec.roomNmae", "spec.roomName"]);
    }

    #[test]
    fn a_set_expands_into_its_rooms_and_a_bad_one_into_a_problem() {
        let docs = crate::manifest::parse_documents(
            std::path::Path::new("sets.yaml"),
            "apiVersion: zim.zego.im/v1alpha1\nkind: ZimRoomSet\nmetadata: {name: s, namespace: games}\nspec:\n  rooms: {range: {prefix: t-, start: 1, end: 3}}\n  template: {spec: {destroyDelayTime: 60}}\n---\napiVersion: zim.zego.im/v1alpha1\nkind: ZimRoomSet\nmetadata: {name: bad}\nspec:\n  rooms: {range: {prefix: t-, start: 3, end: 1}}\n  template: {spec: {}}\n",
        )
        .unwrap();
        let (rooms, problems) = expand_sets(docs);
        let names: Vec<String> = rooms.iter().map(Document::object_name).collect();
        assert_eq!(names, ["games/s-t-1", "games/s-t-2", "games/s-t-3"]);
        assert!(rooms.iter().all(|d| d.is_zimroom() && d.index == 1));
        assert!(check(&rooms[1]).into_result().is_ok(), "a child is a valid ZimRoom");
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].problems[0].path, "spec.rooms.range");
    }
}
