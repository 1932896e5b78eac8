//! Test support shared by the HTTP and end-to-end suites: a real SMTP server that keeps what
//! it receives, so tests read the emails the product sent, and can offer STARTTLS or implicit
//! TLS with a certificate from a CA generated for it; a stand-in for third-party JSON APIs; a
//! MaxMind test database; a real `redis-server` on a free port.
//!
//! Also a MongoDB stand-in (nx-27017, `MongoStandIn`), `RunningBinary` for the workspace's real
//! binaries, and `free_port`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test support panics on broken tests"
)]

mod http_stub;
mod redis_server;

pub use http_stub::{HttpStub, StubReply};
pub use redis_server::{RedisCluster, RedisSentinel, RedisServer, SENTINEL_SERVICE};

/// Whether a test that needs `what` (an outside server, the built binaries, a browser, Node)
/// skips: unless `CI` or `RUN_SLOW_TESTS` is set, it does, saying so, so that a plain
/// `cargo test` passes on a machine with none of them. The README's test command sets
/// `RUN_SLOW_TESTS`, so there nothing skips: a missing server fails its tests.
#[must_use]
pub fn skip_without(what: &str) -> bool {
    if std::env::var_os("CI").is_some() || std::env::var_os("RUN_SLOW_TESTS").is_some() {
        return false;
    }
    eprintln!("skipped: needs {what}; set RUN_SLOW_TESTS=1 to run it (the test command does)");
    true
}

/// Returns from the test at once when [`skip_without`] says it skips.
#[macro_export]
macro_rules! needs {
    ($what:expr) => {
        if $crate::skip_without($what) {
            return;
        }
    };
}

