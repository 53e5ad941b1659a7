//! Answers `iv_cs_push_stream` on the caller's thread.
//!
//! A push is answered from the engine's last published [`PushGate`] per
//! channel (what the engine would refuse now), then queued for the engine
//! thread, which pushes it into the engine later. So a push costs the C
//! checks, one copy of the frame and a queue hand-off, never engine work:
//! docs/design/buffer.md, "Answering pushes at once", has the reasoning and
//! what it changes for firmware.
//!
//! The engine stays the authority. Between two publications the mirror
//! follows the engine's own rule: a key frame ends "waiting for a key frame"
//! (the engine will take it). A gate is published only for a channel with
//! no frame queued after the ones the engine has seen, so a publication
//! never undoes what a newer frame changed.

use crate::codes::*;
use crate::service::lock;
use ivcs_host::bindings::exports::ivcs::engine::cs::PushGate;
use ivcs_media::VideoCodec;
use std::sync::Mutex;

/// Channel ids the runtime accepts (0..4).
const CHANNELS: usize = 5;

/// One channel's mirror.
#[derive(Clone, Copy)]
struct Chan {
    gate: PushGate,
    codec: VideoCodec,
    /// `u32MaxGopSize`.
    budget: u64,
    /// Frames and bytes queued for the engine thread.
    queued_frames: u32,
    queued_bytes: u64,
}

impl Chan {
    const CLOSED: Chan = Chan {
        gate: PushGate {
            all: Some(IV_ERR_CS_PRM_NOT_AVAILABLE),
            non_key_video: None,
            key_needs_params: false,
            audio: None,
        },
        codec: VideoCodec::H264,
        budget: 0,
        queued_frames: 0,
        queued_bytes: 0,
    };
}

/// The per-channel mirrors of the engine's push gates.
pub struct Admission {
    chans: Mutex<[Chan; CHANNELS]>,
}

impl Default for Admission {
    fn default() -> Self {
        Admission {
            chans: Mutex::new([Chan::CLOSED; CHANNELS]),
        }
    }
}

/// A frame taken for the engine: give it back with [`Admission::pushed`].
#[must_use]
pub struct Ticket {
    channel: u8,
    bytes: u64,
    starts: bool,
}

impl Ticket {
    /// The key frame the gate was waiting for: a recording run (re)starts
    /// at it, dated by the engine's clock when it takes the frame.
    pub fn starts_run(&self) -> bool {
        self.starts
    }
}

impl Admission {
    /// A session began: its channels' codecs and budgets. Gates stay closed
    /// until the engine publishes them; channels outside the session are
    /// -602, as the engine answers.
    pub fn open(&self, channels: &[(u8, VideoCodec, u32)]) {
        let mut c = lock(&self.chans);
        *c = [Chan::CLOSED; CHANNELS];
        for m in c.iter_mut() {
            m.gate.all = Some(IV_ERR_CS_INIT_PRM_RANGE);
        }
        for &(ch, codec, budget) in channels {
            if let Some(m) = c.get_mut(usize::from(ch)) {
                m.gate = Chan::CLOSED.gate;
                m.codec = codec;
                m.budget = u64::from(budget);
            }
        }
    }

    /// The session ended: every push is -605 until the next one.
    pub fn close(&self) {
        let mut c = lock(&self.chans);
        for m in c.iter_mut() {
            m.gate = Chan::CLOSED.gate;
        }
    }

    /// Decides a push: `Ok` means the frame is taken (queue it and give the
    /// ticket back once the engine saw it); `Err` is the code to answer.
    pub fn admit(&self, channel: u8, video: bool, data: &[u8]) -> Result<Ticket, i32> {
        let mut c = lock(&self.chans);
        let Some(m) = c.get_mut(usize::from(channel)) else {
            return Err(IV_ERR_CS_INIT_PRM_RANGE);
        };
        let bytes = data.len() as u64;
        if m.budget > 0 && bytes > m.budget {
            // A frame of a session channel that can never be buffered,
            // whatever the plan.
            return Err(IV_ERR_CS_PRM_MALLOC_FAIL);
        }
        if let Some(code) = m.gate.all {
            return Err(code);
        }
        let mut run_starts = false;
        if video {
            if let Some(code) = m.gate.non_key_video {
                let starts = if m.gate.key_needs_params {
                    ivcs_media::video::is_key_with_params(m.codec, data)
                } else {
                    ivcs_media::video::is_key(m.codec, data)
                };
                if !starts {
                    return Err(code);
                }
                // The engine takes a key frame in either state.
                run_starts = true;
                m.gate.non_key_video = None;
                m.gate.audio = None;
            }
        } else if let Some(code) = m.gate.audio {
            return Err(code);
        }
        if m.queued_bytes + bytes > m.budget {
            // The engine thread is far behind: as full as a full buffer.
            return Err(IV_ERR_CS_PRM_MALLOC_FAIL);
        }
        m.queued_frames += 1;
        m.queued_bytes += bytes;
        Ok(Ticket {
            channel,
            bytes,
            starts: run_starts,
        })
    }

    /// The engine has seen the frame of `t`.
    pub fn pushed(&self, t: Ticket) {
        let mut c = lock(&self.chans);
        if let Some(m) = c.get_mut(usize::from(t.channel)) {
            m.queued_frames = m.queued_frames.saturating_sub(1);
            m.queued_bytes = m.queued_bytes.saturating_sub(t.bytes);
        }
    }

