//! The data plane against the real cloud service: streamed segment uploads
//! and commits, bytes fetched back and decoded frame-exact with ffmpeg,
//! overflow under a stalled network, watermarks, idle pause, plan changes,
//! events with pictures and pre-record, parallel events, a cloud killed
//! mid-upload with the segment recovered through dump + backup-upload, and
//! state export/import.
//!
//! Every test runs its own `ivcs-cloud` in-process (real SQLite, real HTTP
//! on loopback) with virtual time; see `cloud_harness`.

mod cloud_harness;

use cloud_harness::host::TestHost;
use cloud_harness::{World, channel, http, init_params, jpeg};
use ivcs_engine::Engine;
use ivcs_engine::cs::params::{ChannelParams, Congestion, DeviceConfig, InitParams};
use ivcs_engine::data::Export;
use ivcs_engine::events::{DumpState, HostEvent, NotifyKind, UploadSlice, UploadState};
use ivcs_engine::host::Method;
use ivcs_engine::types::{Frame, FrameType, PushGate, StreamKind};
use ivcs_media::{VideoCodec, annexb};
use std::collections::BTreeMap;
use std::process::Command;

fn code<T: std::fmt::Debug>(r: ivcs_engine::Result<T>) -> i32 {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.code(),
    }
}

/// A camera looping the committed 160x120 H.264 fixture (GOP 1 s, 25 fps).
struct Camera {
    aus: Vec<Vec<u8>>,
    i: usize,
    pts: u64,
    seq: u32,
    /// Access units accepted by the engine, in order.
    accepted: Vec<u8>,
    accepted_frames: usize,
}

impl Camera {
    fn new() -> Camera {
        let p = format!(
            "{}/../testdata/small-h264-160x120-gop1s.h264",
            env!("CARGO_MANIFEST_DIR")
        );
        let data = std::fs::read(&p).unwrap();
        let aus: Vec<Vec<u8>> = annexb::access_units(&data, VideoCodec::H264)
            .map(<[u8]>::to_vec)
            .collect();
        assert!(aus.len() >= 50, "{} access units", aus.len());
        Camera {
            aus,
            i: 0,
            pts: 100_000,
            seq: 0,
            accepted: Vec::new(),
            accepted_frames: 0,
        }
    }

    fn is_key(&self) -> bool {
        (self.i % self.aus.len()).is_multiple_of(25)
    }

    /// Pushes the next frame; keeps it when accepted.
    fn push(&mut self, w: &mut World, ch: u8) -> Result<(), i32> {
        let au = self.aus[self.i % self.aus.len()].clone();
        let f = Frame {
            kind: StreamKind::Video,
            frame_type: if self.is_key() {
                FrameType::I
            } else {
                FrameType::P
            },
            pts_ms: self.pts,
            seq: self.seq,
            data: &au,
        };
        let r = w.engine.push(ch, &f).map_err(|e| e.code());
        if r.is_ok() {
            self.accepted.extend_from_slice(&au);
            self.accepted_frames += 1;
        }
        self.i += 1;
        self.pts += 40;
        self.seq += 1;
        r
    }

    /// Skips to the next IDR (as firmware does after a refusal).
    fn skip_to_idr(&mut self) {
        while !self.is_key() {
            self.skip(1);
        }
    }

    fn skip(&mut self, n: usize) {
        for _ in 0..n {
            self.i += 1;
            self.pts += 40;
            self.seq += 1;
        }
    }
}

/// Pushes `ms` of video in real-time steps (40 ms of virtual time per
/// frame, a tick after each); returns the refusal codes seen.
fn film(w: &mut World, cam: &mut Camera, ch: u8, ms: u64) -> Vec<i32> {
    let mut refused = Vec::new();
    for _ in 0..ms / 40 {
        if let Err(c) = cam.push(w, ch) {
            refused.push(c);
        }
        w.advance(40);
        w.tick();
    }
    refused
}

fn video_channel(ch: u8, budget: u32) -> ChannelParams {
    let mut c = channel(ch);
    c.av.audio = None;
    c.av.width = 160;
    c.av.height = 120;
    c.max_gop_size = budget;
    c.congestion = Congestion {
        enable: true,
        low_mark: u64::from(budget) / 8,
        warn_mark: u64::from(budget) * 3 / 8,
        high_mark: u64::from(budget) * 6 / 8,
    };
    c
}

fn params(chs: &[ChannelParams], dump: bool) -> InitParams {
    let mut p = init_params(&[]);
    p.channels = chs.to_vec();
    p.callbacks.dump_file = dump;
    p
}

fn start_full_time(name: &str, p: InitParams) -> World {
    let mut w = World::new(name);
    w.set_plan(Some(0), "full-time", None);
    w.engine.init(p).unwrap();
    w.run_until("push-start", |e| *e == HostEvent::PushStart(0));
    w
}

fn slices(w: &World, ch: u8) -> Vec<UploadSlice> {
    w.events
        .iter()
        .filter_map(|e| match e {
            HostEvent::Notify(n) if n.channel == ch && n.kind == NotifyKind::UploadState => {
                assert!(
                    n.slices.len() <= 10,
                    "{} slices in one notify",
                    n.slices.len()
                );
                Some(n.slices.clone())
            }
            _ => None,
        })
        .flatten()
        .collect()
}

fn ok_slices(w: &World, ch: u8) -> usize {
    slices(w, ch)
        .iter()
        .filter(|s| s.state == UploadState::Ok)
        .count()
}

fn watermarks(w: &World, ch: u8) -> Vec<NotifyKind> {
    w.events
        .iter()
        .filter_map(|e| match e {
            HostEvent::Notify(n)
                if n.channel == ch
                    && matches!(
                        n.kind,
                        NotifyKind::WatermarkLow
                            | NotifyKind::WatermarkWarn
                            | NotifyKind::WatermarkHigh
                    ) =>
            {
                Some(n.kind)
            }
            _ => None,
        })
        .collect()
}

