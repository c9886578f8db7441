use super::*;

struct Fixed;
impl Clock for Fixed {
    fn unix_seconds(&self) -> i64 {
        1615186943
    }
}

#[test]
fn signed_url_puts_action_and_public_params_in_query() {
    let client =
        HttpClient::new(&ClientConfig { endpoint: "http://127.0.0.1:1".into(), ..Default::default() })
            .unwrap()
            .with_clock(Arc::new(Fixed));
    let creds = Credentials::new(12345, "9193cc662a4c0ec135ec71fb57194b38");
    let url = client.signed_url(&creds, Action::DestroyRoom, &[("RoomId", "a b".into())]);
    let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let get = |k: &str| pairs.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone()).unwrap();
    assert_eq!(url.path(), "/");
    assert_eq!(pairs[0], ("Action".into(), "DestroyRoom".into()));
    assert_eq!(get("AppId"), "12345");
    assert_eq!(get("Timestamp"), "1615186943");
    assert_eq!(get("SignatureVersion"), "2.0");
    assert_eq!(get("RoomId"), "a b");
    let nonce = get("SignatureNonce");
    assert_eq!(
        get("Signature"),
        super::super::sign::signature(12345, &nonce, "9193cc662a4c0ec135ec71fb57194b38", 1615186943)
    );
}

#[test]
fn rejects_bad_endpoints() {
    for bad in ["zim-api.zego.im", "ftp://x", "https://x/?a=b"] {
        assert!(
            HttpClient::new(&ClientConfig { endpoint: bad.into(), ..Default::default() }).is_err(),
            "{bad}"
        );
    }
}

/// Plain http:// is refused for any host but loopback, with a message that says why.
#[test]
fn plain_http_only_for_loopback() {
    let build =
        |endpoint: &str| HttpClient::new(&ClientConfig { endpoint: endpoint.into(), ..Default::default() });
    for ok in [
        "http://127.0.0.1:8080",
        "http://127.9.8.7",
        "http://[::1]:80/",
        "http://localhost:1",
        "http://LOCALHOST",
    ] {
        assert!(build(ok).is_ok(), "{ok}");
    }
    for bad in [
        "http://zim-api.zego.im",
        "http://10.0.0.1:8080",
        "http://[::2]/",
        "http://localhost.evil.example",
        "http://0.0.0.0:80",
    ] {
        let err = build(bad).err().unwrap_or_else(|| panic!("{bad} accepted")).to_string();
        assert!(err.contains("only allowed for a loopback host"), "{bad}: {err}");
    }
    assert!(build("https://zim-api.zego.im").is_ok());
}

/// A CA file that is missing or holds no certificate is refused at construction, naming the file.
#[test]
fn ca_file_problems_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    for path in [dir.path().join("missing.pem"), empty] {
        let err = HttpClient::new(&ClientConfig { ca_file: Some(path.clone()), ..Default::default() })
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains(&path.display().to_string()) && err.contains("--ca-file"), "{err}");
    }
}
