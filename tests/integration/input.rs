//! Hostile input to `apply` and `validate`: files over the size cap are refused by their size (never read), and
//! YAML nesting that made libyaml quadratic is refused in milliseconds.

use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use zim_operator::manifest::{self, MAX_FILE_BYTES};

const HEAD: &str = "apiVersion: zim.zego.im/v1alpha1\nkind: ZimRoom\nmetadata: {name: big, namespace: chat}\nspec:\n  attributes:\n  - key: k\n    value: ";

/// A ZimRoom manifest whose one attribute value is `bytes` bytes long.
fn manifest_with_value(path: &Path, bytes: usize) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    f.write_all(HEAD.as_bytes()).unwrap();
    let chunk = vec![b'x'; 1 << 20];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(chunk.len());
        f.write_all(&chunk[..n]).unwrap();
        left -= n;
    }
    f.write_all(b"\n").unwrap();
}

/// This process's peak resident set so far (VmHWM), in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

async fn validate(args: &[&str], stdin: Option<Vec<u8>>) -> (i32, String, Duration) {
    let start = Instant::now();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_zim-operator"))
        .arg("validate")
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(bytes) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            // The reader stops early; a broken pipe is expected.
            let _ = pipe.write_all(&bytes).await;
        });
    }
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output()).await.unwrap().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned(), start.elapsed())
}

/// A 200 MB attribute value: the file is refused by its size, unread (peak RSS does not grow by its size), with
/// an error naming the file.
#[tokio::test]
async fn a_200_mb_value_is_refused_by_file_size() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.yaml");
    manifest_with_value(&big, 200_000_000);
    let before = peak_rss();
    let err = manifest::load(std::slice::from_ref(&big)).unwrap_err().to_string();
    let grown = peak_rss().saturating_sub(before);
    assert!(err.contains("big.yaml") && err.contains("larger than the 4194304 bytes"), "{err}");
    assert!(grown < 16 << 20, "peak RSS grew by {grown} bytes");

    let (code, stderr, took) = validate(&["-f", big.to_str().unwrap()], None).await;
    eprintln!("validate of a 200 MB value: exit {code} after {took:?}");
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("big.yaml") && stderr.contains("larger than"), "{stderr}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

/// A file just under the cap is read; standard input over the cap is refused after reading one byte more.
#[tokio::test]
async fn the_cap_applies_to_files_and_standard_input() {
    let dir = tempfile::tempdir().unwrap();
    let fits = dir.path().join("fits.yaml");
    manifest_with_value(&fits, MAX_FILE_BYTES as usize - HEAD.len() - 1);
    assert_eq!(std::fs::metadata(&fits).unwrap().len(), MAX_FILE_BYTES);
    // Read and parsed: invalid (the value is over 1024 bytes), not refused as input.
    let (code, stderr, _) = validate(&["-f", fits.to_str().unwrap()], None).await;
    assert_eq!(code, 1, "{stderr}");

    let mut over = HEAD.as_bytes().to_vec();
    over.resize(MAX_FILE_BYTES as usize + 10, b'x');
    let (code, stderr, _) = validate(&["-f", "-"], Some(over)).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("-: over 4194304 bytes is larger than"), "{stderr}");
}

/// 400 KB of nested flow mappings (libyaml, behind serde_yaml, took 95 s on this in a debug build) is refused
/// within a second, with an error naming the file and document.
#[tokio::test]
async fn deeply_nested_flow_yaml_is_refused_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let deep = dir.path().join("deep.yaml");
    std::fs::write(&deep, "{a: ".repeat(100_000)).unwrap();
    let (code, stderr, took) = validate(&["-f", deep.to_str().unwrap()], None).await;
    eprintln!("validate of 400 KB of flow nesting: exit {code} after {took:?}");
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("deep.yaml (document 1): not valid YAML"), "{stderr}");
    assert!(took < Duration::from_secs(2), "{took:?}");
}