    /// Whether the engine has seen every frame queued on `channel` (only
    /// then may its gate be published).
    pub fn caught_up(&self, channel: u8) -> bool {
        lock(&self.chans)
            .get(usize::from(channel))
            .is_some_and(|m| m.queued_frames == 0)
    }

    /// Publishes the engine's gate for `channel`, unless frames were queued
    /// since the engine computed it (the next publication covers them).
    pub fn publish(&self, channel: u8, gate: PushGate) {
        let mut c = lock(&self.chans);
        if let Some(m) = c.get_mut(usize::from(channel))
            && m.queued_frames == 0
        {
            m.gate = gate;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDR: &[u8] = &[0, 0, 0, 1, 0x67, 1, 0, 0, 1, 0x68, 1, 0, 0, 1, 0x65, 0x88];
    const P: &[u8] = &[0, 0, 0, 1, 0x41, 0x9a];

    fn open() -> Admission {
        let a = Admission::default();
        a.open(&[(0, VideoCodec::H264, 8192)]);
        a
    }

    fn gate(all: Option<i32>, non_key: Option<i32>, audio: Option<i32>) -> PushGate {
        PushGate {
            all,
            non_key_video: non_key,
            key_needs_params: false,
            audio,
        }
    }

    #[test]
    fn closed_until_the_engine_publishes() {
        let a = open();
        assert_eq!(
            a.admit(0, true, IDR).err(),
            Some(IV_ERR_CS_PRM_NOT_AVAILABLE)
        );
        assert_eq!(a.admit(1, true, IDR).err(), Some(IV_ERR_CS_INIT_PRM_RANGE));
        a.publish(0, gate(Some(IV_ERR_CS_APPLY_NO_SERVICE), None, None));
        assert_eq!(
            a.admit(0, false, &[1]).err(),
            Some(IV_ERR_CS_APPLY_NO_SERVICE)
        );
        a.close();
        assert_eq!(
            a.admit(0, true, IDR).err(),
            Some(IV_ERR_CS_PRM_NOT_AVAILABLE)
        );
    }

    #[test]
    fn a_key_frame_ends_waiting_and_publications_wait_for_the_queue() {
        let a = open();
        a.publish(0, gate(None, Some(IV_ERR_CS_NEED_IDR_FRAME), None));
        assert_eq!(a.admit(0, true, P).err(), Some(IV_ERR_CS_NEED_IDR_FRAME));
        let audio = a.admit(0, false, &[1, 2]).ok().unwrap();
        let idr = a.admit(0, true, IDR).ok().unwrap();
        assert!(idr.starts_run(), "the awaited key frame starts the run");
        let p = a.admit(0, true, P).ok().unwrap();
        let next = a.admit(0, true, IDR).ok().unwrap();
        assert!(!next.starts_run() && !p.starts_run() && !audio.starts_run());
        a.pushed(next);
        // Computed before the engine saw the IDR: must not undo it.
        a.publish(0, gate(None, Some(IV_ERR_CS_NEED_IDR_FRAME), None));
        assert!(!a.caught_up(0));
        for t in [audio, idr, p] {
            a.pushed(t);
        }
        assert!(a.caught_up(0));
        a.admit(0, true, P).map(|t| a.pushed(t)).unwrap();
        // A new run needs the parameter sets with its IDR.
        let mut g = gate(None, Some(IV_ERR_CS_NEED_IDR_FRAME), None);
        g.key_needs_params = true;
        a.publish(0, g);
        let bare_idr = &IDR[11..];
        assert_eq!(
            a.admit(0, true, bare_idr).err(),
            Some(IV_ERR_CS_NEED_IDR_FRAME)
        );
        a.admit(0, true, IDR).map(|t| a.pushed(t)).unwrap();
        a.admit(0, true, bare_idr).map(|t| a.pushed(t)).unwrap();
        // After an overflow the engine drops to the next key frame.
        let full = Some(IV_ERR_CS_PRM_MALLOC_FAIL);
        a.publish(0, gate(None, full, full));
        assert_eq!(a.admit(0, true, P).err(), full);
        assert_eq!(a.admit(0, false, &[1]).err(), full);
        a.admit(0, true, IDR).map(|t| a.pushed(t)).unwrap();
        a.admit(0, false, &[1]).map(|t| a.pushed(t)).unwrap();
    }

    #[test]
    fn budget_bounds_a_frame_and_the_queue() {
        let a = open();
        a.publish(0, gate(None, None, None));
        let big = vec![0u8; 8193];
        assert_eq!(
            a.admit(0, false, &big).err(),
            Some(IV_ERR_CS_PRM_MALLOC_FAIL)
        );
        let t = a.admit(0, false, &big[..5000]).ok().unwrap();
        assert_eq!(
            a.admit(0, false, &big[..5000]).err(),
            Some(IV_ERR_CS_PRM_MALLOC_FAIL)
        );
        a.pushed(t);
        a.admit(0, false, &big[..5000])
            .map(|t| a.pushed(t))
            .unwrap();
        assert_eq!(
            a.admit(7, false, &[1]).err(),
            Some(IV_ERR_CS_INIT_PRM_RANGE)
        );
    }
}
