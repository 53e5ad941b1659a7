//! MPEG-2 transport stream demuxer (ISO/IEC 13818-1): turns stored TS
//! segments back into frames for playback and export.
//!
//! [`TsDemuxer`] takes the bytes in chunks of any size (the cloud streams
//! objects) and emits [`TsFrame`]s: one per video access unit (Annex-B,
//! exactly as carried in the PES, so AUD and parameter sets included) and
//! one per ADTS frame (a PES with several ADTS frames is split, each frame
//! getting its own PTS from the sample rate).
//!
//! It follows the first program of the PAT and, in its PMT, the first
//! H.264 (stream_type 0x1B) or H.265 (0x24) stream and the first ADTS AAC
//! (0x0F) stream; everything else is ignored. PSI sections must pass their
//! CRC. A video PES may be unbounded (PES_packet_length 0, as
//! [`crate::ts::TsMuxer`] writes it): it ends at the next PES of its PID or
//! at [`TsDemuxer::finish`], so a video frame comes out one PES late.
//!
//! Not for: scrambled streams, multi-program selection, PCR-based timing
//! (PTS/DTS are used as is), teletext/subtitles.
//!
//! Robustness: any input is accepted without panicking. Memory is bounded:
//! one partial packet, one PSI section per table, and one PES per followed
//! PID capped at [`TsDemuxConfig::max_frame_bytes`]. Damage (lost sync,
//! continuity gaps, bad CRC, oversized or truncated PES) is handled per
//! [`OnDamage`].
//!
//! Timestamps are 33-bit on the wire; the demuxer unwraps them into a
//! continuous `u64` timeline (each value is taken nearest to the previous
//! one), so a recording crossing the 26.5-hour wrap stays monotonic as long
//! as all its segments go through one demuxer.
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

use crate::demux::{DEFAULT_MAX_FRAME_BYTES, DamageLog, OnDamage};
use crate::ts::crc32_mpeg2;
use crate::{Error, ErrorKind, Result, Track, VideoCodec, adts, nalscan};

const PACKET: usize = 188;
const SYNC: u8 = 0x47;
const PID_PAT: u16 = 0;
const PID_NULL: u16 = 0x1FFF;
const MASK33: u64 = (1 << 33) - 1;
/// Longest PSI section (section_length is at most 1021 for PAT/PMT).
const MAX_SECTION: usize = 3 + 1021;
/// Longest PES header: 9 fixed bytes plus PES_header_data_length.
const MAX_PES_HEADER: usize = 9 + 255;
/// Samples per AAC-LC access unit.
const AAC_FRAME: u64 = 1024;

/// How a [`TsDemuxer`] treats its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TsDemuxConfig {
    /// Largest frame (PES payload) kept; larger PES are dropped as damage,
    /// so one PID never buffers more than this.
    pub max_frame_bytes: usize,
    /// What to do with damaged input.
    pub on_damage: OnDamage,
}

impl Default for TsDemuxConfig {
    fn default() -> Self {
        TsDemuxConfig {
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            on_damage: OnDamage::Skip,
        }
    }
}

/// One demuxed frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TsFrame {
    /// Video or audio.
    pub track: Track,
    /// Presentation time, 90 kHz, unwrapped past 2^33.
    pub pts_90k: u64,
    /// Decode time, 90 kHz (= PTS when the PES has no DTS).
    pub dts_90k: u64,
    /// Video: the PES had random_access_indicator set or the first slice is
    /// an IDR/IRAP picture. Audio: always true.
    pub keyframe: bool,
    /// Video: the Annex-B access unit. Audio: one ADTS frame, header included.
    pub data: Vec<u8>,
}

/// Reassembly state of one followed elementary stream.
#[derive(Debug, Default)]
struct Pes {
    pid: Option<u16>,
    /// Inside a PES (a PUSI packet was seen and nothing was dropped since).
    active: bool,
    /// random_access_indicator of the PES's first packet.
    rai: bool,
    /// Input offset of the PES's first packet, for messages.
    at: u64,
    buf: Vec<u8>,
    /// Total PES bytes (6 + PES_packet_length); `None` while unknown or
    /// for an unbounded PES.
    len: Option<usize>,
    cc: Option<u8>,
}

impl Pes {
    fn reset(&mut self) {
        self.active = false;
        self.buf = Vec::new();
        self.len = None;
    }
}

/// Assembly state of one PSI table's sections.
#[derive(Debug, Default)]
struct Section {
    active: bool,
    buf: Vec<u8>,
    cc: Option<u8>,
}

/// What the PMT selected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Streams {
    video: Option<(u16, VideoCodec)>,
    audio: Option<u16>,
}

/// Streaming MPEG-TS demuxer; see the module documentation.
#[derive(Debug)]
pub struct TsDemuxer {
    cfg: TsDemuxConfig,
    /// Input bytes not yet decided on: less than a packet, or while
    /// resyncing a packet plus the byte that must confirm it.
    pending: Vec<u8>,
    /// Input offset of the next byte given to `push`.
    offset: u64,
    pmt_pid: Option<u16>,
    streams: Streams,
    pat: Section,
    pmt: Section,
    video: Pes,
    audio: Pes,
    /// Last timestamp returned, for unwrapping 33-bit values.
    last_ts: Option<u64>,
    /// Inside a run of bytes skipped while looking for sync.
    resyncing: bool,
    packets: u64,
    damage: DamageLog,
}