/// Dumped files: name -> (start ms, end ms, bytes).
fn dumps(w: &World, ch: u8) -> BTreeMap<String, (u64, u64, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut cur: Option<(u64, Vec<u8>)> = None;
    for e in &w.events {
        let HostEvent::DumpFile(d) = e else { continue };
        if d.channel != ch {
            continue;
        }
        match d.state {
            DumpState::Start => {
                assert!(cur.is_none(), "dump started inside another");
                assert!(d.file_name.is_empty() && d.data.is_empty() && d.end_ms == 0);
                cur = Some((d.start_ms, Vec::new()));
            }
            DumpState::Running => {
                let c = cur.as_mut().expect("dump data outside a file");
                assert_eq!(c.0, d.start_ms);
                c.1.extend_from_slice(&d.data);
            }
            DumpState::End => {
                let (start, bytes) = cur.take().expect("dump end without start");
                assert_eq!(start, d.start_ms);
                assert!(d.end_ms > start);
                assert!(!d.file_name.contains('/'));
                out.insert(d.file_name.clone(), (start, d.end_ms, bytes));
            }
        }
    }
    out
}

/// A segment's bytes as the app API serves them.
fn fetch(w: &World, id: &str) -> Vec<u8> {
    let auth = format!("Bearer {}", w.token);
    let (status, body) = http::request(
        w.cloud.addr,
        "GET",
        &format!("/v1/devices/{}/segments/{id}", w.device),
        &[("authorization", &auth)],
        b"",
    );
    assert_eq!(status, 200, "{id}: {}", String::from_utf8_lossy(&body));
    body
}

fn acked(w: &World, ch: u8) -> Vec<String> {
    w.engine
        .data_channel(ch)
        .unwrap()
        .acked()
        .cloned()
        .collect()
}

/// framemd5 hashes of the video frames ffmpeg decodes from `file`.
fn frame_hashes(file: &std::path::Path, format: &[&str]) -> Vec<String> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error"])
        .args(format)
        .arg("-i")
        .arg(file)
        .args(["-map", "0:v:0", "-f", "framemd5", "-"])
        .output()
        .expect("ffmpeg (apt-get install ffmpeg)");
    assert!(
        out.status.success(),
        "ffmpeg on {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit(',').next().map(|h| h.trim().to_string()))
        .collect()
}

fn dump_events(w: &World) -> usize {
    w.count(|e| matches!(e, HostEvent::DumpFile(_)))
}

// ---- full-time ---------------------------------------------------------------

#[test]
fn full_time_segments_upload_while_recorded_and_decode_frame_exact() {
    let mut w = start_full_time("ft-flow", params(&[video_channel(0, 800 << 10)], true));
    let mut cam = Camera::new();
    assert_eq!(film(&mut w, &mut cam, 0, 25_000), Vec::<i32>::new());
    // Two segments closed at 10 s and 20 s are committed while recording
    // goes on.
    w.run_until_state("two segments acknowledged", |w| ok_slices(w, 0) >= 2);
    // 120 s without frames close the third (5 s) segment: no fake length.
    w.pass(121_000, 1_000);
    w.run_until_state("three segments acknowledged", |w| ok_slices(w, 0) >= 3);
    let sl = slices(&w, 0);
    assert_eq!(sl.len(), 3, "{sl:#?}");
    for s in &sl {
        assert_eq!(s.state, UploadState::Ok);
        assert_eq!(s.upload_size, s.total_size);
        assert!(s.total_size > 0);
    }
    let last = &sl[2];
    assert!(
        last.utc_end_s - last.utc_start_s <= 6,
        "the idle-closed segment lasts ~5 s: {last:?}"
    );
    assert_eq!(sl[0].seq_start, 0);
    assert_eq!(sl[1].seq_start, sl[0].seq_end + 1, "contiguous seq");
    assert_eq!(sl[2].seq_end as usize, cam.accepted_frames - 1);
    assert_eq!(sl[2].pts_end_ms, cam.pts - 40, "last frame's PTS");

    // What the cloud stores is exactly what was dumped, segment by segment.
    let ids = acked(&w, 0);
    assert_eq!(ids.len(), 3);
    let dumped = dumps(&w, 0);
    assert_eq!(dumped.len(), 3);
    let mut all = Vec::new();
    let mut total = 0u64;
    for (id, s) in ids.iter().zip(&sl) {
        let bytes = fetch(&w, id);
        let (_, _, d) = &dumped[&format!("{id}.ts")];
        assert_eq!(&bytes, d, "segment {id} as stored = as dumped");
        assert_eq!(bytes.len() as u32, s.total_size);
        total += bytes.len() as u64;
        all.extend_from_slice(&bytes);
    }
    assert_eq!(
        sl.iter().map(|s| u64::from(s.upload_size)).sum::<u64>(),
        total
    );

    // Decoded frame-exact against the pushed access units.
    let dir = w.dir().clone();
    std::fs::write(dir.join("cloud.ts"), &all).unwrap();
    std::fs::write(dir.join("source.h264"), &cam.accepted).unwrap();
    let got = frame_hashes(&dir.join("cloud.ts"), &[]);
    let want = frame_hashes(&dir.join("source.h264"), &["-f", "h264"]);
    assert_eq!(got.len(), cam.accepted_frames);
    assert_eq!(got, want, "every frame decodes to the source's picture");

    // The buffer drained back to empty and never exceeded the budget.
    let c = w.engine.data_channel(0).unwrap();
    assert_eq!(c.used(), 0);
    assert!(c.peak <= 800 << 10);

    // Recording resumes from an IDR only, with a new segment.
    if cam.is_key() {
        cam.skip(1);
    }
    assert_eq!(cam.push(&mut w, 0), Err(-611), "a P frame after the pause");
    cam.skip_to_idr();
    assert_eq!(cam.push(&mut w, 0), Ok(()));
}

#[test]
fn plan_change_to_none_stops_recording_and_push_is_607() {
    let mut w = start_full_time("ft-none", params(&[video_channel(0, 800 << 10)], false));
    let mut cam = Camera::new();
    // The push gate a host answers from: a run starts with an IDR that
    // carries its parameter sets; channel 3 is not in the session.
    let g = w.engine.push_gate(0);
    assert_eq!((g.all, g.non_key_video, g.audio), (None, Some(-611), None));
    assert!(g.key_needs_params);
    assert_eq!(w.engine.push_gate(3).all, Some(-602));
    film(&mut w, &mut cam, 0, 4_000);
    assert_eq!(w.engine.push_gate(0), PushGate::default());
    w.set_plan(Some(0), "none", None);
    w.run_until("push-stop", |e| *e == HostEvent::PushStop(0));
    assert_eq!(cam.push(&mut w, 0), Err(-607));
    assert_eq!(w.engine.push_gate(0).all, Some(-607));
    // The segment open at the change is closed and still committed.
    w.run_until_state("the open segment committed", |w| ok_slices(w, 0) == 1);
    let s = &slices(&w, 0)[0];
    assert!(s.utc_end_s - s.utc_start_s <= 5, "{s:?}");
}

