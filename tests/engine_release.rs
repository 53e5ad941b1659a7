//! Engine releases on the real service (`ivcs cloud serve` over HTTP, real
//! SQLite): an operator publishes signed artifacts with `ivcs cloud engine`
//! (admin token), devices see offers in their signed plan views, download
//! with the offer's capability token and report outcomes; malformed
//! uploads, forged tokens and withdrawn releases are refused. The device
//! side of a whole delivery (download, verify, swap) is in `libivcs_c`.

use ivcs_tests::cli::{bin, sign_engine};
use ivcs_tests::cloud::{Cloud, Device};
use ivcs_tests::paths::scratch_dir;
use ivcs_tests::tools::{self, Captured, p};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

fn ivcs(args: &[&str]) -> Captured {
    tools::run(bin(), args)
}

/// The shipped engine, signed with a fresh key `name.key` in `dir`.
fn signed_engine(dir: &Path, name: &str) -> PathBuf {
    let cwasm = bin()
        .parent()
        .map(|d| d.join("../engine/engine.cwasm"))
        .filter(|c| c.is_file())
        .unwrap_or_else(|| panic!("no engine.cwasm beside {}: run `make dist`", p(&bin())));
    let key = dir.join(format!("{name}.key"));
    ivcs(&["engine", "keygen", "--out", &p(&key)]).expect_success();
    let out = dir.join(format!("{name}.signed"));
    sign_engine(&key, &cwasm, &out);
    out
}

/// `ivcs cloud engine ARGS --url .. --token ..`.
fn engine_cmd(cloud: &Cloud, token: &str, args: &[&str]) -> Captured {
    let mut a = vec!["cloud", "engine"];
    a.extend_from_slice(args);
    a.extend_from_slice(&["--url", &cloud.base, "--token", token]);
    ivcs(&a)
}

