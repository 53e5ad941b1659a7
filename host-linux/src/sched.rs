//! Scheduling class of the runtime's own threads.
//!
//! The engine and network threads are woken by every frame firmware pushes.
//! Under the default policy a woken thread may preempt its waker, so the
//! firmware thread that called `iv_cs_push_stream` would wait for the muxing
//! it just handed off. `SCHED_BATCH` threads never preempt on wake-up; they
//! still get their fair share of the CPU (same nice value), so the work is
//! not starved, only not done in the middle of a firmware call.

/// Puts the calling thread in `SCHED_BATCH` (Linux; elsewhere a no-op).
/// Best effort: a refusal leaves the thread as it was.
pub fn background_thread() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: pid 0 is the calling thread; `param` is a valid struct.
        unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
    }
}
