//! MP4 export of a recorded range: one progressive MP4 (`moov` first) built
//! from the stored segments in two passes (docs/design/export.md). Serves
//! `GET .../export.mp4` and `ivcs cloud export --data`.
//!
//! [`prepare`] runs pass 1 (metadata only) and so knows the exact file
//! size before a byte is sent; [`Export::stream`] runs pass 2, reading the
//! segments again and sending the file in pieces through a bounded channel,
//! so memory stays at about one chunk per track whatever the range.
//!
//! Placing segments on one timeline: a segment's samples are shifted so
//! its first video frame lands on its UTC start. Segments that continue
//! the previous one (the shift differs by less than [`CONTINUOUS_MS`]) keep
//! the previous shift, so the camera's own clock decides frame durations
//! and a ms-rounded UTC cannot jitter them; a gap or a clock step re-anchors
//! on UTC, so a gap lasts in the file as long as it lasted in reality.

use crate::app::App;
use crate::error::{Error, ErrorKind, Result};
use crate::metrics::inc;
use crate::model::{MAX_SEGMENT_MS, SegmentRow};
use crate::objects::Objects;
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use ivcs_media::Track;
use ivcs_media::demux::OnDamage;
use ivcs_media::mp4_export::Mp4Export;
use ivcs_media::range_export::{RangePass1, RangePass2, Selection};
use ivcs_media::segment_reader::{Sample, SegmentFormat, SegmentReader};
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

/// Longest range one export may cover: 24 h. Pass 1 keeps ~16 bytes per
/// video and ~8 per audio sample (about 60 MB for a day at 30 fps with
/// audio); longer ranges are exported in parts.
pub const MAX_EXPORT_MS: u64 = 24 * 3600 * 1000;

/// Segments whose placement differs from the previous one's by less than
/// this continue it (see the module documentation).
pub const CONTINUOUS_MS: u64 = 1000;

/// Exports running at once; more wait. Each one keeps a core busy
/// demuxing, so this bounds the CPU exports can take from uploads.
pub const CONCURRENT_EXPORTS: usize = 2;

/// Pass 2 sends the file in pieces of about this size.
const PIECE: usize = 256 << 10;

/// A prepared export: pass 1 done, the file's header and size known.
pub struct Export {
    file: Mp4Export,
    selection: Selection,
    segments: Vec<SegmentRow>,
    /// UTC of the file's first frame (the key frame at or before the
    /// requested start), ms.
    pub start_ms: u64,
    /// UTC of the file's end, ms.
    pub end_ms: u64,
    _permit: OwnedSemaphorePermit,
}

/// The semaphore that bounds concurrent exports.
pub fn slots() -> Arc<Semaphore> {
    Arc::new(Semaphore::new(CONCURRENT_EXPORTS))
}

/// Pass 1 for `[start_ms, end_ms)` of a device's channel. Errors: 400 for
/// a bad or over-long range, 404 when nothing playable is recorded in it.
pub async fn prepare(
    app: &App,
    device: &str,
    channel: u32,
    start_ms: u64,
    end_ms: u64,
) -> Result<Export> {
    if end_ms <= start_ms || end_ms - start_ms > MAX_EXPORT_MS {
        return Err(Error::bad_request(
            "need start_ms < end_ms, at most 24 h apart",
        ));
    }
    let segments = app
        .repo
        .segments_in(device, channel, start_ms, end_ms)
        .await?;
    let Some(last_end) = segments.iter().filter_map(|s| s.utc_end_ms).max() else {
        return Err(Error::not_found("no recording in this range"));
    };
    let permit = app
        .export_slots
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| Error::internal("export slots closed"))?;
    // Every segment starts at or after `base` (segments_in looks back at
    // most MAX_SEGMENT_MS), so timeline positions are never negative.
    let base = start_ms.saturating_sub(MAX_SEGMENT_MS);
    let end = end_ms.min(last_end);
    let mut pass1 = RangePass1::new(to_90k(start_ms - base), to_90k(end.saturating_sub(base)));
    let mut place = Placement::new(base);
    let mut batch = Vec::new();
    'segments: for seg in &segments {
        let mut read = SegmentStream::open(&app.objects, seg).await?;
        // Samples before the first video frame wait for the placement.
        let mut held: Vec<Sample> = Vec::new();
        let mut begun = false;
        while read.next(&mut batch).await? {
            for s in batch.drain(..) {
                if !begun {
                    if s.track != Track::Video {
                        held.push(s);
                        continue;
                    }
                    if !pass1.begin_segment(place.shift(seg, s.pts_90k)) {
                        break 'segments;
                    }
                    begun = true;
                    for h in held.drain(..) {
                        pass1.push(&read.reader, &h).map_err(media)?;
                    }
                }
                pass1.push(&read.reader, &s).map_err(media)?;
            }
        }
        if !begun {
            // No video: placed by its first sample, if any.
            let first = held.first().map_or(0, |s| s.pts_90k);
            if !pass1.begin_segment(place.shift(seg, first)) {
                break;
            }
            for h in &held {
                pass1.push(&read.reader, h).map_err(media)?;
            }
        }
        let damage = read.reader.damage();
        if damage.events > 0 {
            tracing::warn!(
                device,
                segment = seg.segment_id,
                events = damage.events,
                first = ?damage.first,
                "damaged segment: the export leaves the damage out"
            );
        }
    }
    let (file, selection) = pass1.finish().map_err(media)?;
    let start_ms = base + selection.key_start / 90;
    let end_ms = base + selection.end / 90;
    Ok(Export {
        file,
        selection,
        segments,
        start_ms,
        end_ms,
        _permit: permit,
    })
}

