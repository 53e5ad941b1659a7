//! End-to-end checks of the TS and fMP4 muxers against ffmpeg/ffprobe: real
//! H.264/H.265/AAC streams are muxed into segments, and ffmpeg must read
//! them without a warning and decode exactly the source frames.
//!
//! Skipped (with a passing result) when ffmpeg or ffprobe is not installed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use ivcs_media::fmp4::Fmp4Muxer;
use ivcs_media::ts::{PCR_LAG_90K, TsMuxer};
use ivcs_media::{AudioParams, VideoCodec, VideoParams};

/// Offset applied to every timestamp, comfortably above the PCR lag.
const OFFSET90: u64 = 90_000;
const FRAME90: u64 = 3600;
const SAMPLE_RATE: u32 = 48_000;
/// Segments start at these frame indices (GOP of 25): 1 s, 2 s, 1 s.
const CUTS: [usize; 3] = [0, 25, 75];

struct Video {
    codec: VideoCodec,
    /// Source elementary stream file (reference for framemd5).
    path: PathBuf,
    aus: Vec<Vec<u8>>,
    keys: Vec<bool>,
    params: VideoParams,
}

struct Inputs {
    dir: PathBuf,
    h264: Video,
    h265: Video,
    audio: Vec<Vec<u8>>,
    audio_params: AudioParams,
}

