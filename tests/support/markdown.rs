//! Reading the project's Markdown the way GitHub renders it: the anchors of a page's headings, its tables' rows,
//! and its relative links, each checked against the files and headings that exist. Used by tests/integration/docs.rs and
//! tests/integration/monitoring.rs.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The checkout's root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A file of the checkout, by its path from the root.
pub fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The documentation: README.md and every page under docs/, as paths from the root.
pub fn pages() -> Vec<String> {
    let mut pages = vec!["README.md".to_owned()];
    let mut docs: Vec<String> = std::fs::read_dir(root().join("docs"))
        .expect("docs/ exists")
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".md"))
        .map(|n| format!("docs/{n}"))
        .collect();
    docs.sort();
    pages.extend(docs);
    pages
}

/// The lines of a page outside fenced code blocks (the fences themselves left out), with their line numbers.
pub fn prose(text: &str) -> Vec<(usize, &str)> {
    let mut in_code = false;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if !in_code {
            out.push((i + 1, line));
        }
    }
    out
}

/// GitHub's anchor of a Markdown heading: lower case, punctuation other than `-` and `_` dropped (backticks
/// included), spaces to `-`.
pub fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_' || *c == ' ')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a page's headings; a repeated heading gets GitHub's `-1`, `-2`, … suffixes.
pub fn anchors(text: &str) -> BTreeSet<String> {
    let mut anchors = BTreeSet::new();
    for (_, line) in prose(text) {
        let hashes = line.len() - line.trim_start_matches('#').len();
        if !(1..=6).contains(&hashes) || !line[hashes..].starts_with(' ') {
            continue;
        }
        let base = anchor(&line[hashes..]);
        let mut candidate = base.clone();
        let mut n = 0;
        while !anchors.insert(candidate.clone()) {
            n += 1;
            candidate = format!("{base}-{n}");
        }
    }
    anchors
}

/// The rows of a page's tables whose first cell starts with `prefix` (e.g. "| `zim_operator_"), from prose only.
pub fn rows<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
    prose(text).into_iter().map(|(_, l)| l).filter(|l| l.starts_with(prefix)).collect()
}

/// The link targets of a page's prose, `[text](target)`, with the line each target is on. Inline code spans are
/// skipped, and so are link texts that run over several lines.
pub fn links(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut in_span = false;
    for (n, line) in prose(text) {
        // Inline code blanked out byte for byte, so offsets into `rest` are offsets into `line` (a span may run
        // over a line break).
        let mut rest = String::with_capacity(line.len());
        for c in line.chars() {
            if c == '`' {
                in_span = !in_span;
                rest.push(' ');
            } else if in_span {
                rest.extend(std::iter::repeat_n(' ', c.len_utf8()));
            } else {
                rest.push(c);
            }
        }
        if line.trim().is_empty() {
            in_span = false; // a paragraph ends every code span
        }
        let mut from = 0;
        while let Some(i) = rest[from..].find("](") {
            let start = from + i + 2;
            let Some(len) = rest[start..].find(')') else { break };
            out.push((n, line[start..start + len].to_owned()));
            from = start + len;
        }
    }
    out
}

/// What is wrong with the relative links of `page` (a path from the root, its text given): a target that does not
/// exist, or an `#anchor` that is no heading of the Markdown page it points into. Absolute URLs are not followed.
pub fn broken_links(page: &str, text: &str, read: impl Fn(&Path) -> Option<String>) -> Vec<String> {
    let dir = Path::new(page).parent().unwrap_or(Path::new(""));
    let mut problems = Vec::new();
    for (line, target) in links(text) {
        if target.contains("://") || target.starts_with("mailto:") {
            continue;
        }
        let (path, fragment) = match target.split_once('#') {
            Some((p, f)) => (p, Some(f)),
            None => (target.as_str(), None),
        };
        let file = if path.is_empty() { PathBuf::from(page) } else { normalize(&dir.join(path)) };
        let at = format!("{page}:{line}: {target}");
        if file.starts_with("..") {
            problems.push(format!("{at}: leads out of the checkout"));
            continue;
        }
        let body = if path.is_empty() { Some(text.to_owned()) } else { read(&file) };
        let Some(body) = body else {
            problems.push(format!("{at}: {} does not exist", file.display()));
            continue;
        };
        if let Some(fragment) = fragment {
            if file.extension().is_none_or(|e| e != "md") {
                problems.push(format!("{at}: an anchor into a file that is not Markdown"));
            } else if !anchors(&body).contains(fragment) {
                problems.push(format!("{at}: {} has no heading #{fragment}", file.display()));
            }
        }
    }
    problems
}

/// `a/b/../c` as `a/c`; a path that climbs out of the checkout keeps its `..` (and then does not exist).
fn normalize(path: &Path) -> PathBuf {
    let mut out: Vec<&std::ffi::OsStr> = Vec::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir if out.last().is_some_and(|p| *p != "..") => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out.iter().collect()
}

/// Reads a path of the checkout for [`broken_links`]: a file's text, an empty text for a directory, `None` when
/// nothing is there.
pub fn read_checkout(path: &Path) -> Option<String> {
    let full = root().join(path);
    if full.is_dir() { Some(String::new()) } else { std::fs::read_to_string(full).ok() }
}
