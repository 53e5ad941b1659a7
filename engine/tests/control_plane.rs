//! The iv_cs control plane against the real cloud service: init and exit
//! rules, parameter checks, plans followed through the change feed, balance
//! queries, reachability notifies, AI settings, resource destroy, direct
//! event reports, and state export/import mid-operation.
//!
//! Every test runs its own `ivcs-cloud` in-process (real SQLite, real
//! HTTP on loopback) with virtual time; see `cloud_harness`.

mod cloud_harness;

use cloud_harness::host::TestHost;
use cloud_harness::{T0_MS, World, channel, init_params, jpeg};
use ivcs_engine::Engine;
use ivcs_engine::cs::params::{DeviceConfig, EventReportOpt, InitParams};
use ivcs_engine::events::{AiSetting, Balance, HostEvent, NotifyKind, OpResult, PlanType};
use ivcs_engine::types::{AudioCodec, Frame, FrameType, StreamKind};

fn code<T: std::fmt::Debug>(r: ivcs_engine::Result<T>) -> i32 {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.code(),
    }
}

fn push_start(ch: u8) -> impl Fn(&HostEvent) -> bool {
    move |e| *e == HostEvent::PushStart(ch)
}

fn push_stop(ch: u8) -> impl Fn(&HostEvent) -> bool {
    move |e| *e == HostEvent::PushStop(ch)
}

fn notify(ch: u8, kind: NotifyKind) -> impl Fn(&HostEvent) -> bool {
    move |e| matches!(e, HostEvent::Notify(n) if n.channel == ch && n.kind == kind)
}

fn failed_code(r: &OpResult) -> i32 {
    match r {
        OpResult::Failed(e) => e.code(),
        other => panic!("expected a failure, got {other:?}"),
    }
}

/// Inits and waits until the plan fetched at init was applied.
fn init_and_fetch(w: &mut World, p: InitParams) {
    w.engine.init(p).unwrap();
    w.run_until_state("the plan fetched at init", |w| {
        w.engine.cached_balance(0).is_ok()
    });
}

const IDR_H264: &[u8] = &[
    0, 0, 0, 1, 0x67, 0x42, 0xC0, 0x1E, 0xDA, 0x02, 0x80, 0xBF, 0xE5, 0x84, 0x00, 0x00, 0x03, 0x00,
    0x04, 0x00, 0x00, 0x03, 0x00, 0xC8, 0x3C, 0x58, 0xBA, 0x80, //
    0, 0, 0, 1, 0x68, 0xCE, 0x3C, 0x80, //
    0, 0, 0, 1, 0x65, 0x88, 0x84, 0x00, 0x33, 0xFF,
];

// ---- init, exit, parameters -------------------------------------------------

#[test]
fn calls_before_init_are_refused_with_605() {
    let mut w = World::new("before-init");
    let f = Frame {
        kind: StreamKind::Video,
        frame_type: FrameType::I,
        pts_ms: 0,
        seq: 0,
        data: IDR_H264,
    };
    assert_eq!(code(w.engine.push(0, &f)), -605);
    assert_eq!(code(w.engine.event_start(0, 1, b"", 0, 0)), -605);
    assert_eq!(code(w.engine.event_stop(0, 1, b"", 0, 0)), -605);
    assert_eq!(code(w.engine.event_report(0, 1, b"", 0, None)), -605);
    assert_eq!(code(w.engine.set_ai(0, 1, 1)), -605);
    assert_eq!(code(w.engine.get_ai(0, 1)), -605);
    assert_eq!(
        code(
            w.engine
                .backup_upload(0, ivcs_engine::events::DumpState::Start, "a.ts", &[])
        ),
        -605
    );
    assert_eq!(code(w.engine.exit()), -605);
    assert_eq!(code(w.engine.cached_balance(0)), -605, "nothing known yet");
    // These work without init.
    assert!(w.engine.set_trans_time(5000, 5000).is_ok());
    assert!(w.engine.query_balance(0).is_ok());
}

#[test]
fn init_without_device_credentials_is_603() {
    let w = World::new("no-credentials");
    let mut e = Engine::new(TestHost::new(w.cloud.addr, T0_MS));
    assert_eq!(code(e.init(init_params(&[0]))), -603);
    assert_eq!(code(e.query_balance(0)), -603);
    assert_eq!(code(e.resource_destroy()), -603);
    let bad = DeviceConfig {
        device_id: "../etc".into(),
        device_secret: b"x".to_vec(),
    };
    assert_eq!(code(e.configure(bad)), -602);
    let empty = DeviceConfig {
        device_id: "cam".into(),
        device_secret: Vec::new(),
    };
    assert_eq!(code(e.configure(empty)), -602);
}