fn tools_present() -> bool {
    ["ffmpeg", "ffprobe"].iter().all(|t| {
        Command::new(t)
            .arg("-version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// Runs a command; returns (stdout, stderr); panics on a non-zero exit.
fn run(cmd: &str, args: &[&str]) -> (String, String) {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{cmd} {args:?} failed: {stderr}");
    (stdout, stderr)
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Generated once per test binary; every test reads the same inputs.
fn inputs() -> Option<&'static Inputs> {
    static INPUTS: OnceLock<Option<Inputs>> = OnceLock::new();
    INPUTS
        .get_or_init(|| {
            if !tools_present() {
                return None;
            }
            Some(generate())
        })
        .as_ref()
}

fn generate() -> Inputs {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("mux_ffmpeg");
    std::fs::create_dir_all(&dir).unwrap();
    let v264 = dir.join("v.h264");
    let v265 = dir.join("v.h265");
    let aac = dir.join("a.aac");
    let src = "testsrc2=size=320x240:rate=25";
    #[rustfmt::skip]
    run("ffmpeg", &["-v", "error", "-y", "-f", "lavfi", "-t", "4", "-i", src,
        "-c:v", "libx264", "-profile:v", "main", "-bf", "0", "-g", "25",
        "-bsf:v", "h264_metadata=aud=insert", "-f", "h264", p(&v264)]);
    #[rustfmt::skip]
    run("ffmpeg", &["-v", "error", "-y", "-f", "lavfi", "-t", "4", "-i", src,
        "-c:v", "libx265", "-x265-params", "bframes=0:keyint=25:log-level=error",
        "-bsf:v", "hevc_metadata=aud=insert", "-f", "hevc", p(&v265)]);
    #[rustfmt::skip]
    run("ffmpeg", &["-v", "error", "-y", "-f", "lavfi", "-t", "4", "-i",
        "sine=f=440:r=48000", "-c:a", "aac", "-f", "adts", p(&aac)]);

    let h264 = load_video(&dir, VideoCodec::H264, v264);
    let h265 = load_video(&dir, VideoCodec::H265, v265);
    let audio = split_adts(&std::fs::read(&aac).unwrap());
    Inputs {
        dir,
        h264,
        h265,
        audio,
        audio_params: AudioParams::aac_lc(SAMPLE_RATE, 1).unwrap(),
    }
}

/// NAL units of an Annex-B buffer as (start-code offset, NAL bytes).
fn nals(data: &[u8]) -> Vec<(usize, &[u8])> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i..i + 3] == [0, 0, 1] {
            let sc = if i > 0 && data[i - 1] == 0 { i - 1 } else { i };
            starts.push((sc, i + 3));
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut out = Vec::new();
    for (k, &(sc, start)) in starts.iter().enumerate() {
        let end = starts.get(k + 1).map_or(data.len(), |&(next, _)| next);
        out.push((sc, &data[start..end]));
    }
    out
}

fn nal_type(codec: VideoCodec, nal: &[u8]) -> u8 {
    match codec {
        VideoCodec::H264 => nal[0] & 0x1F,
        VideoCodec::H265 => (nal[0] >> 1) & 0x3F,
    }
}

fn load_video(dir: &Path, codec: VideoCodec, path: PathBuf) -> Video {
    let data = std::fs::read(&path).unwrap();
    let aud = match codec {
        VideoCodec::H264 => 9,
        VideoCodec::H265 => 35,
    };
    let all = nals(&data);
    // The streams were written with AUDs inserted: split on them.
    let bounds: Vec<usize> = all
        .iter()
        .filter(|(_, n)| nal_type(codec, n) == aud)
        .map(|&(sc, _)| sc)
        .collect();
    let mut aus = Vec::new();
    for (k, &b) in bounds.iter().enumerate() {
        let end = bounds.get(k + 1).copied().unwrap_or(data.len());
        aus.push(data[b..end].to_vec());
    }
    let is_key = |t: u8| match codec {
        VideoCodec::H264 => t == 5,
        VideoCodec::H265 => (16..=21).contains(&t),
    };
    let keys = aus
        .iter()
        .map(|au| nals(au).iter().any(|(_, n)| is_key(nal_type(codec, n))))
        .collect();

    let (mut vps, mut sps, mut pps) = (Vec::new(), Vec::new(), Vec::new());
    for (_, n) in nals(&aus[0]) {
        let n = n.to_vec();
        match (codec, nal_type(codec, &n)) {
            (VideoCodec::H264, 7) | (VideoCodec::H265, 33) => sps.push(n),
            (VideoCodec::H264, 8) | (VideoCodec::H265, 34) => pps.push(n),
            (VideoCodec::H265, 32) => vps.push(n),
            _ => {}
        }
    }
    // The decoder configuration record as ffmpeg writes it into an MP4.
    let mp4 = dir.join(format!("{codec:?}.mp4"));
    let tag = match codec {
        VideoCodec::H264 => "avc1",
        VideoCodec::H265 => "hvc1",
    };
    #[rustfmt::skip]
    run("ffmpeg", &["-v", "error", "-y", "-i", p(&path), "-c", "copy", "-tag:v", tag, p(&mp4)]);
    let config_box = match codec {
        VideoCodec::H264 => b"avcC",
        VideoCodec::H265 => b"hvcC",
    };
    let decoder_config = find_box(&std::fs::read(&mp4).unwrap(), config_box)
        .expect("decoder config box")
        .to_vec();
    let params = VideoParams {
        codec,
        width: 320,
        height: 240,
        codec_string: String::new(),
        vps,
        sps,
        pps,
        decoder_config,
    };
    Video {
        codec,
        path,
        aus,
        keys,
        params,
    }
}

/// Body of the first box of type `want`, descending through the containers
/// on the path to a video sample entry.
fn find_box<'a>(data: &'a [u8], want: &[u8; 4]) -> Option<&'a [u8]> {
    let mut i = 0;
    while i + 8 <= data.len() {
        let size = u32::from_be_bytes(data[i..i + 4].try_into().unwrap()) as usize;
        let kind: [u8; 4] = data[i + 4..i + 8].try_into().unwrap();
        if size < 8 || i + size > data.len() {
            return None;
        }
        let body = &data[i + 8..i + size];
        if &kind == want {
            return Some(body);
        }
        // Bytes before the children: stsd has version/flags + count, visual
        // sample entries 78 bytes of fields.
        let skip = match &kind {
            b"moov" | b"trak" | b"mdia" | b"minf" | b"stbl" => Some(0),
            b"stsd" => Some(8),
            b"avc1" | b"hvc1" => Some(78),
            _ => None,
        };
        if let Some(skip) = skip
            && let Some(found) = body.get(skip..).and_then(|b| find_box(b, want))
        {
            return Some(found);
        }
        i += size;
    }
    None
}

/// Raw AAC access units of an ADTS stream.
fn split_adts(data: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 7 <= data.len() {
        assert_eq!(data[i], 0xFF, "ADTS sync at {i}");
        let header = if data[i + 1] & 1 == 1 { 7 } else { 9 };
        let len = ((usize::from(data[i + 3]) & 3) << 11)
            | (usize::from(data[i + 4]) << 3)
            | (usize::from(data[i + 5]) >> 5);
        out.push(data[i + header..i + len].to_vec());
        i += len;
    }
    out
}

/// Audio frame `j` in 90 kHz (exact at 48 kHz: 1920 ticks per frame).
fn audio90(j: usize) -> u64 {
    OFFSET90 + j as u64 * 1024 * 90_000 / u64::from(SAMPLE_RATE)
}

/// Audio frame `j` in the audio timescale, on the same clock as the video.
fn audio_ticks(j: usize) -> u64 {
    OFFSET90 * u64::from(SAMPLE_RATE) / 90_000 + j as u64 * 1024
}

/// Frame ranges of the segments.
fn segments(n_frames: usize) -> Vec<std::ops::Range<usize>> {
    (0..CUTS.len())
        .map(|k| CUTS[k]..CUTS.get(k + 1).copied().unwrap_or(n_frames))
        .collect()
}

/// The TS muxer's input for frame `i`: the source access unit with its AUD
/// removed on even frames and its parameter sets removed on every key frame
/// but the first, so that both insertions are exercised.
fn ts_input(v: &Video, i: usize) -> Vec<u8> {
    let au = &v.aus[i];
    let mut out = Vec::new();
    for (k, (sc, nal)) in nals(au).into_iter().enumerate() {
        let t = nal_type(v.codec, nal);
        let aud = matches!((v.codec, t), (VideoCodec::H264, 9) | (VideoCodec::H265, 35));
        let ps = matches!(
            (v.codec, t),
            (VideoCodec::H264, 7 | 8) | (VideoCodec::H265, 32..=34)
        );
        if (aud && i.is_multiple_of(2)) || (ps && i > 0) {
            continue;
        }
        let end = nals(au).get(k + 1).map_or(au.len(), |&(next, _)| next);
        out.extend_from_slice(&au[sc..end]);
    }
    out
}

/// Muxes the TS segments; returns their bytes.
fn mux_ts(inp: &Inputs, v: &Video, with_audio: bool) -> Vec<Vec<u8>> {
    const { assert!(OFFSET90 >= PCR_LAG_90K) };
    let ap = &inp.audio_params;
    let mut mux = TsMuxer::new(v.codec, with_audio.then_some(ap));
    let mut next_audio = 0;
    let mut segs = Vec::new();
    for range in segments(v.aus.len()) {
        let mut out = Vec::new();
        mux.begin_segment(&mut out);
        for i in range {
            let pts = OFFSET90 + i as u64 * FRAME90;
            // Audio up to this frame's time goes first, in time order.
            while with_audio && next_audio < inp.audio.len() && audio90(next_audio) <= pts {
                mux.write_audio(&mut out, &inp.audio[next_audio], ap, audio90(next_audio))
                    .unwrap();
                next_audio += 1;
            }
            let au = ts_input(v, i);
            mux.write_video(&mut out, &au, pts, v.keys[i], &v.params)
                .unwrap();
        }
        segs.push(out);
    }
    // The audio past the last video frame ends the last segment.
    let last = segs.last_mut().unwrap();
    while with_audio && next_audio < inp.audio.len() {
        mux.write_audio(last, &inp.audio[next_audio], ap, audio90(next_audio))
            .unwrap();
        next_audio += 1;
    }
    segs
}

/// Muxes the fMP4 segments; returns (bytes, init length) per segment.
fn mux_fmp4(inp: &Inputs, v: &Video, with_audio: bool) -> Vec<(Vec<u8>, usize)> {
    let ap = &inp.audio_params;
    let mut mux = Fmp4Muxer::new(&v.params, with_audio.then_some(ap));
    let mut next_audio = 0;
    let mut segs = Vec::new();
    let ranges = segments(v.aus.len());
    let n_ranges = ranges.len();
    for (k, range) in ranges.into_iter().enumerate() {
        let mut out = Vec::new();
        let init = mux.begin_segment(&mut out).unwrap();
        let end = range.end;
        for i in range {
            let dts = OFFSET90 + i as u64 * FRAME90;
            while with_audio && next_audio < inp.audio.len() && audio90(next_audio) <= dts {
                mux.push_audio(&mut out, &inp.audio[next_audio], audio_ticks(next_audio))
                    .unwrap();
                next_audio += 1;
            }
            mux.push_video(&mut out, &v.aus[i], dts, v.keys[i]).unwrap();
        }
        let end_dts = OFFSET90 + end as u64 * FRAME90;
        let last = k + 1 == n_ranges;
        while with_audio && next_audio < inp.audio.len() && (last || audio90(next_audio) < end_dts)
        {
            mux.push_audio(&mut out, &inp.audio[next_audio], audio_ticks(next_audio))
                .unwrap();
            next_audio += 1;
        }
        mux.end_segment(&mut out, end_dts).unwrap();
        segs.push((out, init));
    }
    segs
}

/// framemd5 hash column of the decoded video of `input` (extra args go
/// before `-i`).
fn video_hashes(pre: &[&str], input: &str) -> Vec<String> {
    let mut args = vec!["-v", "error"];
    args.extend_from_slice(pre);
    #[rustfmt::skip]
    args.extend_from_slice(&["-i", input, "-map", "0:v", "-fps_mode", "passthrough",
        "-f", "framemd5", "-"]);
    let (stdout, _) = run("ffmpeg", &args);
    stdout
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.rsplit(',').next().unwrap().trim().to_string())
        .collect()
}

