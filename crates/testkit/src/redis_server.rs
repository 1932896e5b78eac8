//! A real `redis-server` on a free port, in memory (no RDB, no AOF), for the Redis adapter's
//! contract tests and the end-to-end tests; also a three-master Redis Cluster
//! ([`RedisCluster`]) and a master with a replica under a Sentinel ([`RedisSentinel`]), made of
//! the same binary. `scripts/test.sh` installs it when missing.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::free_port;

pub struct RedisServer {
    port: u16,
    child: Child,
    /// What it was started with, after the defaults.
    args: Vec<String>,
    /// Its working directory: a replica writes the RDB it receives there, which a server
    /// started later in a shared directory would load.
    dir: tempfile::TempDir,
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
        Self::start_with(port, &[]).await
    }

    /// One on `port` with more of redis-server's options.
    async fn start_with(port: u16, options: &[&str]) -> Self {
        let mut listen = vec!["--port".to_owned(), port.to_string()];
        listen.extend(options.iter().map(|&option| option.to_owned()));
        let listen: Vec<&str> = listen.iter().map(String::as_str).collect();
        let server = Self::spawn(port, &listen, None);
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
        let dir = tempfile::tempdir().unwrap();
        let args: Vec<String> = listen.iter().map(|&arg| arg.to_owned()).collect();
        let child = Self::run(&args, &dir);
        Self {
            port,
            child,
            args,
            dir,
            tls,
        }
    }

    /// redis-server with `args` after the defaults (a later option wins), working in `dir`.
    fn run(args: &[String], dir: &tempfile::TempDir) -> Child {
        Command::new("redis-server")
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
            .args(args)
            .arg("--dir")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start redis-server ({e}); run scripts/test.sh, which installs it")
            })
    }

    /// One that keeps what it acknowledged as production should (an append-only file synced
    /// at every write), so that [`RedisServer::restart`] finds it again.
    pub async fn start_durable() -> Self {
        Self::start_with(
            free_port(),
            &["--appendonly", "yes", "--appendfsync", "always"],
        )
        .await
    }

    /// Starts it again after [`RedisServer::kill`], on its port, with its files.
    pub async fn restart(&mut self) {
        self.kill();
        self.child = Self::run(&self.args, &self.dir);
        self.wait_until_listening().await;
    }

    async fn wait_until_listening(&self) {
        crate::wait_until_listening(self.port, "redis-server").await;
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

/// `redis-cli -p port args…`'s answer, trimmed.
fn cli(port: u16, args: &[&str]) -> String {
    let output = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run redis-cli ({e})"));
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Waits up to thirty seconds (a loaded machine) for `done` to hold.
async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..600 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} did not happen within thirty seconds");
}

/// A Redis Cluster of three masters (no replicas) on free ports, each slot assigned.
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
    _folder: tempfile::TempDir,
}

impl RedisCluster {
    /// Starts the nodes, joins them and waits until every node reports the cluster ok.
    pub async fn start() -> Self {
        let folder = tempfile::tempdir().unwrap();
        let mut nodes = Vec::new();
        for _ in 0..3 {
            let port = free_port();
            let config = folder.path().join(format!("nodes-{port}.conf"));
            let config = config.display().to_string();
            // The bus port is the client port + 10000 unless named, which from an ephemeral
            // port may be taken or past 65535.
            let bus = free_port().to_string();
            let options = [
                "--cluster-enabled",
                "yes",
                "--cluster-port",
                &bus,
                "--cluster-config-file",
                &config,
                "--cluster-node-timeout",
                "2000",
            ];
            nodes.push(RedisServer::start_with(port, &options).await);
        }
        let addresses: Vec<String> = nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port))
            .collect();
        let first = nodes[0].port;
        let mut create = vec!["--cluster", "create"];
        create.extend(addresses.iter().map(String::as_str));
        create.push("--cluster-yes");
        let created = cli(first, &create);
        let ports: Vec<u16> = nodes.iter().map(|node| node.port).collect();
        let what = format!("the cluster's agreement ({created})");
        wait_for(&what, || {
            ports
                .iter()
                .all(|&port| cli(port, &["cluster", "info"]).contains("cluster_state:ok"))
        })
        .await;
        Self {
            nodes,
            _folder: folder,
        }
    }

    /// `redis-cluster://` with every node.
    #[must_use]
    pub fn url(&self) -> String {
        let (first, others) = self.nodes.split_first().unwrap();
        let others: Vec<String> = others
            .iter()
            .map(|node| format!("node=127.0.0.1:{}", node.port))
            .collect();
        format!(
            "redis-cluster://127.0.0.1:{}?{}",
            first.port,
            others.join("&")
        )
    }

    /// The port of each master.
    #[must_use]
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|node| node.port).collect()
    }

    /// The port of the master that serves `key`'s slot.
    #[must_use]
    pub fn owner_of(&self, key: &str) -> u16 {
        let slot = cli(self.nodes[0].port, &["cluster", "keyslot", key]);
        let slot: u32 = slot.parse().unwrap();
        // A line of `cluster nodes`: id ip:port@bus flags master epochs… link-state ranges….
        for node in cli(self.nodes[0].port, &["cluster", "nodes"]).lines() {
            let fields: Vec<&str> = node.split_whitespace().collect();
            let serves = fields.iter().skip(8).any(|range| {
                let (start, end) = range.split_once('-').unwrap_or((range, range));
                match (start.parse::<u32>(), end.parse::<u32>()) {
                    (Ok(start), Ok(end)) => (start..=end).contains(&slot),
                    _ => false,
                }
            });
            if serves {
                let address = fields[1].split('@').next().unwrap();
                return address.rsplit(':').next().unwrap().parse().unwrap();
            }
        }
        panic!("no master serves slot {slot}");
    }
}

