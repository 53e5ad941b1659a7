//! Running the real cloud binary (`ivcs cloud serve`) on a loopback port
//! with its own data directory, and talking to it as a device (signed
//! requests) and as an app (bearer token) over real HTTP. Used by the
//! `cloud_api` tests and by the `cloud_bench` load generator.

use crate::cli::bin;
use crate::tools::{self, Captured};
use ivcs_cloud::auth::{self, SignedRequest};
use ivcs_cloud::clock::Clock;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running service. Killed on drop.
pub struct Cloud {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Data directory.
    pub data: PathBuf,
    /// The clock file the service reads "now" from while it exists (tests);
    /// `None`: the system clock only, as in production.
    pub clock_file: Option<PathBuf>,
    env: Vec<(String, String)>,
    /// The `ivcs` binary it runs.
    bin: PathBuf,
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as JSON (panics with the body if it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Runs `ivcs cloud ARGS --data DATA` and returns its output.
pub fn admin(data: &Path, args: &[&str]) -> Captured {
    let mut a: Vec<String> = vec!["cloud".into(), "--data".into(), tools::p(data)];
    a.extend(args.iter().map(|s| s.to_string()));
    tools::run(bin(), a)
}

/// The HTTP client configuration every request of the harness uses (HTTP
/// errors are answers, not `Err`); public so that a benchmark can send its
/// reference requests (nginx) through the same client.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

fn answer(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Answer {
    let mut r = r.unwrap_or_else(|e| panic!("HTTP request failed: {e}"));
    let status = r.status().as_u16();
    let headers = r
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let body = r
        .body_mut()
        .with_config()
        .limit(1 << 30)
        .read_to_vec()
        .unwrap_or_else(|e| panic!("reading the body: {e}"));
    Answer {
        status,
        headers,
        body,
    }
}

impl Cloud {
    /// Starts a service on a fresh data directory `data` with extra
    /// `IVCS_CLOUD_*` variables and a clock file next to it (see
    /// [`Cloud::set_now_ms`]).
    pub fn start(data: &Path, env: &[(&str, &str)]) -> Cloud {
        Cloud::launch(data, env, Some(data.with_extension("clock")))
    }

    /// [`Cloud::start`] without a clock file: the service reads the system
    /// clock only, as in production (benchmarks).
    pub fn start_with_system_clock(data: &Path, env: &[(&str, &str)]) -> Cloud {
        Cloud::launch(data, env, None)
    }

    /// [`Cloud::start`] running another copy of the binary, e.g. one laid
    /// out in an install prefix (`PREFIX/bin/ivcs`) to test the paths it
    /// derives from its own location.
    pub fn start_with_bin(bin: &Path, data: &Path, env: &[(&str, &str)]) -> Cloud {
        let mut c = Cloud::new(data, env, Some(data.with_extension("clock")));
        c.bin = bin.to_path_buf();
        c.restart();
        c
    }

    fn launch(data: &Path, env: &[(&str, &str)], clock_file: Option<PathBuf>) -> Cloud {
        let mut c = Cloud::new(data, env, clock_file);
        c.restart();
        c
    }

    fn new(data: &Path, env: &[(&str, &str)], clock_file: Option<PathBuf>) -> Cloud {
        Cloud {
            child: None,
            base: String::new(),
            data: data.to_path_buf(),
            clock_file,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            bin: bin(),
        }
    }

    /// (Re)starts the process on the same data directory (and, on a
    /// restart, the same port, so existing clients keep working).
    pub fn restart(&mut self) {
        self.kill9();
        let listen = match self.base.strip_prefix("http://") {
            Some(addr) => addr.to_string(),
            None => "127.0.0.1:0".to_string(),
        };
        let mut cmd = Command::new(&self.bin);
        cmd.args(["cloud", "--data"])
            .arg(&self.data)
            .args(["serve", "--listen", &listen])
            .env("IVCS_CLOUD_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(f) = &self.clock_file {
            cmd.env("IVCS_CLOUD_CLOCK_FILE", f);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("starting ivcs cloud serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("reading the service's first line");
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_string();
        self.base = format!("http://{addr}");
        self.child = Some(child);
    }

    /// The service's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGTERM, then waits for the exit (a graceful shutdown) and returns
    /// its status; panics if the service has not exited within `limit`.
    pub fn terminate(&mut self, limit: Duration) -> std::process::ExitStatus {
        self.sigterm().wait(limit)
    }

    /// Sends SIGTERM and hands back the exiting process, so a test can act
    /// while the service shuts down (see [`Stopping::wait`]).
    pub fn sigterm(&mut self) -> Stopping {
        let mut c = self.child.take().expect("the service is running");
        let pid = c.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -TERM {pid}");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(c.wait());
        });
        Stopping {
            exited: rx,
            signalled: std::time::Instant::now(),
        }
    }

    /// SIGKILL, no cleanup.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sets the service's "now" (needs the clock file of [`Cloud::start`]).
    pub fn set_now_ms(&self, ms: u64) {
        let f = self
            .clock_file
            .as_ref()
            .expect("set_now_ms needs a service started with a clock file");
        // Written beside and renamed: the service must never read it half
        // written (it would fall back to the system clock for that read).
        let tmp = f.with_extension("clock.tmp");
        std::fs::write(&tmp, ms.to_string()).expect("writing the clock file");
        std::fs::rename(&tmp, f).expect("renaming the clock file");
    }

    /// The service's "now".
    pub fn now_ms(&self) -> u64 {
        Clock::new(self.clock_file.clone()).now_ms()
    }

    /// Registers a device and returns a client for it.
    pub fn add_device(&self, id: &str) -> Device {
        let out = admin(&self.data, &["device", "add", id]).expect_success();
        Device {
            id: id.to_string(),
            secret: out.stdout_text().trim().to_string(),
            base: self.base.clone(),
            clock_file: self.clock_file.clone(),
            agent: agent(),
        }
    }

    /// Creates an app token.
    pub fn token(&self) -> String {
        admin(&self.data, &["token", "create", "tests"])
            .expect_success()
            .stdout_text()
            .trim()
            .to_string()
    }

    /// Creates an admin token (app API plus engine releases).
    pub fn admin_token(&self) -> String {
        admin(&self.data, &["token", "create", "--admin", "tests-admin"])
            .expect_success()
            .stdout_text()
            .trim()
            .to_string()
    }

    /// An app client with an optional bearer token. It keeps its
    /// connections alive, so repeated requests measure the service, not
    /// TCP setup.
    pub fn app(&self, token: Option<&str>) -> AppClient {
        AppClient {
            base: self.base.clone(),
            token: token.map(str::to_string),
            agent: agent(),
        }
    }

    /// GET with an optional bearer token (a fresh connection).
    pub fn app_get(&self, path: &str, token: Option<&str>) -> Answer {
        self.app(token).get(path)
    }

    /// An app request with a JSON body (a fresh connection).
    pub fn app_send(&self, method: &str, path: &str, token: &str, body: &str) -> Answer {
        self.app(Some(token)).send(method, path, body)
    }
}

/// A service that was sent SIGTERM ([`Cloud::sigterm`]).
pub struct Stopping {
    exited: std::sync::mpsc::Receiver<std::io::Result<std::process::ExitStatus>>,
    /// When the signal was sent.
    pub signalled: std::time::Instant,
}

impl Stopping {
    /// Waits for the exit and returns its status; panics if the service
    /// has not exited within `limit` of the signal.
    pub fn wait(self, limit: Duration) -> std::process::ExitStatus {
        let left = limit.saturating_sub(self.signalled.elapsed());
        self.exited
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("the service did not exit within {limit:?} of SIGTERM"))
            .expect("waiting for the service")
    }
}

/// Talks to the app API as one client (see [`Cloud::app`]).
pub struct AppClient {
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
}

impl AppClient {
    /// GET `path` (with its query).
    pub fn get(&self, path: &str) -> Answer {
        let mut r = self.agent.get(format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            r = r.header("authorization", format!("Bearer {t}"));
        }
        answer(r.call())
    }

    /// A request with a JSON body.
    pub fn send(&self, method: &str, path: &str, body: &str) -> Answer {
        let mut b = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("content-type", "application/json");
        if let Some(t) = &self.token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        answer(self.agent.run(b.body(body.to_string()).expect("request")))
    }
}

impl Drop for Cloud {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A device client that signs its requests. Clones share one connection
/// pool, so several threads can upload as the same device.
#[derive(Clone)]
pub struct Device {
    /// Device id.
    pub id: String,
    /// Its secret.
    pub secret: String,
    base: String,
    clock_file: Option<PathBuf>,
    agent: ureq::Agent,
}

impl Device {
    /// A client for `id` with `secret` (to forge requests).
    pub fn with_secret(&self, id: &str, secret: &str) -> Device {
        Device {
            id: id.to_string(),
            secret: secret.to_string(),
            base: self.base.clone(),
            clock_file: self.clock_file.clone(),
            agent: agent(),
        }
    }

    /// Signed headers for a request; `digest` is the body's SHA-256 hex or
    /// `STREAMING`.
    pub fn headers(&self, method: &str, path_q: &str, digest: &str) -> Vec<(String, String)> {
        let (path, query) = path_q.split_once('?').unwrap_or((path_q, ""));
        let nonce = auth::random_secret()[..32].to_string();
        let ts = Clock::new(self.clock_file.clone()).now_ms() / 1000;
        let req = SignedRequest {
            method,
            path,
            query,
            device: &self.id,
            timestamp: ts,
            nonce: &nonce,
            content_sha256: digest,
        };
        vec![
            (auth::H_DEVICE.into(), self.id.clone()),
            (auth::H_TIMESTAMP.into(), ts.to_string()),
            (auth::H_NONCE.into(), nonce.clone()),
            (auth::H_CONTENT_SHA256.into(), digest.to_string()),
            ("authorization".into(), req.authorization(&self.secret)),
        ]
    }

    /// Sends a request with the given headers and body.
    pub fn send_with(
        &self,
        method: &str,
        path_q: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
    ) -> Answer {
        let mut b = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path_q}", self.base));
        for (k, v) in headers {
            b = b.header(k, v);
        }
        answer(self.agent.run(b.body(body).expect("request")))
    }

    /// A signed request with a whole body.
    pub fn send(&self, method: &str, path_q: &str, body: &[u8]) -> Answer {
        let mut h = self.headers(method, path_q, &auth::sha256_hex(body));
        if !body.is_empty() {
            // The service may refuse (401, 403, 410, 413, 507) without
            // reading the body; sent only once it asks, the body cannot
            // meet a closed connection (a broken pipe instead of the answer).
            h.push(("expect".into(), "100-continue".into()));
        }
        self.send_with(method, path_q, &h, body.to_vec())
    }

    /// A signed JSON request.
    pub fn json(&self, method: &str, path_q: &str, v: &serde_json::Value) -> Answer {
        self.send(method, path_q, v.to_string().as_bytes())
    }

    /// A signed streaming upload (chunked, digest `STREAMING`) from `reader`.
    pub fn stream(&self, path_q: &str, reader: &mut dyn Read) -> Answer {
        let h = self.headers("PUT", path_q, auth::STREAMING);
        // 100-continue lets the service refuse (403, 413, 507) before the
        // body is sent, instead of cutting the connection under it.
        let mut b = self
            .agent
            .put(format!("{}{path_q}", self.base))
            .header("expect", "100-continue");
        for (k, v) in &h {
            b = b.header(k, v);
        }
        answer(b.send(ureq::SendBody::from_reader(reader)))
    }

    /// Uploads a segment the way the engine does: streams `data` to
    /// `PUT /v1/device/segments/{id}?{query}` and, once the service has
    /// received it, commits it with `commit` (`sha256`, `bytes` and the end
    /// fields; docs/ref/protocol.md). Returns the `PUT`'s answer when it is
    /// not 200, else the commit's.
    pub fn upload_segment(
        &self,
        id: &str,
        query: &str,
        data: &[u8],
        commit: &serde_json::Value,
    ) -> Answer {
        let put = self.stream(&format!("/v1/device/segments/{id}?{query}"), &mut &data[..]);
        if put.status != 200 {
            return put;
        }
        assert_eq!(put.json()["state"], "received", "{}", put.text());
        self.json("POST", &format!("/v1/device/segments/{id}/commit"), commit)
    }
}
