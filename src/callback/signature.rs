//! ZEGO's callback signature (as ZEGO's callback pages describe it): lowercase hex sha1 of `[callbacksecret, timestamp, nonce]`
//! sorted as strings (byte order, as PHP's `SORT_STRING` and Java's `Arrays.sort` do for ASCII) and
//! concatenated. The timestamp and nonce are used exactly as the request spelled them.

use sha1::{Digest, Sha1};

use super::CallbackSecret;

/// The signature ZEGO computes for `timestamp` and `nonce` with `secret`, as 40 lowercase hex characters.
pub fn expected(secret: &CallbackSecret, timestamp: &str, nonce: &str) -> String {
    let mut parts = [secret.expose(), timestamp, nonce];
    parts.sort_unstable();
    hex::encode(Sha1::digest(parts.concat().as_bytes()))
}

/// Whether `signature` matches any of `secrets` for `timestamp` and `nonce`. Hex letters may be upper or lower
/// case. Every candidate is checked, each in time independent of where the strings differ.
pub fn matches(secrets: &[CallbackSecret], timestamp: &str, nonce: &str, signature: &str) -> bool {
    let given = signature.trim().to_ascii_lowercase();
    secrets
        .iter()
        .map(|secret| constant_time_eq(expected(secret, timestamp, nonce).as_bytes(), given.as_bytes()))
        .fold(false, |any, ok| any | ok)
}

/// Compares two byte strings in time that depends on their lengths only (the length of a sha1 hex digest is
/// no secret).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ZEGO's published vector: timestamp 1470820198, nonce 123412, secret `secret`.
    #[test]
    fn published_vector() {
        let secret = [CallbackSecret::new("secret")];
        assert_eq!(expected(&secret[0], "1470820198", "123412"), "5bd59fd62953a8059fb7eaba95720f66d19e4517");
        assert!(matches(&secret, "1470820198", "123412", "5bd59fd62953a8059fb7eaba95720f66d19e4517"));
        assert!(matches(&secret, "1470820198", "123412", "5BD59FD62953A8059FB7EABA95720F66D19E4517"));
    }

    /// The parts are sorted as strings, not as numbers: "9" sorts after "1470820198".
    #[test]
    fn parts_sort_as_strings() {
        let secret = CallbackSecret::new("Zsecret");
        let hashed = hex::encode(Sha1::digest(b"14708201989Zsecret"));
        assert_eq!(expected(&secret, "1470820198", "9"), hashed);
    }

    /// A wrong secret, timestamp, nonce, a truncated or empty signature fail; any one of several secrets passes.
    #[test]
    fn mismatches_fail_and_any_candidate_passes() {
        let good = "5bd59fd62953a8059fb7eaba95720f66d19e4517";
        let secret = [CallbackSecret::new("secret")];
        assert!(matches(&secret, "1470820198", "123412", good));
        assert!(!matches(&[CallbackSecret::new("other")], "1470820198", "123412", good));
        assert!(!matches(&secret, "1470820199", "123412", good));
        assert!(!matches(&secret, "1470820198", "123413", good));
        assert!(!matches(&secret, "1470820198", "123412", &good[..39]));
        assert!(!matches(&secret, "1470820198", "123412", ""));
        assert!(!matches(&[], "1470820198", "123412", good));
        let [secret] = secret;
        let rotation = [CallbackSecret::new("old"), secret, CallbackSecret::new("new")];
        assert!(matches(&rotation, "1470820198", "123412", good));
    }

    #[test]
    fn constant_time_eq_compares_bytes() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(constant_time_eq(b"", b""));
    }
}
