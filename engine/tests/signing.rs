//! The engine's request signatures verify with the cloud's own checker
//! (`ivcs_cloud::auth`), and any change to a signed part breaks them.

use ivcs_cloud::auth::{DeviceAuth, SignedRequest};
use ivcs_engine::cloud::sign::{Credentials, STREAMING, sha256_hex};

fn header<'a>(h: &'a [(String, String)], name: &str) -> &'a str {
    h.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {name} header"))
}

fn verify(
    h: &[(String, String)],
    method: &str,
    path: &str,
    query: &str,
    secret: &str,
    now_s: u64,
) -> bool {
    let req = SignedRequest {
        method,
        path,
        query,
        device: header(h, "x-ivcs-device"),
        timestamp: header(h, "x-ivcs-timestamp").parse().unwrap(),
        nonce: header(h, "x-ivcs-nonce"),
        content_sha256: header(h, "x-ivcs-content-sha256"),
    };
    DeviceAuth::new(300)
        .verify(&req, header(h, "authorization"), secret, now_s)
        .is_ok()
}

#[test]
fn engine_signature_verifies_with_the_cloud() {
    let secret = ivcs_cloud::auth::random_secret();
    let c = Credentials::new("cam-7".into(), secret.as_bytes().to_vec());
    let body = br#"{"ai_type":1,"args":""}"#;
    let h = c.sign(
        "PUT",
        "/v1/device/ai/0/5",
        1_700_000_000,
        "018bcfe56800000001a2b3c4d5e6f708",
        &sha256_hex(body),
    );
    assert!(verify(
        &h,
        "PUT",
        "/v1/device/ai/0/5",
        "",
        &secret,
        1_700_000_010
    ));
    assert_eq!(
        header(&h, "x-ivcs-content-sha256"),
        ivcs_cloud::auth::sha256_hex(body)
    );

    let q = c.sign(
        "GET",
        "/v1/device/changes?since=4&wait_s=25",
        1_700_000_000,
        "018bcfe56800000002a2b3c4d5e6f708",
        &sha256_hex(b""),
    );
    assert!(verify(
        &q,
        "GET",
        "/v1/device/changes",
        "since=4&wait_s=25",
        &secret,
        1_700_000_000
    ));

    let s = c.sign(
        "PUT",
        "/v1/device/segments/0-1-a-1",
        1_700_000_000,
        "018bcfe56800000003a2b3c4d5e6f708",
        STREAMING,
    );
    assert!(verify(
        &s,
        "PUT",
        "/v1/device/segments/0-1-a-1",
        "",
        &secret,
        1_700_000_000
    ));
}

#[test]
fn tampering_breaks_the_signature() {
    let secret = ivcs_cloud::auth::random_secret();
    let c = Credentials::new("cam-7".into(), secret.as_bytes().to_vec());
    let h = c.sign(
        "GET",
        "/v1/device/changes?since=4",
        1_700_000_000,
        "018bcfe56800000001a2b3c4d5e6f708",
        &sha256_hex(b""),
    );
    let now = 1_700_000_000;
    assert!(verify(
        &h,
        "GET",
        "/v1/device/changes",
        "since=4",
        &secret,
        now
    ));
    assert!(!verify(
        &h,
        "GET",
        "/v1/device/changes",
        "since=5",
        &secret,
        now
    ));
    assert!(!verify(
        &h,
        "POST",
        "/v1/device/changes",
        "since=4",
        &secret,
        now
    ));
    assert!(!verify(
        &h,
        "GET",
        "/v1/device/plan",
        "since=4",
        &secret,
        now
    ));
    assert!(!verify(
        &h,
        "GET",
        "/v1/device/changes",
        "since=4",
        "other",
        now
    ));
    assert!(!verify(
        &h,
        "GET",
        "/v1/device/changes",
        "since=4",
        &secret,
        now + 301
    ));
}