/// A raw request with a bearer token and a binary body: (status, JSON).
fn post_bytes(cloud: &Cloud, path_q: &str, token: &str, body: Vec<u8>) -> (u16, Value) {
    let agent = ivcs_tests::cloud::agent();
    let mut r = agent
        .post(&format!("{}{path_q}", cloud.base))
        .header("authorization", &format!("Bearer {token}"))
        // The service may refuse (401, 413) without reading the body.
        .header("expect", "100-continue")
        .send(&body[..])
        .expect("POST");
    let status = r.status().as_u16();
    let text = r.body_mut().read_to_string().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A GET or POST without device signing (the offer's URLs): (status, body).
fn token_request(cloud: &Cloud, method: &str, path_q: &str, body: &str) -> (u16, Vec<u8>) {
    let agent = ivcs_tests::cloud::agent();
    let url = format!("{}{path_q}", cloud.base);
    let r = if method == "GET" {
        agent.get(&url).call()
    } else {
        agent
            .post(&url)
            .header("content-type", "application/json")
            .send(body)
    };
    let mut r = r.expect("request");
    let status = r.status().as_u16();
    let bytes = r
        .body_mut()
        .with_config()
        .limit(256 << 20)
        .read_to_vec()
        .unwrap_or_default();
    (status, bytes)
}

/// The engine offer in the device's plan view (`Value::Null` if none).
fn offer(dev: &Device) -> Value {
    let a = dev.send("GET", "/v1/device/plan", b"");
    assert_eq!(a.status, 200, "{}", a.text());
    a.json()["engine"].clone()
}

fn release_status(cloud: &Cloud, token: &str, id: &str) -> Value {
    let a = cloud.app_get(&format!("/v1/engine/releases/{id}"), Some(token));
    assert_eq!(a.status, 200, "{}", a.text());
    a.json()
}

#[test]
fn publishing_needs_an_admin_token_and_refuses_what_no_device_could_take() {
    let dir = scratch_dir("engine_release_refusals");
    let cloud = Cloud::start(
        &dir.join("data"),
        &[("IVCS_CLOUD_MAX_ENGINE_BYTES", "30000000")],
    );
    cloud.add_device("cam1");
    let art = std::fs::read(signed_engine(&dir, "release")).expect("artifact");
    let admin = cloud.admin_token();
    let app = cloud.token();
    // An app token reaches recordings, not the fleet's engines.
    let (status, _) = post_bytes(
        &cloud,
        "/v1/engine/releases?devices=cam1",
        &app,
        art.clone(),
    );
    assert_eq!(status, 401);
    assert_eq!(cloud.app_get("/v1/engine/releases", Some(&app)).status, 401);
    assert_eq!(cloud.app_get("/v1/engine/releases", None).status, 401);
    // Malformed: every refusal is a 400 that says why.
    let mut tampered = art.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let mut truncated = art.clone();
    truncated.truncate(art.len() / 2);
    for (body, why) in [
        (b"not an engine".to_vec(), "not a valid engine artifact"),
        (art[..40].to_vec(), "not a valid engine artifact"),
        (tampered, "does not match its manifest"),
        (truncated, "does not match its manifest"),
    ] {
        let (status, v) = post_bytes(&cloud, "/v1/engine/releases?devices=cam1", &admin, body);
        assert_eq!(status, 400, "{v}");
        let msg = v["error"]["message"].as_str().unwrap_or("");
        assert!(msg.contains(why), "{msg}");
    }
    // Targeting must be exactly one of a list of known devices or 1-100 %.
    for (q, why) in [
        ("", "exactly one of"),
        ("?devices=cam1&percent=5", "exactly one of"),
        ("?devices=cam1,ghost", "no such device: ghost"),
        ("?devices=../x", "device id must be"),
        ("?percent=0", "percent must be 1-100"),
        ("?percent=101", "percent must be 1-100"),
        ("?devices=cam1&release=../x", "release id must be"),
    ] {
        let (status, v) = post_bytes(
            &cloud,
            &format!("/v1/engine/releases{q}"),
            &admin,
            art.clone(),
        );
        assert_eq!(status, 400, "{q}: {v}");
        let msg = v["error"]["message"].as_str().unwrap_or("");
        assert!(msg.contains(why), "{q}: {msg}");
    }
    // Larger than max_engine_bytes: 413 before anything is stored.
    let (status, v) = post_bytes(
        &cloud,
        "/v1/engine/releases?devices=cam1",
        &admin,
        vec![0u8; 30_000_001],
    );
    assert_eq!(status, 413, "{v}");
    // Nothing was published by any of that.
    let list = cloud.app_get("/v1/engine/releases", Some(&admin)).json();
    assert_eq!(list["releases"], json!([]));
    // The CLI says the service's reason and fails.
    let bad = dir.join("bad.signed");
    std::fs::write(&bad, b"IVCSENG\x01").expect("writing");
    let out = engine_cmd(&cloud, &admin, &["publish", &p(&bad), "--devices", "cam1"]);
    assert!(!out.success);
    assert!(
        out.stderr.contains("400") && out.stderr.contains("not a valid engine artifact"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_release_is_offered_to_its_devices_downloaded_with_its_token_and_reported() {
    let dir = scratch_dir("engine_release_offer");
    let cloud = Cloud::start(&dir.join("data"), &[]);
    let cam1 = cloud.add_device("cam1");
    let cam2 = cloud.add_device("cam2");
    let file = signed_engine(&dir, "release");
    let art = std::fs::read(&file).expect("artifact");
    let admin = cloud.admin_token();
    assert_eq!(offer(&cam1), Value::Null);
    let rev_before = cam1.send("GET", "/v1/device/plan", b"").json()["revision"].as_u64();

    let out = engine_cmd(
        &cloud,
        &admin,
        &["publish", &p(&file), "--devices", "cam1", "--release", "r1"],
    )
    .expect_success();
    let text = out.stdout_text();
    assert!(text.contains("release:        r1"), "{text}");
    assert!(
        text.contains("targets now:    1 registered device(s)"),
        "{text}"
    );
    assert!(text.contains("not checked by the service"), "{text}");

    // The targeted device's revision moved (its long poll wakes) and its
    // view carries the offer; the other device's does not.
    let view = cam1.send("GET", "/v1/device/plan", b"").json();
    assert!(view["revision"].as_u64() > rev_before, "{view}");
    let o = view["engine"].clone();
    assert_eq!(o["release"], "r1");
    assert_eq!(o["size"].as_u64(), Some(art.len() as u64));
    assert_eq!(o["sha256"], ivcs_cloud::auth::sha256_hex(&art));
    assert_eq!(o["contract"], "0.4.0");
    assert_eq!(o["kind"], "precompiled");
    assert_eq!(offer(&cam2), Value::Null);

    // The download URL gives the artifact byte for byte, without signing.
    let url = o["url"].as_str().expect("url").to_string();
    let report = o["report_url"].as_str().expect("report_url").to_string();
    let (status, bytes) = token_request(&cloud, "GET", &url, "");
    assert_eq!(status, 200);
    assert_eq!(bytes, art);
    // A token is for one device and one release, and must be intact.
    let forged = [
        url.replace("device=cam1", "device=cam2"),
        url.replace("/r1/", "/r2/"),
        url.replace("sig=", "sig=0"),
        url.split("&sig=").next().unwrap_or("").to_string(),
        url.replace(
            &format!(
                "exp={}",
                url.split("exp=")
                    .nth(1)
                    .and_then(|s| s.split('&').next())
                    .unwrap_or("")
            ),
            "exp=99999999999",
        ),
    ];
    for f in &forged {
        let (status, _) = token_request(&cloud, "GET", f, "");
        assert_eq!(status, 401, "{f}");
    }
    // An expired token: the service's clock moves past exp.
    cloud.set_now_ms(cloud.now_ms() + 8 * 86_400_000);
    assert_eq!(token_request(&cloud, "GET", &url, "").0, 401);
    cloud.set_now_ms(cloud.now_ms() - 8 * 86_400_000);

    // Reports: bad ones are 400; each good one replaces the last; a
    // refusal is final, so the release is no longer offered.
    for (body, status) in [
        (r#"{"status":"exploded"}"#, 400),
        (r#"{"status":"refused"}"#, 400),
        (r#"{"status":"refused","kind":"bored"}"#, 400),
        ("not json", 400),
        (r#"{"status":"downloaded"}"#, 200),
    ] {
        assert_eq!(
            token_request(&cloud, "POST", &report, body).0,
            status,
            "{body}"
        );
    }
    let s = release_status(&cloud, &admin, "r1");
    assert_eq!(s["devices"][0]["status"], "downloaded");
    assert_eq!(offer(&cam1)["release"], "r1", "downloaded is not final");
    let (status, _) = token_request(
        &cloud,
        "POST",
        &report,
        r#"{"status":"refused","kind":"untrusted","message":"unknown key \u0007 abc"}"#,
    );
    assert_eq!(status, 200);
    let s = release_status(&cloud, &admin, "r1");
    assert_eq!(s["summary"], json!({ "refused": 1 }));
    assert_eq!(s["devices"][0]["device"], "cam1");
    assert_eq!(s["devices"][0]["kind"], "untrusted");
    assert_eq!(s["devices"][0]["message"], "unknown key   abc");
    assert_eq!(
        offer(&cam1),
        Value::Null,
        "a refused release is not offered again"
    );
    let out = engine_cmd(&cloud, &admin, &["status", "r1"]).expect_success();
    assert!(
        out.stdout_text().contains("cam1\trefused\tuntrusted"),
        "{}",
        out.stdout_text()
    );

    // The same id twice is a conflict; a second release for both devices
    // is the newest, so it is the one offered.
    let again = engine_cmd(
        &cloud,
        &admin,
        &["publish", &p(&file), "--devices", "cam1", "--release", "r1"],
    );
    assert!(
        !again.success && again.stderr.contains("409"),
        "{}",
        again.stderr
    );
    engine_cmd(
        &cloud,
        &admin,
        &[
            "publish",
            &p(&file),
            "--devices",
            "cam1,cam2",
            "--release",
            "r2",
        ],
    )
    .expect_success();
    assert_eq!(offer(&cam1)["release"], "r2");
    let o2 = offer(&cam2);
    assert_eq!(o2["release"], "r2");

    // Withdrawn: offered to nobody, not downloadable, listed as withdrawn.
    let out = engine_cmd(&cloud, &admin, &["withdraw", "r2"]).expect_success();
    assert!(
        out.stdout_text().starts_with("withdrawn r2"),
        "{}",
        out.stdout_text()
    );
    assert_eq!(offer(&cam1), Value::Null);
    assert_eq!(offer(&cam2), Value::Null);
    let (status, body) = token_request(&cloud, "GET", o2["url"].as_str().unwrap_or(""), "");
    assert_eq!(status, 404, "{}", String::from_utf8_lossy(&body));
    let list = engine_cmd(&cloud, &admin, &["list"])
        .expect_success()
        .stdout_text();
    let r2 = list
        .lines()
        .find(|l| l.starts_with("r2\t"))
        .expect("r2 listed");
    assert!(!r2.ends_with("\t-"), "withdrawn time shown: {r2}");
    assert!(
        list.lines()
            .any(|l| l.starts_with("r1\t") && l.ends_with("\t-")),
        "{list}"
    );
    let missing = engine_cmd(&cloud, &admin, &["withdraw", "nope"]);
    assert!(
        !missing.success && missing.stderr.contains("404"),
        "{}",
        missing.stderr
    );
}

#[test]
fn a_percent_rollout_offers_exactly_the_devices_its_hash_picks() {
    let dir = scratch_dir("engine_release_percent");
    let cloud = Cloud::start(&dir.join("data"), &[]);
    let devices: Vec<Device> = (0..40)
        .map(|i| cloud.add_device(&format!("cam{i:02}")))
        .collect();
    let file = signed_engine(&dir, "release");
    let admin = cloud.admin_token();
    let out = engine_cmd(
        &cloud,
        &admin,
        &[
            "publish",
            &p(&file),
            "--percent",
            "25",
            "--release",
            "wave1",
        ],
    )
    .expect_success();
    let picked: Vec<&str> = devices
        .iter()
        .filter(|d| ivcs_cloud::releases::in_rollout("wave1", &d.id, 25))
        .map(|d| d.id.as_str())
        .collect();
    assert!(
        out.stdout_text().contains(&format!(
            "targets now:    {} registered device(s)",
            picked.len()
        )),
        "{}",
        out.stdout_text()
    );
    for d in &devices {
        let o = offer(d);
        assert_eq!(
            o["release"] == "wave1",
            picked.contains(&d.id.as_str()),
            "{}",
            d.id
        );
    }
    // Roughly a quarter (the hash's spread on the whole is unit-tested).
    assert!((3..=18).contains(&picked.len()), "{picked:?}");
}

#[test]
fn a_service_with_vendor_keys_refuses_artifacts_signed_by_other_keys() {
    let dir = scratch_dir("engine_release_keys");
    let good = signed_engine(&dir, "vendor");
    let other = signed_engine(&dir, "other");
    let keys = dir.join("vendor.key.pub");
    let cloud = Cloud::start(&dir.join("data"), &[("IVCS_CLOUD_ENGINE_KEYS", &p(&keys))]);
    cloud.add_device("cam1");
    let admin = cloud.admin_token();
    let refused = engine_cmd(
        &cloud,
        &admin,
        &["publish", &p(&other), "--devices", "cam1"],
    );
    assert!(!refused.success);
    assert!(
        refused
            .stderr
            .contains("not signed by a key in engine_keys"),
        "{}",
        refused.stderr
    );
    let ok =
        engine_cmd(&cloud, &admin, &["publish", &p(&good), "--devices", "cam1"]).expect_success();
    assert!(
        ok.stdout_text().contains("verified by the service"),
        "{}",
        ok.stdout_text()
    );
}