#[test]
fn init_twice_is_610_and_reinit_after_exit_works() {
    let mut w = World::new("reinit");
    w.set_plan(Some(0), "full-time", None);
    w.engine.init(init_params(&[0])).unwrap();
    assert_eq!(code(w.engine.init(init_params(&[0]))), -610);
    w.run_until("push-start", push_start(0));
    // Exit with the long poll in flight returns at once.
    let t = std::time::Instant::now();
    w.engine.exit().unwrap();
    assert!(t.elapsed() < std::time::Duration::from_millis(100));
    assert!(!w.engine.is_initialised());
    assert_eq!(code(w.engine.exit()), -605);
    assert_eq!(
        code(
            w.engine
                .configure(DeviceConfig {
                    device_id: w.device.clone(),
                    device_secret: w.secret.as_bytes().to_vec(),
                })
                .and(w.engine.init(init_params(&[0, 1])))
                .and(w.engine.init(init_params(&[0])))
        ),
        -610,
        "configure after exit and init again work; a second init does not"
    );
    // Re-init fetches the plan again and tells firmware to push again.
    w.run_until_state("push-start after re-init", |w| w.count(push_start(0)) == 2);
    assert_eq!(w.count(|e| *e == HostEvent::PushStart(1)), 0);
    assert_eq!(
        code(w.engine.configure(DeviceConfig {
            device_id: w.device.clone(),
            device_secret: w.secret.as_bytes().to_vec(),
        })),
        -610,
        "configure while initialised"
    );
}