// ---- buffer budget -----------------------------------------------------------

/// A full-time recording on one video channel with `budget`: a second of
/// it uploaded, then the cloud stopped.
fn offline_after_a_second(name: &str, budget: u32) -> (World, Camera) {
    let mut w = start_full_time(name, params(&[video_channel(0, budget)], false));
    let mut cam = Camera::new();
    film(&mut w, &mut cam, 0, 1_000);
    w.cloud.stop();
    (w, cam)
}

#[test]
fn stalled_network_raises_watermarks_then_drops_to_the_next_idr_within_the_budget() {
    const BUDGET: u32 = 128 << 10;
    let (mut w, mut cam) = offline_after_a_second("overflow", BUDGET);
    // NTP steps the device clock an hour forward meanwhile: recording and
    // the lost span stay on the stream's timeline (checked at the end).
    w.step_device_clock(3_600_000);
    // Nothing leaves: the buffer fills, crossing each watermark once.
    let refused = film(&mut w, &mut cam, 0, 20_000);
    assert!(!refused.is_empty(), "the budget overflowed");
    assert!(refused.iter().all(|c| *c == -606), "{refused:?}");
    // Dropping to the next IDR, which starts a new run.
    let g = w.engine.push_gate(0);
    assert_eq!(
        (g.all, g.non_key_video, g.audio),
        (None, Some(-606), Some(-606))
    );
    assert!(g.key_needs_params);
    let c = w.engine.data_channel(0).unwrap();
    assert!(c.peak <= u64::from(BUDGET), "peak {} > budget", c.peak);
    assert!(c.peak > u64::from(BUDGET) / 2);
    // `buffer-levels` shows it: while the cloud is down all that is kept
    // waits for the network, at or over the high mark (3/4).
    let lv = w.engine.buffer_levels();
    assert_eq!(lv.len(), 1, "{lv:?}");
    assert_eq!((lv[0].channel, lv[0].budget), (0, u64::from(BUDGET)));
    assert_eq!(lv[0].used, c.used());
    assert!(lv[0].backlog >= u64::from(BUDGET) * 3 / 4, "{lv:?}");
    // Each crossed in order (a segment given up leaves the backlog, so on
    // a slow machine the fill may fall and climb again after that).
    let marks = watermarks(&w, 0);
    assert_eq!(
        marks.get(..3),
        Some(
            &[
                NotifyKind::WatermarkLow,
                NotifyKind::WatermarkWarn,
                NotifyKind::WatermarkHigh
            ][..]
        ),
        "{marks:?}"
    );
    assert!(
        w.count(|e| matches!(e, HostEvent::Notify(n) if n.kind == NotifyKind::ConnectFail)) == 1
    );
    // The cloud comes back: what was buffered is uploaded, the buffer
    // drains (watermarks fall), and recording resumes at the next IDR.
    w.cloud.restart();
    w.run_advancing(
        "recovery",
        500,
        120_000,
        |e| matches!(e, HostEvent::Notify(n) if n.kind == NotifyKind::ConnectRecover),
    );
    w.run_advancing("buffered segment acknowledged", 500, 60_000, |e| {
        matches!(e, HostEvent::Notify(n) if n.slices.iter().any(|s| s.state == UploadState::Ok))
    });
    w.tick();
    let marks = watermarks(&w, 0);
    assert_eq!(marks.last(), Some(&NotifyKind::WatermarkLow), "{marks:?}");
    let lv = w.engine.buffer_levels();
    assert!(lv[0].backlog < u64::from(BUDGET) / 2, "drained: {lv:?}");
    let before = cam.accepted_frames;
    let refused = film(&mut w, &mut cam, 0, 3_000);
    assert!(cam.accepted_frames > before, "recording resumed");
    assert!(refused.iter().all(|c| *c == -606));
    // The lost span is reported once, as a failed slice.
    w.pass(500, 100);
    let lost: Vec<UploadSlice> = slices(&w, 0)
        .into_iter()
        .filter(|s| s.state == UploadState::Err)
        .collect();
    assert_eq!(lost.len(), 1, "{lost:#?}");
    assert_eq!(lost[0].upload_size, 0);
    assert!(lost[0].total_size > 0);
    assert!(lost[0].seq_end > lost[0].seq_start);
    assert!(w.engine.data_channel(0).unwrap().peak <= u64::from(BUDGET));
    // Every slice, the lost span's too, is dated on the stream's timeline:
    // in seq order they follow each other to the second (firmware finds a
    // failed slice's dump by these seconds).
    let mut all = slices(&w, 0);
    all.sort_by_key(|s| s.seq_start);
    for p in all.windows(2) {
        assert!(
            p[1].utc_start_s.abs_diff(p[0].utc_end_s) <= 1,
            "not contiguous: {p:#?}"
        );
    }
}

// ---- events --------------------------------------------------------------------

fn event_world(name: &str, plan: &str) -> World {
    let mut w = World::new(name);
    w.set_plan(Some(0), plan, None);
    w.engine.host_mut().capture_bytes = Some(jpeg(3000));
    w.engine
        .init(params(&[video_channel(0, 800 << 10)], false))
        .unwrap();
    w.run_until_state("plan", |w| w.engine.cached_balance(0).is_ok());
    w
}

fn results(w: &World) -> Vec<ivcs_engine::events::EventResult> {
    w.events
        .iter()
        .filter_map(|e| match e {
            HostEvent::EventResult(r) => Some(*r),
            _ => None,
        })
        .collect()
}

/// The app API's listing `what` (`events`, `timeline`) of channel 0 from
/// an hour before the test's start to an hour after now: its array `key`.
fn channel0_listing(w: &World, what: &str, key: &str) -> Vec<serde_json::Value> {
    let (s, v) = w.app_api(
        "GET",
        &format!(
            "/v1/devices/{}/channels/0/{what}?start_ms={}&end_ms={}",
            w.device,
            cloud_harness::T0_MS - 3_600_000,
            w.now_ms() + 3_600_000
        ),
        "",
    );
    assert_eq!(s, 200, "{v}");
    v[key].as_array().cloned().unwrap_or_default()
}

