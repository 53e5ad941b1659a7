//! The run's trace: one JSON line per engine call, callback, network event
//! and fault, stamped with virtual time. Every line goes into a SHA-256
//! digest (two runs of one seed must give the same digest: that is how
//! determinism is checked) and, when asked, into a JSONL file.

use sha2::{Digest, Sha256};
use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;

/// A shared handle on the trace (the simulation is single-threaded).
#[derive(Clone)]
pub struct Trace(Rc<RefCell<Inner>>);

struct Inner {
    /// Virtual time for lines written outside any host (the driver's).
    driver_ms: u64,
    digest: Sha256,
    lines: u64,
    out: Option<std::io::BufWriter<std::fs::File>>,
    /// The first write error, reported at the end.
    error: Option<std::io::Error>,
}

impl Trace {
    /// A trace that also writes to `file` when given.
    pub fn new(file: Option<std::fs::File>) -> Trace {
        Trace(Rc::new(RefCell::new(Inner {
            driver_ms: 0,
            digest: Sha256::new(),
            lines: 0,
            out: file.map(std::io::BufWriter::new),
            error: None,
        })))
    }

    /// The driver's virtual time, for lines written between steps.
    pub fn set_driver_ms(&self, ms: u64) {
        self.0.borrow_mut().driver_ms = ms;
    }

    /// Records `what` happening to `who`, with `detail`.
    pub fn event(&self, who: &str, what: &str, detail: &str) {
        let t_ms = match turmoil::sim_elapsed() {
            Some(_) => crate::clock::elapsed_ms(),
            None => self.0.borrow().driver_ms,
        };
        let line = serde_json::json!({
            "t_ms": t_ms,
            "who": who,
            "what": what,
            "detail": detail,
        })
        .to_string();
        let mut t = self.0.borrow_mut();
        t.digest.update(line.as_bytes());
        t.digest.update(b"\n");
        t.lines += 1;
        if let Some(out) = &mut t.out
            && let Err(e) = writeln!(out, "{line}")
        {
            t.error.get_or_insert(e);
            t.out = None;
        }
    }

    /// Lines so far and the digest of all of them (hex).
    pub fn finish(&self) -> std::io::Result<(u64, String)> {
        let mut t = self.0.borrow_mut();
        if let Some(out) = &mut t.out {
            out.flush()?;
        }
        if let Some(e) = t.error.take() {
            return Err(e);
        }
        Ok((t.lines, hex::encode(t.digest.clone().finalize())))
    }
}
