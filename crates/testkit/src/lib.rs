//! Test support shared by the HTTP and end-to-end suites: a real SMTP server that keeps what
//! it receives, so tests read the emails the product sent; a stand-in for third-party JSON
//! APIs; a MaxMind test database.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test support panics on broken tests"
)]

mod http_stub;

pub use http_stub::{HttpStub, StubReply};

/// MaxMind's GeoIP2 City test database (see `fixtures/README.md` for its documented addresses).
pub const GEOIP2_CITY_TEST_DB: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/GeoIP2-City-Test.mmdb"
);

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpListener;

/// One received email.
#[derive(Clone, Debug)]
pub struct ReceivedMail {
    pub to: Vec<String>,
    /// The message with quoted-printable soft breaks and escapes decoded.
    pub body: String,
}

impl ReceivedMail {
    /// The value of the first `token=` query parameter in the message.
    #[must_use]
    pub fn token(&self) -> Option<String> {
        let start = self.body.find("token=")? + "token=".len();
        let token: String = self.body[start..]
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .collect();
        (!token.is_empty()).then_some(token)
    }

    #[must_use]
    pub fn subject(&self) -> String {
        self.body
            .lines()
            .find_map(|l| l.strip_prefix("Subject: "))
            .unwrap_or_default()
            .to_owned()
    }
}

/// An SMTP server on a free loopback port.
#[derive(Clone)]
pub struct SmtpSink {
    pub port: u16,
    mail: Arc<Mutex<Vec<ReceivedMail>>>,
}