fn app_events(w: &World) -> Vec<serde_json::Value> {
    channel0_listing(w, "events", "events")
}

#[test]
fn event_with_picture_and_pre_record_is_reported_finished() {
    let mut w = event_world("event", "event");
    let mut cam = Camera::new();
    // Frames before the event are held for pre-record, nothing is uploaded.
    assert_eq!(film(&mut w, &mut cam, 0, 12_000), Vec::<i32>::new());
    assert_eq!(
        w.engine
            .host()
            .requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path.contains("/segments/"))
            .count(),
        0
    );
    w.engine.event_start(0, 3, b"motion", 0, 5).unwrap();
    assert_eq!(code(w.engine.event_start(0, 3, b"motion", 0, 0)), -609);
    w.run_until("push-start at event start", |e| {
        *e == HostEvent::PushStart(0)
    });
    film(&mut w, &mut cam, 0, 6_000);
    let stop_s = w.now_ms() / 1000;
    w.engine.event_stop(0, 3, b"motion", 0, 0).unwrap();
    assert_eq!(code(w.engine.event_stop(0, 3, b"motion", 0, 0)), -609);
    w.run_until("push-stop at event stop", |e| *e == HostEvent::PushStop(0));
    let r = w.run_until("event result", |e| matches!(e, HostEvent::EventResult(_)));
    let HostEvent::EventResult(r) = r else {
        unreachable!()
    };
    assert!(r.success, "{r:?}; events {:#?}", app_events(&w));
    assert_eq!(r.event_id, 3);
    assert_eq!(u64::from(r.end_utc_s), stop_s);
    assert_eq!(w.engine.host().released(), 1, "picture_result exactly once");
    // Video starts at the pre-recorded IDR, 5 s (at most a GOP more)
    // before the event.
    let sl = slices(&w, 0);
    assert!(!sl.is_empty());
    assert!(sl.iter().all(|s| s.state == UploadState::Ok));
    let start = sl.iter().map(|s| s.utc_start_s).min().unwrap();
    assert!(
        (5..=6).contains(&(u64::from(r.start_utc_s) - start)),
        "video from {start}, event at {}",
        r.start_utc_s
    );
    let ev = app_events(&w);
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0]["status"], "finished", "{ev:?}");
    assert!(!ev[0]["picture_id"].is_null(), "{ev:?}");
    // Between events nothing is recorded.
    let before = sl.len();
    film(&mut w, &mut cam, 0, 12_000);
    w.pass(1_000, 100);
    assert_eq!(slices(&w, 0).len(), before);
}

#[test]
fn frames_pushed_before_the_plan_is_known_are_kept_for_pre_record() {
    let mut w = World::new("pending");
    w.set_plan(Some(0), "event", None);
    w.engine
        .init(params(&[video_channel(0, 800 << 10)], false))
        .unwrap();
    // Firmware pushes right after init; no tick yet, so the cloud has not
    // answered: frames are taken, not -607.
    let mut cam = Camera::new();
    let first_s = w.now_ms() / 1000;
    for _ in 0..50 {
        assert_eq!(cam.push(&mut w, 0), Ok(()));
        w.advance(40);
    }
    assert!(w.engine.cached_balance(0).is_err(), "the plan is not known");
    let g = w.engine.push_gate(0);
    assert_eq!((g.all, g.non_key_video, g.audio), (None, None, None));
    w.run_until_state("plan", |w| w.engine.cached_balance(0).is_ok());
    // The event's pre-record reaches back to the first IDR, pushed before
    // the plan was known.
    let back_s = u32::try_from(w.now_ms() / 1000 - first_s + 1).unwrap();
    w.engine.event_start(0, 1, b"early", 0, back_s).unwrap();
    film(&mut w, &mut cam, 0, 2_000);
    w.engine.event_stop(0, 1, b"early", 0, 0).unwrap();
    w.run_until_state("event result", |w| results(w).len() == 1);
    assert!(results(&w)[0].success);
    let sl = slices(&w, 0);
    assert!(sl.iter().all(|s| s.state == UploadState::Ok), "{sl:#?}");
    let start = sl.iter().map(|s| s.utc_start_s).min().unwrap();
    assert!(
        (first_s..=first_s + 1).contains(&start),
        "video from {start}, first frame at {first_s}"
    );
}

#[test]
fn parallel_events_pair_by_id_and_each_gets_a_result() {
    let mut w = event_world("parallel", "event");
    let mut cam = Camera::new();
    film(&mut w, &mut cam, 0, 2_000);
    assert_eq!(
        code(w.engine.event_stop(0, 1, b"", 0, 0)),
        -609,
        "not started"
    );
    w.engine.event_start(0, 1, b"a", 0, 0).unwrap();
    film(&mut w, &mut cam, 0, 2_000);
    w.engine.event_start(0, 32, b"b", 0, 0).unwrap();
    film(&mut w, &mut cam, 0, 2_000);
    w.engine.event_stop(0, 1, b"a-changed", 0, 0).unwrap();
    film(&mut w, &mut cam, 0, 2_000);
    assert_eq!(
        w.count(|e| *e == HostEvent::PushStop(0)),
        0,
        "event 32 is open"
    );
    w.engine.event_stop(0, 32, b"b", 0, 0).unwrap();
    w.run_until_state("two results", |w| results(w).len() == 2);
    let r = results(&w);
    let ids: Vec<i32> = r.iter().map(|r| r.event_id).collect();
    assert!(ids.contains(&1) && ids.contains(&32), "{r:?}");
    assert!(r.iter().all(|r| r.success), "{r:?}; {:#?}", app_events(&w));
    assert_eq!(w.count(|e| *e == HostEvent::PushStart(0)), 1);
    assert_eq!(w.count(|e| *e == HostEvent::PushStop(0)), 1);
    assert_eq!(w.engine.host().released(), 2);
    assert!(
        w.events.iter().any(
            |e| matches!(e, HostEvent::Log(l) if l.message.contains("differs from the start"))
        )
    );
}

// ---- failures, dump and backup ---------------------------------------------------

