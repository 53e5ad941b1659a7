//! Authentication.
//!
//! - Devices sign every request with HMAC-SHA256 over method, path, query,
//!   device id, timestamp, nonce and body digest (docs/ref/protocol.md);
//!   the service checks freshness, remembers nonces for the freshness window
//!   to refuse replays, and compares MACs in constant time.
//! - Apps send `Authorization: Bearer <token>`; only the token's SHA-256 is
//!   stored.
//! - Playback URLs carry `exp` and `sig` (HMAC with a server key over path
//!   and expiry), so a plain `<video>` element or hls.js needs no headers.

use crate::error::{Error, Result};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;

type HmacSha256 = Hmac<Sha256>;

/// Scheme name in the `Authorization` header and first canonical line.
pub const SCHEME: &str = "IVCS1-HMAC-SHA256";
/// Header naming the device.
pub const H_DEVICE: &str = "x-ivcs-device";
/// Header with the Unix time of signing, seconds.
pub const H_TIMESTAMP: &str = "x-ivcs-timestamp";
/// Header with the request's nonce.
pub const H_NONCE: &str = "x-ivcs-nonce";
/// Header with the body's SHA-256 (hex), or [`STREAMING`].
pub const H_CONTENT_SHA256: &str = "x-ivcs-content-sha256";
/// Body digest value of a streamed segment upload; the digest is checked
/// at commit instead.
pub const STREAMING: &str = "STREAMING";

/// SHA-256 of `data`, lowercase hex.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// A new random secret or token: 32 bytes, hex.
pub fn random_secret() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// The fields a device signs.
#[derive(Clone, Copy, Debug)]
pub struct SignedRequest<'a> {
    /// HTTP method, upper case.
    pub method: &'a str,
    /// Path, as sent.
    pub path: &'a str,
    /// Raw query string without `?` (empty if none), as sent.
    pub query: &'a str,
    /// Device id.
    pub device: &'a str,
    /// Unix seconds.
    pub timestamp: u64,
    /// Nonce.
    pub nonce: &'a str,
    /// Body SHA-256 hex, or [`STREAMING`].
    pub content_sha256: &'a str,
}

impl SignedRequest<'_> {
    fn canonical(&self) -> String {
        format!(
            "{SCHEME}\n{}\n{}\n{}\n{}\n{}\n{}\n{}",
            self.method,
            self.path,
            self.query,
            self.device,
            self.timestamp,
            self.nonce,
            self.content_sha256
        )
    }

    /// The signature (hex) with `secret`.
    pub fn sign(&self, secret: &str) -> String {
        hex::encode(mac(secret.as_bytes(), self.canonical().as_bytes()))
    }

    /// The `Authorization` header value.
    pub fn authorization(&self, secret: &str) -> String {
        format!("{SCHEME} Signature={}", self.sign(secret))
    }
}

fn mac(key: &[u8], msg: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so new_from_slice cannot fail.
    let Ok(mut m) = HmacSha256::new_from_slice(key) else {
        return Vec::new();
    };
    m.update(msg);
    m.finalize().into_bytes().to_vec()
}

fn verify_mac(key: &[u8], msg: &[u8], sig_hex: &str) -> bool {
    let Ok(sig) = hex::decode(sig_hex) else {
        return false;
    };
    let Ok(mut m) = HmacSha256::new_from_slice(key) else {
        return false;
    };
    m.update(msg);
    m.verify_slice(&sig).is_ok()
}

/// Checks a device request's signature, freshness and nonce. Every failure
/// is the same 401; the reason goes to the debug log only.
pub struct DeviceAuth {
    skew_s: u64,
    /// (device, nonce) -> Unix seconds after which it may be forgotten.
    seen: Mutex<HashMap<(String, String), u64>>,
}

