//! Engine offers (contract 0.3.0): the `engine` object of a plan view,
//! checked and turned into a [`HostEvent::EngineOffer`] once per release.
//!
//! The engine only relays the offer: it neither downloads nor verifies
//! (that is the host's, with its own client and keys). Its part is to tell
//! the host exactly once per release, including across `export-state` /
//! `import-state` (the releases offered are part of the plan cache), and to
//! keep a malformed offer from ever disturbing the plans that came with it.

use crate::cs::plans::Plans;
use crate::events::{EngineOffer, HostEvent, LogLevel, Outbox};
use serde::Deserialize;

/// Releases remembered as offered: more than a fleet ever has in flight,
/// few enough to keep the plan cache small.
pub const REMEMBERED: usize = 16;

/// Longest `url` / `report-url`, bytes.
const MAX_URL: usize = 2048;

/// Longest text field, bytes (as the artifact manifest's rule).
const MAX_TEXT: usize = 128;

#[derive(Deserialize)]
struct OfferJson {
    release: String,
    engine_version: String,
    contract: String,
    kind: String,
    target: String,
    sha256: String,
    size: u64,
    url: String,
    report_url: String,
}

fn release_ok(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 96
        && id.as_bytes().first().is_some_and(u8::is_ascii_alphanumeric)
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn text_ok(v: &str) -> bool {
    !v.is_empty() && v.len() <= MAX_TEXT && v.bytes().all(|b| (0x20..0x7f).contains(&b))
}

/// A path under the cloud URL: the host refuses anything else too, so an
/// offer can never send the camera to another server.
fn path_ok(v: &str) -> bool {
    v.len() <= MAX_URL
        && v.starts_with('/')
        && !v.starts_with("//")
        && v.bytes().all(|b| (0x21..0x7f).contains(&b))
}

/// Checks an offer; the error says which field is wrong.
pub fn parse(v: &serde_json::Value) -> Result<EngineOffer, String> {
    let o = OfferJson::deserialize(v).map_err(|e| e.to_string())?;
    if !release_ok(&o.release) {
        return Err("release must be 1-96 of A-Z a-z 0-9 . _ -".into());
    }
    for (name, val) in [
        ("engine_version", &o.engine_version),
        ("contract", &o.contract),
        ("kind", &o.kind),
        ("target", &o.target),
    ] {
        if !text_ok(val) {
            return Err(format!(
                "{name} must be 1-{MAX_TEXT} printable ASCII characters"
            ));
        }
    }
    if o.sha256.len() != 64
        || !o
            .sha256
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err("sha256 must be 64 lowercase hex digits".into());
    }
    if o.size == 0 {
        return Err("size must be at least 1".into());
    }
    if !path_ok(&o.url) || !path_ok(&o.report_url) {
        return Err(format!(
            "url and report_url must be paths under the cloud URL (starting with one '/', at most {MAX_URL} bytes)"
        ));
    }
    Ok(EngineOffer {
        release: o.release,
        engine_version: o.engine_version,
        contract: o.contract,
        kind: o.kind,
        target: o.target,
        sha256: o.sha256,
        size: o.size,
        url: o.url,
        report_url: o.report_url,
    })
}

/// The `engine` object of an applied view: queues an offer event the first
/// time a release appears, logs a malformed offer (once per view).
pub fn relay(engine: Option<&serde_json::Value>, plans: &mut Plans, out: &mut Outbox) {
    let Some(v) = engine.filter(|v| !v.is_null()) else {
        return;
    };
    match parse(v) {
        Ok(offer) => {
            if plans.first_offer(&offer.release) {
                out.log(
                    LogLevel::Info,
                    format!(
                        "the cloud offers engine {} (release {}, {} bytes)",
                        offer.engine_version, offer.release, offer.size
                    ),
                );
                out.push(HostEvent::EngineOffer(offer));
            }
        }
        Err(why) => out.log(
            LogLevel::Warn,
            format!("change feed: ignoring a malformed engine offer: {why}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn offer(release: &str) -> serde_json::Value {
        json!({
            "release": release,
            "engine_version": "0.1.0",
            "contract": "0.4.0",
            "kind": "precompiled",
            "target": "x86_64-linux",
            "sha256": "ab".repeat(32),
            "size": 1234,
            "url": format!("/v1/device/engine/{release}/artifact?device=cam&exp=1&sig=00"),
            "report_url": format!("/v1/device/engine/{release}/report?device=cam&exp=1&sig=00"),
            "created_ms": 5,
        })
    }

    fn offers(out: &mut Outbox) -> Vec<String> {
        out.drain()
            .into_iter()
            .filter_map(|e| match e {
                HostEvent::EngineOffer(o) => Some(o.release),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_release_is_offered_once_even_after_the_plan_cache_is_restored() {
        let mut plans = Plans::default();
        let mut out = Outbox::default();
        relay(Some(&offer("r1")), &mut plans, &mut out);
        relay(Some(&offer("r1")), &mut plans, &mut out);
        assert_eq!(offers(&mut out), ["r1"]);
        // Restored from export-state (JSON): still remembered.
        let mut restored: Plans =
            serde_json::from_str(&serde_json::to_string(&plans).unwrap()).unwrap();
        relay(Some(&offer("r1")), &mut restored, &mut out);
        assert!(offers(&mut out).is_empty());
        // Withdrawn (no offer), then the same id again: not re-emitted.
        relay(None, &mut restored, &mut out);
        relay(Some(&serde_json::Value::Null), &mut restored, &mut out);
        relay(Some(&offer("r1")), &mut restored, &mut out);
        relay(Some(&offer("r2")), &mut restored, &mut out);
        assert_eq!(offers(&mut out), ["r2"]);
    }

    #[test]
    fn memory_is_bounded_and_forgets_the_oldest() {
        let mut plans = Plans::default();
        let mut out = Outbox::default();
        for i in 0..REMEMBERED + 3 {
            relay(Some(&offer(&format!("r{i}"))), &mut plans, &mut out);
        }
        assert_eq!(plans.offered.len(), REMEMBERED);
        assert_eq!(plans.offered.first().map(String::as_str), Some("r3"));
    }

    #[test]
    fn malformed_offers_are_logged_not_offered() {
        let mut bad = Vec::new();
        for (field, value) in [
            ("release", json!("../x")),
            ("release", json!("")),
            ("sha256", json!("AB".repeat(32))),
            ("sha256", json!("ab")),
            ("size", json!(0)),
            ("size", json!(-1)),
            ("url", json!("https://elsewhere.example/x")),
            ("url", json!("//elsewhere.example/x")),
            ("report_url", json!("/a b")),
            ("kind", json!("\u{7}")),
            ("target", json!("x".repeat(129))),
        ] {
            let mut o = offer("r1");
            o[field] = value;
            bad.push(o);
        }
        let mut missing = offer("r1");
        missing.as_object_mut().unwrap().remove("contract");
        bad.push(missing);
        bad.push(json!("not an object"));
        for o in bad {
            let mut plans = Plans::default();
            let mut out = Outbox::default();
            relay(Some(&o), &mut plans, &mut out);
            let ev = out.drain();
            assert!(
                matches!(ev.as_slice(), [HostEvent::Log(l)] if l.message.contains("malformed engine offer")),
                "{o}: {ev:?}"
            );
            assert!(plans.offered.is_empty());
        }
    }
}