#[test]
fn cloud_killed_mid_upload_loses_nothing_acknowledged_and_backup_recovers_the_segment() {
    // A small budget: a 10 s segment does not fit, so its sent bytes are
    // released and a broken upload cannot be repeated from memory.
    const BUDGET: u32 = 64 << 10;
    let mut w = start_full_time("killed", params(&[video_channel(0, BUDGET)], true));
    let mut cam = Camera::new();
    film(&mut w, &mut cam, 0, 10_500);
    w.run_until_state("first segment acknowledged", |w| ok_slices(w, 0) == 1);
    let first = acked(&w, 0);
    // Seven seconds into the second segment: more than the budget was
    // recorded, so its first bytes are released once sent.
    film(&mut w, &mut cam, 0, 7_000);
    // The cloud dies with the second segment half uploaded.
    w.cloud.stop();
    film(&mut w, &mut cam, 0, 8_000);
    w.cloud.restart();
    w.run_advancing(
        "recovery",
        500,
        120_000,
        |e| matches!(e, HostEvent::Notify(n) if n.kind == NotifyKind::ConnectRecover),
    );
    let failed = slices(&w, 0)
        .into_iter()
        .find(|s| s.state == UploadState::Err && s.total_size > 20_000)
        .unwrap();
    // Nothing acknowledged is lost.
    for id in &first {
        assert!(!fetch(&w, id).is_empty());
    }
    // Firmware finds the dump by the slice's times and sends it back.
    let dumped = dumps(&w, 0);
    let (name, (_, _, bytes)) = dumped
        .iter()
        .find(|(_, (s, _, _))| s / 1000 == failed.utc_start_s)
        .unwrap();
    assert_eq!(bytes.len() as u32, failed.total_size);
    w.engine
        .backup_upload(0, DumpState::Start, name, &[])
        .unwrap();
    for c in bytes.chunks(8 << 10) {
        w.engine
            .backup_upload(0, DumpState::Running, name, c)
            .unwrap();
        w.advance(100);
        w.tick();
    }
    w.engine
        .backup_upload(0, DumpState::End, name, &[])
        .unwrap();
    w.run_until_state("backup acknowledged", |w| {
        slices(w, 0)
            .iter()
            .any(|s| s.state == UploadState::Ok && s.utc_start_s == failed.utc_start_s)
    });
    let id = name.strip_suffix(".ts").unwrap();
    assert_eq!(&fetch(&w, id), bytes, "the cloud has the dumped bytes");
    let row = w
        .cloud
        .block_on(w.cloud.app.repo.segment(&w.device, id))
        .unwrap()
        .unwrap();
    assert!(row.backup);
    assert_eq!(format!("{:?}", row.state), "Complete");
}

#[test]
fn backup_of_unknown_path_like_or_expired_files_is_refused() {
    let mut w = start_full_time("backup-names", params(&[video_channel(0, 800 << 10)], true));
    for bad in [
        "../0-1-deadbeef-1.ts",
        "/etc/passwd",
        "a/b.ts",
        "0-1-deadbeef-1.ts",
        "x.ts",
        "",
    ] {
        assert_eq!(
            code(w.engine.backup_upload(0, DumpState::Start, bad, &[])),
            -602,
            "{bad:?}"
        );
    }
    let mut cam = Camera::new();
    film(&mut w, &mut cam, 0, 10_500);
    let name = dumps(&w, 0).into_keys().next().unwrap();
    assert_eq!(
        code(w.engine.backup_upload(1, DumpState::Start, &name, &[])),
        -602,
        "another channel's file"
    );
    assert_eq!(
        code(w.engine.backup_upload(0, DumpState::Running, &name, b"x")),
        -602,
        "not started"
    );
    w.engine
        .backup_upload(0, DumpState::Start, &name, &[])
        .unwrap();
    assert_eq!(
        code(w.engine.backup_upload(0, DumpState::End, &name, &[])),
        -602,
        "not the dumped bytes"
    );
    // 30 minutes after the segment's end the cloud takes no backup.
    w.advance(31 * 60_000);
    assert_eq!(
        code(w.engine.backup_upload(0, DumpState::Start, &name, &[])),
        -613
    );
    assert!(dump_events(&w) > 2);
}

/// A new instance of the engine takes over from the running one's
/// exported state: a checkpoint (a trap restart) or, with `media`, a
/// hand-over (a swap).
fn take_over(w: &mut World, media: bool) {
    let mode = if media {
        Export::HandOver
    } else {
        Export::Checkpoint
    };
    let blob = w.engine.export_state(mode).unwrap();
    let mut next = Engine::new(TestHost::successor(w.engine.host()));
    next.configure(DeviceConfig {
        device_id: w.device.clone(),
        device_secret: w.secret.as_bytes().to_vec(),
    })
    .unwrap();
    next.import_state(&blob).unwrap();
    // The leaving engine goes only now, as in libivcs: the exchanges it
    // handed over are held by the next one.
    drop(std::mem::replace(&mut w.engine, next));
}

/// A trap restart as libivcs does it: the trapped instance goes first (its
/// exchanges with it), then a fresh one imports the restart point.
fn trap_restart(w: &mut World, restart_point: &[u8]) {
    let host = TestHost::successor(w.engine.host());
    drop(std::mem::replace(&mut w.engine, Engine::new(host)));
    w.engine
        .configure(DeviceConfig {
            device_id: w.device.clone(),
            device_secret: w.secret.as_bytes().to_vec(),
        })
        .unwrap();
    w.engine.import_state(restart_point).unwrap();
}

/// The host's restart point is its last hand-over and the checkpoint
/// after it (docs/design/trap-restart.md): a trap restart from them keeps
/// the open segment (mid-GOP, its upload streaming), every buffered byte
/// and the dumps, so the recording is the one without the trap, byte for
/// byte.
#[test]
fn a_trap_restart_from_a_hand_over_and_a_checkpoint_continues_byte_for_byte() {
    let steps = [4_360, 600, 10_400, 9_640];
    let (_, _, want, ..) = film_in_steps("trap-ref", &steps, |_, _| {});
    let mut base = Vec::new();
    let (refused, sl, got, w, cam) = film_in_steps("trap", &steps, |w, i| match i {
        0 => base = w.engine.export_state(Export::HandOver).unwrap(),
        1 => {
            let cp = w.engine.export_state(Export::Checkpoint).unwrap();
            assert!(cp.len() < base.len() / 2, "{} vs {}", cp.len(), base.len());
            trap_restart(w, &[base.as_slice(), &cp].concat());
            w.tick();
        }
        _ => {}
    });
    assert_eq!(refused, Vec::<i32>::new(), "no frame refused");
    assert_eq!(sl.len(), 3, "{sl:#?}");
    assert!(sl.iter().all(|s| s.state == UploadState::Ok), "{sl:#?}");
    assert_eq!(sl[2].seq_end as usize, cam.accepted_frames - 1);
    same_segments(&got, &want);
    let dumped = dumps(&w, 0);
    for id in acked(&w, 0) {
        let (_, _, d) = &dumped[&format!("{id}.ts")];
        assert!(got.contains(d), "dump of {id} = a stored segment");
    }
}