/// MaxMind's GeoIP2 City test database (see `fixtures/README.md` for its documented addresses).
pub const GEOIP2_CITY_TEST_DB: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/fixtures/GeoIP2-City-Test.mmdb"
);

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use tokio::io::{AsyncBufReadExt as _, AsyncRead, AsyncWrite, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::PrivateKeyDer;

/// One received email.
#[derive(Clone, Debug)]
pub struct ReceivedMail {
    pub to: Vec<String>,
    /// The message with quoted-printable soft breaks and escapes decoded.
    pub body: String,
    /// Whether the message travelled inside TLS.
    pub tls: bool,
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

/// Credentials a client sent with `AUTH PLAIN`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Login {
    pub user: String,
    pub password: String,
    /// Whether they travelled inside TLS.
    pub over_tls: bool,
}

/// How the sink protects connections.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SinkTls {
    /// Plain SMTP; STARTTLS is not offered.
    #[default]
    None,
    /// Offers STARTTLS and upgrades the connection when asked.
    StartTls,
    /// TLS from the first byte (SMTPS).
    Implicit,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct SinkOptions {
    pub tls: SinkTls,
    /// Offers `AUTH PLAIN`, on plain connections too, as careless servers do: a client that
    /// sends credentials before TLS is then caught doing so.
    pub auth: bool,
}

#[derive(Default)]
struct Received {
    mail: Vec<ReceivedMail>,
    logins: Vec<Login>,
}

/// An SMTP server on a free loopback port.
#[derive(Clone)]
pub struct SmtpSink {
    pub port: u16,
    received: Arc<Mutex<Received>>,
    ca_pem: Option<String>,
    /// While set, every recipient is refused with a temporary error (451), as a relay that is
    /// down or overloaded answers.
    down: Arc<std::sync::atomic::AtomicBool>,
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

/// A fresh CA and a server certificate it issued for `localhost` and `127.0.0.1`.
pub struct TestCertificates {
    /// The CA, for clients to trust.
    pub ca_pem: String,
    pub server: rcgen::Certificate,
    pub server_key: KeyPair,
}

impl TestCertificates {
    #[must_use]
    pub fn generate(name: &str) -> Self {
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, format!("{name} CA"));
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_key = KeyPair::generate().unwrap();
        let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
        let issuer = Issuer::new(ca, ca_key);
        let mut server =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        server.distinguished_name.push(DnType::CommonName, name);
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_key = KeyPair::generate().unwrap();
        let server = server.signed_by(&server_key, &issuer).unwrap();
        Self {
            ca_pem,
            server,
            server_key,
        }
    }
}

/// A fresh CA (returned as PEM, for the client to trust) and a server configuration whose
/// certificate it issued.
fn generated_tls() -> (TlsAcceptor, String) {
    let certificates = TestCertificates::generate("testkit SMTP sink");
    let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![certificates.server.der().clone()],
            PrivateKeyDer::Pkcs8(certificates.server_key.serialize_der().into()),
        )
        .unwrap();
    (TlsAcceptor::from(Arc::new(config)), certificates.ca_pem)
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

type Connection = BufReader<Box<dyn Io>>;

async fn reply(connection: &mut Connection, text: &[u8]) -> std::io::Result<()> {
    connection.write_all(text).await?;
    // TLS buffers records until flushed.
    connection.flush().await
}

/// One SMTP session; returns when the client quits or the connection fails.
async fn serve(
    socket: TcpStream,
    options: SinkOptions,
    acceptor: Option<TlsAcceptor>,
    received: Arc<Mutex<Received>>,
    down: Arc<std::sync::atomic::AtomicBool>,
) -> std::io::Result<()> {
    let mut tls = options.tls == SinkTls::Implicit;
    let stream: Box<dyn Io> = match &acceptor {
        Some(acceptor) if tls => Box::new(acceptor.accept(socket).await?),
        _ => Box::new(socket),
    };
    let mut connection: Connection = BufReader::new(stream);
    reply(&mut connection, b"220 testkit ESMTP\r\n").await?;
    let mut to = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if connection.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_ascii_uppercase();
        if command.starts_with("EHLO") {
            let mut features = String::from("250-testkit\r\n");
            if options.tls == SinkTls::StartTls && !tls {
                features.push_str("250-STARTTLS\r\n");
            }
            if options.auth {
                features.push_str("250-AUTH PLAIN\r\n");
            }
            features.push_str("250 8BITMIME\r\n");
            reply(&mut connection, features.as_bytes()).await?;
        } else if command == "STARTTLS"
            && !tls
            && let Some(acceptor) = acceptor
                .as_ref()
                .filter(|_| options.tls == SinkTls::StartTls)
        {
            reply(&mut connection, b"220 ready to start TLS\r\n").await?;
            // Dropping the read buffer discards anything sent in clear after STARTTLS, as
            // RFC 3207 requires, and the session starts over (RFC 3207 4.2).
            let plain = connection.into_inner();
            connection = BufReader::new(Box::new(acceptor.accept(plain).await?));
            tls = true;
            to.clear();
        } else if command.starts_with("AUTH PLAIN ") && options.auth {
            let decoded = BASE64
                .decode(line.trim_end()[11..].trim())
                .unwrap_or_default();
            let mut parts = decoded
                .split(|b| *b == 0)
                .map(|p| String::from_utf8_lossy(p).into_owned());
            let (_authorization, user, password) = (parts.next(), parts.next(), parts.next());
            received.lock().unwrap().logins.push(Login {
                user: user.unwrap_or_default(),
                password: password.unwrap_or_default(),
                over_tls: tls,
            });
            reply(&mut connection, b"235 2.7.0 accepted\r\n").await?;
        } else if command.starts_with("RCPT TO:") && down.load(std::sync::atomic::Ordering::SeqCst)
        {
            reply(&mut connection, b"451 4.3.0 try again later\r\n").await?;
        } else if command.starts_with("RCPT TO:") {
            to.push(
                line.trim_end()[8..]
                    .trim_matches(|c| c == '<' || c == '>' || c == ' ')
                    .to_owned(),
            );
            reply(&mut connection, b"250 OK\r\n").await?;
        } else if command == "DATA" {
            reply(&mut connection, b"354 go ahead\r\n").await?;
            let mut data = String::new();
            loop {
                line.clear();
                if connection.read_line(&mut line).await? == 0 || line == ".\r\n" {
                    break;
                }
                data.push_str(&line);
            }
            received.lock().unwrap().mail.push(ReceivedMail {
                to: std::mem::take(&mut to),
                body: decode_quoted_printable(&data),
                tls,
            });
            reply(&mut connection, b"250 queued\r\n").await?;
        } else if command == "QUIT" {
            return reply(&mut connection, b"221 bye\r\n").await;
        } else if command.starts_with("STARTTLS") || command.starts_with("AUTH") {
            reply(&mut connection, b"502 not offered\r\n").await?;
        } else {
            reply(&mut connection, b"250 OK\r\n").await?;
        }
    }
}

impl SmtpSink {
    /// A plain sink: no STARTTLS, no AUTH.
    pub async fn start() -> Self {
        Self::start_with(SinkOptions::default()).await
    }