/// A master with one replica, watched by one Sentinel that promotes the replica when asked
/// ([`RedisSentinel::failover`]) or when the master dies.
pub struct RedisSentinel {
    master: RedisServer,
    replica: RedisServer,
    sentinel: Child,
    sentinel_port: u16,
    _folder: tempfile::TempDir,
}

/// The name the Sentinel knows the master by.
pub const SENTINEL_SERVICE: &str = "console";

impl RedisSentinel {
    /// Starts the three and waits until the Sentinel knows the replica (it can fail over).
    pub async fn start() -> Self {
        let master = RedisServer::start().await;
        let replica_port = free_port();
        let master_port = master.port.to_string();
        let replica =
            RedisServer::start_with(replica_port, &["--replicaof", "127.0.0.1", &master_port])
                .await;
        let folder = tempfile::tempdir().unwrap();
        let sentinel_port = free_port();
        let config = folder.path().join("sentinel.conf");
        std::fs::write(
            &config,
            format!(
                "port {sentinel_port}\nbind 127.0.0.1\ndaemonize no\n\
                 sentinel monitor {SENTINEL_SERVICE} 127.0.0.1 {master_port} 1\n\
                 sentinel down-after-milliseconds {SENTINEL_SERVICE} 1000\n\
                 sentinel failover-timeout {SENTINEL_SERVICE} 5000\n"
            ),
        )
        .unwrap();
        let sentinel = Command::new("redis-server")
            .arg(&config)
            .arg("--sentinel")
            .current_dir(folder.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start redis-server --sentinel ({e})"));
        crate::wait_until_listening(sentinel_port, "redis-sentinel").await;
        let watched = Self {
            master,
            replica,
            sentinel,
            sentinel_port,
            _folder: folder,
        };
        wait_for("the replica's sync", || {
            cli(replica_port, &["info", "replication"]).contains("master_link_status:up")
        })
        .await;
        wait_for("the Sentinel's discovery of the replica", || {
            cli(sentinel_port, &["sentinel", "replicas", SENTINEL_SERVICE])
                .contains(&replica_port.to_string())
        })
        .await;
        watched
    }

    /// `redis-sentinel://` naming the Sentinel and the service.
    #[must_use]
    pub fn url(&self) -> String {
        format!(
            "redis-sentinel://127.0.0.1:{}/0?sentinelServiceName={SENTINEL_SERVICE}",
            self.sentinel_port
        )
    }

    /// The port of the server the Sentinel calls master now.
    #[must_use]
    pub fn master_port(&self) -> u16 {
        let answer = cli(
            self.sentinel_port,
            &["sentinel", "get-master-addr-by-name", SENTINEL_SERVICE],
        );
        answer
            .lines()
            .nth(1)
            .and_then(|port| port.parse().ok())
            .unwrap_or(0)
    }

    /// The port of the first master, and of its replica.
    #[must_use]
    pub fn ports(&self) -> (u16, u16) {
        (self.master.port, self.replica.port)
    }

    /// Asks the Sentinel to promote the replica, and waits until it has.
    pub async fn failover(&self) {
        let before = self.master_port();
        let answer = cli(
            self.sentinel_port,
            &["sentinel", "failover", SENTINEL_SERVICE],
        );
        assert_eq!(answer, "OK", "SENTINEL FAILOVER");
        wait_for("the failover", || {
            let now = self.master_port();
            now != before && cli(now, &["info", "replication"]).contains("role:master")
        })
        .await;
    }
}

impl Drop for RedisSentinel {
    fn drop(&mut self) {
        let _ = self.sentinel.kill();
        let _ = self.sentinel.wait();
    }
}
