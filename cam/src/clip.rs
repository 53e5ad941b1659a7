//! `--input FILE`: an Annex-B H.264/H.265 elementary stream as the
//! camera's video instead of the test pattern, looped until Ctrl-C or
//! `--duration`.
//!
//! The file is checked once before the camera starts ([`Clip::open`]): its
//! codec (detected, or `--codec`), the first key frame that carries its
//! parameter sets (earlier access units are skipped on every loop: a
//! recording must start decodable), its picture size (for `iv_cs_init`),
//! and that no frame is a B frame (the iv_cs API has I and P frames only).
//! Then [`ClipFrames`] reads it again and again, streaming (memory stays at
//! a read buffer, whatever the file's size). An Annex-B file has no
//! timing: the camera paces the frames at `--fps` and stamps them like
//! the pattern's, so PTS keep rising across loops.
//!
//! Snapshots of events need a decoded picture: [`RecentFrames`] keeps the
//! last two GOPs pushed, to decode the frame at an event's start.

use crate::args::Codec;
use crate::encoder::{AccessUnitReader, media_codec};
use anyhow::{Context, Result, anyhow, bail};
use clap::ValueEnum;
use ivcs_media::video::{self, SliceKind};
use ivcs_media::{VideoCodec, VideoParams, annexb};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

/// How much of the file the codec is detected from: enough to reach the
/// parameter sets of a file cut a GOP before them.
const DETECT_BYTES: u64 = 4 << 20;

/// A checked `--input` file.
#[derive(Clone, Debug)]
pub struct Clip {
    /// The file.
    pub path: PathBuf,
    /// Its codec.
    pub codec: Codec,
    /// Picture width of the first parameter sets.
    pub w: usize,
    /// Picture height.
    pub h: usize,
    /// Access units pushed per loop (from the first key frame to the end).
    pub frames: u64,
    /// Access units before the first key frame, skipped on every loop.
    pub skipped: u64,
}

fn codec_name(c: Codec) -> &'static str {
    match c {
        Codec::H264 => "H.264",
        Codec::H265 => "H.265",
    }
}

impl Clip {
    /// Reads `path` once: detects or checks the codec (`codec` is
    /// `--codec`, if given), finds the first key frame with parameter sets
    /// and checks every access unit from there on.
    pub fn open(path: &Path, codec: Option<Codec>) -> Result<Clip> {
        let what = format!("--input {}", path.display());
        let mut head = Vec::new();
        File::open(path)
            .and_then(|f| f.take(DETECT_BYTES).read_to_end(&mut head))
            .with_context(|| what.clone())?;
        if head.is_empty() {
            bail!("{what}: the file is empty");
        }
        if annexb::nal_units(&head).next().is_none() {
            bail!(
                "{what}: not an Annex-B H.264/H.265 stream (no start code in its first {} MiB)",
                DETECT_BYTES >> 20
            );
        }
        // The media crate looks at a stream's first few NAL units, which
        // in a file cut mid-GOP are slices that do not tell: ask from each
        // NAL unit on until something does (a parameter set or an AUD).
        let detected = annexb::nal_spans(&head)
            .find_map(|n| head.get(n.sc_start..).and_then(annexb::detect_codec))
            .map(|c| match c {
                VideoCodec::H264 => Codec::H264,
                VideoCodec::H265 => Codec::H265,
            });
        let codec = match (detected, codec) {
            (Some(d), Some(c)) if d != c => bail!(
                "{what}: the file is {} but --codec {} was given",
                codec_name(d),
                c.to_possible_value()
                    .map_or_else(String::new, |v| v.get_name().to_string())
            ),
            (Some(d), _) | (None, Some(d)) => d,
            (None, None) => bail!(
                "{what}: cannot tell whether the file is H.264 or H.265 from its first {} MiB: pass --codec",
                DETECT_BYTES >> 20
            ),
        };
        let mc = media_codec(codec);
        let mut aus = AccessUnitReader::new(File::open(path).with_context(|| what.clone())?, mc);
        let mut skipped = 0u64;
        let mut frames = 0u64;
        let mut params: Option<VideoParams> = None;
        let mut first: Option<VideoParams> = None;
        while let Some(au) = aus.next_au().with_context(|| what.clone())? {
            let n = skipped + frames;
            if first.is_none() && !video::is_key_with_params(mc, &au) {
                skipped += 1;
                continue;
            }
            let info = video::analyze(mc, &au, params.as_ref())
                .map_err(|e| anyhow!("{what}: access unit {n}: {e}"))?;
            if info.slice == Some(SliceKind::B) {
                bail!(
                    "{what}: access unit {n} is a B frame; the iv_cs API takes I and P frames only \
                     (re-encode without B frames, e.g. ffmpeg's -bf 0)"
                );
            }
            if let Some(p) = info.params {
                first.get_or_insert_with(|| p.clone());
                params = Some(p);
            }
            frames += 1;
        }
        let Some(first) = first else {
            bail!(
                "{what}: no key frame with parameter sets in {skipped} access unit(s) of {}: \
                 the file must contain an {} with its {}",
                codec_name(codec),
                match codec {
                    Codec::H264 => "IDR picture",
                    Codec::H265 => "IRAP picture",
                },
                match codec {
                    Codec::H264 => "SPS and PPS",
                    Codec::H265 => "VPS, SPS and PPS",
                }
            );
        };
        Ok(Clip {
            path: path.to_path_buf(),
            codec,
            w: first.width as usize,
            h: first.height as usize,
            frames,
            skipped,
        })
    }

