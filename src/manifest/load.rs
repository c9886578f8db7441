//! Reading manifests: files, directories (their `*.yaml` and `*.yml` files, sorted), `-` for standard input,
//! split into YAML documents, with `List` objects flattened into their items. Nothing here knows what a ZimRoom
//! must look like; it only finds the documents and says where each came from.
//!
//! Input is bounded before it is parsed: a file (or standard input) over [`MAX_FILE_BYTES`] is refused by its
//! size, unread, and all inputs together over [`MAX_TOTAL_BYTES`]. YAML is parsed by `granit-parser` (to find
//! the documents) and `serde-saphyr` (to read each), both linear in the input and bounded in depth, nodes and
//! aliases — `serde_yaml`'s libyaml took time quadratic in the nesting of flow collections.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The largest manifest file read: 4 MiB (a ZimRoom is well under 10 KiB; `kubectl` itself refuses objects
/// over about 1.5 MiB).
pub const MAX_FILE_BYTES: u64 = 4 << 20;
/// The most bytes read over all inputs of one run.
pub const MAX_TOTAL_BYTES: u64 = 64 << 20;
/// Nesting deeper than this is refused (a ZimRoom nests 5 levels).
const MAX_DEPTH: usize = 64;

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
    /// A file is larger than [`MAX_FILE_BYTES`].
    #[error("{path}: {size} is larger than the {MAX_FILE_BYTES} bytes a manifest file may have")]
    TooLarge {
        /// The path.
        path: PathBuf,
        /// Its size as known (`N bytes`, or `over N bytes` for standard input).
        size: String,
    },
    /// All inputs together are larger than [`MAX_TOTAL_BYTES`].
    #[error("{path}: the inputs of this run exceed {MAX_TOTAL_BYTES} bytes in total")]
    TooMuch {
        /// The file that went over.
        path: PathBuf,
    },
}

/// Reads every document of every file; directories contribute their `*.yaml` and `*.yml` files, sorted.
pub fn load(paths: &[PathBuf]) -> Result<Vec<Document>, LoadError> {
    let mut docs = Vec::new();
    let mut total = 0u64;
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
                docs.extend(load_file(&f, &mut total)?);
            }
        } else {
            docs.extend(load_file(path, &mut total)?);
        }
    }
    Ok(docs)
}

fn load_file(path: &Path, total: &mut u64) -> Result<Vec<Document>, LoadError> {
    let io = |source| LoadError::Io { path: path.into(), source };
    let bytes = if path == Path::new("-") {
        read_capped(std::io::stdin().lock(), path)?
    } else {
        let file = std::fs::File::open(path).map_err(io)?;
        // Refused by its size before a byte is read; the capped read also covers a file that grows meanwhile.
        let size = file.metadata().map_err(io)?.len();
        if size > MAX_FILE_BYTES {
            return Err(LoadError::TooLarge { path: path.into(), size: format!("{size} bytes") });
        }
        read_capped(file, path)?
    };
    *total += bytes.len() as u64;
    if *total > MAX_TOTAL_BYTES {
        return Err(LoadError::TooMuch { path: path.into() });
    }
    let text = String::from_utf8(bytes)
        .map_err(|e| LoadError::NotUtf8 { path: path.into(), offset: e.utf8_error().valid_up_to() })?;
    parse_documents(path, &text)
}

/// Reads at most [`MAX_FILE_BYTES`] (and one more byte, to tell a larger input).
fn read_capped(reader: impl Read, path: &Path) -> Result<Vec<u8>, LoadError> {
    let mut buf = Vec::new();
    reader
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|source| LoadError::Io { path: path.into(), source })?;
    if buf.len() as u64 > MAX_FILE_BYTES {
        return Err(LoadError::TooLarge { path: path.into(), size: format!("over {MAX_FILE_BYTES} bytes") });
    }
    Ok(buf)
}

/// The parser's limits: nesting depth, and the lookahead of an implicit key.
fn parser_options() -> granit_parser::Options {
    let mut options = granit_parser::Options::default();
    options.flow_nesting_limit = MAX_DEPTH;
    options.block_nesting_limit = MAX_DEPTH + 1;
    options
}