impl Default for TsDemuxer {
    fn default() -> Self {
        Self::new(TsDemuxConfig::default())
    }
}

impl TsDemuxer {
    /// A demuxer with `cfg`.
    pub fn new(cfg: TsDemuxConfig) -> Self {
        TsDemuxer {
            cfg,
            pending: Vec::with_capacity(PACKET + 1),
            offset: 0,
            pmt_pid: None,
            streams: Streams::default(),
            pat: Section::default(),
            pmt: Section::default(),
            video: Pes::default(),
            audio: Pes::default(),
            last_ts: None,
            resyncing: false,
            packets: 0,
            damage: DamageLog::default(),
        }
    }

    /// The video codec the PMT declared, once a PMT was read.
    pub fn video_codec(&self) -> Option<VideoCodec> {
        self.streams.video.map(|(_, c)| c)
    }

    /// Whether the PMT declared an ADTS AAC stream.
    pub fn has_audio(&self) -> bool {
        self.streams.audio.is_some()
    }

    /// Transport packets read so far.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Damage skipped so far (always empty under [`OnDamage::Fail`]).
    pub fn damage(&self) -> &DamageLog {
        &self.damage
    }

    /// Feeds the next bytes of the stream; complete frames are appended to
    /// `out`. Errors only under [`OnDamage::Fail`].
    pub fn push(&mut self, data: &[u8], out: &mut Vec<TsFrame>) -> Result<()> {
        let mut data = data;
        if !self.pending.is_empty() {
            // Complete the carried bytes with just enough new ones to decide
            // on them, so the carry never grows past a packet and a byte.
            let k = (PACKET + 1).min(data.len());
            let (head, _) = data.split_at(k);
            let mut tmp = std::mem::take(&mut self.pending);
            let carried = tmp.len();
            tmp.extend_from_slice(head);
            let used = self.scan(&tmp, out);
            match used {
                Ok(used) if used >= carried => {
                    data = data.get(used - carried..).unwrap_or_default();
                    tmp.clear();
                    self.pending = tmp;
                }
                Ok(used) => {
                    // Only when `data` was short: keep everything undecided.
                    tmp.drain(..used);
                    tmp.extend_from_slice(data.get(k..).unwrap_or_default());
                    self.pending = tmp;
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        }
        let used = self.scan(data, out)?;
        self.pending
            .extend_from_slice(data.get(used..).unwrap_or_default());
        Ok(())
    }

    /// Reads the packets at the start of `buf`; returns how many bytes were
    /// used. What is left is shorter than a packet (or, while resyncing,
    /// than a packet plus the next sync byte that confirms it).
    fn scan(&mut self, buf: &[u8], out: &mut Vec<TsFrame>) -> Result<usize> {
        let mut i = 0;
        while let Some(rest) = buf.get(i..).filter(|r| !r.is_empty()) {
            let synced = rest.first() == Some(&SYNC);
            if synced && self.resyncing && rest.len() <= PACKET {
                // A candidate that the next packet's sync byte must confirm.
                return Ok(i);
            }
            let confirmed = !self.resyncing || rest.get(PACKET) == Some(&SYNC);
            if !synced || !confirmed {
                if !self.resyncing {
                    self.resyncing = true;
                    let at = self.offset;
                    self.report(Error::malformed(format!(
                        "TS: lost sync at byte {at} (no 0x47 sync byte)"
                    )))?;
                }
                let skip = rest
                    .get(1..)
                    .and_then(|r| memchr::memchr(SYNC, r))
                    .map_or(rest.len(), |p| p + 1);
                i += skip;
                self.offset += skip as u64;
                continue;
            }
            let Some((packet, _)) = rest.split_first_chunk::<PACKET>() else {
                return Ok(i);
            };
            self.resyncing = false;
            let at = self.offset;
            i += PACKET;
            self.offset += PACKET as u64;
            self.packet(packet, at, out)?;
        }
        Ok(i)
    }

    /// Ends the current segment: emits the last (unbounded) video PES and
    /// reports a truncated packet or PES as damage. Afterwards the demuxer
    /// takes the next segment: the programme (PAT/PMT) and the timestamp
    /// unwrapping carry on, continuity counting and reassembly start over
    /// (segments of an export need not be consecutive).
    pub fn finish(&mut self, out: &mut Vec<TsFrame>) -> Result<()> {
        let mut result = Ok(());
        let pending = std::mem::take(&mut self.pending);
        let at = self.offset;
        self.offset += pending.len() as u64;
        if let Some(packet) = pending
            .first_chunk::<PACKET>()
            .filter(|p| p.first() == Some(&SYNC))
        {
            // An unconfirmed candidate after a sync loss: the end of the
            // input confirms it.
            self.resyncing = false;
            result = self.packet(packet, at, out);
        } else if !pending.is_empty() {
            // The truncated packet's PES is incomplete even if unbounded.
            let pid = match pending.get(1..3) {
                Some(&[hi, lo]) => Some(u16::from_be_bytes([hi & 0x1F, lo])),
                _ => None,
            };
            for pes in [&mut self.video, &mut self.audio] {
                if pes.active && (pid.is_none() || pes.pid == pid) {
                    pes.reset();
                }
            }
            result = self.report(Error::malformed(format!(
                "TS: truncated packet at byte {at}: {} of {PACKET} bytes",
                pending.len()
            )));
        }
        for track in [Track::Video, Track::Audio] {
            let r = if self.pes_mut(track).active {
                self.complete(track, out)
            } else {
                Ok(())
            };
            let pes = self.pes_mut(track);
            pes.reset();
            pes.cc = None;
            result = result.and(r);
        }
        for s in [&mut self.pat, &mut self.pmt] {
            *s = Section::default();
        }
        self.resyncing = false;
        result
    }

    fn report(&mut self, err: Error) -> Result<()> {
        self.damage.record(self.cfg.on_damage, err)
    }

    fn pes_mut(&mut self, track: Track) -> &mut Pes {
        match track {
            Track::Video => &mut self.video,
            Track::Audio => &mut self.audio,
        }
    }

    /// One 188-byte packet starting with the sync byte, at input offset `at`.
    fn packet(&mut self, p: &[u8; PACKET], at: u64, out: &mut Vec<TsFrame>) -> Result<()> {
        self.packets += 1;
        let [_, b1, b2, b3, rest @ ..] = p;
        let pid = u16::from_be_bytes([b1 & 0x1F, *b2]);
        if b1 & 0x80 != 0 {
            return self.report(Error::malformed(format!(
                "TS: transport_error_indicator set, PID {pid:#x} at byte {at}"
            )));
        }
        if pid == PID_NULL {
            return Ok(());
        }
        let pusi = b1 & 0x40 != 0;
        let afc = (b3 >> 4) & 3;
        let cc = b3 & 0x0F;
        if b3 >> 6 != 0 {
            return self.report(Error::unsupported(format!(
                "TS: scrambled packet, PID {pid:#x} at byte {at}"
            )));
        }
        let (mut discontinuity, mut rai) = (false, false);
        let payload: &[u8] = match afc {
            1 => rest,
            2 | 3 => {
                let (&len, af) = rest.split_first().unwrap_or((&0, &[]));
                let len = usize::from(len);
                let max = if afc == 2 { 183 } else { 182 };
                if len > max || (afc == 2 && len != 183) {
                    return self.report(Error::malformed(format!(
                        "TS: adaptation field of {len} bytes, PID {pid:#x} at byte {at}"
                    )));
                }
                if let Some(&flags) = af.first().filter(|_| len > 0) {
                    discontinuity = flags & 0x80 != 0;
                    rai = flags & 0x40 != 0;
                }
                if afc == 3 {
                    af.get(len..).unwrap_or_default()
                } else {
                    &[]
                }
            }
            _ => {
                return self.report(Error::malformed(format!(
                    "TS: reserved adaptation_field_control, PID {pid:#x} at byte {at}"
                )));
            }
        };
        if afc & 1 == 0 {
            // Adaptation field only: no payload, and the CC does not count.
            return Ok(());
        }
        if pid == PID_PAT {
            self.section_packet(true, pusi, cc, discontinuity, payload, at)
        } else if Some(pid) == self.pmt_pid {
            self.section_packet(false, pusi, cc, discontinuity, payload, at)
        } else if let Some(track) = self.track_of(pid) {
            self.pes_packet(track, pusi, rai, cc, discontinuity, payload, at, out)
        } else {
            Ok(())
        }
    }

    fn track_of(&self, pid: u16) -> Option<Track> {
        if self.video.pid == Some(pid) {
            Some(Track::Video)
        } else if self.audio.pid == Some(pid) {
            Some(Track::Audio)
        } else {
            None
        }
    }

    /// Continuity check: `Ok(true)` to use the packet, `Ok(false)` for a
    /// duplicate (sent twice on purpose; ignored). A gap is damage, and the
    /// caller drops what it was assembling.
    fn continuity(
        &mut self,
        last: Option<u8>,
        cc: u8,
        discontinuity: bool,
        pid: u16,
        at: u64,
    ) -> Result<Continuity> {
        match last {
            Some(prev) if !discontinuity && cc == prev => Ok(Continuity::Duplicate),
            Some(prev) if !discontinuity && cc != (prev + 1) & 0x0F => {
                self.report(Error::malformed(format!(
                    "TS: continuity counter {cc} after {prev}, PID {pid:#x} at byte {at}"
                )))?;
                Ok(Continuity::Gap)
            }
            _ => Ok(Continuity::Ok),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn pes_packet(
        &mut self,
        track: Track,
        pusi: bool,
        rai: bool,
        cc: u8,
        discontinuity: bool,
        payload: &[u8],
        at: u64,
        out: &mut Vec<TsFrame>,
    ) -> Result<()> {
        let pes = self.pes_mut(track);
        let (last, pid) = (pes.cc, pes.pid.unwrap_or_default());
        pes.cc = Some(cc);
        match self.continuity(last, cc, discontinuity, pid, at)? {
            Continuity::Duplicate => return Ok(()),
            Continuity::Gap => self.pes_mut(track).reset(),
            Continuity::Ok => {}
        }
        if pusi {
            if self.pes_mut(track).active {
                self.complete(track, out)?;
            }
            let pes = self.pes_mut(track);
            pes.reset();
            pes.active = true;
            pes.rai = rai;
            pes.at = at;
        } else if !self.pes_mut(track).active {
            // The middle of a PES whose start was lost (already counted)
            // or lies before the input.
            return Ok(());
        }
        let max = self.cfg.max_frame_bytes;
        let pes = self.pes_mut(track);
        pes.buf.extend_from_slice(payload);
        // The cap is on the payload: the header length is known from the
        // 9th byte on (until then, assume the longest header).
        let header = pes
            .buf
            .get(8)
            .map_or(MAX_PES_HEADER, |&h| 9 + usize::from(h));
        if pes.buf.len() > max.saturating_add(header) {
            let start = pes.at;
            pes.reset();
            return self.report(Error::new(
                ErrorKind::TooLarge,
                format!("TS: {track:?} PES at byte {start} exceeds {max} bytes"),
            ));
        }
        if pes.len.is_none()
            && let Some(&[hi, lo]) = pes.buf.get(4..6)
        {
            let declared = usize::from(u16::from_be_bytes([hi, lo]));
            if declared > 0 {
                pes.len = Some(6 + declared);
            }
        }
        if pes.len.is_some_and(|len| pes.buf.len() >= len) {
            // Bytes past the declared length can only be damage; the
            // declared length wins.
            pes.buf.truncate(pes.len.unwrap_or_default());
            self.complete(track, out)?;
            self.pes_mut(track).reset();
        }
        Ok(())
    }

    /// Parses the assembled PES of `track` and emits its frame(s); leaves
    /// the PES inactive.
    fn complete(&mut self, track: Track, out: &mut Vec<TsFrame>) -> Result<()> {
        let pes = self.pes_mut(track);
        pes.active = false;
        let mut buf = std::mem::take(&mut pes.buf);
        let (at, rai) = (pes.at, pes.rai);
        if let Some(len) = pes.len.take()
            && buf.len() < len
        {
            return self.report(Error::malformed(format!(
                "TS: truncated {track:?} PES at byte {at}: {} of {len} bytes",
                buf.len()
            )));
        }
        let header = match parse_pes_header(&buf) {
            Ok(h) => h,
            Err(e) => {
                return self.report(Error::new(
                    e.kind(),
                    format!("TS: {track:?} PES at byte {at}: {}", e.message()),
                ));
            }
        };
        let pts = self.unwrap_ts(header.pts);
        let dts = header.dts.map_or(pts, |d| self.unwrap_ts(d));
        buf.drain(..header.len);
        match track {
            Track::Video => {
                let codec = self.video_codec().unwrap_or(VideoCodec::H264);
                if buf.is_empty() {
                    return self.report(Error::malformed(format!(
                        "TS: empty video PES at byte {at}"
                    )));
                }
                let keyframe = rai
                    || nalscan::first_vcl_type(codec, &buf)
                        .is_some_and(|t| nalscan::is_key_slice(codec, t));
                out.push(TsFrame {
                    track,
                    pts_90k: pts,
                    dts_90k: dts,
                    keyframe,
                    data: buf,
                });
            }
            Track::Audio => {
                let mut samples = 0u64;
                let mut failed = None;
                for frame in adts::frames(&buf) {
                    match frame {
                        Ok((h, bytes)) => {
                            // Exact per frame (no accumulated rounding).
                            let offset = samples * 90_000 / u64::from(h.sample_rate.max(1));
                            out.push(TsFrame {
                                track,
                                pts_90k: pts + offset,
                                dts_90k: dts + offset,
                                keyframe: true,
                                data: bytes.to_vec(),
                            });
                            samples += AAC_FRAME * u64::from(h.raw_blocks);
                        }
                        Err(e) => failed = Some(e),
                    }
                }
                if let Some(e) = failed {
                    return self.report(Error::new(
                        e.kind(),
                        format!("TS: audio PES at byte {at}: {}", e.message()),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Extends a 33-bit timestamp to the value nearest the previous one.
    fn unwrap_ts(&mut self, ts33: u64) -> u64 {
        let v = match self.last_ts {
            None => ts33,
            Some(last) => {
                let base = (last & !MASK33) | ts33;
                let period = MASK33 + 1;
                [
                    base.checked_sub(period),
                    Some(base),
                    base.checked_add(period),
                ]
                .into_iter()
                .flatten()
                .min_by_key(|c| c.abs_diff(last))
                .unwrap_or(base)
            }
        };
        self.last_ts = Some(v);
        v
    }

    fn section_packet(
        &mut self,
        is_pat: bool,
        pusi: bool,
        cc: u8,
        discontinuity: bool,
        payload: &[u8],
        at: u64,
    ) -> Result<()> {
        let pid = if is_pat {
            PID_PAT
        } else {
            self.pmt_pid.unwrap_or_default()
        };
        let sec = if is_pat { &mut self.pat } else { &mut self.pmt };
        let last = sec.cc;
        sec.cc = Some(cc);
        match self.continuity(last, cc, discontinuity, pid, at)? {
            Continuity::Duplicate => return Ok(()),
            Continuity::Gap => {
                let sec = if is_pat { &mut self.pat } else { &mut self.pmt };
                sec.active = false;
                sec.buf.clear();
            }
            Continuity::Ok => {}
        }
        let mut data = payload;
        if pusi {
            let Some((&pointer, rest)) = data.split_first() else {
                return Ok(());
            };
            let pointer = usize::from(pointer);
            let Some((tail, head)) = rest.split_at_checked(pointer) else {
                return self.report(Error::malformed(format!(
                    "TS: PSI pointer_field {pointer} past the packet, PID {pid:#x} at byte {at}"
                )));
            };
            // `tail` ends the section already begun, `head` starts a new one.
            self.section_bytes(is_pat, tail, at)?;
            let sec = if is_pat { &mut self.pat } else { &mut self.pmt };
            sec.active = true;
            sec.buf.clear();
            data = head;
        }
        self.section_bytes(is_pat, data, at)
    }

    /// Appends to the open section and handles every complete one.
    fn section_bytes(&mut self, is_pat: bool, data: &[u8], at: u64) -> Result<()> {
        let sec = if is_pat { &mut self.pat } else { &mut self.pmt };
        if !sec.active || data.is_empty() {
            return Ok(());
        }
        let room = (2 * MAX_SECTION).saturating_sub(sec.buf.len());
        sec.buf
            .extend_from_slice(data.get(..room.min(data.len())).unwrap_or(data));
        loop {
            let sec = if is_pat { &mut self.pat } else { &mut self.pmt };
            let Some(&[table_id, b1, b2]) = sec.buf.get(..3) else {
                return Ok(());
            };
            if table_id == 0xFF {
                // Stuffing: no more sections in this packet.
                sec.active = false;
                sec.buf.clear();
                return Ok(());
            }
            let total = 3 + usize::from(u16::from_be_bytes([b1 & 0x0F, b2]));
            if !(3 + 5 + 4..=MAX_SECTION).contains(&total) {
                sec.active = false;
                sec.buf.clear();
                return self.report(Error::malformed(format!(
                    "TS: PSI section of {total} bytes near byte {at}"
                )));
            }
            if sec.buf.len() < total {
                return Ok(());
            }
            let section: Vec<u8> = sec.buf.drain(..total).collect();
            self.section(is_pat, &section, at)?;
        }
    }

    /// One complete PSI section.
    fn section(&mut self, is_pat: bool, s: &[u8], at: u64) -> Result<()> {
        if crc32_mpeg2(s) != 0 {
            return self.report(Error::malformed(format!(
                "TS: PSI section CRC mismatch near byte {at}"
            )));
        }
        let (Some(&table_id), Some(&b1), Some(&b5)) = (s.first(), s.get(1), s.get(5)) else {
            return Ok(());
        };
        // Syntax indicator must be set; a not-yet-current table is ignored.
        if b1 & 0x80 == 0 || b5 & 1 == 0 {
            return Ok(());
        }
        let body = s.get(8..s.len().saturating_sub(4)).unwrap_or_default();
        match (is_pat, table_id) {
            (true, 0) => {
                let pmt = body
                    .chunks_exact(4)
                    .filter_map(|e| match e {
                        [p0, p1, hi, lo] if (*p0, *p1) != (0, 0) => {
                            Some(u16::from_be_bytes([hi & 0x1F, *lo]))
                        }
                        _ => None,
                    })
                    .next();
                if pmt != self.pmt_pid {
                    self.pmt_pid = pmt;
                    self.pmt = Section::default();
                }
            }
            (false, 2) => self.pmt_section(body),
            _ => {}
        }
        Ok(())
    }

    /// The PMT after table_id_extension..last_section_number, CRC excluded.
    fn pmt_section(&mut self, body: &[u8]) {
        let Some(&[_, _, pil_hi, pil_lo]) = body.get(..4) else {
            return;
        };
        let pil = usize::from(u16::from_be_bytes([pil_hi & 0x0F, pil_lo]));
        let mut es = body.get(4 + pil..).unwrap_or_default();
        let mut found = Streams::default();
        while let Some(&[stream_type, pid_hi, pid_lo, len_hi, len_lo]) = es.get(..5) {
            let pid = u16::from_be_bytes([pid_hi & 0x1F, pid_lo]);
            match stream_type {
                0x1B if found.video.is_none() => found.video = Some((pid, VideoCodec::H264)),
                0x24 if found.video.is_none() => found.video = Some((pid, VideoCodec::H265)),
                0x0F if found.audio.is_none() => found.audio = Some(pid),
                _ => {}
            }
            let info = usize::from(u16::from_be_bytes([len_hi & 0x0F, len_lo]));
            es = es.get(5 + info..).unwrap_or_default();
        }
        if found != self.streams {
            // A different programme: what was being assembled belongs to
            // the old one.
            self.streams = found;
            self.video = Pes {
                pid: found.video.map(|(p, _)| p),
                ..Pes::default()
            };
            self.audio = Pes {
                pid: found.audio,
                ..Pes::default()
            };
        }
    }
}

enum Continuity {
    Ok,
    Duplicate,
    Gap,
}

/// What the PES header says.
struct PesHeader {
    /// Bytes before the payload.
    len: usize,
    pts: u64,
    dts: Option<u64>,
}

fn parse_pes_header(b: &[u8]) -> Result<PesHeader> {
    let Some(&[0, 0, 1, stream_id, _, _, flags1, flags2, hlen]) = b.get(..9) else {
        return Err(Error::malformed("no PES start code or header"));
    };
    // Streams without the optional header (padding, private_stream_2, ...)
    // carry no timestamps.
    if matches!(
        stream_id,
        0xBC | 0xBE | 0xBF | 0xF0 | 0xF1 | 0xF2 | 0xF8 | 0xFF
    ) {
        return Err(Error::unsupported(format!(
            "PES stream_id {stream_id:#x} has no timestamps"
        )));
    }
    if flags1 & 0xC0 != 0x80 {
        return Err(Error::malformed("PES header marker bits are not '10'"));
    }
    let len = 9 + usize::from(hlen);
    let opt = b
        .get(9..len)
        .ok_or_else(|| Error::malformed("PES header longer than the PES"))?;
    let ts_at = |i: usize| -> Result<u64> {
        match opt.get(i..i + 5) {
            Some(&[a, b, c, d, e]) => Ok((u64::from(a >> 1 & 7) << 30)
                | (u64::from(b) << 22)
                | (u64::from(c >> 1) << 15)
                | (u64::from(d) << 7)
                | u64::from(e >> 1)),
            _ => Err(Error::malformed("PES timestamp beyond the header")),
        }
    };
    match flags2 >> 6 {
        2 => Ok(PesHeader {
            len,
            pts: ts_at(0)?,
            dts: None,
        }),
        3 => Ok(PesHeader {
            len,
            pts: ts_at(0)?,
            dts: Some(ts_at(5)?),
        }),
        0 => Err(Error::malformed("PES without PTS")),
        _ => Err(Error::malformed("PES with DTS but no PTS")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AudioParams;
    use crate::ts::TsMuxer;
    use crate::ts::tests::params;

    /// AUD + optional SPS/PPS + one slice of `len` bytes.
    fn h264_au(key: bool, len: usize) -> Vec<u8> {
        let mut au = vec![0, 0, 0, 1, 0x09, 0xF0];
        if key {
            au.extend_from_slice(&[0, 0, 0, 1, 0x67, 0x4D, 0x40, 0x0D, 0, 0, 0, 1, 0x68, 0xEB]);
        }
        au.extend_from_slice(&[0, 0, 0, 1, if key { 0x65 } else { 0x41 }]);
        au.extend((0..len).map(|i| (i % 200 + 2) as u8));
        au
    }

    struct Stream {
        ts: Vec<u8>,
        seg_starts: Vec<usize>,
        video: Vec<(u64, bool, Vec<u8>)>,
        audio: Vec<(u64, Vec<u8>)>,
    }

    /// Two segments, 25 fps video with a key frame every 10 frames, and
    /// 48 kHz AAC (1920 ticks per frame) interleaved by time.
    fn stream(pts0: u64) -> Stream {
        let p = params(VideoCodec::H264);
        let a = AudioParams::aac_lc(48_000, 2).unwrap();
        let mut mux = TsMuxer::new(VideoCodec::H264, Some(&a));
        let mut s = Stream {
            ts: Vec::new(),
            seg_starts: Vec::new(),
            video: Vec::new(),
            audio: Vec::new(),
        };
        let mut next_audio = 0u64;
        for seg in 0..2u64 {
            s.seg_starts.push(s.ts.len());
            mux.begin_segment(&mut s.ts);
            for f in 0..20u64 {
                let n = seg * 20 + f;
                let pts = pts0 + n * 3600;
                while pts0 + next_audio * 1920 <= pts {
                    let raw: Vec<u8> = (0..(50 + next_audio % 300)).map(|i| i as u8).collect();
                    let t = pts0 + next_audio * 1920;
                    mux.write_audio(&mut s.ts, &raw, &a, t).unwrap();
                    let mut frame = adts::write_header(&a, raw.len()).unwrap().to_vec();
                    frame.extend_from_slice(&raw);
                    s.audio.push((t, frame));
                    next_audio += 1;
                }
                let key = f % 10 == 0;
                let au = h264_au(key, 100 + (n as usize * 97) % 3000);
                mux.write_video(&mut s.ts, &au, pts, key, &p).unwrap();
                s.video.push((pts, key, au));
            }
        }
        s
    }

    fn demux_all(ts: &[u8], chunk: usize, cfg: TsDemuxConfig) -> (Vec<TsFrame>, TsDemuxer) {
        let mut d = TsDemuxer::new(cfg);
        let mut out = Vec::new();
        for c in ts.chunks(chunk.max(1)) {
            d.push(c, &mut out).unwrap();
        }
        d.finish(&mut out).unwrap();
        (out, d)
    }

    fn strict() -> TsDemuxConfig {
        TsDemuxConfig {
            on_damage: OnDamage::Fail,
            ..TsDemuxConfig::default()
        }
    }

    fn check_round_trip(s: &Stream, frames: &[TsFrame]) {
        let video: Vec<_> = frames.iter().filter(|f| f.track == Track::Video).collect();
        let audio: Vec<_> = frames.iter().filter(|f| f.track == Track::Audio).collect();
        assert_eq!(video.len(), s.video.len());
        for (got, (pts, key, au)) in video.iter().zip(&s.video) {
            assert_eq!((got.pts_90k, got.dts_90k, got.keyframe), (*pts, *pts, *key));
            assert_eq!(&got.data, au);
        }
        assert_eq!(audio.len(), s.audio.len());
        for (got, (pts, frame)) in audio.iter().zip(&s.audio) {
            assert_eq!((got.pts_90k, got.keyframe), (*pts, true));
            assert_eq!(&got.data, frame);
        }
    }

    #[test]
    fn round_trips_muxer_output_in_any_chunking() {
        let s = stream(90_000);
        for chunk in [1, 7, 188, 1000, usize::MAX] {
            let (frames, d) = demux_all(&s.ts, chunk, strict());
            check_round_trip(&s, &frames);
            assert_eq!(d.video_codec(), Some(VideoCodec::H264));
            assert!(d.has_audio());
            assert_eq!(d.packets(), (s.ts.len() / PACKET) as u64);
        }
    }

    #[test]
    fn segments_demux_alone_or_through_one_demuxer() {
        let s = stream(90_000);
        let (whole, _) = demux_all(&s.ts, 4096, strict());
        let segs = [&s.ts[..s.seg_starts[1]], &s.ts[s.seg_starts[1]..]];
        let mut alone = Vec::new();
        for seg in segs {
            alone.extend(demux_all(seg, 4096, strict()).0);
        }
        let mut d = TsDemuxer::new(strict());
        let mut one = Vec::new();
        for seg in segs {
            d.push(seg, &mut one).unwrap();
            d.finish(&mut one).unwrap();
        }
        let sorted = |mut v: Vec<TsFrame>| {
            v.sort_by_key(|f| (f.track == Track::Audio, f.dts_90k));
            v
        };
        assert_eq!(sorted(alone), sorted(whole.clone()));
        assert_eq!(sorted(one), sorted(whole));
        // Starting mid-PES: the demuxer waits for the next PUSI.
        let (late, _) = demux_all(&s.ts[s.seg_starts[1] + 188 * 3..], 4096, strict());
        assert!(late.len() < s.video.len() / 2 + s.audio.len() / 2);
    }

    #[test]
    fn timestamps_unwrap_past_33_bits() {
        let pts0 = (1u64 << 33) - 10 * 3600;
        let s = stream(pts0);
        let (frames, _) = demux_all(&s.ts, 4096, strict());
        let video: Vec<u64> = frames
            .iter()
            .filter(|f| f.track == Track::Video)
            .map(|f| f.pts_90k)
            .collect();
        let want: Vec<u64> = s.video.iter().map(|v| v.0).collect();
        assert_eq!(video, want);
        assert!(video.last().unwrap() > &(1u64 << 33));
    }

    #[test]
    fn pes_with_several_adts_frames_is_split_with_derived_pts() {
        let a = AudioParams::aac_lc(44_100, 1).unwrap();
        let mut frames = Vec::new();
        for n in [10usize, 20, 30] {
            frames.extend(adts::write_header(&a, n).unwrap());
            frames.extend(vec![n as u8; n]);
        }
        // A PMT with audio only on PID 0x101, then one PES by hand.
        let mut ts = Vec::new();
        let mut mux = TsMuxer::new(VideoCodec::H264, Some(&a));
        mux.begin_segment(&mut ts);
        let mut pes = vec![0, 0, 1, 0xC0];
        pes.extend_from_slice(&((3 + 5 + frames.len()) as u16).to_be_bytes());
        pes.extend_from_slice(&[0x84, 0x80, 5]);
        let pts = 1_000_000u64;
        pes.extend_from_slice(&[
            0x21 | ((pts >> 29) & 0x0E) as u8,
            (pts >> 22) as u8,
            0x01 | ((pts >> 14) & 0xFE) as u8,
            (pts >> 7) as u8,
            0x01 | ((pts << 1) & 0xFE) as u8,
        ]);
        pes.extend_from_slice(&frames);
        assert!(pes.len() <= 184);
        // Padded with an adaptation field (AFC 3).
        let stuffing = 184 - pes.len();
        let mut pkt2 = vec![0x47, 0x41, 0x01, 0x30, (stuffing - 1) as u8];
        if stuffing > 1 {
            pkt2.push(0);
            pkt2.extend(vec![0xFF; stuffing - 2]);
        }
        pkt2.extend_from_slice(&pes);
        assert_eq!(pkt2.len(), 188);
        ts.extend_from_slice(&pkt2);
        let (out, _) = demux_all(&ts, 188, strict());
        let got: Vec<(u64, usize)> = out.iter().map(|f| (f.pts_90k, f.data.len())).collect();
        // 1024 samples at 44.1 kHz = 2089.8 ticks; each offset rounds down.
        assert_eq!(
            got,
            [(pts, 17), (pts + 2089, 27), (pts + 4179, 37)],
            "{out:?}"
        );
    }

    #[test]
    fn damage_is_skipped_and_counted_or_fails() {
        let s = stream(90_000);
        // Drop one packet from the middle of the video (a CC gap).
        let mut ts = s.ts.clone();
        let victim = (0..ts.len() / PACKET)
            .map(|i| i * PACKET)
            .filter(|&o| {
                let pid = u16::from_be_bytes([ts[o + 1] & 0x1F, ts[o + 2]]);
                pid == 0x100 && ts[o + 1] & 0x40 == 0
            })
            .nth(30)
            .unwrap();
        ts.drain(victim..victim + PACKET);
        let (frames, d) = demux_all(&ts, 500, TsDemuxConfig::default());
        let video = frames.iter().filter(|f| f.track == Track::Video).count();
        assert_eq!(
            video,
            s.video.len() - 1,
            "exactly the damaged frame is lost"
        );
        assert_eq!(d.damage().events, 1);
        let msg = d.damage().first.as_ref().unwrap().message().to_string();
        assert!(msg.contains("continuity counter"), "{msg}");
        assert!(msg.contains("PID 0x100"), "{msg}");

        let mut d = TsDemuxer::new(strict());
        let mut out = Vec::new();
        let e = d.push(&ts, &mut out).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Malformed);

        // Garbage between packets: one resync event, nothing lost around it.
        let mut ts = s.ts.clone();
        ts.splice(188 * 5..188 * 5, [1, 2, 3, 0x47, 9]);
        let (frames, d) = demux_all(&ts, 64, TsDemuxConfig::default());
        assert_eq!(frames.len(), s.video.len() + s.audio.len());
        assert!(d.damage().events >= 1);

        // A flipped bit in the first PMT: CRC mismatch. The audio frame
        // written before the first key frame is lost; the PMT repeated
        // before that key frame recovers the programme.
        let mut ts = s.ts.clone();
        ts[188 + 20] ^= 0x01;
        let (frames, d) = demux_all(&ts, 188, TsDemuxConfig::default());
        assert!(d.damage().first.as_ref().unwrap().message().contains("CRC"));
        assert_eq!(d.damage().events, 1);
        let video = frames.iter().filter(|f| f.track == Track::Video).count();
        assert_eq!(video, s.video.len());
        assert_eq!(frames.len() - video, s.audio.len() - 1);
    }

    #[test]
    fn oversized_pes_is_dropped_within_the_cap() {
        let s = stream(90_000);
        let cfg = TsDemuxConfig {
            max_frame_bytes: 2000,
            on_damage: OnDamage::Skip,
        };
        let (frames, d) = demux_all(&s.ts, 4096, cfg);
        // The muxer passes these access units through unchanged (they
        // have an AUD, and parameter sets on key frames).
        let big = s.video.iter().filter(|v| v.2.len() > 2000).count();
        assert!(big > 0);
        let video = frames.iter().filter(|f| f.track == Track::Video).count();
        assert_eq!(video, s.video.len() - big);
        assert_eq!(d.damage().events, big as u64);
        assert_eq!(
            d.damage().first.as_ref().unwrap().kind(),
            ErrorKind::TooLarge
        );
    }

    #[test]
    fn truncated_input_reports_damage_at_finish() {
        let s = stream(90_000);
        let cut = &s.ts[..s.ts.len() - 100];
        let mut d = TsDemuxer::new(strict());
        let mut out = Vec::new();
        d.push(cut, &mut out).unwrap();
        let e = d.finish(&mut out).unwrap_err();
        assert!(e.message().contains("truncated packet"), "{e}");
        // Skip mode: the last video PES lost its end; although unbounded,
        // it is dropped, not emitted short.
        let (frames, d) = demux_all(cut, 100, TsDemuxConfig::default());
        assert_eq!(frames.len(), s.video.len() + s.audio.len() - 1);
        assert_eq!(d.damage().events, 1);
        assert!(frames.iter().all(|f| f.dts_90k < s.video.last().unwrap().0));
    }

    #[test]
    fn h265_pmt_and_key_frames_from_bitstream() {
        let p = params(VideoCodec::H265);
        let mut mux = TsMuxer::new(VideoCodec::H265, None);
        let mut ts = Vec::new();
        mux.begin_segment(&mut ts);
        let idr = [0, 0, 1, 0x26, 0x01, 0xAF, 0x11];
        let trail = [0, 0, 1, 0x02, 0x01, 0xD0, 0x22];
        mux.write_video(&mut ts, &idr, 9000, true, &p).unwrap();
        mux.write_video(&mut ts, &trail, 12600, false, &p).unwrap();
        // Clear random_access_indicator: key frames still come from the
        // slice type.
        for pkt in ts.chunks_mut(PACKET) {
            if pkt[3] & 0x20 != 0 && pkt[4] > 0 {
                pkt[5] &= !0x40;
            }
        }
        let (frames, d) = demux_all(&ts, 188, strict());
        assert_eq!(d.video_codec(), Some(VideoCodec::H265));
        assert!(!d.has_audio());
        let keys: Vec<bool> = frames.iter().map(|f| f.keyframe).collect();
        assert_eq!(keys, [true, false]);
        assert!(frames[1].data.ends_with(&trail));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let s = stream(90_000);
        let mut seed = 0x2545_F491u32;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        for round in 0..300 {
            let mut ts = s.ts.clone();
            for _ in 0..(1 + round % 20) {
                let i = next() as usize % ts.len();
                ts[i] = next() as u8;
            }
            let cut = next() as usize % ts.len();
            let cfg = TsDemuxConfig {
                max_frame_bytes: 1 + next() as usize % 5000,
                on_damage: OnDamage::Skip,
            };
            let mut d = TsDemuxer::new(cfg);
            let mut out = Vec::new();
            for c in ts[..cut].chunks(1 + next() as usize % 400) {
                d.push(c, &mut out).unwrap();
            }
            d.finish(&mut out).unwrap();
            let random: Vec<u8> = (0..2000)
                .map(|_| if next() % 4 == 0 { 0x47 } else { next() as u8 })
                .collect();
            d.push(&random, &mut out).unwrap();
            d.finish(&mut out).unwrap();
        }
    }
}
