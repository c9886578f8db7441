//! Reading ZimRoom manifests from files and directories, and checking them the way the cluster would: the
//! generated CRD's OpenAPI schema (types, lengths, patterns, enums, list-map keys, unknown fields), its CEL rules
//! (kube's `cel` feature), then the operator's own checks (UTF-8 byte lengths and the like).
//!
//! The schema walk is ours because no JSON-Schema crate implements Kubernetes' structural-schema semantics
//! (nullable pruning, `x-kubernetes-list-map-keys`, unknown-field rejection as `kubectl` reports it).

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::crd::ZimRoom;
use crate::reconcile::validate::{FieldError, validate_spec};

/// One YAML document of one file.
#[derive(Clone, Debug)]
pub struct Document {
    /// The file it came from.
    pub file: PathBuf,
    /// 1-based index of the document in the file (items of a `List` share their document's index).
    pub index: usize,
    /// The document as JSON.
    pub value: Value,
}

impl Document {
    /// `file (document N)`.
    pub fn location(&self) -> String {
        format!("{} (document {})", self.file.display(), self.index)
    }

    /// Whether it is a ZimRoom.
    pub fn is_zimroom(&self) -> bool {
        self.value.get("kind").and_then(Value::as_str) == Some("ZimRoom")
            && self.value.get("apiVersion").and_then(Value::as_str) == Some("zim.zego.im/v1alpha1")
    }

    /// `namespace/name` as written (namespace `default` when absent).
    pub fn object_name(&self) -> String {
        let meta = self.value.get("metadata");
        let ns = meta.and_then(|m| m.get("namespace")).and_then(Value::as_str).unwrap_or("default");
        let name = meta.and_then(|m| m.get("name")).and_then(Value::as_str).unwrap_or("<no name>");
        format!("{ns}/{name}")
    }

    /// `kind` as written.
    pub fn kind(&self) -> String {
        let kind = self.value.get("kind").and_then(Value::as_str).unwrap_or("<no kind>");
        let api = self.value.get("apiVersion").and_then(Value::as_str).unwrap_or("<no apiVersion>");
        format!("{api} {kind}")
    }
}

/// A file or document that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// I/O failure.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not UTF-8.
    #[error("{path}: not UTF-8 text (invalid byte at offset {offset})")]
    NotUtf8 {
        /// The path.
        path: PathBuf,
        /// Offset of the first invalid byte.
        offset: usize,
    },
    /// A document is not valid YAML.
    #[error("{path} (document {index}): not valid YAML: {message}")]
    Yaml {
        /// The path.
        path: PathBuf,
        /// 1-based document index.
        index: usize,
        /// The parser's message.
        message: String,
    },
    /// A directory held no manifests.
    #[error("{0}: no *.yaml or *.yml files")]
    EmptyDir(PathBuf),
}

/// Reads every document of every file; directories contribute their `*.yaml` and `*.yml` files, sorted.
pub fn load(paths: &[PathBuf]) -> Result<Vec<Document>, LoadError> {
    let mut docs = Vec::new();
    for path in paths {
        if path.is_dir() {
            let entries =
                std::fs::read_dir(path).map_err(|source| LoadError::Io { path: path.clone(), source })?;
            let mut files: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.is_file() && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
                })
                .collect();
            files.sort();
            if files.is_empty() {
                return Err(LoadError::EmptyDir(path.clone()));
            }
            for f in files {
                docs.extend(load_file(&f)?);
            }
        } else {
            docs.extend(load_file(path)?);
        }
    }
    Ok(docs)
}

fn load_file(path: &Path) -> Result<Vec<Document>, LoadError> {
    let bytes = if path == Path::new("-") {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)
            .map_err(|source| LoadError::Io { path: path.into(), source })?;
        buf
    } else {
        std::fs::read(path).map_err(|source| LoadError::Io { path: path.into(), source })?
    };
    let text = String::from_utf8(bytes)
        .map_err(|e| LoadError::NotUtf8 { path: path.into(), offset: e.utf8_error().valid_up_to() })?;
    parse_documents(path, &text)
}