fn decode_quoted_printable(raw: &str) -> String {
    let joined = raw.replace("=\r\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len()
            && let Ok(byte) = u8::from_str_radix(&joined[i + 1..i + 3], 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl SmtpSink {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mail = Arc::new(Mutex::new(Vec::new()));
        let store = Arc::clone(&mail);
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    let (read, mut write) = socket.into_split();
                    let mut lines = BufReader::new(read);
                    let _ = write.write_all(b"220 testkit ESMTP\r\n").await;
                    let mut to = Vec::new();
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let command = line.trim_end().to_ascii_uppercase();
                        let reply: &[u8] = if command.starts_with("EHLO") {
                            b"250-testkit\r\n250 8BITMIME\r\n"
                        } else if command.starts_with("RCPT TO:") {
                            to.push(
                                line.trim_end()[8..]
                                    .trim_matches(|c| c == '<' || c == '>' || c == ' ')
                                    .to_owned(),
                            );
                            b"250 OK\r\n"
                        } else if command == "DATA" {
                            let _ = write.write_all(b"354 go ahead\r\n").await;
                            let mut data = String::new();
                            loop {
                                line.clear();
                                if lines.read_line(&mut line).await.unwrap_or(0) == 0
                                    || line == ".\r\n"
                                {
                                    break;
                                }
                                data.push_str(&line);
                            }
                            let body = decode_quoted_printable(&data);
                            store.lock().unwrap().push(ReceivedMail {
                                to: std::mem::take(&mut to),
                                body,
                            });
                            b"250 queued\r\n"
                        } else if command == "QUIT" {
                            let _ = write.write_all(b"221 bye\r\n").await;
                            return;
                        } else {
                            b"250 OK\r\n"
                        };
                        if write.write_all(reply).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Self { port, mail }
    }

    #[must_use]
    pub fn received(&self) -> Vec<ReceivedMail> {
        self.mail.lock().unwrap().clone()
    }

    /// Waits (up to 15 s) for a message to `to` whose subject contains `subject`.
    pub async fn wait_for(&self, to: &str, subject: &str) -> ReceivedMail {
        for _ in 0..150 {
            let found = self
                .received()
                .into_iter()
                .find(|m| m.to.iter().any(|t| t == to) && m.subject().contains(subject));
            if let Some(mail) = found {
                return mail;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "no email to {to} with subject containing {subject:?}; received: {:?}",
            self.received()
        );
    }
}

/// A MongoDB wire-protocol server (nx-27017, through `scripts/nx_27017_exact.py`) on a free
/// port, in memory, stopped on drop.
pub struct MongoStandIn {
    port: u16,
    child: std::process::Child,
}

impl MongoStandIn {
    /// Starts it with `$NX_27017_PYTHON` (default: the repository's `.venv/bin/python`, where
    /// `scripts/test.sh` installs nx-27017).
    pub async fn start() -> Self {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
        let binary =
            std::env::var("NX_27017_PYTHON").unwrap_or_else(|_| format!("{root}/.venv/bin/python"));
        let port = free_port();
        let child = std::process::Command::new(&binary)
            .arg(format!("{root}/scripts/nx_27017_exact.py"))
            .args([
                "--db",
                "memory",
                "--host",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            // It refuses a second instance unless each has its own pid file.
            .arg("--pid-file")
            .arg(std::env::temp_dir().join(format!("nx-27017-{port}.pid")))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {binary} ({e}); run scripts/test.sh, which installs it")
            });
        let server = Self { port, child };
        for _ in 0..600 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("nx-27017 did not start on port {port}");
    }

    #[must_use]
    pub fn uri(&self) -> String {
        format!("mongodb://127.0.0.1:{}/?directConnection=true", self.port)
    }
}

impl Drop for MongoStandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port that was free a moment ago.
#[must_use]
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

/// A real binary of this workspace, built on demand and run in a scratch directory with the
/// given environment; killed on drop if still running.
pub struct RunningBinary {
    pub child: std::process::Child,
    pub port: u16,
}

/// Builds (when stale) and returns the path of the workspace binary `name`.
#[must_use]
pub fn workspace_binary(name: &str) -> std::path::PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut build = std::process::Command::new(cargo);
    build
        .args(["build", "-q", "--workspace", "--bins"])
        .current_dir(&root);
    // Cargo sets per-package variables for the running test; build scripts that track them
    // (ring tracks CARGO_MANIFEST_DIR) would otherwise rebuild on every nested build.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO_") && key != "CARGO_HOME" && key != "CARGO_TARGET_DIR" {
            build.env_remove(key.as_ref());
        }
    }
    let status = build.status().expect("cargo runs");
    assert!(status.success(), "building {name} failed");
    let target = std::env::var("CARGO_TARGET_DIR")
        .map_or_else(|_| root.join("target"), std::path::PathBuf::from);
    target.join("debug").join(name)
}

impl RunningBinary {
    /// Starts `name` in `dir` with `env` (on top of a minimal inherited environment).
    pub fn start(name: &str, dir: &std::path::Path, env: &[(&str, String)]) -> Self {
        let port = free_port();
        let mut command = std::process::Command::new(workspace_binary(name));
        command
            .current_dir(dir)
            .env("PORT", port.to_string())
            .env("LOG_LEVEL", "warn");
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("binary starts");
        Self { child, port }
    }

    /// Waits until `GET /api/v1/health` answers 200.
    pub async fn wait_healthy(&mut self) {
        let url = format!("http://127.0.0.1:{}/api/v1/health", self.port);
        for _ in 0..300 {
            if let Ok(response) = reqwest_get(&url).await
                && response
            {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the binary exited early with {status}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the binary did not become healthy");
    }

    /// Sends SIGTERM and waits (up to 20 s) for the exit status.
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        for _ in 0..200 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the process did not stop after SIGTERM");
    }
}

/// Whether a plain HTTP GET to `url` answers 200, without an HTTP client dependency.
async fn reqwest_get(url: &str) -> std::io::Result<bool> {
    use tokio::io::AsyncReadExt as _;
    let rest = url.trim_start_matches("http://");
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut stream = tokio::net::TcpStream::connect(host).await?;
    stream
        .write_all(
            format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await?;
    Ok(head.ends_with(b"200"))
}

impl Drop for RunningBinary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
