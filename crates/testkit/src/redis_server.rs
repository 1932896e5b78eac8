//! A real `redis-server` on a free port, in memory (no RDB, no AOF), for the Redis adapter's
//! contract tests and the end-to-end tests. `scripts/test.sh` installs it when missing.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::free_port;

pub struct RedisServer {
    port: u16,
    child: Child,
    /// With TLS: the folder of its certificate files, and the CA's PEM for clients.
    tls: Option<(tempfile::TempDir, String)>,
}

impl RedisServer {
    /// Starts one, stopped on drop (also when a test panics). Each test starting its own
    /// keeps tests apart; a start takes a few milliseconds.
    pub async fn start() -> Self {
        Self::start_on(free_port()).await
    }

    /// One on `port` (a test that starts its clients first picks the port).
    pub async fn start_on(port: u16) -> Self {
        let server = Self::spawn(port, &["--port", &port.to_string()], None);
        server.wait_until_listening().await;
        server
    }

    /// One that speaks only TLS, with a certificate from a CA generated for it
    /// ([`RedisServer::ca_pem`]).
    pub async fn start_tls() -> Self {
        let port = free_port();
        let folder = tempfile::tempdir().unwrap();
        let certificates = crate::TestCertificates::generate("testkit redis-server");
        let file = |name: &str, content: &str| {
            let path = folder.path().join(name);
            std::fs::write(&path, content).unwrap();
            path.display().to_string()
        };
        let (cert, key, ca) = (
            file("server.pem", &certificates.server.pem()),
            file("server.key", &certificates.server_key.serialize_pem()),
            file("ca.pem", &certificates.ca_pem),
        );
        let args = [
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--tls-cert-file",
            &cert,
            "--tls-key-file",
            &key,
            "--tls-ca-cert-file",
            &ca,
            "--tls-auth-clients",
            "no",
        ];
        let server = Self::spawn(port, &args, Some((folder, certificates.ca_pem.clone())));
        server.wait_until_listening().await;
        server
    }

    fn spawn(port: u16, listen: &[&str], tls: Option<(tempfile::TempDir, String)>) -> Self {
        let child = Command::new("redis-server")
            .args(listen)
            .args([
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--loglevel",
                "warning",
                // Tests may stall it (`DEBUG SLEEP`) to see what a slow Redis does.
                "--enable-debug-command",
                "yes",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start redis-server ({e}); run scripts/test.sh, which installs it")
            });
        Self { port, child, tls }
    }

    async fn wait_until_listening(&self) {
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("redis-server did not start on port {}", self.port);
    }

    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://…`, or `rediss://…` for a TLS server.
    #[must_use]
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// The PEM of the CA that issued a TLS server's certificate.
    #[must_use]
    pub fn ca_pem(&self) -> Option<&str> {
        self.tls.as_ref().map(|(_, pem)| pem.as_str())
    }

    /// Stops the server (as a crash would: no goodbye to clients).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