#[test]
fn a_restored_engine_tells_firmware_its_buffer_drained_after_watermark_high() {
    const BUDGET: u32 = 128 << 10;
    let (mut w, mut cam) = offline_after_a_second("wm-restore", BUDGET);
    // Until firmware was last told HIGH (a segment given up can make the
    // fill fall and climb again).
    for _ in 0..60 {
        film(&mut w, &mut cam, 0, 1_000);
        if watermarks(&w, 0).last() == Some(&NotifyKind::WatermarkHigh) {
            break;
        }
    }
    let marks = watermarks(&w, 0);
    assert_eq!(marks.last(), Some(&NotifyKind::WatermarkHigh), "{marks:?}");
    // Found by host-sim (a trap while at HIGH): the buffered bytes do not
    // survive the restart, and firmware must not be left throttling.
    take_over(&mut w, false);
    w.tick();
    assert_eq!(w.engine.buffer_levels()[0].backlog, 0);
    assert_eq!(watermarks(&w, 0).last(), Some(&NotifyKind::WatermarkLow));
}

/// More than ten slices in one tick (a restart with many segments
/// buffered through an outage) reach firmware as several notifies of at
/// most ten (`MAX_UPLOAD_INFO_NUM`), none dropped, each segment once.
#[test]
fn more_than_ten_slices_at_once_are_split_into_notifies_of_ten() {
    const BUDGET: u32 = 8 << 20;
    let (mut w, mut cam) = offline_after_a_second("many-slices", BUDGET);
    let refused = film(&mut w, &mut cam, 0, 200_000);
    assert!(refused.is_empty(), "{refused:?}");
    let before = w.events.len();
    take_over(&mut w, false);
    w.tick();
    let notifies: Vec<&Vec<UploadSlice>> = w.events[before..]
        .iter()
        .filter_map(|e| match e {
            HostEvent::Notify(n) if n.kind == NotifyKind::UploadState => Some(&n.slices),
            _ => None,
        })
        .collect();
    let sizes: Vec<usize> = notifies.iter().map(|n| n.len()).collect();
    let all: Vec<&UploadSlice> = notifies.iter().flat_map(|n| n.iter()).collect();
    assert!(all.len() > 10, "{sizes:?}");
    assert!(sizes.iter().all(|&n| (1..=10).contains(&n)), "{sizes:?}");
    let mut seqs: Vec<u32> = all.iter().map(|s| s.seq_start).collect();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), all.len(), "each segment once: {all:#?}");
    assert!(all.iter().all(|s| s.state == UploadState::Err));
}

/// Films 25 s (three segments: 10 + 10 + 5 s, the last closed by the idle
/// pause), calling `between` after each given ms of filming; returns the
/// refusals, the slices and the bytes of every acknowledged segment.
fn film_in_steps(
    name: &str,
    steps: &[u64],
    between: impl FnMut(&mut World, usize),
) -> (Vec<i32>, Vec<UploadSlice>, Vec<Vec<u8>>, World, Camera) {
    film_in_steps_with(name, 800 << 10, steps, between)
}

/// [`film_in_steps`] with a budget of `budget` bytes. Below 800 KB the
/// network is let answer after every frame (it is real, time virtual), so
/// the budget never overflows and runs compare byte for byte.
fn film_in_steps_with(
    name: &str,
    budget: u32,
    steps: &[u64],
    mut between: impl FnMut(&mut World, usize),
) -> (Vec<i32>, Vec<UploadSlice>, Vec<Vec<u8>>, World, Camera) {
    let mut w = start_full_time(name, params(&[video_channel(0, budget)], true));
    let mut cam = Camera::new();
    let mut refused = Vec::new();
    for (i, ms) in steps.iter().enumerate() {
        if budget < 800 << 10 {
            for _ in 0..ms / 40 {
                refused.extend(cam.push(&mut w, 0).err());
                w.advance(40);
                w.settle(std::time::Duration::from_millis(5));
            }
        } else {
            refused.extend(film(&mut w, &mut cam, 0, *ms));
        }
        between(&mut w, i);
    }
    w.pass(121_000, 1_000);
    w.run_until_state("three segments acknowledged", |w| ok_slices(w, 0) >= 3);
    let bytes = acked(&w, 0).iter().map(|id| fetch(&w, id)).collect();
    (refused, slices(&w, 0), bytes, w, cam)
}

/// The three segments of a run with hand-overs are those of one without,
/// byte for byte.
fn same_segments(got: &[Vec<u8>], want: &[Vec<u8>]) {
    assert_eq!(got.len(), 3);
    for (i, (g, r)) in got.iter().zip(want).enumerate() {
        assert!(
            g == r,
            "segment {i}: {} bytes, without hand-over {}",
            g.len(),
            r.len()
        );
    }
}

#[test]
fn a_hand_over_continues_the_open_segment_and_every_upload_byte_for_byte() {
    let steps = [4_360, 6_000, 3_000, 2_000, 9_640];
    let (_, _, want, ..) = film_in_steps("handover-ref", &steps, |_, _| {});
    let (refused, sl, got, w, cam) = film_in_steps("handover", &steps, |w, i| match i {
        // Mid-GOP, mid-segment, its upload streaming; a tick before the
        // next frame (as libivcs does) must not end the recording.
        0 => {
            take_over(w, true);
            w.tick();
        }
        // The cloud goes away: the second segment's upload breaks.
        1 => w.cloud.stop(),
        // Handed over while the cloud is down: the bytes held for it go
        // along, the open segment too.
        2 => take_over(w, true),
        3 => w.cloud.restart(),
        _ => {}
    });
    assert_eq!(refused, Vec::<i32>::new(), "no frame refused");
    assert_eq!(sl.len(), 3, "{sl:#?}");
    assert!(sl.iter().all(|s| s.state == UploadState::Ok), "{sl:#?}");
    assert_eq!(sl[0].seq_start, 0);
    assert_eq!(sl[1].seq_start, sl[0].seq_end + 1, "contiguous seq");
    assert_eq!(sl[2].seq_start, sl[1].seq_end + 1, "contiguous seq");
    assert_eq!(sl[2].seq_end as usize, cam.accepted_frames - 1);
    same_segments(&got, &want);
    // The dumps continued across the hand-overs too.
    let dumped = dumps(&w, 0);
    for id in acked(&w, 0) {
        let (_, _, d) = &dumped[&format!("{id}.ts")];
        assert!(got.contains(d), "dump of {id} = a stored segment");
    }
    let dir = w.dir().clone();
    std::fs::write(dir.join("cloud.ts"), got.concat()).unwrap();
    std::fs::write(dir.join("source.h264"), &cam.accepted).unwrap();
    let decoded = frame_hashes(&dir.join("cloud.ts"), &[]);
    assert_eq!(decoded.len(), cam.accepted_frames);
    assert_eq!(
        decoded,
        frame_hashes(&dir.join("source.h264"), &["-f", "h264"])
    );
}