    pub async fn start_with(options: SinkOptions) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (acceptor, ca_pem) = match options.tls {
            SinkTls::None => (None, None),
            SinkTls::StartTls | SinkTls::Implicit => {
                let (acceptor, ca_pem) = generated_tls();
                (Some(acceptor), Some(ca_pem))
            }
        };
        let received = Arc::new(Mutex::new(Received::default()));
        let store = Arc::clone(&received);
        let down = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let refusing = Arc::clone(&down);
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                // A failed handshake or a dropped connection ends that session only.
                tokio::spawn(serve(
                    socket,
                    options,
                    acceptor.clone(),
                    Arc::clone(&store),
                    Arc::clone(&refusing),
                ));
            }
        });
        Self {
            port,
            received,
            ca_pem,
            down,
        }
    }

    /// Refuses (true) or accepts (false) mail from now on.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, std::sync::atomic::Ordering::SeqCst);
    }

    /// The PEM certificate of the CA that issued this sink's certificate.
    ///
    /// # Panics
    /// When the sink was started without TLS.
    #[must_use]
    pub fn ca_pem(&self) -> &str {
        self.ca_pem
            .as_deref()
            .expect("the sink was started with TLS")
    }

    #[must_use]
    pub fn received(&self) -> Vec<ReceivedMail> {
        self.received.lock().unwrap().mail.clone()
    }

    /// Every `AUTH PLAIN` the sink was sent, on any connection.
    #[must_use]
    pub fn logins(&self) -> Vec<Login> {
        self.received.lock().unwrap().logins.clone()
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
/// port, in memory, stopped on drop or when this process ends.
pub struct MongoStandIn {
    port: u16,
    child: std::process::Child,
}

impl MongoStandIn {
    /// Starts one with `$NX_27017_PYTHON` (default: the repository's `.venv/bin/python`, where
    /// `scripts/test.sh` installs nx-27017).
    pub async fn start() -> Self {
        Self::start_on(free_port()).await
    }

    /// One on `port` (a test that starts its clients first picks the port).
    pub async fn start_on(port: u16) -> Self {
        let server = Self::spawn_on(port);
        server.wait_until_listening().await;
        server
    }

    /// One stand-in for the whole test process, started by the first caller. It is never
    /// dropped: it stops when the process ends, which closes the pipe to its standard input.
    /// Tests that share it keep apart by database name.
    pub async fn shared() -> &'static Self {
        static SHARED: std::sync::OnceLock<MongoStandIn> = std::sync::OnceLock::new();
        let server = SHARED.get_or_init(|| Self::spawn_on(free_port()));
        server.wait_until_listening().await;
        server
    }

    fn spawn_on(port: u16) -> Self {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
        let binary = venv_python();
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
            .env("NX_27017_EXIT_WITH_STDIN", "1")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {} ({e}); run scripts/test.sh, which installs it",
                    binary.display()
                )
            });
        Self { port, child }
    }

    async fn wait_until_listening(&self) {
        wait_until_listening(self.port, "nx-27017").await;
    }

    #[must_use]
    pub fn uri(&self) -> String {
        format!("mongodb://127.0.0.1:{}/?directConnection=true", self.port)
    }
}

/// The Python of the repository's virtualenv, where `scripts/test.sh` installs the Python
/// stand-ins: `$NX_27017_PYTHON`, default `.venv/bin/python`.
fn venv_python() -> std::path::PathBuf {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    std::env::var_os("NX_27017_PYTHON")
        .map_or_else(|| format!("{root}/.venv/bin/python").into(), Into::into)
}

/// A program of that virtualenv (beside its Python).
fn venv_program(name: &str) -> std::path::PathBuf {
    venv_python().with_file_name(name)
}

/// An S3-compatible server on a free port: moto's server mode (PyPI `moto[server]`, in the
/// virtualenv), which keeps buckets in memory and takes any credentials.
pub struct S3StandIn {
    port: u16,
    child: std::process::Child,
}

impl S3StandIn {
    pub async fn start() -> Self {
        let port = free_port();
        let program = venv_program("moto_server");
        let child = std::process::Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {} ({e}); run scripts/test.sh, which installs it",
                    program.display()
                )
            });
        wait_until_listening(port, "moto_server").await;
        Self { port, child }
    }

    /// The endpoint clients are given (path-style requests).
    #[must_use]
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates a bucket of a new name and answers the name.
    pub async fn create_bucket(&self) -> String {
        static CREATED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let name = format!(
            "console-{}-{}",
            std::process::id(),
            CREATED.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).await.unwrap();
        stream
            .write_all(
                format!(
                    "PUT /{name} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    self.port
                )
                .as_bytes(),
            )
            .await
            .unwrap();
        let mut answer = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut stream, &mut answer)
            .await
            .unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "creating {name}: {answer}"
        );
        name
    }
}

