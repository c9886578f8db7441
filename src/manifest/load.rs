//! Reading manifests: files, directories (their `*.yaml` and `*.yml` files, sorted), `-` for standard input,
//! split into YAML documents, with `List` objects flattened into their items. Nothing here knows what a ZimRoom
//! must look like; it only finds the documents and says where each came from.

use std::path::{Path, PathBuf};

use serde_json::Value;

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

#[cfg(test)]
mod tests {
    use super::*;

    /// `List` items share their document's index, and empty documents are skipped without using up an index.
    #[test]
    fn list_items_share_their_documents_index() {
        let docs = parse_documents(
            Path::new("l.yaml"),
            "apiVersion: v1\nkind: List\nitems:\n- {kind: A}\n- {kind: B}\n---\n---\nkind: C\n",
        )
        .unwrap();
        assert_eq!(docs.iter().map(|d| d.index).collect::<Vec<_>>(), [1, 1, 3]);
    }

    /// A document that is not valid YAML is an error naming the file and the document.
    #[test]
    fn bad_yaml_names_its_document() {
        let err = parse_documents(Path::new("bad.yaml"), "a: 1\n---\nb: [\n").unwrap_err();
        assert!(err.to_string().starts_with("bad.yaml (document 2): not valid YAML"), "{err}");
    }
}
