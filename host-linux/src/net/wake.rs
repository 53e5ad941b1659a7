//! The engine thread's alarm clock: a generation counter plus a condition
//! variable that network tasks bump whenever an exchange makes progress the
//! engine may want to see (a response head, body bytes, an error, buffer
//! space after back-pressure).
//!
//! The engine thread never blocks inside an import; between engine calls it
//! sleeps in [`WakeSignal::wait`] until its next timer (`wake-at-ms`) or until
//! something happened. Anything else that produces work for the engine
//! (firmware calls, snapshot captures) can share the same signal by calling
//! [`WakeSignal::notify`].
//!
//! Read the generation *before* calling into the engine and wait on that
//! value afterwards, so progress made while the engine ran is never missed:
//!
//! ```
//! # use ivcs_host::net::WakeSignal;
//! # use std::time::{Duration, Instant};
//! let wake = WakeSignal::new();
//! let seen = wake.generation();
//! // ... tick the engine ...
//! let next_timer = Instant::now() + Duration::from_millis(1);
//! wake.wait(seen, next_timer);
//! ```

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

/// A level-triggered "something happened" signal; see the module docs.
#[derive(Default)]
pub struct WakeSignal {
    generation: Mutex<u64>,
    changed: Condvar,
    /// Also called on every notify: how a host that does not sleep on the
    /// condition variable (host-sim's async camera loop) hears of progress.
    hook: Option<Box<dyn Fn() + Send + Sync>>,
}

impl std::fmt::Debug for WakeSignal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WakeSignal")
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

impl WakeSignal {
    /// A new signal at generation 0.
    pub fn new() -> Arc<WakeSignal> {
        Arc::new(WakeSignal::default())
    }

    /// A signal that also calls `hook` on every notify.
    pub fn with_hook(hook: impl Fn() + Send + Sync + 'static) -> Arc<WakeSignal> {
        Arc::new(WakeSignal {
            hook: Some(Box::new(hook)),
            ..WakeSignal::default()
        })
    }

    /// Records progress and wakes every waiter.
    pub fn notify(&self) {
        let mut g = self.lock();
        *g = g.wrapping_add(1);
        self.changed.notify_all();
        drop(g);
        if let Some(h) = &self.hook {
            h();
        }
    }

    /// The current generation: how many times [`notify`](Self::notify) was
    /// called.
    pub fn generation(&self) -> u64 {
        *self.lock()
    }

    /// Sleeps until the generation differs from `seen` or `deadline` passes,
    /// whichever is first; returns the generation then (equal to `seen` on
    /// timeout). Returns at once if progress happened since `seen` was read.
    pub fn wait(&self, seen: u64, deadline: Instant) -> u64 {
        let mut g = self.lock();
        while *g == seen {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                break;
            };
            g = match self.changed.wait_timeout(g, left) {
                Ok((g, _)) => g,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        *g
    }

    // A notifier that panicked cannot leave the counter inconsistent (it is
    // one integer), so a poisoned lock is simply taken over.
    fn lock(&self) -> MutexGuard<'_, u64> {
        self.generation
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::WakeSignal;
    use std::time::{Duration, Instant};

    #[test]
    fn wait_returns_at_once_after_a_notify_it_has_not_seen() {
        let w = WakeSignal::new();
        let seen = w.generation();
        w.notify();
        let far = Instant::now() + Duration::from_secs(60);
        assert_eq!(w.wait(seen, far), seen + 1);
    }

    #[test]
    fn wait_ends_at_the_deadline_without_progress() {
        let w = WakeSignal::new();
        let seen = w.generation();
        assert_eq!(w.wait(seen, Instant::now()), seen);
    }

    #[test]
    fn a_notify_from_another_thread_wakes_the_waiter() {
        let w = WakeSignal::new();
        let seen = w.generation();
        let w2 = w.clone();
        let t = std::thread::spawn(move || w2.notify());
        let far = Instant::now() + Duration::from_secs(60);
        assert_ne!(w.wait(seen, far), seen);
        t.join().unwrap();
    }
}
