//! Real H.264/H.265 streams from ffmpeg (libx264/libx265): access-unit
//! splitting, key frames and slice types against ffprobe, dimensions, and
//! the `avcC`/`hvcC` records against what ffmpeg's MP4 muxer writes.
//!
//! Skipped (with a note) when ffmpeg is not installed.

mod common;

use common::{Fixture, ffprobe_frames, ffprobe_stream, mp4_box};
use ivcs_media::annexb::{access_units, detect_codec, nal_units};
use ivcs_media::video::{AuInfo, SliceKind, analyze};
use ivcs_media::{VideoCodec, VideoParams};

struct Case {
    name: &'static str,
    codec: VideoCodec,
    size: &'static str,
    /// Extra encoder arguments (after the input).
    args: &'static [&'static str],
    width: u32,
    height: u32,
    /// Expected codec string, if pinned.
    codec_string: Option<&'static str>,
    /// Whether B slices are expected.
    b_frames: bool,
}

const H264_CASES: &[Case] = &[
    Case {
        name: "main",
        codec: VideoCodec::H264,
        size: "320x240",
        args: &[
            "-c:v",
            "libx264",
            "-profile:v",
            "main",
            "-bf",
            "0",
            "-g",
            "25",
        ],
        width: 320,
        height: 240,
        codec_string: Some("avc1.4D400D"),
        b_frames: false,
    },
    Case {
        name: "high-crop-cqm-aud",
        codec: VideoCodec::H264,
        size: "328x180",
        args: &[
            "-c:v",
            "libx264",
            "-profile:v",
            "high",
            "-bf",
            "0",
            "-g",
            "10",
            "-x264-params",
            "cqm=jvt:aud=1",
        ],
        width: 328,
        height: 180,
        codec_string: None,
        b_frames: false,
    },
    Case {
        name: "high422-slices",
        codec: VideoCodec::H264,
        size: "320x180",
        args: &[
            "-pix_fmt",
            "yuv422p",
            "-c:v",
            "libx264",
            "-bf",
            "0",
            "-g",
            "25",
            "-x264-params",
            "slices=4",
        ],
        width: 320,
        height: 180,
        codec_string: None,
        b_frames: false,
    },
    Case {
        name: "high10",
        codec: VideoCodec::H264,
        size: "320x240",
        args: &[
            "-pix_fmt",
            "yuv420p10le",
            "-c:v",
            "libx264",
            "-bf",
            "0",
            "-g",
            "25",
        ],
        width: 320,
        height: 240,
        codec_string: None,
        b_frames: false,
    },
    Case {
        name: "bframes",
        codec: VideoCodec::H264,
        size: "320x240",
        args: &["-c:v", "libx264", "-bf", "2", "-g", "25"],
        width: 320,
        height: 240,
        codec_string: None,
        b_frames: true,
    },
];

const H265_CASES: &[Case] = &[
    Case {
        name: "main",
        codec: VideoCodec::H265,
        size: "320x240",
        args: &[
            "-c:v",
            "libx265",
            "-x265-params",
            "bframes=0:keyint=25:log-level=error",
        ],
        width: 320,
        height: 240,
        codec_string: Some("hvc1.1.6.L60.90"),
        b_frames: false,
    },
    Case {
        name: "main10-window-aud",
        codec: VideoCodec::H265,
        size: "330x250",
        args: &[
            "-pix_fmt",
            "yuv420p10le",
            "-c:v",
            "libx265",
            "-x265-params",
            "bframes=0:keyint=10:aud=1:repeat-headers=1:log-level=error",
        ],
        width: 330,
        height: 250,
        codec_string: Some("hvc1.2.4.L60.90"),
        b_frames: false,
    },
    Case {
        name: "rext444-slices",
        codec: VideoCodec::H265,
        size: "320x240",
        args: &[
            "-pix_fmt",
            "yuv444p",
            "-c:v",
            "libx265",
            "-x265-params",
            "bframes=0:keyint=25:slices=3:log-level=error",
        ],
        width: 320,
        height: 240,
        codec_string: None,
        b_frames: false,
    },
    Case {
        name: "bframes-temporal-layers",
        codec: VideoCodec::H265,
        size: "320x240",
        args: &[
            "-c:v",
            "libx265",
            "-x265-params",
            "bframes=3:keyint=25:temporal-layers=1:log-level=error",
        ],
        width: 320,
        height: 240,
        codec_string: None,
        b_frames: true,
    },
];

fn kind_char(k: Option<SliceKind>) -> char {
    match k {
        Some(SliceKind::I) => 'I',
        Some(SliceKind::P) => 'P',
        Some(SliceKind::B) => 'B',
        None => '?',
    }
}