/// Splits `text` into YAML documents; `List` objects are flattened into their items.
pub fn parse_documents(path: &Path, text: &str) -> Result<Vec<Document>, LoadError> {
    use serde::Deserialize;
    let mut docs = Vec::new();
    for (i, de) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let index = i + 1;
        let value = Value::deserialize(de).map_err(|e| LoadError::Yaml {
            path: path.into(),
            index,
            message: e.to_string(),
        })?;
        match value {
            Value::Null => continue,
            Value::Object(ref o) if o.get("kind").and_then(Value::as_str) == Some("List") => {
                for item in o.get("items").and_then(Value::as_array).into_iter().flatten() {
                    docs.push(Document { file: path.into(), index, value: item.clone() });
                }
            }
            value => docs.push(Document { file: path.into(), index, value }),
        }
    }
    Ok(docs)
}

/// Checks a ZimRoom document like the cluster and the operator would, and parses it. Every problem names its
/// field path.
pub fn check_zimroom(doc: &Document) -> Result<ZimRoom, Vec<FieldError>> {
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
    // Keep going when the object still has the right shape, so one run reports every problem; the operator's
    // own checks add only fields the schema did not already flag.
    let room: ZimRoom = match serde_json::from_value(doc.value.clone()) {
        Ok(room) => room,
        Err(e) if errors.is_empty() => {
            return Err(vec![FieldError { path: "<object>".into(), message: e.to_string() }]);
        }
        Err(_) => return Err(errors),
    };
    let mut more = Vec::new();
    if let Err(cel) = ZimRoom::validate_cel(&room) {
        more.extend(cel.into_vec().into_iter().map(|e| FieldError {
            path: if e.field_path.is_empty() { "spec".into() } else { e.field_path },
            message: e.message,
        }));
    }
    let name = room.metadata.name.as_deref().unwrap_or_default();
    more.extend(validate_spec(name, &room.spec));
    for e in more {
        if !errors.iter().any(|s| s.path == e.path || e.path.starts_with(&format!("{}.", s.path))) {
            errors.push(e);
        }
    }
    if errors.is_empty() { Ok(room) } else { Err(errors) }
}

