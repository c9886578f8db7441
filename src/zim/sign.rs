//! Request signing, exactly as ZEGO documents it for the ZIM server API.
//!
//! `Signature = md5(AppId + SignatureNonce + ServerSecret + Timestamp)` as 32 lowercase hex characters, where `+`
//! is plain string concatenation, AppId and Timestamp are decimal, the nonce is 16 lowercase hex characters (8
//! random bytes) and the timestamp is Unix seconds. Every request gets a fresh nonce, timestamp and signature.
//! Signing is a pure function: the clock and the nonce are passed in, so the published vector is a unit test.

use std::fmt;

use md5::{Digest, Md5};
use rand::RngCore;

/// The only signature version ZEGO accepts.
pub const SIGNATURE_VERSION: &str = "2.0";

/// A ZEGO server secret. Its `Debug` and `Display` never show the value.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerSecret(String);

impl ServerSecret {
    /// Wraps a secret; surrounding whitespace (a trailing newline from a file or Secret) is removed.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into().trim().to_owned())
    }

    /// The secret itself, for signing only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ServerSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerSecret(<redacted>)")
    }
}

impl fmt::Display for ServerSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The credentials of one ZEGO application: its AppId and server secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// The application's AppId from the ZEGO console.
    pub app_id: u32,
    /// The application's server secret; never logged.
    pub secret: ServerSecret,
}

impl Credentials {
    /// Builds credentials from an AppId and a secret.
    pub fn new(app_id: u32, secret: impl Into<String>) -> Self {
        Self { app_id, secret: ServerSecret::new(secret) }
    }
}

/// Computes the documented signature: `md5(AppId + SignatureNonce + ServerSecret + Timestamp)`, lowercase hex.
pub fn signature(app_id: u32, nonce: &str, secret: &str, timestamp: i64) -> String {
    let mut hasher = Md5::new();
    hasher.update(app_id.to_string().as_bytes());
    hasher.update(nonce.as_bytes());
    hasher.update(secret.as_bytes());
    hasher.update(timestamp.to_string().as_bytes());
    hex::encode(hasher.finalize())
}

/// A fresh `SignatureNonce`: 8 random bytes as 16 lowercase hex characters.
pub fn new_nonce() -> String {
    let mut bytes = [0u8; 8];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The public parameters of one request. `Debug` hides the signature.
#[derive(Clone)]
pub struct PublicParams {
    /// AppId, decimal.
    pub app_id: u32,
    /// 16 lowercase hex characters.
    pub nonce: String,
    /// Unix seconds.
    pub timestamp: i64,
    signature: String,
}

impl PublicParams {
    /// Signs a request for `credentials` at `timestamp` with `nonce`.
    pub fn sign(credentials: &Credentials, timestamp: i64, nonce: String) -> Self {
        let signature = signature(credentials.app_id, &nonce, credentials.secret.expose(), timestamp);
        Self { app_id: credentials.app_id, nonce, timestamp, signature }
    }

    /// The public parameters as query pairs, in the documented order.
    pub fn query_pairs(&self) -> [(&'static str, String); 5] {
        [
            ("AppId", self.app_id.to_string()),
            ("SignatureNonce", self.nonce.clone()),
            ("Timestamp", self.timestamp.to_string()),
            ("SignatureVersion", SIGNATURE_VERSION.to_owned()),
            ("Signature", self.signature.clone()),
        ]
    }
}

impl fmt::Debug for PublicParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicParams")
            .field("app_id", &self.app_id)
            .field("timestamp", &self.timestamp)
            .field("signature", &"<redacted>")
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ZEGO's published vector (the Go sample on the "Accessing server APIs" page).
    #[test]
    fn signature_matches_zego_published_vector() {
        assert_eq!(
            signature(12345, "4fd24687296dd9f3", "9193cc662a4c0ec135ec71fb57194b38", 1615186943),
            "43e5cfcca828314675f91b001390566a"
        );
    }

    #[test]
    fn nonce_is_16_lowercase_hex_and_fresh() {
        let a = new_nonce();
        let b = new_nonce();
        assert_eq!(a.len(), 16);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b);
    }

    #[test]
    fn debug_output_hides_secret_and_signature() {
        let creds = Credentials::new(1, "super-secret-value");
        assert!(!format!("{creds:?}").contains("super-secret-value"));
        let params = PublicParams::sign(&creds, 1, "0011223344556677".into());
        let sig = params.query_pairs()[4].1.clone();
        assert!(!format!("{params:?}").contains(&sig));
    }

    #[test]
    fn secret_is_trimmed() {
        assert_eq!(ServerSecret::new(" abc\n").expose(), "abc");
    }
}