impl Export {
    /// The file's exact size, bytes.
    pub fn total_size(&self) -> u64 {
        self.file.total_size()
    }

    /// The file's duration, ms.
    pub fn duration_ms(&self) -> u64 {
        self.file.duration_90k() / 90
    }

    /// Pass 2: sends the whole file through `tx` in pieces, then closes it.
    /// An error is sent as the last item (an HTTP body then breaks off, so
    /// the client sees a short file, never a wrong one).
    pub async fn stream(self, app: Arc<App>, tx: mpsc::Sender<Result<Bytes>>) {
        match self.write(&app.objects, &tx).await {
            Ok(()) => inc(&app.metrics.exports_total),
            Err(e) => {
                inc(&app.metrics.exports_failed_total);
                tracing::warn!(error = %e, "export failed during pass 2");
                let _ = tx.send(Err(e)).await;
            }
        }
    }

    async fn write(&self, objects: &Objects, tx: &mpsc::Sender<Result<Bytes>>) -> Result<()> {
        let send = |piece: Vec<u8>| async move {
            tx.send(Ok(Bytes::from(piece)))
                .await
                .map_err(|_| Error::new(ErrorKind::BadRequest, "the client went away"))
        };
        send(self.file.header().to_vec()).await?;
        let mut pass2 = RangePass2::new(&self.file, self.selection.clone());
        let mut out = Vec::with_capacity(PIECE * 2);
        let mut batch = Vec::new();
        for seg in &self.segments {
            if !pass2.begin_segment() {
                break;
            }
            let mut read = SegmentStream::open(objects, seg).await?;
            while read.next(&mut batch).await? {
                for s in batch.drain(..) {
                    pass2.push(&read.reader, &s, &mut out).map_err(media)?;
                }
                if out.len() >= PIECE {
                    send(std::mem::replace(&mut out, Vec::with_capacity(PIECE * 2))).await?;
                }
            }
        }
        pass2.finish().map_err(|e| {
            Error::internal(format!(
                "the segments changed between the two passes of the export: {e}"
            ))
        })?;
        if !out.is_empty() {
            send(out).await?;
        }
        Ok(())
    }
}

/// Where each segment goes on the export's 90 kHz timeline.
struct Placement {
    base_ms: u64,
    last: Option<i64>,
}

impl Placement {
    fn new(base_ms: u64) -> Placement {
        Placement {
            base_ms,
            last: None,
        }
    }

    /// The shift that puts the sample at `first_pts` (the segment's first
    /// video frame) on `seg`'s UTC start, or the previous shift if close.
    fn shift(&mut self, seg: &SegmentRow, first_pts: u64) -> i64 {
        let anchor = to_90k(seg.utc_start_ms.saturating_sub(self.base_ms)) as i64;
        let shift = anchor.saturating_sub(first_pts as i64);
        let shift = match self.last {
            Some(l) if l.abs_diff(shift) < to_90k(CONTINUOUS_MS) => l,
            _ => shift,
        };
        self.last = Some(shift);
        shift
    }
}

fn to_90k(ms: u64) -> u64 {
    ms.saturating_mul(90)
}

/// Maps a media error of an export to the service's errors.
fn media(e: ivcs_media::Error) -> Error {
    match e.kind() {
        ivcs_media::ErrorKind::NeedKeyFrame => {
            Error::not_found(format!("nothing playable in this range ({})", e.message()))
        }
        _ => Error::internal(format!("export: {e}")),
    }
}

/// One stored segment read back as samples, streamed from the object store.
struct SegmentStream {
    reader: SegmentReader,
    body: BoxStream<'static, Result<Bytes>>,
    done: bool,
}

impl SegmentStream {
    async fn open(objects: &Objects, seg: &SegmentRow) -> Result<SegmentStream> {
        let format = match seg.container.as_str() {
            "ts" => SegmentFormat::Ts,
            _ => SegmentFormat::Fmp4,
        };
        let body = objects.get_range(&seg.object_key, 0..seg.bytes).await?;
        Ok(SegmentStream {
            reader: SegmentReader::new(format, OnDamage::Skip),
            body: body.boxed(),
            done: false,
        })
    }

    /// Appends the samples of the next piece of the object to `out`; false
    /// once the segment is over.
    async fn next(&mut self, out: &mut Vec<Sample>) -> Result<bool> {
        if self.done {
            return Ok(false);
        }
        match self.body.next().await {
            Some(chunk) => self.reader.push(&chunk?, out).map_err(media)?,
            None => {
                self.done = true;
                self.reader.finish(out).map_err(media)?;
            }
        }
        Ok(true)
    }
}