fn check_case(fx: &Fixture, case: &Case) {
    let ext = if case.codec == VideoCodec::H264 {
        "h264"
    } else {
        "hevc"
    };
    let file = fx.path(&format!("{}.{ext}", case.name));
    let mut args = vec![
        "-f".to_string(),
        "lavfi".into(),
        "-t".into(),
        "2".into(),
        "-i".into(),
        format!("testsrc2=size={}:rate=25", case.size),
    ];
    args.extend(case.args.iter().map(|s| s.to_string()));
    args.extend(["-f".into(), ext.into(), file.display().to_string()]);
    fx.ffmpeg(&args);
    let data = std::fs::read(&file).unwrap();
    let what = format!("{:?} {}", case.codec, case.name);

    assert_eq!(detect_codec(&data), Some(case.codec), "{what}");
    let aus: Vec<&[u8]> = access_units(&data, case.codec).collect();
    let probe = ffprobe_stream(&file);
    assert_eq!(
        aus.len(),
        probe.frames,
        "{what}: access units vs ffprobe frames"
    );
    assert_eq!(
        (probe.width, probe.height),
        (case.width, case.height),
        "{what}"
    );
    // Access units tile the stream.
    assert_eq!(
        aus.iter().map(|a| nal_units(a).count()).sum::<usize>(),
        nal_units(&data).count(),
        "{what}"
    );

    let mut known: Option<VideoParams> = None;
    let mut infos: Vec<AuInfo> = Vec::new();
    for (i, au) in aus.iter().enumerate() {
        let info = analyze(case.codec, au, known.as_ref())
            .unwrap_or_else(|e| panic!("{what}: AU {i}: {e}"));
        if let Some(p) = &info.params {
            known = Some(p.clone());
        }
        infos.push(info);
    }
    let first = &infos[0];
    assert!(first.keyframe, "{what}");
    let params = first
        .params
        .as_ref()
        .expect("parameter sets in the first AU");
    assert_eq!(
        (params.width, params.height),
        (case.width, case.height),
        "{what}"
    );
    if let Some(cs) = case.codec_string {
        assert_eq!(params.codec_string, cs, "{what}");
    }

    let frames = ffprobe_frames(&file);
    assert_eq!(frames.len(), aus.len(), "{what}");
    let ours: String = infos.iter().map(|i| kind_char(i.slice)).collect();
    let theirs: String = frames.iter().map(|f| f.1).collect();
    let keys: Vec<bool> = infos.iter().map(|i| i.keyframe).collect();
    let their_keys: Vec<bool> = frames.iter().map(|f| f.0).collect();
    if case.b_frames {
        // ffprobe lists frames in output order; compare counts.
        let count = |s: &str, c| s.chars().filter(|&x| x == c).count();
        assert!(count(&ours, 'B') > 0, "{what}: {ours}");
        for c in ['I', 'P', 'B'] {
            assert_eq!(
                count(&ours, c),
                count(&theirs, c),
                "{what}: {c}: {ours} vs {theirs}"
            );
        }
        let n = |k: &[bool]| k.iter().filter(|&&x| x).count();
        assert_eq!(n(&keys), n(&their_keys), "{what}");
    } else {
        assert_eq!(ours, theirs, "{what}: slice types");
        assert_eq!(keys, their_keys, "{what}: key frames");
    }

    // The decoder configuration record equals ffmpeg's MP4 sample entry.
    let mp4 = fx.path(&format!("{}.mp4", case.name));
    let mut args: Vec<String> = ["-i", &file.display().to_string(), "-c", "copy"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    if case.codec == VideoCodec::H265 {
        args.extend(["-tag:v".into(), "hvc1".into()]);
    }
    args.push(mp4.display().to_string());
    fx.ffmpeg(&args);
    let mp4 = std::fs::read(&mp4).unwrap();
    let fourcc = if case.codec == VideoCodec::H264 {
        b"avcC"
    } else {
        b"hvcC"
    };
    let record = mp4_box(&mp4, fourcc).expect("decoder config box");
    assert_eq!(
        hex(&params.decoder_config),
        hex(record),
        "{what}: decoder configuration record"
    );
    if case.codec == VideoCodec::H264 {
        let cs = format!("avc1.{:02X}{:02X}{:02X}", record[1], record[2], record[3]);
        assert_eq!(params.codec_string, cs, "{what}");
    } else {
        // hvc1.<profile>.<compat>.<tier><level>...: profile and level.
        let parts: Vec<&str> = params.codec_string.split('.').collect();
        assert_eq!(parts[1], (record[1] & 0x1F).to_string(), "{what}");
        assert_eq!(parts[3][1..], record[12].to_string(), "{what}");
        assert_eq!(record[12].to_string(), probe.level.to_string(), "{what}");
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn h264_streams() {
    let Some(fx) = Fixture::new("h264") else {
        return;
    };
    for case in H264_CASES {
        check_case(&fx, case);
    }
}

#[test]
fn h265_streams() {
    let Some(fx) = Fixture::new("h265") else {
        return;
    };
    for case in H265_CASES {
        check_case(&fx, case);
    }
}

/// Interlaced H.264 is refused as Unsupported, not Malformed.
#[test]
fn h264_interlaced_refused() {
    let Some(fx) = Fixture::new("interlaced") else {
        return;
    };
    let file = fx.path("i.h264");
    fx.ffmpeg(&[
        "-f",
        "lavfi",
        "-t",
        "1",
        "-i",
        "testsrc2=size=320x240:rate=25",
        "-c:v",
        "libx264",
        "-flags",
        "+ilme+ildct",
        "-f",
        "h264",
        &file.display().to_string(),
    ]);
    let data = std::fs::read(&file).unwrap();
    let au = access_units(&data, VideoCodec::H264).next().unwrap();
    let e = analyze(VideoCodec::H264, au, None).unwrap_err();
    assert_eq!(e.kind(), ivcs_media::ErrorKind::Unsupported, "{e}");
}