/// ffprobe and a full decode of `file` must print nothing at warning level.
fn assert_clean(file: &Path) {
    let (_, err) = run("ffprobe", &["-v", "warning", p(file)]);
    assert!(err.is_empty(), "ffprobe {}: {err}", file.display());
    let (_, err) = run(
        "ffmpeg",
        &["-v", "warning", "-i", p(file), "-f", "null", "-"],
    );
    assert!(err.is_empty(), "ffmpeg decode {}: {err}", file.display());
}

fn stream_types(file: &Path) -> Vec<String> {
    #[rustfmt::skip]
    let (out, _) = run("ffprobe", &["-v", "error", "-show_entries", "stream=index,codec_type",
        "-of", "csv=p=0", p(file)]);
    // TS lists each stream again under its program: keep one per index.
    let mut seen = std::collections::BTreeMap::new();
    for line in out.lines() {
        if let Some((index, kind)) = line.trim().split_once(',') {
            seen.insert(index.parse::<u32>().unwrap(), kind.to_string());
        }
    }
    seen.into_values().collect()
}

fn first_frame_is_key(file: &Path) -> bool {
    #[rustfmt::skip]
    let (out, _) = run("ffprobe", &["-v", "error", "-select_streams", "v", "-show_frames",
        "-read_intervals", "%+#1", "-show_entries", "frame=key_frame", "-of", "csv=p=0",
        p(file)]);
    // Side data may follow the key_frame field on the same line.
    out.lines().next().and_then(|l| l.split(',').next()) == Some("1")
}