impl DeviceAuth {
    /// A checker accepting timestamps within `skew_s` of the server clock.
    pub fn new(skew_s: u64) -> DeviceAuth {
        DeviceAuth {
            skew_s,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Verifies `req` signed as `authorization` by the holder of `secret`
    /// at server time `now_s`.
    pub fn verify(
        &self,
        req: &SignedRequest<'_>,
        authorization: &str,
        secret: &str,
        now_s: u64,
    ) -> Result<()> {
        let fail = |why: &str| {
            tracing::debug!(device = req.device, why, "device request refused");
            Error::unauthorized()
        };
        let Some(sig) = authorization
            .strip_prefix(SCHEME)
            .and_then(|r| r.trim_start().strip_prefix("Signature="))
        else {
            return Err(fail("malformed authorization header"));
        };
        if !(16..=64).contains(&req.nonce.len())
            || !req
                .nonce
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(fail("malformed nonce"));
        }
        if req.timestamp.abs_diff(now_s) > self.skew_s {
            return Err(fail("stale timestamp"));
        }
        if !verify_mac(secret.as_bytes(), req.canonical().as_bytes(), sig) {
            return Err(fail("bad signature"));
        }
        // Only a correctly signed request consumes its nonce, so forgeries
        // cannot fill the table.
        let mut seen = self
            .seen
            .lock()
            .map_err(|_| Error::internal("nonce table poisoned"))?;
        if seen.len() > 100_000 {
            seen.retain(|_, until| *until >= now_s);
        }
        let key = (req.device.to_string(), req.nonce.to_string());
        if seen.get(&key).is_some_and(|until| *until >= now_s) {
            return Err(fail("replayed nonce"));
        }
        seen.insert(key, req.timestamp.max(now_s) + self.skew_s);
        Ok(())
    }
}

/// A playback URL signature: 64 lowercase hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UrlSig([u8; 64]);

impl UrlSig {
    /// The hex digits.
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever stored.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// Signs and checks playback URLs with a server key.
#[derive(Clone)]
pub struct UrlSigner {
    /// HMAC state after the key: cloned per URL, so the key is not hashed
    /// again for each of the thousands of URLs of a long playlist.
    keyed: HmacSha256,
}

impl UrlSigner {
    /// A signer with `key` (hex or any string; used as bytes).
    pub fn new(key: &str) -> UrlSigner {
        UrlSigner {
            // HMAC accepts keys of any length.
            keyed: HmacSha256::new_from_slice(key.as_bytes())
                .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length")),
        }
    }

    /// The MAC over `path \n query \n exp_s`.
    fn mac(&self, path: &str, query: &str, exp_s: u64) -> HmacSha256 {
        let mut m = self.keyed.clone();
        m.update(path.as_bytes());
        m.update(b"\n");
        m.update(query.as_bytes());
        m.update(b"\n");
        // Decimal digits of exp_s, without allocating.
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        let mut v = exp_s;
        loop {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        m.update(&digits[i..]);
        m
    }

    /// `sig` for `path` plus its other query parameters `query`
    /// (canonical: as they appear in the URL, without exp and sig), valid
    /// until `exp_s`.
    pub fn sign(&self, path: &str, query: &str, exp_s: u64) -> String {
        self.sig(path, query, exp_s).as_str().to_string()
    }

    /// [`UrlSigner::sign`] without allocating, for playlists that sign
    /// thousands of URLs.
    pub fn sig(&self, path: &str, query: &str, exp_s: u64) -> UrlSig {
        let mac = self.mac(path, query, exp_s).finalize().into_bytes();
        let mut hex = [b'0'; 64];
        // 32 bytes always fit 64 hex digits; hex::encode would go char by
        // char (a quarter of a long playlist's time).
        let _ = hex::encode_to_slice(mac, &mut hex);
        UrlSig(hex)
    }

    /// Checks a signature at `now_s`.
    pub fn verify(&self, path: &str, query: &str, exp_s: u64, sig: &str, now_s: u64) -> bool {
        let Ok(sig) = hex::decode(sig) else {
            return false;
        };
        exp_s >= now_s && self.mac(path, query, exp_s).verify_slice(&sig).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<'a>(nonce: &'a str, ts: u64) -> SignedRequest<'a> {
        SignedRequest {
            method: "PUT",
            path: "/v1/device/segments/s1",
            query: "channel=0",
            device: "cam1",
            timestamp: ts,
            nonce,
            content_sha256: STREAMING,
        }
    }

    #[test]
    fn accepts_once_then_refuses_replay() {
        let a = DeviceAuth::new(300);
        let r = req("0123456789abcdef", 1000);
        let h = r.authorization("s3cret");
        assert!(a.verify(&r, &h, "s3cret", 1000).is_ok());
        assert!(a.verify(&r, &h, "s3cret", 1001).is_err(), "replay");
    }

    #[test]
    fn refuses_forged_stale_and_tampered() {
        let a = DeviceAuth::new(300);
        let r = req("0123456789abcdef", 1000);
        assert!(
            a.verify(&r, &r.authorization("wrong"), "s3cret", 1000)
                .is_err()
        );
        assert!(
            a.verify(&r, &r.authorization("s3cret"), "s3cret", 1301)
                .is_err()
        );
        let mut t = r;
        t.path = "/v1/device/segments/s2";
        assert!(
            a.verify(&t, &r.authorization("s3cret"), "s3cret", 1000)
                .is_err()
        );
        let short = req("short", 1000);
        assert!(
            a.verify(&short, &short.authorization("s3cret"), "s3cret", 1000)
                .is_err()
        );
        assert!(a.verify(&r, "Bearer x", "s3cret", 1000).is_err());
    }

    #[test]
    fn url_signatures_expire_and_bind_the_path() {
        let s = UrlSigner::new("k");
        let sig = s.sign("/a", "start=1", 100);
        assert!(s.verify("/a", "start=1", 100, &sig, 100));
        assert!(!s.verify("/a", "start=1", 100, &sig, 101));
        assert!(!s.verify("/b", "start=1", 100, &sig, 50));
        assert!(!s.verify("/a", "start=2", 100, &sig, 50));
    }
}