/// How one document is read: YAML 1.2 core scalars, as `serde_yaml` 0.9 and the API server read them (`yes` is a
/// string, `0755` and `1_000` too), duplicate keys refused, and a budget bounding nodes, depth and aliases.
fn document_options() -> serde_saphyr::Options {
    let mut options = serde_saphyr::Options::default();
    options.strict_booleans = true;
    options.leading_zero_numbers_as_strings = true;
    options.underscored_numbers_as_strings = true;
    options.with_snippet = false;
    let mut budget = options.budget.take().unwrap_or_default();
    budget.max_depth = MAX_DEPTH;
    budget.max_documents = 1;
    options.budget = Some(budget);
    options
}

/// The byte offset of `marker` in `text`.
fn byte_offset(text: &str, marker: &granit_parser::Marker) -> usize {
    marker
        .byte_offset()
        .unwrap_or_else(|| text.char_indices().nth(marker.index()).map_or(text.len(), |(i, _)| i))
        .min(text.len())
}

/// The text of each YAML document of `text` (one linear pass of the parser), or the 1-based index of the document
/// where the YAML is broken and why.
fn split_documents(text: &str) -> Result<Vec<&str>, (usize, String)> {
    let mut starts = Vec::new();
    for event in granit_parser::Parser::new_from_str_with_options(text, parser_options()) {
        match event {
            Ok((granit_parser::Event::DocumentStart(..), span)) => {
                starts.push(byte_offset(text, &span.start))
            }
            Ok(_) => {}
            Err(e) => return Err((starts.len().max(1), e.to_string())),
        }
    }
    let ends = starts.iter().skip(1).copied().chain([text.len()]);
    Ok(starts.iter().zip(ends).map(|(&start, end)| &text[start..end.max(start)]).collect())
}

/// Splits `text` into YAML documents; `List` objects are flattened into their items.
pub fn parse_documents(path: &Path, text: &str) -> Result<Vec<Document>, LoadError> {
    let yaml_error = |index, message| LoadError::Yaml { path: path.into(), index, message };
    let mut docs = Vec::new();
    let documents = split_documents(text).map_err(|(index, message)| yaml_error(index, message))?;
    for (i, document) in documents.into_iter().enumerate() {
        let index = i + 1;
        // An empty document (or one holding only `null`) is skipped without a parse, keeping its index.
        let value: Value =
            match serde_saphyr::from_str_with_options::<Option<Value>>(document, document_options()) {
                Ok(v) => v.unwrap_or(Value::Null),
                Err(e) => return Err(yaml_error(index, e.to_string())),
            };
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
        let err = parse_documents(Path::new("dup.yaml"), "a: 1\n---\n---\nb: 1\nb: 2\n").unwrap_err();
        assert!(err.to_string().starts_with("dup.yaml (document 3): not valid YAML"), "{err}");
    }

    /// Scalars read as YAML 1.2 core (as serde_yaml 0.9 read them): only true/false are booleans, numbers with a
    /// leading zero or an underscore stay strings, quoted numbers are strings.
    #[test]
    fn scalars_read_as_yaml_1_2_core() {
        let docs = parse_documents(
            Path::new("s.yaml"),
            "a: yes\nb: true\nc: 0755\nd: 1_000\ne: 3600\nf: '3600'\ng: null\nh: ~\ni: 1.5\nj: on\n",
        )
        .unwrap();
        assert_eq!(
            docs[0].value,
            serde_json::json!({"a": "yes", "b": true, "c": "0755", "d": "1_000", "e": 3600, "f": "3600",
                               "g": null, "h": null, "i": 1.5, "j": "on"})
        );
    }

    /// Flow collections nested past the depth limit are refused at once, however deep the input goes (libyaml
    /// took quadratic time on these), and documents are found in one pass.
    #[test]
    fn deep_flow_nesting_is_refused_quickly() {
        for text in ["[".repeat(200_000), "{a: ".repeat(100_000)] {
            let start = std::time::Instant::now();
            let err = parse_documents(Path::new("deep.yaml"), &text).unwrap_err();
            assert!(err.to_string().starts_with("deep.yaml (document 1): not valid YAML"), "{err}");
            assert!(start.elapsed() < std::time::Duration::from_secs(2), "{:?}", start.elapsed());
        }
    }
}