fn crd_schema() -> Value {
    use kube::CustomResourceExt;
    let crd = ZimRoom::crd();
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

fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn join_path(base: &str, key: &str) -> String {
    if base.is_empty() { key.to_owned() } else { format!("{base}.{key}") }
}

/// Checks `value` against a structural schema, appending problems with their paths.
pub fn check_schema(schema: &Value, value: &Value, path: &str, errors: &mut Vec<FieldError>) {
    let mut fail = |message: String| errors.push(FieldError { path: path.to_owned(), message });
    if value.is_null() {
        // Kubernetes prunes nulls of non-nullable fields; they count as absent.
        return;
    }
    if schema.get("x-kubernetes-int-or-string").and_then(Value::as_bool) == Some(true) {
        if !(value.is_string() || value.is_i64() || value.is_u64()) {
            fail("must be an integer or a string".into());
        }
        return;
    }
    let ty = schema.get("type").and_then(Value::as_str);
    match ty {
        Some("object") => {
            let Some(obj) = value.as_object() else {
                return fail(format!("must be an object, got {}", kind(value)));
            };
            let props = schema.get("properties").and_then(Value::as_object);
            let preserve =
                schema.get("x-kubernetes-preserve-unknown-fields").and_then(Value::as_bool) == Some(true);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            for (k, v) in obj {
                let child = join_path(path, k);
                if let Some(s) = props.and_then(|p| p.get(k)) {
                    check_schema(s, v, &child, errors);
                } else if let Some(s) = additional {
                    check_schema(s, v, &child, errors);
                } else if !preserve && props.is_some() {
                    errors.push(FieldError { path: child, message: "unknown field".into() });
                }
            }
            for r in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
                if let Some(r) = r.as_str()
                    && obj.get(r).is_none_or(Value::is_null)
                {
                    errors.push(FieldError { path: join_path(path, r), message: "is required".into() });
                }
            }
        }
        Some("array") => {
            let Some(items) = value.as_array() else {
                return fail(format!("must be a list, got {}", kind(value)));
            };
            if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
                && items.len() as u64 > max
            {
                fail(format!("has {} items, at most {max} are allowed", items.len()));
            }
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    check_schema(item_schema, item, &format!("{path}[{i}]"), errors);
                }
            }
            if schema.get("x-kubernetes-list-type").and_then(Value::as_str) == Some("map") {
                let keys: Vec<&str> = schema
                    .get("x-kubernetes-list-map-keys")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                let mut seen = std::collections::HashSet::new();
                for (i, item) in items.iter().enumerate() {
                    let id: Vec<Value> =
                        keys.iter().map(|k| item.get(*k).cloned().unwrap_or(Value::Null)).collect();
                    if !seen.insert(serde_json::to_string(&id).unwrap_or_default()) {
                        errors.push(FieldError {
                            path: format!("{path}[{i}]"),
                            message: format!(
                                "duplicate entry with {} {}",
                                keys.join(","),
                                serde_json::to_string(&id).unwrap_or_default()
                            ),
                        });
                    }
                }
            }
        }
        Some("string") => {
            let Some(s) = value.as_str() else {
                return fail(format!("must be a string, got {}", kind(value)));
            };
            let chars = s.chars().count() as u64;
            if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
                && chars > max
            {
                fail(format!("is {chars} characters, at most {max} are allowed"));
            }
            if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
                && chars < min
            {
                fail(format!("is {chars} characters, at least {min} are required"));
            }
            if let Some(p) = schema.get("pattern").and_then(Value::as_str)
                && let Ok(re) = regex::Regex::new(p)
                && !re.is_match(s)
            {
                fail(format!("{s:?} does not match the pattern {p}"));
            }
            if let Some(options) = schema.get("enum").and_then(Value::as_array)
                && !options.contains(value)
            {
                let list: Vec<String> = options.iter().filter_map(Value::as_str).map(str::to_owned).collect();
                fail(format!("{s:?} is not one of {}", list.join(", ")));
            }
        }
        Some("integer") | Some("number") => {
            let Some(n) = value.as_f64() else {
                return fail(format!("must be a number, got {}", kind(value)));
            };
            if ty == Some("integer") && !(value.is_i64() || value.is_u64()) {
                return fail(format!("must be a whole number, got {value}"));
            }
            if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
                && n > max
            {
                fail(format!("is {value}, at most {max} is allowed"));
            }
            if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
                && n < min
            {
                fail(format!("is {value}, at least {min} is required"));
            }
            let (lo, hi) = match schema.get("format").and_then(Value::as_str) {
                Some("int32") => (i32::MIN as f64, i32::MAX as f64),
                Some("uint32") => (0.0, u32::MAX as f64),
                _ => (f64::MIN, f64::MAX),
            };
            if n < lo || n > hi {
                fail(format!("{value} is out of range"));
            }
        }
        Some("boolean") if !value.is_boolean() => fail(format!("must be true or false, got {}", kind(value))),
        _ => {}
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
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

    const HEAD: &str = "apiVersion: zim.zego.im/v1alpha1\nkind: ZimRoom\nmetadata: {name: lobby}\n";

    #[test]
    fn good_manifests_pass() {
        assert!(problems(&format!("{HEAD}spec: {{}}\n")).is_empty());
        let full = format!(
            "{HEAD}spec:\n  roomId: 'lobby-1'\n  roomName: Lobby\n  destroyDelayTime: 0\n  attributes:\n  - {{key: topic, value: general}}\n  - {{key: mode, value: q, autoDelete: true}}\n  fromUserId: ops-bot\n  credentialsSecretRef: {{name: zego-app}}\n  deletionPolicy: Orphan\n"
        );
        assert!(problems(&full).is_empty(), "{:?}", problems(&full));
    }

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
        let many: Vec<String> = (0..21).map(|i| format!("{{key: k{i}, value: v}}")).collect();
        let p = problems(&format!("{HEAD}spec: {{attributes: [{}]}}\n", many.join(",")));
        assert_eq!(p, ["spec.attributes"]);
        // Byte length: 33 two-byte characters pass the schema's 64-character limit but not ZIM's 64 bytes.
        let p = problems(&format!("{HEAD}spec: {{roomName: '{}'}}\n", "é".repeat(33)));
        assert_eq!(p, ["spec.roomName"]);
        let p = problems(
            "apiVersion: zim.zego.im/v1alpha1\nkind: ZimRoom\nmetadata: {name: Bad_Name}\nspec: {}\n",
        );
        assert_eq!(p, ["metadata.name"]);
    }

    #[test]
    fn lists_and_bad_yaml() {
        let docs = parse_documents(
            Path::new("l.yaml"),
            "apiVersion: v1\nkind: List\nitems:\n- {kind: A}\n- {kind: B}\n---\n---\nkind: C\n",
        )
        .unwrap();
        assert_eq!(docs.iter().map(|d| d.index).collect::<Vec<_>>(), [1, 1, 3]);
        let err = parse_documents(Path::new("bad.yaml"), "a: 1\n---\nb: [\n").unwrap_err();
        assert!(err.to_string().starts_with("bad.yaml (document 2): not valid YAML"), "{err}");
    }
}
