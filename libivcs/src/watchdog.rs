//! The watchdog thread (`ivcs-watchdog`): bounds every engine call. The
//! engine thread arms it with a deadline before a call and disarms it after;
//! if the deadline passes first, the watchdog advances wasmtime's epoch and
//! the call traps at its next epoch check (loop headers, function entries).
//! It sleeps without a timeout while no call runs, so an idle library costs
//! no wake-ups.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Instant;

#[derive(Default)]
struct State {
    /// The running call's deadline.
    armed: Option<Instant>,
    /// When the watchdog will look next (`None`: only when notified).
    sleeping_until: Option<Instant>,
    engine: Option<wasmtime::Engine>,
    stop: bool,
    /// Calls interrupted so far.
    fired: u64,
}

/// See the module docs.
pub struct Watchdog {
    state: Mutex<State>,
    changed: Condvar,
}

impl Watchdog {
    /// Starts the thread.
    pub fn start() -> std::io::Result<(Arc<Watchdog>, JoinHandle<()>)> {
        let w = Arc::new(Watchdog {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        });
        let w2 = w.clone();
        let h = std::thread::Builder::new()
            .name("ivcs-watchdog".into())
            .spawn(move || w2.run())?;
        Ok((w, h))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The engine whose epoch to advance.
    pub fn set_engine(&self, engine: wasmtime::Engine) {
        self.lock().engine = Some(engine);
    }

    /// A call starts and must end by `deadline`.
    pub fn arm(&self, deadline: Instant) {
        let mut st = self.lock();
        st.armed = Some(deadline);
        // Wake the thread only if it would otherwise look too late.
        if st.sleeping_until.is_none_or(|t| t > deadline) {
            self.changed.notify_one();
        }
    }

    /// The call ended.
    pub fn disarm(&self) {
        self.lock().armed = None;
    }

    /// Calls interrupted so far.
    pub fn fired(&self) -> u64 {
        self.lock().fired
    }

    /// Ends the thread.
    pub fn stop(&self) {
        self.lock().stop = true;
        self.changed.notify_one();
    }

    fn run(&self) {
        let mut st = self.lock();
        loop {
            if st.stop {
                return;
            }
            match st.armed {
                Some(at) if Instant::now() >= at => {
                    if let Some(e) = &st.engine {
                        e.increment_epoch();
                    }
                    st.fired += 1;
                    st.armed = None;
                }
                Some(at) => {
                    st.sleeping_until = Some(at);
                    let left = at.saturating_duration_since(Instant::now());
                    st = match self.changed.wait_timeout(st, left) {
                        Ok((g, _)) => g,
                        Err(p) => p.into_inner().0,
                    };
                    st.sleeping_until = None;
                }
                None => {
                    st = self
                        .changed
                        .wait(st)
                        .unwrap_or_else(PoisonError::into_inner);
                }
            }
        }
    }
}