/// (packet count, duration in seconds) of the audio stream. The mov
/// demuxer reports a fragmented stream's duration as its end time, so the
/// start time is subtracted (TS reports the true duration).
fn audio_stats(file: &Path) -> (usize, f64) {
    #[rustfmt::skip]
    let (out, _) = run("ffprobe", &["-v", "error", "-select_streams", "a", "-count_packets",
        "-show_entries", "stream=start_time,duration,nb_read_packets", "-of", "csv=p=0",
        p(file)]);
    let line = out.lines().next().unwrap_or_default().trim().to_string();
    let mut fields = line.split(',');
    let start: f64 = fields.next().unwrap().parse().unwrap();
    let duration: f64 = fields.next().unwrap().parse().unwrap();
    let packets: usize = fields.next().unwrap().parse().unwrap();
    let is_mov = file.extension().is_some_and(|e| e == "mp4");
    (packets, if is_mov { duration - start } else { duration })
}

/// The per-segment checks shared by both containers.
fn check_segment(file: &Path, with_audio: bool) {
    assert_clean(file);
    let types = stream_types(file);
    if with_audio {
        assert_eq!(types, ["video", "audio"], "{}", file.display());
    } else {
        assert_eq!(types, ["video"], "{}", file.display());
    }
    assert!(first_frame_is_key(file), "{}: first frame", file.display());
}