#[test]
fn export_import_keeps_acknowledged_segments_and_dumps() {
    let mut w = start_full_time("data-state", params(&[video_channel(0, 800 << 10)], true));
    let mut cam = Camera::new();
    film(&mut w, &mut cam, 0, 10_500);
    w.run_until_state("a segment acknowledged", |w| ok_slices(w, 0) == 1);
    let acked_before = acked(&w, 0);
    let name = dumps(&w, 0).into_keys().next().unwrap();
    take_over(&mut w, false);
    assert_eq!(acked(&w, 0), acked_before);
    // The segment open at the export is reported failed (its bytes are not
    // in the state); its dump never ended, so it is no backup candidate.
    let from = w.events.len();
    w.tick();
    assert!(w.events[from..].iter().any(|e| matches!(e,
        HostEvent::Notify(n) if n.slices.iter().any(|s| s.state == UploadState::Err))));
    // Dumps are remembered: a backup of one starts.
    w.engine
        .backup_upload(0, DumpState::Start, &name, &[])
        .unwrap();
    // Recording continues from an IDR with new segment numbers.
    cam.skip_to_idr();
    assert_eq!(cam.push(&mut w, 0), Ok(()));
}

#[test]
fn exit_with_uploads_in_flight_returns_at_once_and_init_starts_clean() {
    let mut w = start_full_time("exit-busy", params(&[video_channel(0, 800 << 10)], false));
    let mut cam = Camera::new();
    film(&mut w, &mut cam, 0, 4_000);
    w.engine.event_start(0, 1, b"", 0, 0).unwrap();
    let t = std::time::Instant::now();
    w.engine.exit().unwrap();
    assert!(t.elapsed() < std::time::Duration::from_millis(100));
    assert_eq!(cam.push(&mut w, 0), Err(-605));
    w.engine
        .init(params(&[video_channel(0, 800 << 10)], false))
        .unwrap();
    w.run_until_state("push-start again", |w| {
        w.count(|e| *e == HostEvent::PushStart(0)) == 2
    });
    cam.skip_to_idr();
    film(&mut w, &mut cam, 0, 10_500);
    w.run_until_state("a segment of the new session", |w| ok_slices(w, 0) == 1);
    assert_eq!(
        code(w.engine.event_stop(0, 1, b"", 0, 0)),
        -609,
        "events ended with exit"
    );
}

#[test]
fn a_hand_over_goes_on_with_uploads_whose_first_bytes_were_released() {
    // A 64 KB budget and ~150 KB segments: while a segment is recorded, its
    // sent bytes are released to make room, so it can never be sent again
    // from its first byte. The hand-over passes the upload in flight (its
    // exchange, `network.adopt`) and the digest so far to the next engine.
    const BUDGET: u32 = 64 << 10;
    let steps = [7_000, 5_040, 5_000, 7_960];
    let (ref_refused, ref_sl, want, ..) =
        film_in_steps_with("handover-small-ref", BUDGET, &steps, |_, _| {});
    assert!(
        want[0].len() > 2 * BUDGET as usize,
        "segments must outgrow the budget: {}",
        want[0].len()
    );
    let (refused, sl, got, w, _) = film_in_steps_with("handover-small", BUDGET, &steps, |w, i| {
        // 7 s into the first segment (~100 KB made, under 64 KB
        // held), just after the first cut (one committing, one
        // streaming), and mid-way through the second.
        if i < 3 {
            take_over(w, true);
            w.tick();
        }
    });
    assert_eq!(
        refused, ref_refused,
        "the same refusals as without hand-over"
    );
    assert_eq!(refused, Vec::<i32>::new());
    assert_eq!(sl.len(), 3, "{sl:#?}");
    assert!(sl.iter().all(|s| s.state == UploadState::Ok), "{sl:#?}");
    assert_eq!(
        sl.iter()
            .map(|s| (s.seq_start, s.seq_end))
            .collect::<Vec<_>>(),
        ref_sl
            .iter()
            .map(|s| (s.seq_start, s.seq_end))
            .collect::<Vec<_>>()
    );
    same_segments(&got, &want);
    // Every upload went on over its exchange: one PUT per segment.
    let puts = w
        .engine
        .host()
        .requests
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.method == Method::Put && r.path.starts_with("/v1/device/segments/"))
        .count();
    assert_eq!(puts, 3, "no segment upload started again");
}

// ---- exit and replayed pre-record ---------------------------------------------------

/// The cloud's recorded spans of channel 0 around the test's time.
fn spans(w: &World) -> Vec<serde_json::Value> {
    channel0_listing(w, "timeline", "spans")
}

