//! Request signing, exactly as docs/ref/protocol.md ("Signing") and the
//! cloud's `auth` module define it: HMAC-SHA256 with the device secret over
//! a canonical string of method, path, query, device id, timestamp, nonce
//! and body digest, sent in five headers.
//!
//! The secret is used as bytes exactly as given to `configure` (the string
//! `ivcs cloud device add` printed, not hex-decoded), and never leaves this
//! module except as a MAC.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Scheme name: first canonical line and `Authorization` prefix.
pub const SCHEME: &str = "IVCS1-HMAC-SHA256";
/// Header naming the device.
pub const H_DEVICE: &str = "x-ivcs-device";
/// Header with the Unix time of signing, seconds.
pub const H_TIMESTAMP: &str = "x-ivcs-timestamp";
/// Header with the request's nonce.
pub const H_NONCE: &str = "x-ivcs-nonce";
/// Header with the body digest (hex) or [`STREAMING`].
pub const H_CONTENT_SHA256: &str = "x-ivcs-content-sha256";
/// Digest value of a streamed segment upload (checked at commit instead).
pub const STREAMING: &str = "STREAMING";

/// Lowercase hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// A device's identity: id and secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    device_id: String,
    secret: Vec<u8>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("Credentials")
            .field("device_id", &self.device_id)
            .field("secret", &format_args!("<{} bytes>", self.secret.len()))
            .finish()
    }
}

impl Credentials {
    /// Credentials of `device_id` with `secret`.
    pub fn new(device_id: String, secret: Vec<u8>) -> Credentials {
        Credentials { device_id, secret }
    }

    /// The device id.
    pub fn device_id(&self) -> &str {
        &self.device_id
    }

    /// The five signing headers of a request. `path_and_query` is exactly
    /// what is sent (`/v1/...?a=1`); `content_sha256` is the body's hex
    /// digest or [`STREAMING`].
    pub fn sign(
        &self,
        method: &str,
        path_and_query: &str,
        timestamp_s: u64,
        nonce: &str,
        content_sha256: &str,
    ) -> Vec<(String, String)> {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        let canonical = canonical(
            method,
            path,
            query,
            &self.device_id,
            timestamp_s,
            nonce,
            content_sha256,
        );
        let sig = hex::encode(mac(&self.secret, canonical.as_bytes()));
        vec![
            (H_DEVICE.to_string(), self.device_id.clone()),
            (H_TIMESTAMP.to_string(), timestamp_s.to_string()),
            (H_NONCE.to_string(), nonce.to_string()),
            (H_CONTENT_SHA256.to_string(), content_sha256.to_string()),
            (
                "authorization".to_string(),
                format!("{SCHEME} Signature={sig}"),
            ),
        ]
    }
}

/// The string that is signed: the protocol's eight lines joined by `\n`.
pub fn canonical(
    method: &str,
    path: &str,
    query: &str,
    device: &str,
    timestamp_s: u64,
    nonce: &str,
    content_sha256: &str,
) -> String {
    format!(
        "{SCHEME}\n{method}\n{path}\n{query}\n{device}\n{timestamp_s}\n{nonce}\n{content_sha256}"
    )
}

fn mac(key: &[u8], msg: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length: new_from_slice cannot fail; an empty
    // MAC would only make the cloud answer 401.
    let Ok(mut m) = Hmac::<Sha256>::new_from_slice(key) else {
        return Vec::new();
    };
    m.update(msg);
    m.finalize().into_bytes().to_vec()
}

/// Makes nonces that are unique per device without OS randomness: UTC ms
/// of signing, a counter, and 64 bits from the engine's seeded generator.
/// The UTC part keeps nonces apart across engine restarts from an older
/// exported state (the counter may repeat, the clock does not); the random
/// part keeps two devices' engines restored from one state apart.
pub fn nonce(utc_ms: u64, counter: u64, random: u64) -> String {
    // 12 + up to 16 + 16 hex digits: within the protocol's 16..=64.
    format!("{utc_ms:012x}{counter:x}{random:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_in_the_protocols_alphabet_and_length() {
        for (t, c, r) in [
            (0, 0, 0),
            (u64::MAX, u64::MAX, u64::MAX),
            (1_700_000_000_000, 7, 42),
        ] {
            let n = nonce(t, c, r);
            assert!((16..=64).contains(&n.len()), "{n}");
            assert!(n.bytes().all(|b| b.is_ascii_alphanumeric()));
        }
    }

    #[test]
    fn signature_covers_path_and_query_separately() {
        let c = Credentials::new("cam1".into(), b"s3cret".to_vec());
        let h = c.sign("GET", "/v1/device/changes?since=3", 1000, "n", STREAMING);
        let auth = &h
            .iter()
            .find(|(k, _)| k == "authorization")
            .map(|(_, v)| v.clone());
        let expect = hex::encode(mac(
            b"s3cret",
            b"IVCS1-HMAC-SHA256\nGET\n/v1/device/changes\nsince=3\ncam1\n1000\nn\nSTREAMING",
        ));
        assert_eq!(
            auth.as_deref(),
            Some(format!("{SCHEME} Signature={expect}").as_str())
        );
        assert!(!format!("{c:?}").contains("s3cret"));
    }
}