fn case_dir(inp: &Inputs, name: &str) -> PathBuf {
    let dir = inp.dir.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn audio_seconds(frames: usize) -> f64 {
    frames as f64 * 1024.0 / f64::from(SAMPLE_RATE)
}

fn run_ts(codec: VideoCodec, with_audio: bool) {
    let Some(inp) = inputs() else {
        return;
    };
    let v = match codec {
        VideoCodec::H264 => &inp.h264,
        VideoCodec::H265 => &inp.h265,
    };
    let dir = case_dir(inp, &format!("ts_{codec:?}_{with_audio}"));
    let segs = mux_ts(inp, v, with_audio);
    let mut all = Vec::new();
    for (k, seg) in segs.iter().enumerate() {
        assert_eq!(seg.len() % 188, 0);
        let file = dir.join(format!("seg{k}.ts"));
        std::fs::write(&file, seg).unwrap();
        check_segment(&file, with_audio);
        all.extend_from_slice(seg);
    }
    let all_file = dir.join("all.ts");
    std::fs::write(&all_file, &all).unwrap();
    assert_clean(&all_file);
    let want = video_hashes(&[], p(&v.path));
    assert_eq!(want.len(), v.aus.len());
    assert_eq!(video_hashes(&[], p(&all_file)), want);
    if with_audio {
        let (packets, duration) = audio_stats(&all_file);
        assert_eq!(packets, inp.audio.len());
        let expect = audio_seconds(inp.audio.len());
        assert!(
            (duration - expect).abs() <= audio_seconds(1),
            "audio {duration} s, expected {expect} s"
        );
    }
}

fn run_fmp4(codec: VideoCodec, with_audio: bool) {
    let Some(inp) = inputs() else {
        return;
    };
    let v = match codec {
        VideoCodec::H264 => &inp.h264,
        VideoCodec::H265 => &inp.h265,
    };
    let dir = case_dir(inp, &format!("fmp4_{codec:?}_{with_audio}"));
    let segs = mux_fmp4(inp, v, with_audio);
    let want = video_hashes(&[], p(&v.path));
    assert_eq!(want.len(), v.aus.len());
    let mut got = Vec::new();
    let mut playlist = String::from(
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-PLAYLIST-TYPE:VOD\n",
    );
    let (mut packets, mut duration) = (0, 0.0);
    for (k, ((seg, init), range)) in segs.iter().zip(segments(v.aus.len())).enumerate() {
        let name = format!("seg{k}.mp4");
        let file = dir.join(&name);
        std::fs::write(&file, seg).unwrap();
        check_segment(&file, with_audio);
        got.extend(video_hashes(&[], p(&file)));
        if with_audio {
            let (n, d) = audio_stats(&file);
            packets += n;
            duration += d;
        }
        let seconds = range.len() as f64 / 25.0;
        playlist.push_str(&format!(
            "#EXT-X-MAP:URI=\"{name}\",BYTERANGE=\"{init}@0\"\n#EXTINF:{seconds:.3},\n\
             #EXT-X-BYTERANGE:{}@{init}\n{name}\n",
            seg.len() - init
        ));
    }
    playlist.push_str("#EXT-X-ENDLIST\n");
    assert_eq!(got, want, "per-segment decode");
    if with_audio {
        assert_eq!(packets, inp.audio.len());
        let expect = audio_seconds(inp.audio.len());
        assert!(
            (duration - expect).abs() <= audio_seconds(1),
            "audio {duration} s, expected {expect} s"
        );
    }
    let list = dir.join("list.m3u8");
    std::fs::write(&list, playlist).unwrap();
    // ffmpeg 5.1 only opens .mp4 segments from a playlist when allowed.
    #[rustfmt::skip]
    let (_, err) = run("ffmpeg", &["-v", "warning", "-allowed_extensions", "ALL", "-i", p(&list),
        "-f", "null", "-"]);
    // Each segment has its own EXT-X-MAP, and ffmpeg's HLS demuxer feeds
    // every new init section to the one mov demuxer it keeps, which notes
    // (and skips) the repeated moov. Anything else is a failure.
    let unexpected: Vec<&str> = err
        .lines()
        .filter(|l| {
            !l.contains("Found duplicated MOOV Atom. Skipped it")
                && !l.trim_start().starts_with("Last message repeated")
        })
        .collect();
    assert!(unexpected.is_empty(), "HLS decode: {err}");
    assert_eq!(
        video_hashes(&["-allowed_extensions", "ALL"], p(&list)),
        want,
        "HLS playlist decode"
    );
}

#[test]
fn ts_h264_aac() {
    run_ts(VideoCodec::H264, true);
}

#[test]
fn ts_h264_video_only() {
    run_ts(VideoCodec::H264, false);
}

#[test]
fn ts_h265_aac() {
    run_ts(VideoCodec::H265, true);
}

#[test]
fn ts_h265_video_only() {
    run_ts(VideoCodec::H265, false);
}

#[test]
fn fmp4_h264_aac() {
    run_fmp4(VideoCodec::H264, true);
}

#[test]
fn fmp4_h264_video_only() {
    run_fmp4(VideoCodec::H264, false);
}

#[test]
fn fmp4_h265_aac() {
    run_fmp4(VideoCodec::H265, true);
}

#[test]
fn fmp4_h265_video_only() {
    run_fmp4(VideoCodec::H265, false);
}