/// The cloud's MP4 export of `[a, b)` ms, decoded: video frame hashes.
fn exported_frames(w: &World, a: u64, b: u64) -> Vec<String> {
    let auth = format!("Bearer {}", w.token);
    let (status, body) = http::request(
        w.cloud.addr,
        "GET",
        &format!(
            "/v1/devices/{}/channels/0/export.mp4?start_ms={a}&end_ms={b}",
            w.device
        ),
        &[("authorization", &auth)],
        b"",
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let f = w.dir().join("export.mp4");
    std::fs::write(&f, body).unwrap();
    frame_hashes(&f, &[])
}

#[test]
fn exit_closes_the_open_segment_and_uploads_everything_without_telling_firmware() {
    // Privacy mode: 30 s on a full-time plan, then exit. The segments at 10
    // and 20 s are still uploading and the third is open.
    let mut w = start_full_time("exit-drain", params(&[video_channel(0, 800 << 10)], true));
    let mut cam = Camera::new();
    let first_ms = w.now_ms();
    for _ in 0..30_000 / 40 {
        assert_eq!(cam.push(&mut w, 0), Ok(()));
        w.advance(40);
    }
    w.engine.exit().unwrap();
    assert_eq!(cam.push(&mut w, 0), Err(-605));
    // The exit's own events (the open segment's last dump chunks) leave
    // with the next tick; after that firmware hears nothing but log lines.
    let at_exit = w.tick();
    assert!(
        at_exit
            .iter()
            .any(|e| matches!(e, HostEvent::DumpFile(d) if d.state == DumpState::End)),
        "the segment closed by exit is dumped whole"
    );
    let seen = w.events.len();
    w.run_until_state("30 s in the cloud", |w| {
        spans(w)
            .first()
            .is_some_and(|s| s["segments"] == 3 && s["end_ms"].as_u64() >= Some(first_ms + 29_960))
    });
    w.pass(5_000, 500);
    let after: Vec<_> = w.events[seen..]
        .iter()
        .filter(|e| !matches!(e, HostEvent::Log(_)))
        .collect();
    assert!(after.is_empty(), "firmware heard after exit: {after:#?}");
    let sp = spans(&w);
    assert_eq!(sp.len(), 1, "{sp:?}");
    assert_eq!(sp[0]["start_ms"].as_u64(), Some(first_ms));
    // Every pushed frame, decoded from the cloud's export.
    let got = exported_frames(&w, first_ms, first_ms + 30_000);
    let dir = w.dir().clone();
    std::fs::write(dir.join("source.h264"), &cam.accepted).unwrap();
    let want = frame_hashes(&dir.join("source.h264"), &["-f", "h264"]);
    assert_eq!(got.len(), 750);
    assert_eq!(got, want, "the export holds every pushed frame");
}

#[test]
fn init_after_exit_adopts_the_uploads_still_pending() {
    // The cloud is down at exit: the segments wait. A new init takes them
    // over (within its budget) and they arrive once the cloud is back,
    // without reports to the new session.
    let mut w = start_full_time("exit-adopt", params(&[video_channel(0, 800 << 10)], false));
    let mut cam = Camera::new();
    let first_ms = w.now_ms();
    w.cloud.stop();
    for _ in 0..12_000 / 40 {
        let _ = cam.push(&mut w, 0);
        w.advance(40);
        w.tick();
    }
    w.engine.exit().unwrap();
    w.engine
        .init(params(&[video_channel(0, 800 << 10)], false))
        .unwrap();
    let c = w.engine.data_channel(0).unwrap();
    assert!(c.used() > 0, "the new session holds the old segments");
    w.cloud.restart();
    w.run_advancing("reachable again", 1_000, 120_000, |e| {
        *e == HostEvent::PushStart(0)
    });
    let seen = w.events.len();
    // Past the uploads' retry delays (virtual time).
    w.pass(60_000, 1_000);
    let sp = spans(&w);
    assert_eq!(sp.len(), 1, "{sp:?}");
    assert_eq!(sp[0]["start_ms"].as_u64(), Some(first_ms));
    assert!(
        sp[0]["end_ms"].as_u64() >= Some(first_ms + 11_960),
        "{sp:?}"
    );
    assert_eq!(
        slices(&w, 0).len(),
        slices_before(&w, seen),
        "the old session's segments are not reported to the new one"
    );
}

/// Upload slices reported in the first `n` events.
fn slices_before(w: &World, n: usize) -> usize {
    w.events[..n]
        .iter()
        .map(|e| match e {
            HostEvent::Notify(n) if n.kind == NotifyKind::UploadState => n.slices.len(),
            _ => 0,
        })
        .sum()
}

#[test]
fn pre_record_replayed_by_firmware_is_dated_from_the_stated_stream_start() {
    // Firmware that does not push while idle: on an alarm it asks for 4 s
    // of pre-record, then replays its own ring from the IDR captured 4 s
    // ago, with the frames' capture PTS, paced at real time. Its pushes lag
    // the clock by 4 s for the whole event.
    let mut w = event_world("replay", "event");
    let mut cam = Camera::new();
    w.pass(3_000, 500);
    let alarm_ms = w.now_ms();
    w.engine.event_start(0, 1, b"motion", 0, 4).unwrap();
    w.run_until("push-start", |e| *e == HostEvent::PushStart(0));
    // 4 s replayed and 6 s live, each frame pushed 4 s after its capture.
    assert_eq!(film(&mut w, &mut cam, 0, 10_000), Vec::<i32>::new());
    let stop_ms = w.now_ms();
    w.engine.event_stop(0, 1, b"motion", 0, 0).unwrap();
    // Firmware pushes on until push_stream_stop_cb: the frames it had not
    // pushed yet were captured before the stop.
    let mut after_stop = 0;
    while w.count(|e| *e == HostEvent::PushStop(0)) == 0 {
        assert!(after_stop < 250, "no push-stop 10 s after the stop");
        assert_eq!(cam.push(&mut w, 0), Ok(()));
        w.advance(40);
        w.tick();
        after_stop += 1;
    }
    assert!(
        (100..=102).contains(&after_stop),
        "{after_stop} frames after the stop"
    );
    w.run_until_state("event result", |w| results(w).len() == 1);
    assert!(results(&w)[0].success, "{:#?}", app_events(&w));
    let sp = spans(&w);
    assert_eq!(sp.len(), 1, "{sp:?}");
    // The first replayed frame was captured 4 s before the alarm: dated to
    // the millisecond, and the rest follow it by PTS, up to the stop.
    assert_eq!(sp[0]["start_ms"].as_u64(), Some(alarm_ms - 4_000));
    assert_eq!(sp[0]["end_ms"].as_u64(), Some(stop_ms));
    // The export of [alarm - 4 s, stop) holds every frame captured then.
    let got = exported_frames(&w, alarm_ms - 4_000, stop_ms);
    let dir = w.dir().clone();
    std::fs::write(dir.join("source.h264"), &cam.accepted).unwrap();
    let want = frame_hashes(&dir.join("source.h264"), &["-f", "h264"]);
    let captured = usize::try_from((stop_ms - (alarm_ms - 4_000)) / 40).unwrap();
    assert_eq!(got.len(), captured);
    assert_eq!(got[..], want[..captured]);
}