/// nginx (Debian's package) in the foreground, serving a site configuration (the `server` and
/// `upstream` blocks of `deploy/nginx/console.conf`, ports filled in) under a main
/// configuration of its own in a temporary folder.
pub struct Nginx {
    pub port: u16,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Nginx {
    /// Starts nginx on `port` with `site`, and waits until it listens.
    pub async fn start(port: u16, site: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name).display().to_string();
        std::fs::write(path("console.conf"), site).unwrap();
        // Run as root (CI is), nginx would hand requests to workers of user `nobody`, which
        // cannot write the temporary folder: keep the workers as the user that starts it.
        let root = std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|out| out.stdout.starts_with(b"0\n"));
        let user = if root { "user root;" } else { "" };
        let main = format!(
            "{user}\ndaemon off;\nworker_processes 1;\npid {};\nerror_log {} warn;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {};\n  proxy_temp_path {};\n\
             fastcgi_temp_path {};\n  uwsgi_temp_path {};\n  scgi_temp_path {};\n\
             include {};\n}}\n",
            path("nginx.pid"),
            path("error.log"),
            path("body"),
            path("proxy"),
            path("fastcgi"),
            path("uwsgi"),
            path("scgi"),
            path("console.conf"),
        );
        std::fs::write(path("nginx.conf"), main).unwrap();
        // Debian puts it in /usr/sbin, which a user's PATH may leave out.
        let program = ["/usr/sbin/nginx", "nginx"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .unwrap_or("nginx");
        let child = std::process::Command::new(program)
            .args([
                "-c",
                &path("nginx.conf"),
                "-p",
                &dir.path().display().to_string(),
            ])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start nginx ({e}); run scripts/test.sh, which installs it")
            });
        wait_until_listening(port, "nginx").await;
        Self {
            port,
            child,
            _dir: dir,
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for S3StandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for MongoStandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until something listens on `port` on loopback. A start takes seconds on a loaded
/// machine (Python's, or anything's during parallel builds and test runs): allow two minutes
/// before calling `what` broken.
pub(crate) async fn wait_until_listening(port: u16, what: &str) {
    for _ in 0..2400 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} did not start on port {port}");
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
        // Ready, not only live: a process waiting for its storage or queue at start already
        // answers the liveness probe.
        let url = format!("http://127.0.0.1:{}/api/v1/health/ready", self.port);
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

/// The NestJS-shaped database of `tests/fixtures/nestjs-database.json`: its Mongoose indexes,
/// then its documents, written into `database` at `uri` as the NestJS version left them.
pub async fn load_nestjs_fixture(uri: &str, database: &str) {
    use mongodb::bson::{Bson, Document, doc};
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/nestjs-database.json"
    );
    let text = std::fs::read_to_string(path).expect("the fixture is readable");
    let fixture: serde_json::Value = serde_json::from_str(&text).expect("the fixture is JSON");
    let as_document = |value: &serde_json::Value| match Bson::try_from(value.clone()) {
        Ok(Bson::Document(document)) => document,
        other => panic!("not a document: {other:?}"),
    };
    let client = mongodb::Client::with_uri_str(uri)
        .await
        .expect("the stand-in answers");
    let db = client.database(database);
    for (collection, indexes) in fixture["indexes"].as_object().expect("indexes") {
        let indexes: Vec<Document> = indexes
            .as_array()
            .expect("a list of indexes")
            .iter()
            .map(as_document)
            .collect();
        db.run_command(doc! { "createIndexes": collection, "indexes": indexes })
            .await
            .expect("the fixture's indexes are created");
    }
    for (collection, documents) in fixture["documents"].as_object().expect("documents") {
        let documents: Vec<Document> = documents
            .as_array()
            .expect("a list of documents")
            .iter()
            .map(as_document)
            .collect();
        db.collection::<Document>(collection)
            .insert_many(documents)
            .await
            .expect("the fixture's documents are stored");
    }
}

/// Raw documents of `collection` in `database`, as stored.
pub async fn stored_documents(
    uri: &str,
    database: &str,
    collection: &str,
    filter: mongodb::bson::Document,
) -> Vec<mongodb::bson::Document> {
    use futures_util::TryStreamExt as _;
    let client = mongodb::Client::with_uri_str(uri)
        .await
        .expect("the stand-in answers");
    client
        .database(database)
        .collection::<mongodb::bson::Document>(collection)
        .find(filter)
        .await
        .expect("find")
        .try_collect()
        .await
        .expect("documents")
}