    /// For messages: `FILE (H.264 1280x720, 75 frames a loop)`.
    pub fn describe(&self) -> String {
        format!(
            "{} ({} {}x{}, {} frames a loop{})",
            self.path.display(),
            codec_name(self.codec),
            self.w,
            self.h,
            self.frames,
            if self.skipped > 0 {
                format!(", {} before the first key frame skipped", self.skipped)
            } else {
                String::new()
            }
        )
    }

    /// The file's frames from the first key frame on, looped forever.
    pub fn frames(&self) -> Result<ClipFrames> {
        Ok(ClipFrames {
            reader: self.open_at_key()?,
            clip: self.clone(),
            this_loop: 0,
        })
    }

    fn open_at_key(&self) -> Result<AccessUnitReader<File>> {
        let what = || format!("--input {}", self.path.display());
        let file = File::open(&self.path).with_context(what)?;
        let mut r = AccessUnitReader::new(file, media_codec(self.codec));
        for _ in 0..self.skipped {
            r.next_au().with_context(what)?;
        }
        Ok(r)
    }
}

/// The access units of a [`Clip`], looped.
pub struct ClipFrames {
    clip: Clip,
    reader: AccessUnitReader<File>,
    /// Access units read since the last (re)start of the file.
    this_loop: u64,
}

impl ClipFrames {
    /// The next access unit: after the file's last one, its first key
    /// frame again.
    pub fn next_au(&mut self) -> Result<Vec<u8>> {
        loop {
            let what = || format!("--input {}", self.clip.path.display());
            if let Some(au) = self.reader.next_au().with_context(what)? {
                self.this_loop += 1;
                return Ok(au);
            }
            if self.this_loop == 0 {
                // Checked at start, so the file changed meanwhile.
                bail!("{}: no frames on reading it again", what());
            }
            self.reader = self.clip.open_at_key()?;
            self.this_loop = 0;
        }
    }
}

/// The last two GOPs pushed on a channel with their capture times (UTC
/// ms), so that the picture at an event's start can be decoded even when
/// a key frame was pushed between that frame and the snapshot.
#[derive(Default)]
pub struct RecentFrames {
    prev: Vec<(u64, Vec<u8>)>,
    cur: Vec<(u64, Vec<u8>)>,
}

impl RecentFrames {
    /// Adds a pushed access unit. A GOP starts at a key frame; frames
    /// before the first key frame could not be decoded and are dropped.
    pub fn push(&mut self, utc_ms: u64, key: bool, au: Vec<u8>) {
        if key {
            self.prev = std::mem::take(&mut self.cur);
        } else if self.cur.is_empty() {
            return;
        }
        self.cur.push((utc_ms, au));
    }

    /// Forgets everything (a new session starts with a key frame).
    pub fn clear(&mut self) {
        self.prev.clear();
        self.cur.clear();
    }

    /// The access units from a key frame up to the last frame captured at
    /// or before `utc_ms`: what a decoder needs to show that frame. `None`
    /// if no kept GOP began by then.
    pub fn until(&self, utc_ms: u64) -> Option<Vec<Vec<u8>>> {
        [&self.cur, &self.prev]
            .into_iter()
            .find(|gop| gop.first().is_some_and(|(t, _)| *t <= utc_ms))
            .map(|gop| {
                gop.iter()
                    .take_while(|(t, _)| *t <= utc_ms)
                    .map(|(_, au)| au.clone())
                    .collect()
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn au(n: u8) -> Vec<u8> {
        vec![0, 0, 1, n]
    }

    #[test]
    fn recent_frames_decode_from_the_key_frame_before_the_time() {
        let mut r = RecentFrames::default();
        r.push(0, false, au(9)); // before any key frame: dropped
        assert_eq!(r.until(0), None);
        r.push(40, true, au(1));
        r.push(80, false, au(2));
        r.push(120, true, au(3));
        r.push(160, false, au(4));
        assert_eq!(r.until(100), Some(vec![au(1), au(2)]));
        assert_eq!(r.until(160), Some(vec![au(3), au(4)]));
        assert_eq!(r.until(120), Some(vec![au(3)]));
        assert_eq!(r.until(39), None);
        r.push(200, true, au(5));
        // The GOP at 40 is gone.
        assert_eq!(r.until(100), None);
        r.clear();
        assert_eq!(r.until(1000), None);
    }
}
