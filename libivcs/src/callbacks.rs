//! The callback thread (`ivcs-callback`): every firmware callback and every
//! log line for the log callback runs here, one at a time, in the order the
//! engine produced them, and never while the engine is locked or any lock of
//! this library is held. A callback may therefore call `iv_cs_*` again
//! (the call is marshalled to the engine thread, which never waits for this
//! one).
//!
//! Jobs belong to a session (one `iv_cs_init` .. `iv_cs_exit`); `iv_cs_exit`
//! lets the session's queued jobs run for a bounded time (the last dump
//! chunks of the segments it closed) and drops what is left, so firmware
//! hears nothing of the session after exit returned. Picture releases and
//! log lines belong to no session and always run: firmware must get its
//! picture memory back.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{JoinHandle, ThreadId};

/// One unit of work for the callback thread.
struct Job {
    /// `Some(id)`: dropped when session `id` exits before it runs.
    session: Option<u64>,
    run: Box<dyn FnOnce() + Send>,
}

#[derive(Default)]
struct State {
    jobs: VecDeque<Job>,
    thread: Option<JoinHandle<()>>,
    thread_id: Option<ThreadId>,
    stop: bool,
    /// Jobs taken but not finished (0 or 1).
    running: usize,
}

struct Queue {
    state: Mutex<State>,
    changed: Condvar,
}

static QUEUE: Queue = Queue {
    state: Mutex::new(State {
        jobs: VecDeque::new(),
        thread: None,
        thread_id: None,
        stop: false,
        running: 0,
    }),
    changed: Condvar::new(),
};

fn lock() -> MutexGuard<'static, State> {
    QUEUE.state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Queues `run` for the callback thread (started on first use).
pub fn post(session: Option<u64>, run: impl FnOnce() + Send + 'static) {
    let mut st = lock();
    if st.thread.is_none() {
        st.stop = false;
        match std::thread::Builder::new()
            .name("ivcs-callback".into())
            .spawn(thread_main)
        {
            Ok(h) => {
                st.thread_id = Some(h.thread().id());
                st.thread = Some(h);
            }
            // No thread, no callbacks: better than no library. Logged to
            // stderr directly (the log callback would need this thread).
            Err(e) => {
                crate::log::stderr(0, &format!("cannot start the callback thread: {e}"));
                return;
            }
        }
    }
    st.jobs.push_back(Job {
        session,
        run: Box::new(run),
    });
    QUEUE.changed.notify_all();
}

/// Lets the jobs queued for `session` run, for at most `wait`, then drops
/// the rest (not from the callback thread, where they are dropped at once:
/// a callback that waited for its own thread would never return).
pub fn finish_session(session: u64, wait: std::time::Duration) {
    let deadline = std::time::Instant::now() + wait;
    let mut st = lock();
    if st.thread_id != Some(std::thread::current().id()) {
        while st.thread.is_some()
            && (st.running > 0 || st.jobs.iter().any(|j| j.session == Some(session)))
        {
            let now = std::time::Instant::now();
            if now >= deadline {
                break;
            }
            st = QUEUE
                .changed
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
    st.jobs.retain(|j| j.session != Some(session));
}

/// True on the callback thread.
pub fn on_callback_thread() -> bool {
    lock().thread_id == Some(std::thread::current().id())
}

/// Waits until every job queued so far has run (not from the callback
/// thread itself, where it returns at once). Used by shutdown and tests.
pub fn drain() {
    if on_callback_thread() {
        return;
    }
    let mut st = lock();
    while st.thread.is_some() && (!st.jobs.is_empty() || st.running > 0) {
        st = QUEUE
            .changed
            .wait(st)
            .unwrap_or_else(PoisonError::into_inner);
    }
}

/// Runs the remaining jobs, then stops the thread (unless called from it).
pub fn stop() {
    drain();
    let handle = {
        let mut st = lock();
        st.stop = true;
        QUEUE.changed.notify_all();
        if st.thread_id == Some(std::thread::current().id()) {
            None
        } else {
            st.thread_id = None;
            st.thread.take()
        }
    };
    if let Some(h) = handle {
        let _ = h.join();
    }
}

fn thread_main() {
    loop {
        let job = {
            let mut st = lock();
            loop {
                if let Some(j) = st.jobs.pop_front() {
                    st.running = 1;
                    break j;
                }
                if st.stop {
                    return;
                }
                st = QUEUE
                    .changed
                    .wait(st)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        };
        // A panic in our own glue must not end the thread (firmware C code
        // cannot unwind into here).
        let _ = catch_unwind(AssertUnwindSafe(job.run));
        let mut st = lock();
        st.running = 0;
        QUEUE.changed.notify_all();
    }
}