#[test]
fn every_invalid_init_parameter_is_602() {
    let mut w = World::new("bad-init");
    let with = |f: &dyn Fn(&mut InitParams)| {
        let mut p = init_params(&[0, 1]);
        f(&mut p);
        p
    };
    type Case = (&'static str, Box<dyn Fn(&mut InitParams)>);
    let cases: Vec<Case> = vec![
        ("no channels", Box::new(|p| p.channels.clear())),
        (
            "six channels",
            Box::new(|p| p.channels = (0..6).map(|_| channel(0)).collect()),
        ),
        ("channel id 5", Box::new(|p| p.channels[1].channel = 5)),
        ("duplicate channel", Box::new(|p| p.channels[1].channel = 0)),
        ("gop 0", Box::new(|p| p.channels[0].max_gop_size = 0)),
        (
            "gop not a 4 KB multiple",
            Box::new(|p| p.channels[0].max_gop_size = 819_200 + 100),
        ),
        (
            "gop too large",
            Box::new(|p| p.channels[0].max_gop_size = 128 << 20),
        ),
        (
            "low mark 0",
            Box::new(|p| p.channels[0].congestion.low_mark = 0),
        ),
        (
            "low >= warn",
            Box::new(|p| p.channels[0].congestion.low_mark = 320 * 1024),
        ),
        (
            "warn >= high",
            Box::new(|p| p.channels[0].congestion.warn_mark = 640 * 1024),
        ),
        (
            "high > gop",
            Box::new(|p| p.channels[0].congestion.high_mark = 801 * 1024),
        ),
        (
            "audio rate",
            Box::new(|p| {
                if let Some(a) = &mut p.channels[0].av.audio {
                    a.sample_rate = 12345;
                }
            }),
        ),
        (
            // Any pack size is repacked (160 and 320 are common), but
            // none at all, or more than a second, is a mistake.
            "G.711 with 0 samples per pack",
            Box::new(|p| {
                if let Some(a) = &mut p.channels[0].av.audio {
                    a.codec = AudioCodec::G711a;
                    a.sample_rate = 8000;
                    a.channels = 2;
                    a.samples_per_frame = 0;
                }
            }),
        ),
        (
            "G.711 with more than a second per pack",
            Box::new(|p| {
                if let Some(a) = &mut p.channels[0].av.audio {
                    a.codec = AudioCodec::G711a;
                    a.sample_rate = 8000;
                    a.channels = 1;
                    a.samples_per_frame = 8001;
                }
            }),
        ),
        (
            "three audio channels",
            Box::new(|p| {
                if let Some(a) = &mut p.channels[0].av.audio {
                    a.channels = 3;
                }
            }),
        ),
    ];
    for (what, f) in &cases {
        assert_eq!(code(w.engine.init(with(f.as_ref()))), -602, "{what}");
        assert!(!w.engine.is_initialised(), "{what}");
    }
    // Disabled watermarks are not checked.
    let p = with(&|p| {
        p.channels[0].congestion.enable = false;
        p.channels[0].congestion.low_mark = 0;
    });
    w.engine.init(p).unwrap();
}

// ---- plans ---------------------------------------------------------------------

#[test]
fn full_time_plan_starts_push_on_init_and_push_is_gated_by_plan() {
    let mut w = World::new("full-time-init");
    w.set_plan(Some(0), "full-time", None);
    w.engine.init(init_params(&[0, 1])).unwrap();
    w.run_until("push-start", push_start(0));
    assert_eq!(w.count(push_start(1)), 0, "channel 1 has no plan");
    let b = w.engine.cached_balance(0).unwrap();
    assert_eq!((b.plan, b.enabled, b.days), (PlanType::FullTime, true, 7));
    assert_eq!(w.engine.cached_balance(1).unwrap().plan, PlanType::None);

    let idr = Frame {
        kind: StreamKind::Video,
        frame_type: FrameType::I,
        pts_ms: 0,
        seq: 0,
        data: IDR_H264,
    };
    assert_eq!(code(w.engine.push(1, &idr)), -607, "no plan on channel 1");
    assert_eq!(
        code(w.engine.push(3, &idr)),
        -602,
        "channel 3 not initialised"
    );
    let garbage = Frame {
        data: &[1, 2, 3],
        ..idr
    };
    assert_eq!(code(w.engine.push(0, &garbage)), -602, "malformed frame");
    let p = Frame {
        frame_type: FrameType::P,
        data: &[0, 0, 0, 1, 0x41, 0x9A, 0x00],
        ..idr
    };
    assert_eq!(code(w.engine.push(0, &p)), -611, "P frame before any IDR");
    // A good frame is recorded (the data plane uploads it; see data_plane.rs).
    assert!(w.engine.push(0, &idr).is_ok());
}

#[test]
fn admin_plan_changes_arrive_through_the_change_feed() {
    let mut w = World::new("feed");
    init_and_fetch(&mut w, init_params(&[0, 2]));
    assert_eq!(w.engine.cached_balance(0).unwrap().plan, PlanType::None);
    let rev0 = w.engine.cached_balance(0).unwrap().revision;

    w.set_plan(Some(0), "full-time", None);
    w.run_until("push-start", push_start(0));
    assert!(w.engine.cached_balance(0).unwrap().revision > rev0);

    // Full-time -> event: no more continuous recording.
    w.set_plan(Some(0), "event", None);
    w.run_until("push-stop", push_stop(0));
    assert_eq!(w.engine.cached_balance(0).unwrap().plan, PlanType::Event);

    // A device-wide default reaches every channel without its own plan.
    w.set_plan(None, "full-time", None);
    w.run_until("push-start on channel 2", push_start(2));
    assert_eq!(
        w.count(push_start(0)),
        1,
        "channel 0 keeps its own event plan"
    );

    w.set_plan(None, "none", None);
    w.run_until("push-stop on channel 2", push_stop(2));
    assert_eq!(w.count(push_stop(0)), 1);
}

#[test]
fn expiry_stops_push_without_a_feed_message() {
    let mut w = World::new("expiry");
    w.set_plan(Some(0), "full-time", Some(T0_MS + 20_000));
    w.engine.init(init_params(&[0])).unwrap();
    w.run_until("push-start", push_start(0));
    assert_eq!(w.count(push_stop(0)), 0);
    w.advance(19_000);
    w.tick();
    assert_eq!(w.count(push_stop(0)), 0, "not expired yet");
    let r = w.engine.tick();
    assert!(
        r.wake_at_ms
            .is_some_and(|t| t <= w.engine.host().mono_ms + 1_000),
        "the engine asks to be woken at the expiry: {r:?}"
    );
    w.advance(1_000);
    w.run_until("push-stop at expiry", push_stop(0));
    assert_eq!(w.engine.cached_balance(0).unwrap().plan, PlanType::None);
}

#[test]
fn firmware_balance_answers_are_plan_hints_until_the_cloud_speaks() {
    let mut w = World::new("balance-cb");
    let mut p = init_params(&[0]);
    p.callbacks.get_balance = true;
    init_and_fetch(&mut w, p);
    w.run_until(
        "balance-request",
        |e| matches!(e, HostEvent::BalanceRequest(b) if b.channel == 0 && b.timeout_ms == 0),
    );
    let full = Balance {
        enabled: true,
        days: 30,
        plan: PlanType::FullTime,
        trial_remaining_s: 0,
        revision: 0,
    };
    w.engine.balance_answer(0, None);
    w.engine.balance_answer(0, Some(full));
    w.run_until("push-start from the hint", push_start(0));
    w.engine.balance_answer(0, Some(full));
    w.tick();
    assert_eq!(
        w.count(push_start(0)),
        1,
        "the same answer again changes nothing"
    );
    // The cloud's next change wins.
    w.set_plan(Some(0), "event", None);
    w.run_until("push-stop from the cloud", push_stop(0));
    // Requests keep coming, every 10 s.
    w.advance(10_000);
    w.tick();
    assert_eq!(w.count(|e| matches!(e, HostEvent::BalanceRequest(_))), 2);
}

// ---- balance queries and reachability --------------------------------------

#[test]
fn balance_query_works_before_init() {
    let mut w = World::new("balance");
    w.set_plan(Some(1), "trial", None);
    let id = w.engine.query_balance(1).unwrap();
    match w.wait_op(id) {
        OpResult::Balance(b) => {
            assert_eq!(b.plan, PlanType::FreeTrial);
            assert!(b.enabled);
            assert_eq!(b.trial_remaining_s, 3600);
            assert!(b.revision > 0);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        w.engine.cached_balance(1).unwrap().plan,
        PlanType::FreeTrial
    );
    assert_eq!(code(w.engine.query_balance(5)), -602);
    assert_eq!(code(w.engine.cached_balance(7)), -602);
    // Nothing is told to firmware before init.
    assert_eq!(
        w.count(|e| matches!(e, HostEvent::Notify(_) | HostEvent::PushStart(_))),
        0
    );
}

#[test]
fn balance_query_with_the_cloud_unreachable_times_out_with_608() {
    let mut w = World::new("balance-timeout");
    w.cloud.stop();
    let id = w.engine.query_balance(0).unwrap();
    // A C caller with a 5 s timeout gives up first: nothing arrived by then.
    let from = w.events.len();
    for _ in 0..50 {
        w.advance(100);
        w.tick();
    }
    assert!(
        !w.events[from..]
            .iter()
            .any(|e| matches!(e, HostEvent::OpComplete(o) if o.id == id)),
        "no answer within the caller's 5 s"
    );
    // The engine ends the operation itself at its deadline, with -608.
    let e = w.run_advancing(
        "op-complete",
        1_000,
        120_000,
        |e| matches!(e, HostEvent::OpComplete(o) if o.id == id),
    );
    let HostEvent::OpComplete(o) = e else {
        unreachable!()
    };
    assert_eq!(failed_code(&o.outcome), -608);
    assert_eq!(
        code(w.engine.cached_balance(0)),
        -605,
        "still nothing known"
    );
    assert_eq!(
        w.count(|e| matches!(e, HostEvent::Notify(_))),
        0,
        "not before init"
    );

    // Firmware that inits during the outage hears of it at once...
    w.engine.init(init_params(&[2])).unwrap();
    w.tick();
    assert_eq!(w.count(notify(2, NotifyKind::ConnectFail)), 1);
    // ...and of the recovery once the cloud answers.
    w.cloud.restart();
    w.run_advancing(
        "connect-recover",
        1_000,
        60_000,
        notify(2, NotifyKind::ConnectRecover),
    );
    w.run_until_state("the plan", |w| w.engine.cached_balance(2).is_ok());
    assert_eq!(w.count(notify(2, NotifyKind::ConnectFail)), 1);
}

#[test]
fn outage_notifies_connect_fail_once_and_recover_once() {
    let mut w = World::new("outage");
    w.set_plan(Some(0), "full-time", None);
    w.engine.init(init_params(&[0, 1])).unwrap();
    w.run_until("push-start", push_start(0));

    w.cloud.stop();
    w.run_advancing(
        "connect-fail",
        500,
        60_000,
        notify(0, NotifyKind::ConnectFail),
    );
    // Many retries later, still one notification per channel.
    w.pass(90_000, 1_000);
    assert_eq!(w.count(notify(0, NotifyKind::ConnectFail)), 1);
    assert_eq!(w.count(notify(1, NotifyKind::ConnectFail)), 1);
    assert_eq!(w.count(notify(0, NotifyKind::ConnectRecover)), 0);
    assert_eq!(w.count(push_stop(0)), 0, "an outage does not end the plan");

    w.cloud.restart();
    w.run_advancing(
        "connect-recover",
        1_000,
        60_000,
        notify(1, NotifyKind::ConnectRecover),
    );
    w.run_until(
        "connect-recover ch 0",
        notify(0, NotifyKind::ConnectRecover),
    );
    // The feed works again: a plan change still arrives.
    w.set_plan(Some(0), "none", None);
    w.run_until("push-stop after recovery", push_stop(0));
    assert_eq!(w.count(notify(0, NotifyKind::ConnectFail)), 1);
    assert_eq!(w.count(notify(0, NotifyKind::ConnectRecover)), 1);
}

// ---- AI ----------------------------------------------------------------------------

#[test]
fn ai_settings_round_trip_and_app_changes_notify_firmware() {
    let mut w = World::new("ai");
    init_and_fetch(&mut w, init_params(&[0, 1]));
    let id = w.engine.set_ai(0, 5, 1).unwrap();
    assert_eq!(w.wait_op(id), OpResult::Done);
    let id = w.engine.get_ai(0, 5).unwrap();
    assert_eq!(
        w.wait_op(id),
        OpResult::AiSetting(AiSetting {
            channel: 0,
            event_id: 5,
            ai_type: 1
        })
    );
    let ai0 =
        |e: &HostEvent| matches!(e, HostEvent::AiService(a) if a.channel == 0 && a.ai_type == 1);
    w.run_until("ai-service for channel 0", ai0);
    // Known locally at completion and confirmed by the feed: told once.
    w.pass(1_000, 500);
    // Unset reads as closed.
    let id = w.engine.get_ai(1, 7).unwrap();
    assert!(matches!(w.wait_op(id), OpResult::AiSetting(a) if a.ai_type == 0));

    // An app turns AI on for channel 1: firmware hears it via the feed.
    let (status, _) = w.app_api(
        "PUT",
        &format!("/v1/devices/{}/ai/1/3", w.device),
        r#"{"ai_type":1}"#,
    );
    assert_eq!(status, 200);
    w.run_until(
        "ai-service for channel 1",
        |e| matches!(e, HostEvent::AiService(a) if a.channel == 1 && a.ai_type == 1),
    );
    // And off again.
    let (status, _) = w.app_api(
        "PUT",
        &format!("/v1/devices/{}/ai/1/3", w.device),
        r#"{"ai_type":0}"#,
    );
    assert_eq!(status, 200);
    w.run_until(
        "ai-service closed for channel 1",
        |e| matches!(e, HostEvent::AiService(a) if a.channel == 1 && a.ai_type == 0),
    );
    assert_eq!(w.count(ai0), 1, "channel 0 did not change");

    assert_eq!(code(w.engine.set_ai(0, 5, 2)), -602, "unknown AI bit");
    assert_eq!(code(w.engine.set_ai(0, 0, 1)), -602);
    assert_eq!(code(w.engine.set_ai(0, 33, 1)), -602);
    assert_eq!(
        code(w.engine.set_ai(3, 5, 1)),
        -602,
        "channel not initialised"
    );
    assert_eq!(code(w.engine.get_ai(0, 0)), -602);
}

// ---- destroy -----------------------------------------------------------------------

#[test]
fn resource_destroy_wipes_cloud_data_and_resets_the_plan() {
    let mut w = World::new("destroy");
    w.set_plan(Some(0), "full-time", None);
    let mut p = init_params(&[0]);
    p.channels[0].event_report_opt = EventReportOpt::PictureRequired;
    w.engine.init(p).unwrap();
    w.run_until("push-start", push_start(0));
    let pic = w.engine.host().picture(jpeg(5000));
    let id = w.engine.event_report(0, 4, b"door", 0, Some(pic)).unwrap();
    assert_eq!(w.wait_op(id), OpResult::Done);
    let id = w.engine.set_ai(0, 4, 1).unwrap();
    assert_eq!(w.wait_op(id), OpResult::Done);
    let (_, ev) = events(&w, 0);
    assert_eq!(ev.as_array().map(Vec::len), Some(1));

    let id = w.engine.resource_destroy().unwrap();
    assert_eq!(w.wait_op(id), OpResult::Done);
    w.run_until("push-stop", push_stop(0));
    assert_eq!(w.engine.cached_balance(0).unwrap().plan, PlanType::None);

    let (status, ev) = events(&w, 0);
    assert_eq!(status, 200);
    assert_eq!(ev.as_array().map(Vec::len), Some(0), "events gone: {ev}");
    let repo = &w.cloud.app.repo;
    assert!(
        w.cloud
            .block_on(repo.ai_settings(&w.device))
            .unwrap()
            .is_empty()
    );
    assert!(w.cloud.block_on(repo.plans(&w.device)).unwrap().is_empty());
    let objects = w.dir().join("data/objects/devices").join(&w.device);
    let left = walk(&objects);
    assert!(left.is_empty(), "objects left: {left:?}");
    // The device itself stays registered: requests still authenticate.
    let id = w.engine.query_balance(0).unwrap();
    assert!(matches!(w.wait_op(id), OpResult::Balance(b) if b.plan == PlanType::None));
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.flatten()
        .flat_map(|e| {
            let p = e.path();
            if p.is_dir() { walk(&p) } else { vec![p] }
        })
        .collect()
}

// ---- direct event reports ------------------------------------------------------

/// The app API's event list of a channel around T0.
fn events(w: &World, ch: u8) -> (u16, serde_json::Value) {
    let (s, v) = w.app_api(
        "GET",
        &format!(
            "/v1/devices/{}/channels/{ch}/events?start_ms={}&end_ms={}",
            w.device,
            T0_MS - 3_600_000,
            T0_MS + 3_600_000
        ),
        "",
    );
    (s, v["events"].clone())
}

#[test]
fn direct_reports_with_and_without_picture_reach_the_app_api() {
    let mut w = World::new("report");
    let mut p = init_params(&[0, 1]);
    p.channels[0].event_report_opt = EventReportOpt::PictureRequired;
    p.channels[1].event_report_opt = EventReportOpt::VideoOrPicture;
    // No plan at all: direct reports still work.
    init_and_fetch(&mut w, p);

    let pic = w.engine.host().picture(jpeg(20_000));
    let id = w
        .engine
        .event_report(0, 32, b"person at gate", 0, Some(pic))
        .unwrap();
    assert_eq!(w.engine.host().released(), 0, "held while uploading");
    assert_eq!(w.wait_op(id), OpResult::Done);
    assert_eq!(w.engine.host().released(), 1, "released exactly once");
    assert!(w.events.iter().any(|e| matches!(e,
        HostEvent::EventResult(r) if r.channel == 0 && r.event_id == 32 && r.success
            && u64::from(r.start_utc_s) == T0_MS / 1000)));

    w.advance(2_000);
    let id = w.engine.event_report(0, 7, b"", 0, None).unwrap();
    assert_eq!(w.wait_op(id), OpResult::Done);

    w.advance(2_000);
    let pic = w.engine.host().picture(jpeg(3_000));
    // 10 s ago, relative.
    let id = w.engine.event_report(1, 2, b"bell", 10, Some(pic)).unwrap();
    assert_eq!(w.wait_op(id), OpResult::Done);

    let (status, ev) = events(&w, 0);
    assert_eq!(status, 200);
    let ev = ev.as_array().unwrap().clone();
    assert_eq!(ev.len(), 2, "{ev:?}");
    let by_id = |id: u64| ev.iter().find(|e| e["event_id"] == id).unwrap().clone();
    let e32 = by_id(32);
    assert_eq!(e32["status"], "finished");
    assert_eq!(e32["info"], "person at gate");
    assert_eq!(e32["report_opt"], "picture");
    assert_eq!(e32["utc_start_ms"], T0_MS);
    assert!(e32["thumbnail_url"].is_string());
    let e7 = by_id(7);
    assert_eq!(e7["status"], "failed", "a picture was required, none came");

    let (_, ev1) = events(&w, 1);
    let e2 = &ev1.as_array().unwrap()[0];
    assert_eq!(e2["status"], "finished");
    assert_eq!(e2["utc_start_ms"], T0_MS + 4_000 - 10_000);
    // The thumbnail is the picture sent.
    let url = e32["thumbnail_url"].as_str().unwrap();
    let (s, body) = cloud_harness::http::request(w.cloud.addr, "GET", url, &[], b"");
    assert_eq!(s, 200);
    assert_eq!(body, jpeg(20_000));
}

#[test]
fn report_arguments_are_checked() {
    let mut w = World::new("report-args");
    init_and_fetch(&mut w, init_params(&[0]));
    let long = vec![b'a'; 129];
    assert_eq!(code(w.engine.event_report(0, 1, &long, 0, None)), -602);
    assert_eq!(
        code(w.engine.event_report(0, 1, "défaut".as_bytes(), 0, None)),
        -602
    );
    assert_eq!(
        code(w.engine.event_report(0, 1, b"new\nline", 0, None)),
        -602
    );
    assert_eq!(code(w.engine.event_report(0, 0, b"", 0, None)), -602);
    assert_eq!(code(w.engine.event_report(0, 33, b"", 0, None)), -602);
    assert_eq!(code(w.engine.event_report(4, 1, b"", 0, None)), -602);
    let zeros = w.engine.host().picture(vec![0; 4096]);
    assert_eq!(code(w.engine.event_report(0, 1, b"", 0, Some(zeros))), -602);
    assert_eq!(
        w.engine.host().released(),
        1,
        "a refused picture is released"
    );
    let huge = w.engine.host().picture(jpeg((2 << 20) + 1));
    assert_eq!(code(w.engine.event_report(0, 1, b"", 0, Some(huge))), -602);
    // The limits themselves pass.
    let max = vec![b'~'; 128];
    let id = w.engine.event_report(0, 32, &max, 0, None).unwrap();
    assert_eq!(w.wait_op(id), OpResult::Done);
    // Event calls check the same way before reaching the data plane.
    assert_eq!(code(w.engine.event_start(0, 33, b"", 0, 0)), -602);
    assert_eq!(code(w.engine.event_start(0, 1, &long, 0, 0)), -602);
    assert_eq!(
        code(w.engine.event_start(0, 1, b"", 0, 1_699_999_990)),
        -602,
        "relative and absolute mixed"
    );
}

// ---- state -------------------------------------------------------------------------------

#[test]
fn state_export_import_round_trip_mid_operation() {
    let mut w = World::new("state");
    w.set_plan(Some(0), "full-time", None);
    w.engine.set_trans_time(7_000, 4_000).unwrap();
    w.engine.init(init_params(&[0, 1])).unwrap();
    w.run_until("push-start", push_start(0));
    let rev = w.engine.cached_balance(0).unwrap().revision;

    // Operations in flight when the state is taken.
    let q = w.engine.query_balance(0).unwrap();
    let r = w.engine.event_report(1, 9, b"moved", 0, None).unwrap();
    let blob = w
        .engine
        .export_state(ivcs_engine::data::Export::Checkpoint)
        .unwrap();

    // A fresh instance: configure, then import.
    let mut e2 = Engine::new(TestHost::new(w.cloud.addr, w.now_ms()));
    assert_eq!(code(e2.import_state(&blob)), -603, "configure first");
    e2.configure(DeviceConfig {
        device_id: w.device.clone(),
        device_secret: w.secret.as_bytes().to_vec(),
    })
    .unwrap();
    e2.import_state(&blob).unwrap();
    assert!(e2.is_initialised());
    assert_eq!(e2.cached_balance(0).unwrap().revision, rev);
    // The old instance goes away (its exchanges are cancelled).
    let old = std::mem::replace(&mut w.engine, e2);
    drop(old);
    let seen = w.events.len();
    assert!(matches!(w.wait_op(q), OpResult::Balance(b) if b.plan == PlanType::FullTime));
    assert_eq!(w.wait_op(r), OpResult::Done);
    assert_eq!(w.count(push_start(0)), 1, "firmware was already told");
    assert!(
        w.events[seen..]
            .iter()
            .all(|e| *e != HostEvent::PushStart(0))
    );
    // It continued the change feed from its revision, not with a new fetch.
    {
        let reqs = w.engine.host().requests.lock().unwrap();
        let first_feed = reqs
            .iter()
            .find(|r| r.path.starts_with("/v1/device/changes") || r.path == "/v1/device/plan")
            .map(|r| r.path.clone());
        assert_eq!(
            first_feed,
            Some(format!("/v1/device/changes?since={rev}&wait_s=25"))
        );
        // The imported timeouts are in use: the host deadline is upload +
        // reply (+ long poll).
        assert!(reqs.iter().any(|r| r.timeout_ms == 7_000 + 4_000));
    }
    w.set_plan(Some(0), "none", None);
    w.run_until("push-stop in the new instance", push_stop(0));
    // Importing into an initialised engine is refused; an old format is
    // accepted.
    assert_eq!(code(w.engine.import_state(&blob)), -610);
    let mut e3 = Engine::new(TestHost::new(w.cloud.addr, w.now_ms()));
    e3.import_state(b"IVST\x01\x00").unwrap();
    assert_eq!(code(e3.import_state(b"IVST\x09\x00")), -602);
}

#[test]
fn exit_cancels_operations_that_need_init() {
    let mut w = World::new("exit-ops");
    init_and_fetch(&mut w, init_params(&[0]));
    w.cloud.stop();
    let ai = w.engine.set_ai(0, 1, 1).unwrap();
    let bal = w.engine.query_balance(0).unwrap();
    w.tick();
    w.engine.exit().unwrap();
    assert_eq!(failed_code(&w.wait_op(ai)), -605);
    // A balance query does not need init: it carries on (and times out).
    let e = w.run_advancing(
        "balance op",
        1_000,
        120_000,
        |e| matches!(e, HostEvent::OpComplete(o) if o.id == bal),
    );
    let HostEvent::OpComplete(o) = e else {
        unreachable!()
    };
    assert_eq!(failed_code(&o.outcome), -608);
}

#[test]
fn requests_carry_valid_signing_headers() {
    let mut w = World::new("headers");
    init_and_fetch(&mut w, init_params(&[0]));
    let reqs = w.engine.host().requests.lock().unwrap().clone();
    let plan = reqs.iter().find(|r| r.path == "/v1/device/plan").unwrap();
    let h = |k: &str| {
        plan.headers
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_eq!(h("x-ivcs-device"), w.device);
    assert_eq!(h("x-ivcs-timestamp"), (T0_MS / 1000).to_string());
    assert_eq!(
        h("x-ivcs-content-sha256"),
        ivcs_cloud::auth::sha256_hex(b"")
    );
    assert!(h("authorization").starts_with("IVCS1-HMAC-SHA256 Signature="));
    let nonces: std::collections::HashSet<String> = reqs
        .iter()
        .map(|r| {
            r.headers
                .iter()
                .find(|(n, _)| n == "x-ivcs-nonce")
                .map(|(_, v)| v.clone())
                .unwrap()
        })
        .collect();
    assert_eq!(nonces.len(), reqs.len(), "nonces are never reused");
}

#[test]
fn wrong_secret_is_reported_as_service_wrong_once() {
    let mut w = World::new("bad-secret");
    w.engine
        .configure(DeviceConfig {
            device_id: w.device.clone(),
            device_secret: b"not-the-secret".to_vec(),
        })
        .unwrap();
    w.engine.init(init_params(&[0])).unwrap();
    w.run_until("service-wrong", notify(0, NotifyKind::ServiceWrong));
    let id = w.engine.query_balance(0).unwrap();
    assert_eq!(failed_code(&w.wait_op(id)), -603);
    // The feed keeps retrying at the longest delay; firmware hears once.
    w.pass(70_000, 5_000);
    assert_eq!(w.count(notify(0, NotifyKind::ServiceWrong)), 1);
    assert_eq!(w.count(notify(0, NotifyKind::ConnectFail)), 0);
}

fn logged(w: &World, text: &str) -> bool {
    w.events
        .iter()
        .any(|e| matches!(e, HostEvent::Log(l) if l.message.contains(text)))
}

/// A world whose cloud runs on the system clock (no clock file), as in
/// production, so its Date header and its freshness check agree.
fn world_on_system_time(name: &str) -> World {
    let w = World::new(name);
    w.set_plan(Some(0), "full-time", None);
    std::fs::remove_file(w.dir().join("clock")).unwrap();
    w
}

#[test]
fn a_device_clock_far_off_from_boot_still_authenticates() {
    let real_now = ivcs_cloud::clock::system_now_ms();
    for (what, name, device_utc) in [
        ("an hour behind", "clock-behind", real_now - 3_600_000),
        ("unset (1970)", "clock-unset", 5_000),
    ] {
        let mut w = world_on_system_time(name);
        // Off before the engine's first look: nothing to see a step in,
        // so the first request is refused and corrects the offset.
        w.engine.host_mut().utc_ms = device_utc;
        let id = w.engine.query_balance(0).unwrap();
        match w.wait_op(id) {
            OpResult::Balance(b) => assert_eq!(b.plan, PlanType::FullTime, "{what}"),
            other => panic!("{what}: {other:?}"),
        }
        assert!(logged(&w, "signing with cloud time"), "{what}");
        // Once learned, the offset is used from the first attempt: init
        // works without another refusal.
        w.events.clear();
        w.engine.init(init_params(&[0])).unwrap();
        w.run_until("push-start", push_start(0));
        assert_eq!(w.count(notify(0, NotifyKind::ServiceWrong)), 0, "{what}");
        assert!(!logged(&w, "signing with cloud time"), "{what}");
    }
}

/// NTP or a restored RTC steps the device clock while the engine runs: the
/// engine sees UTC move against monotonic time and keeps cloud time
/// unchanged, so no request is refused for a stale timestamp.
#[test]
fn a_device_clock_step_keeps_cloud_time_and_costs_no_refusal() {
    let mut w = world_on_system_time("clock-step");
    w.engine.host_mut().utc_ms = ivcs_cloud::clock::system_now_ms();
    let id = w.engine.query_balance(0).unwrap();
    assert!(matches!(w.wait_op(id), OpResult::Balance(_)));
    for step in [3_600_000_i64, -7_200_000] {
        w.events.clear();
        let host = w.engine.host_mut();
        host.utc_ms = host.utc_ms.saturating_add_signed(step);
        let id = w.engine.query_balance(0).unwrap();
        match w.wait_op(id) {
            OpResult::Balance(b) => assert_eq!(b.plan, PlanType::FullTime, "step {step}"),
            other => panic!("step {step}: {other:?}"),
        }
        assert!(
            logged(&w, &format!("device clock stepped {step:+} ms")),
            "step {step}"
        );
        assert!(!logged(&w, "signing with cloud time"), "step {step}");
        assert_eq!(w.count(notify(0, NotifyKind::ServiceWrong)), 0);
    }
}
