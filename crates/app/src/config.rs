//! Configuration from the environment (and an optional `.env`), typed and validated. Every
//! variable is declared once, in the `variables!` list below: its section, name, default and
//! meaning (from which `.env.example` and the README table are generated; a test keeps them
//! identical) and the `Settings` field it is read into. Checks across variables follow the
//! reading, as plain code (`Settings::validate`).

use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use files_s3::S3Settings;
use media_core::FileKind;
use secrecy::{ExposeSecret as _, SecretString};

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl FromStr for LogFormat {
    type Err = ();

    fn from_str(raw: &str) -> Result<Self, ()> {
        match raw.to_ascii_lowercase().as_str() {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            _ => Err(()),
        }
    }
}

/// One documented environment variable.
#[derive(Debug)]
pub struct Variable {
    pub name: &'static str,
    /// The default, as written in `.env.example` (empty: unset by default).
    pub default: &'static str,
    pub doc: &'static str,
    pub section: &'static str,
}

/// A variable shows as its name, so that messages name variables through their declarations.
impl fmt::Display for Variable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// Declares every variable once. An entry is its documentation (`///`, one or more lines),
/// `NAME = "default"` and, when it has a `Settings` field of its own, `=> field: Type, rule`:
/// the field is `Reader::rule(&NAME, arguments…)`. An entry without a field is read by the rule
/// of the variable it belongs with (`NODE_ENV` by `APP_ENV`'s).
///
/// It generates a `Variable` constant per name (for messages), [`VARIABLES`], [`Settings`] and
/// the reading of every field, in the order declared.
macro_rules! variables {
    ($(
        $section:literal {$(
            $(#[doc = $doc:literal])+
            $name:ident = $default:literal
                $(=> $field:ident: $ty:ty, $rule:ident $(($($arg:expr),*))?)?;
        )+}
    )+) => {
        $($(
            const $name: Variable = Variable {
                name: stringify!($name),
                default: $default,
                doc: concat!($($doc),+).trim_ascii(),
                section: $section,
            };
        )+)+

        /// Every variable the processes read, in the order of `.env.example`.
        pub const VARIABLES: &[Variable] = &[$($($name),+),+];

        /// Typed, validated configuration. What each field holds is documented with its variable
        /// in `variables!`.
        #[derive(Clone, Debug)]
        pub struct Settings {
            $($($(pub $field: $ty,)?)+)+
        }

        impl Settings {
            /// Every field through its rule; `Settings::validate` checks across them.
            fn read_variables(r: &mut Reader<'_>) -> Self {
                Self {
                    $($($($field: r.$rule(&$name $($(, $arg)*)?),)?)+)+
                }
            }
        }
    };
}

variables! {
    "Process" {
        /// development | production | test (NODE_ENV is read when APP_ENV is unset)
        APP_ENV = "development" => environment: Environment, environment;
        /// Fallback for APP_ENV, for .env files of the NestJS version
        NODE_ENV = ""; // read with APP_ENV
        /// Address the HTTP server binds
        HOST = "127.0.0.1" => host: String, text;
        /// Port the HTTP server binds (0: any free port)
        PORT = "3000" => port: u16, parsed("a port number (0-65535)");
        /// Directory of the embedded database and generated development secrets
        DATA_DIR = "./data" => data_dir: PathBuf, path;
        /// full: every acknowledged write of the embedded database survives a power loss; normal:
        /// cheaper commits, the last ones may be lost on power loss (see docs/adr/0006)
        SQLITE_SYNCHRONOUS = "full"
            => sqlite_durability: store_sqlite::Durability, parsed("full or normal");
        /// Log filter: a level (trace, debug, info, warn, error, off; the NestJS version's verbose
        /// and log mean trace and info) or tracing EnvFilter directives (info,http_api=debug);
        /// RUST_LOG wins when set
        LOG_LEVEL = "info" => log_level: String, log_level;
        /// text: one readable line per event; json: one JSON object per line (with the request's
        /// span fields)
        LOG_FORMAT = "text" => log_format: LogFormat, parsed("text or json");
        /// How long SIGTERM/SIGINT waits for in-flight work before exiting
        SHUTDOWN_TIMEOUT_SECS = "30" => shutdown_timeout: Duration, positive_seconds;
    }
    "HTTP" {
        /// Base URL of links in emails (reset, verification)
        FRONTEND_URL = "http://localhost:5173" => frontend_url: String, url;
        /// Comma-separated allowed origins (default: FRONTEND_URL); required in production
        CORS_ORIGIN = "" => cors_origins: Vec<String>, list;
        /// Whether browsers may send credentials cross-origin
        CORS_CREDENTIALS = "true" => cors_credentials: bool, flag;
        /// Seconds browsers may cache a preflight answer
        CORS_PREFLIGHT_MAX_AGE = "86400" => cors_max_age: usize, parsed("seconds");
        /// Largest accepted JSON body in bytes (larger: 413)
        JSON_BODY_LIMIT = "1048576" => json_body_limit: usize, parsed("bytes");
        /// Longest a request may take from its head to its answer, body included (longer: 408
        /// and the connection is closed); the head itself must arrive within 5s. Must exceed
        /// WS_PING_INTERVAL (a Socket.IO long poll waits that long)
        REQUEST_TIMEOUT = "120s" => request_timeout: Duration, duration;
        /// How long a rendered public portfolio may be served from memory; changes clear it at once
        /// (on other instances through Redis; this bounds a lost message) (0s: no cache)
        PUBLIC_CACHE_TTL = "60s" => public_cache_ttl: Duration, duration;
        /// Header carrying the client IP behind a reverse proxy (e.g. X-Forwarded-For); unset: the
        /// peer address
        TRUSTED_PROXY_HEADER = "" => trusted_proxy_header: Option<String>, optional;
        /// Peers whose TRUSTED_PROXY_HEADER is believed
        TRUSTED_PROXIES = "127.0.0.1,::1" => trusted_proxies: Vec<IpAddr>, addresses;
        /// Rate-limit window in seconds
        THROTTLE_TTL = "60" => throttle_window: Duration, positive_seconds;
        /// Requests per window per client
        THROTTLE_LIMIT = "100" => throttle_limit: u32, positive;
        /// Requests per window per client on POST /auth/* routes
        THROTTLE_AUTH_LIMIT = "5" => throttle_auth_limit: u32, positive;
        /// Uploads per window per client (POST /upload/* and the avatar and resume routes; they
        /// count against THROTTLE_LIMIT too)
        THROTTLE_UPLOAD_LIMIT = "20" => throttle_upload_limit: u32, positive;
        /// Longest GET /health/ready waits for each dependency's answer (a round trip to the
        /// database and to Redis) before it counts as down: keep it under the load balancer's
        /// probe timeout
        READY_TIMEOUT_MS = "2000" => ready_timeout: Duration, millis;
        /// Bearer token GET /metrics requires (Prometheus: authorization.credentials); unset:
        /// /metrics is public, so keep the port private or set this
        METRICS_TOKEN = "" => metrics_token: Option<SecretString>, secret;
        /// Address (host:port) console-worker and console-scheduler serve GET /metrics on, with
        /// METRICS_TOKEN (console-api serves it on PORT); unset: they serve nothing
        METRICS_ADDR = "" => metrics_addr: Option<SocketAddr>, socket_address;
    }
    "Uploads" {
        /// Folder of uploaded files (default: DATA_DIR/uploads)
        UPLOAD_DIR = "" => upload_dir: Option<String>, optional;
        /// Public URL that files are served under, written into stored URLs (default:
        /// http://HOST:PORT/uploads); behind a reverse proxy or a CDN, its public address
        UPLOAD_BASE_URL = "" => upload_base_url: Option<String>, optional;
        /// Accepted file types, of jpeg, png, webp, gif (pictures) and pdf (documents); picture
        /// routes take the pictures listed, document routes the documents
        UPLOAD_ALLOWED_TYPES = "jpeg,png,webp,gif,pdf"
            => upload_allowed_types: Vec<FileKind>, file_kinds;
        /// Largest picture in bytes, as uploaded (larger: 413, refused while it is being read;
        /// separate from JSON_BODY_LIMIT)
        UPLOAD_MAX_IMAGE_SIZE = "5242880" => upload_max_image_size: u64, positive_u64;
        /// Largest document in bytes
        UPLOAD_MAX_DOCUMENT_SIZE = "10485760" => upload_max_document_size: u64, positive_u64;
        /// Most pixels (width x height, over all frames of an animation) a picture may have;
        /// checked before decoding, against decompression bombs. Decoding takes 4 bytes a pixel
        UPLOAD_MAX_IMAGE_PIXELS = "25000000" => upload_max_image_pixels: u64, positive_u64;
        /// Most files in one POST /upload/images
        UPLOAD_MAX_FILES = "10" => upload_max_files: u32, positive;
        /// Most bytes one user's stored files may take, thumbnails included (beyond it: 413
        /// STORAGE_QUOTA_EXCEEDED); the export reports the use
        UPLOAD_QUOTA_BYTES = "524288000" => upload_quota_bytes: u64, positive_u64;
        /// Pictures decoded at once (default: number of CPUs); the rest wait their turn
        UPLOAD_IMAGE_CONCURRENCY = "" => upload_image_concurrency: usize, positive_or_cpus;
        /// S3-compatible bucket uploaded files are kept in instead of UPLOAD_DIR, shared by
        /// every instance (AWS S3, MinIO, R2, …); unset: the local folder
        S3_BUCKET = "" => s3: Option<S3Settings>, s3;
        // The next six are read with S3_BUCKET.
        /// Region of the bucket
        S3_REGION = "us-east-1";
        /// URL of an S3-compatible service (http:// only for one on a private network); unset:
        /// AWS
        S3_ENDPOINT = "";
        /// Access key id; unset: AWS's usual sources (AWS_* variables, web identity, instance
        /// role)
        S3_ACCESS_KEY_ID = "";
        /// Secret access key, with S3_ACCESS_KEY_ID
        S3_SECRET_ACCESS_KEY = "";
        /// Folder-like prefix of every object written (e.g. uploads)
        S3_PREFIX = "";
        /// true: path-style requests (ENDPOINT/BUCKET/key), which MinIO and most
        /// S3-compatible services need; false: virtual-hosted (BUCKET.ENDPOINT/key)
        S3_FORCE_PATH_STYLE = "false";
    }
    "Auth" {
        /// Access-token signing secret, >= 32 bytes (development: generated into DATA_DIR when
        /// unset)
        JWT_ACCESS_SECRET = "" => jwt_access_secret: Option<SecretString>, secret;
        /// Refresh-token signing secret, >= 32 bytes, distinct from the access secret
        JWT_REFRESH_SECRET = "" => jwt_refresh_secret: Option<SecretString>, secret;
        /// Access-token lifetime (e.g. 900s, 15m, 1h)
        JWT_ACCESS_TOKEN_EXPIRATION = "15m" => access_ttl: Duration, duration;
        /// Refresh-token and session lifetime
        JWT_REFRESH_TOKEN_EXPIRATION = "7d" => refresh_ttl: Duration, duration;
        /// Seconds a just-rotated refresh token may still be retried (0: never)
        JWT_REFRESH_REUSE_INTERVAL = "0" => refresh_reuse_interval: Duration, duration;
        /// How long an instance trusts what it read about a session, a user or an owner's lists; a
        /// revoke or change elsewhere is announced through Redis at once, and this bounds a lost
        /// announcement (0s: read the store every time)
        SESSION_CHECK_TTL = "5s" => session_check_ttl: Duration, duration;
        /// Argon2id memory in KiB
        ARGON2_MEMORY_COST = "65536" => argon2_memory_cost: u32, positive;
        /// Argon2id iterations
        ARGON2_TIME_COST = "3" => argon2_time_cost: u32, positive;
        /// Argon2id lanes
        ARGON2_PARALLELISM = "4" => argon2_parallelism: u32, positive;
        /// Hashes computed at once (default: number of CPUs)
        ARGON2_MAX_CONCURRENT = "" => argon2_max_concurrent: usize, positive_or_cpus;
        /// Comma-separated emails whose accounts have role admin
        ADMIN_EMAILS = "" => admin_emails: HashSet<String>, emails;
        /// With BULL_BOARD_PASSWORD: the user name the queue dashboard page
        /// (/api/v1/admin/queues/ui) asks for by HTTP basic authentication before its own admin
        /// sign-in, as the NestJS version's Bull Board did; unset: no basic authentication
        BULL_BOARD_USERNAME = "" => bull_board_username: Option<String>, optional;
        /// The password of BULL_BOARD_USERNAME
        BULL_BOARD_PASSWORD = "" => bull_board_password: Option<SecretString>, secret;
    }
    "Location" {
        /// Where session locations come from: none, maxmind (a local database file) or http (an
        /// ip-api.com-style service); default http when LOCATION_ENABLED=true, else none
        LOCATION_PROVIDER = "" => location_provider: LocationProvider, location;
        // The next three are read with LOCATION_PROVIDER.
        /// The NestJS version's switch: true with LOCATION_PROVIDER unset means http
        LOCATION_ENABLED = "";
        /// GeoLite2-City or GeoIP2-City .mmdb file, read at start (required with maxmind)
        LOCATION_MAXMIND_DB_PATH = "";
        /// Lookup URL of the http provider; the address is appended. It receives users' IP
        /// addresses (ip-api.com's free tier: plain HTTP, non-commercial use)
        LOCATION_API_URL = "http://ip-api.com/json";
        /// How long a looked-up address is remembered (up to 10000 addresses)
        LOCATION_CACHE_TTL = "24h" => location_cache_ttl: Duration, duration;
        /// Longest wait for the http provider; a slow or failed lookup leaves the location unknown
        LOCATION_TIMEOUT_MS = "2000" => location_timeout: Duration, positive_millis;
    }
    "Storage" {
        /// MongoDB connection string; unset: the embedded database under DATA_DIR
        MONGODB_URI = "" => mongodb_uri: Option<SecretString>, mongodb_uri;
        /// Database name (default: the URI's path, else console)
        MONGODB_DATABASE = "" => mongodb_database: Option<String>, optional;
    }
    "Scheduler" {
        /// Sample job: logs a line (a heartbeat to see the scheduler work)
        SCHEDULER_SAMPLE_JOB_ENABLED = "true" => sample_job: CronConfig, cron_job(&SCHEDULER_SAMPLE_JOB_CRON);
        /// Its schedule: cron with seconds (sec min hour day month weekday)
        SCHEDULER_SAMPLE_JOB_CRON = "0 */5 * * * *"; // read with SCHEDULER_SAMPLE_JOB_ENABLED
        /// Session cleanup: deletes revoked and expired sessions
        SCHEDULER_SESSION_CLEANUP_ENABLED = "true" => session_cleanup: CronConfig, cron_job(&SCHEDULER_SESSION_CLEANUP_CRON);
        /// Its schedule: cron with seconds (sec min hour day month weekday)
        SCHEDULER_SESSION_CLEANUP_CRON = "0 0 * * * *"; // read with SCHEDULER_SESSION_CLEANUP_ENABLED
        /// Email-queue monitoring: warns when the backlog passes SCHEDULER_EMAIL_QUEUE_WARNING_THRESHOLD
        SCHEDULER_EMAIL_QUEUE_MONITORING_ENABLED = "true" => email_queue_monitoring: CronConfig, cron_job(&SCHEDULER_EMAIL_QUEUE_MONITORING_CRON);
        /// Its schedule: cron with seconds (sec min hour day month weekday)
        SCHEDULER_EMAIL_QUEUE_MONITORING_CRON = "0 */10 * * * *"; // read with SCHEDULER_EMAIL_QUEUE_MONITORING_ENABLED
        /// Waiting plus delayed email jobs above which the monitoring job warns
        SCHEDULER_EMAIL_QUEUE_WARNING_THRESHOLD = "100" => email_queue_warning_threshold: u64, parsed("a count");
        /// Account-deletion-token cleanup: clears expired deletion tokens
        SCHEDULER_ACCOUNT_DELETION_TOKEN_CLEANUP_ENABLED = "true" => account_deletion_token_cleanup: CronConfig, cron_job(&SCHEDULER_ACCOUNT_DELETION_TOKEN_CLEANUP_CRON);
        /// Its schedule: cron with seconds (sec min hour day month weekday)
        SCHEDULER_ACCOUNT_DELETION_TOKEN_CLEANUP_CRON = "0 0 0 * * *"; // read with SCHEDULER_ACCOUNT_DELETION_TOKEN_CLEANUP_ENABLED
        /// Job-history retention: deletes finished jobs beyond the JOB_HISTORY_* bounds
        SCHEDULER_JOB_HISTORY_RETENTION_ENABLED = "true" => job_history_retention: CronConfig, cron_job(&SCHEDULER_JOB_HISTORY_RETENTION_CRON);
        /// Its schedule: cron with seconds (sec min hour day month weekday)
        SCHEDULER_JOB_HISTORY_RETENTION_CRON = "0 15 * * * *"; // read with SCHEDULER_JOB_HISTORY_RETENTION_ENABLED
        /// Database maintenance: an online backup of the embedded database and the local upload
        /// folder into DATA_DIR/backups/console-<time>/ (console-api restore brings one back),
        /// then PRAGMA optimize
        SCHEDULER_DATABASE_MAINTENANCE_ENABLED = "false" => database_maintenance: CronConfig, cron_job(&SCHEDULER_DATABASE_MAINTENANCE_CRON);
        /// Its schedule: cron with seconds (sec min hour day month weekday)
        SCHEDULER_DATABASE_MAINTENANCE_CRON = "0 0 2 * * SUN"; // read with SCHEDULER_DATABASE_MAINTENANCE_ENABLED
        /// Backups kept in DATA_DIR/backups (the oldest beyond this are deleted)
        SCHEDULER_DATABASE_BACKUP_KEEP = "4" => database_backup_keep: u32, positive;
    }
    "Redis" {
        /// Redis URL: one server (redis://[user:password@]host:port/db), a Cluster
        /// (redis-cluster://host:port?node=host:port&node=…) or Sentinel
        /// (redis-sentinel://host:port/db?sentinelServiceName=NAME&node=…), each over TLS as
        /// rediss…://; with it (or REDIS_HOST) jobs go through Redis streams, console-api only
        /// enqueues, and console-worker and console-scheduler run as their own processes
        REDIS_URL = "" => redis: Option<RedisConfig>, redis;
        // The next nine are read with REDIS_URL.
        /// Redis host, when REDIS_URL is unset
        REDIS_HOST = "";
        /// Redis port, with REDIS_HOST
        REDIS_PORT = "6379";
        /// Redis password, with REDIS_HOST
        REDIS_PASSWORD = "";
        /// Redis database number, with REDIS_HOST
        REDIS_DB = "0";
        /// Prefix of every key this deployment writes (one prefix per deployment sharing a
        /// server)
        REDIS_KEY_PREFIX = "console";
        /// Connections per process (commands are pipelined on each)
        REDIS_POOL_SIZE = "4";
        /// Longest wait for Redis to connect or answer a command
        REDIS_TIMEOUT_MS = "5000";
        /// PEM file of the certificate authorities a rediss:// server's certificate must chain
        /// to (default: the system's roots)
        REDIS_TLS_CA_FILE = "";
        /// Replicas that must hold a queued email before the request that queued it is
        /// answered (WAIT, up to half of REDIS_TIMEOUT_MS; else the email is withdrawn and the
        /// request answered 503; 0: the master's word suffices). With 1 and Sentinel, a
        /// failover loses no acknowledged email
        REDIS_WAIT_REPLICAS = "0";
    }
    "Email" {
        /// SMTP server; unset: emails are written to the log (production: only with
        /// EMAIL_LOG_TRANSPORT=true)
        SMTP_HOST = "" => smtp: Option<SmtpConfig>, smtp;
        // The next seven are read with SMTP_HOST.
        /// SMTP port
        SMTP_PORT = "587";
        /// SMTP user name
        SMTP_USER = "";
        /// SMTP password
        SMTP_PASSWORD = "";
        /// Sender mailbox
        SMTP_FROM = "Console <no-reply@localhost>";
        /// true: implicit TLS (port 465); false: STARTTLS whenever the server offers it
        SMTP_SECURE = "false";
        /// true: never send in clear; a server that does not offer STARTTLS gets neither
        /// credentials nor mail
        SMTP_REQUIRE_TLS = "false";
        /// PEM file of CA certificates trusted for the SMTP server besides the public roots (an
        /// internal relay)
        SMTP_TLS_CA_FILE = "";
        /// true: production may run without SMTP_HOST, logging each email's recipient and subject
        /// but never its body
        EMAIL_LOG_TRANSPORT = "false" => email_log_transport: bool, flag;
    }
    "Jobs" {
        /// Attempts per email job before it is kept as failed
        EMAIL_QUEUE_ATTEMPTS = "5" => email_attempts: u32, positive;
        /// Delay before the first retry; doubles each retry
        EMAIL_QUEUE_BACKOFF_MS = "2000" => email_backoff: Duration, millis;
        /// After this, an unacknowledged job is handed to another worker
        JOB_VISIBILITY_TIMEOUT_MS = "30000" => job_visibility_timeout: Duration, millis;
        /// Completed jobs kept per queue (the newest); older ones are deleted
        JOB_HISTORY_COMPLETED_MAX = "1000" => history_completed_max: u64, parsed("a count");
        /// How long a completed job is kept
        JOB_HISTORY_COMPLETED_AGE = "24h" => history_completed_age: Duration, duration;
        /// Failed jobs kept per queue (the newest), each retryable until deleted
        JOB_HISTORY_FAILED_MAX = "10000" => history_failed_max: u64, parsed("a count");
        /// How long a failed job is kept
        JOB_HISTORY_FAILED_AGE = "7d" => history_failed_age: Duration, duration;
        /// Email jobs one worker holds at once, in four lanes that each take a batch, send it
        /// concurrently and acknowledge it together
        EMAIL_WORKER_CONCURRENCY = "16" => email_worker_concurrency: u32, positive;
        /// Key sealing job payloads (reset and verification tokens, names) at rest: 64 hex
        /// characters (32 random bytes, e.g. openssl rand -hex 32), the same in every process;
        /// required in production (development: generated into DATA_DIR when unset)
        JOB_PAYLOAD_KEY = "" => job_payload_key: Option<SecretString>, secret;
        /// Comma-separated earlier JOB_PAYLOAD_KEYs, still opening payloads sealed before a
        /// rotation
        JOB_PAYLOAD_KEYS_PREVIOUS = "" => job_payload_keys_previous: Option<SecretString>, secret;
    }
    "Chat (WebSocket and Socket.IO)" {
        /// Chat frames one user may send per minute over all their sockets (on every instance,
        /// with Redis); beyond it the socket gets an error event and is closed
        WS_RATE_LIMIT_PER_MINUTE = "60" => ws_per_minute: u32, positive;
        /// Chat frames one user may send per hour
        WS_RATE_LIMIT_PER_HOUR = "1000" => ws_per_hour: u32, positive;
        /// Open chat sockets per user (over every instance, with Redis)
        WS_MAX_CONNECTIONS_PER_USER = "10" => ws_per_user: u32, positive;
        /// Open chat sockets per client address (over every instance, with Redis)
        WS_MAX_CONNECTIONS_PER_IP = "50" => ws_per_ip: u32, positive;
        /// How often a chat socket is pinged
        WS_PING_INTERVAL = "25s" => ws_ping_interval: Duration, duration;
        /// A chat socket silent this long (no frame, no pong) is closed
        WS_IDLE_TIMEOUT = "60s" => ws_idle_timeout: Duration, duration;
        /// How often an open chat socket checks that its session is still live
        WS_SESSION_CHECK_INTERVAL = "1s" => ws_session_check: Duration, duration;
        /// Largest chat frame accepted, in bytes
        WS_MAX_FRAME_BYTES = "65536" => ws_max_frame: usize, parsed("bytes");
        /// A room nobody writes to for this long loses its history (each room keeps its last
        /// 100 messages)
        CHAT_HISTORY_TTL = "7d" => chat_history_ttl: Duration, duration;
        /// Different rooms besides general one user may enter per hour (each may start a
        /// history)
        CHAT_ROOMS_PER_HOUR = "20" => chat_rooms_per_hour: u32, positive;
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
    Test,
}

impl Environment {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Development => "development",
            Self::Production => "production",
            Self::Test => "test",
        }
    }
}

/// Where session locations come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LocationProvider {
    None,
    MaxMind(PathBuf),
    Http(String),
}

/// One cron job's switch and schedule.
#[derive(Clone, Debug)]
pub struct CronConfig {
    pub enabled: bool,
    /// `None` only in settings that failed validation (the bad expression is reported).
    pub schedule: Option<scheduler_core::Schedule>,
}

/// Where Redis is and how this deployment uses it.
#[derive(Clone, Debug)]
pub struct RedisConfig {
    /// The connection URL; it may hold the password.
    pub url: SecretString,
    pub key_prefix: String,
    pub pool_size: usize,
    pub timeout: Duration,
    /// Trust anchors of a `rediss://` server, instead of the system's roots.
    pub tls_ca_file: Option<PathBuf>,
    /// Replicas an enqueue waits for.
    pub wait_replicas: u32,
}

#[derive(Clone, Debug)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    pub password: Option<SecretString>,
    pub from: String,
    /// Implicit TLS; otherwise STARTTLS.
    pub secure: bool,
    /// STARTTLS or no delivery.
    pub require_tls: bool,
    pub ca_file: Option<PathBuf>,
}

/// Every problem found, one line each.
#[derive(Debug, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<String>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid configuration:")?;
        for problem in &self.0 {
            writeln!(f, "  - {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Reads variables through a lookup, collecting every problem instead of stopping at the first.
/// Its methods are the rules of `variables!`.
struct Reader<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    problems: Vec<String>,
    read: BTreeSet<&'static str>,
}

impl Reader<'_> {
    /// The value set in the environment; blank counts as unset.
    fn explicit(&mut self, v: &Variable) -> Option<String> {
        self.read.insert(v.name);
        (self.lookup)(v.name)
            .map(|raw| raw.trim().to_owned())
            .filter(|raw| !raw.is_empty())
    }

    /// The value set, else the default.
    fn optional(&mut self, v: &Variable) -> Option<String> {
        self.explicit(v)
            .or_else(|| Some(v.default.to_owned()).filter(|d| !d.is_empty()))
    }

    fn text(&mut self, v: &Variable) -> String {
        self.optional(v).unwrap_or_default()
    }

    /// A log filter: each directive a level, or `target=level`. A bare word that is no level
    /// would filter for a target of that name and silence every log, so it is refused.
    fn log_level(&mut self, v: &Variable) -> String {
        const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
        let raw = self.text(v);
        let filter = match raw.trim().to_ascii_lowercase().as_str() {
            "verbose" => "trace".to_owned(),
            "log" => "info".to_owned(),
            _ => raw.trim().to_owned(),
        };
        let readable = filter.split(',').map(str::trim).all(|directive| {
            let level = directive
                .rsplit_once('=')
                .map_or(directive, |(_, level)| level);
            LEVELS.contains(&level.to_ascii_lowercase().as_str())
        });
        if !readable {
            self.problems.push(format!(
                "{v}: expected trace, debug, info, warn, error or off (or target=level directives), got {raw:?}"
            ));
        }
        filter
    }

    fn socket_address(&mut self, v: &Variable) -> Option<SocketAddr> {
        let raw = self.explicit(v)?;
        raw.parse()
            .map_err(|_| {
                self.problems.push(format!(
                    "{v}: expected an address and port (127.0.0.1:9464, [::1]:9464), got {raw:?}"
                ));
            })
            .ok()
    }

    fn path(&mut self, v: &Variable) -> PathBuf {
        PathBuf::from(self.text(v))
    }

    fn parsed<T: FromStr + Default>(&mut self, v: &Variable, what: &str) -> T {
        let Some(raw) = self.optional(v) else {
            return T::default();
        };
        raw.parse().unwrap_or_else(|_| {
            self.problems
                .push(format!("{v}: expected {what}, got {raw:?}"));
            T::default()
        })
    }

    fn positive(&mut self, v: &Variable) -> u32 {
        let value: u32 = self.parsed(v, "a whole number");
        if value == 0 {
            self.problems.push(format!("{v}: must be at least 1"));
        }
        value
    }

    fn positive_u64(&mut self, v: &Variable) -> u64 {
        let value: u64 = self.parsed(v, "a whole number");
        if value == 0 {
            self.problems.push(format!("{v}: must be at least 1"));
        }
        value
    }

    /// Comma-separated file type names.
    fn file_kinds(&mut self, v: &Variable) -> Vec<FileKind> {
        let kinds: Vec<FileKind> = self
            .list(v)
            .into_iter()
            .filter_map(|name| {
                let kind = FileKind::from_name(&name);
                if kind.is_none() {
                    self.problems.push(format!(
                        "{v}: {name:?} is not one of jpeg, png, webp, gif, pdf"
                    ));
                }
                kind
            })
            .collect();
        if kinds.is_empty() {
            self.problems
                .push(format!("{v}: must name at least one type"));
        }
        kinds
    }

    fn positive_seconds(&mut self, v: &Variable) -> Duration {
        Duration::from_secs(u64::from(self.positive(v)))
    }

    fn positive_millis(&mut self, v: &Variable) -> Duration {
        Duration::from_millis(u64::from(self.positive(v)))
    }

    /// Unset: as many as the machine has CPUs.
    fn positive_or_cpus(&mut self, v: &Variable) -> usize {
        self.optional(v)
            .map(|_| self.positive(v) as usize)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from))
    }

    fn flag(&mut self, v: &Variable) -> bool {
        match self
            .optional(v)
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("false" | "0" | "no" | "off") => false,
            Some("true" | "1" | "yes" | "on") => true,
            Some(other) => {
                self.problems
                    .push(format!("{v}: expected true or false, got {other:?}"));
                false
            }
        }
    }

    /// Whole seconds, or a duration with units (`15m`, `7d`).
    fn duration(&mut self, v: &Variable) -> Duration {
        let Some(raw) = self.optional(v) else {
            return Duration::ZERO;
        };
        if let Ok(seconds) = raw.parse::<u64>() {
            return Duration::from_secs(seconds);
        }
        humantime::parse_duration(&raw).unwrap_or_else(|_| {
            self.problems.push(format!(
                "{v}: expected a duration like 900, 15m, 7d; got {raw:?}"
            ));
            Duration::ZERO
        })
    }

    fn millis(&mut self, v: &Variable) -> Duration {
        Duration::from_millis(self.parsed::<u64>(v, "milliseconds"))
    }

    /// Comma-separated, blanks dropped.
    fn list(&mut self, v: &Variable) -> Vec<String> {
        self.optional(v)
            .map(|raw| {
                raw.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    fn addresses(&mut self, v: &Variable) -> Vec<IpAddr> {
        self.list(v)
            .into_iter()
            .filter_map(|raw| match raw.parse() {
                Ok(ip) => Some(ip),
                Err(_) => {
                    self.problems
                        .push(format!("{v}: {raw:?} is not an IP address"));
                    None
                }
            })
            .collect()
    }

    /// Compared lower-cased, as `Email` values are.
    fn emails(&mut self, v: &Variable) -> HashSet<String> {
        self.list(v).into_iter().map(|e| e.to_lowercase()).collect()
    }

    fn secret(&mut self, v: &Variable) -> Option<SecretString> {
        self.optional(v).map(SecretString::from)
    }

    /// A MongoDB connection string, checked here: a process waits for MongoDB while it does
    /// not answer, which a string it can never use would make forever.
    fn mongodb_uri(&mut self, v: &Variable) -> Option<SecretString> {
        let uri = self.optional(v)?;
        if let Err(problem) = store_mongo::check_uri(&uri) {
            self.problems.push(format!("{v}: {problem}"));
        }
        Some(SecretString::from(uri))
    }

    /// An http(s) URL without its trailing slashes, so that paths can be appended.
    fn url(&mut self, v: &Variable) -> String {
        let url = self.text(v).trim_end_matches('/').to_owned();
        if !is_http_url(&url) {
            self.problems
                .push(format!("{v}: expected an http(s) URL, got {url:?}"));
        }
        url
    }

    /// `APP_ENV` when set, else the NestJS version's `NODE_ENV`, else `APP_ENV`'s default.
    fn environment(&mut self, v: &Variable) -> Environment {
        let chosen = self
            .explicit(v)
            .or_else(|| self.optional(&NODE_ENV))
            .unwrap_or_else(|| v.default.to_owned());
        match chosen.as_str() {
            "development" | "dev" => Environment::Development,
            "production" | "prod" => Environment::Production,
            "test" => Environment::Test,
            other => {
                self.problems.push(format!(
                    "{v}: expected development, production or test, got {other:?}"
                ));
                Environment::Development
            }
        }
    }

    /// `LOCATION_PROVIDER`, else the NestJS version's `LOCATION_ENABLED` (which meant its HTTP
    /// service), with the settings the chosen provider needs.
    fn location(&mut self, provider: &Variable) -> LocationProvider {
        let enabled = self
            .optional(&LOCATION_ENABLED)
            .map(|_| self.flag(&LOCATION_ENABLED));
        let database = self.optional(&LOCATION_MAXMIND_DB_PATH);
        let url = self.text(&LOCATION_API_URL);
        let chosen = self.optional(provider).map(|p| p.to_ascii_lowercase());
        let name = match (chosen, enabled) {
            (Some(name), Some(false)) if name != "none" => {
                self.problems.push(format!(
                    "{LOCATION_ENABLED}: false contradicts {provider}={name}"
                ));
                name
            }
            (Some(name), _) => name,
            (None, Some(true)) => "http".to_owned(),
            (None, _) => "none".to_owned(),
        };
        match name.as_str() {
            "none" => LocationProvider::None,
            "maxmind" => match database {
                Some(path) => LocationProvider::MaxMind(PathBuf::from(path)),
                None => {
                    self.problems.push(format!(
                        "{LOCATION_MAXMIND_DB_PATH}: must be set with {provider}=maxmind"
                    ));
                    LocationProvider::None
                }
            },
            "http" => {
                if !is_http_url(&url) {
                    self.problems.push(format!(
                        "{LOCATION_API_URL}: expected an http(s) URL, got {url:?}"
                    ));
                }
                LocationProvider::Http(url)
            }
            other => {
                self.problems.push(format!(
                    "{provider}: expected none, maxmind or http, got {other:?}"
                ));
                LocationProvider::None
            }
        }
    }

    /// A job's `…_ENABLED` switch with its `…_CRON` schedule.
    fn cron_job(&mut self, enabled: &Variable, cron: &Variable) -> CronConfig {
        let on = self.flag(enabled);
        let expression = self.text(cron);
        let schedule = scheduler_core::Schedule::parse(&expression)
            .map_err(|error| self.problems.push(format!("{cron}: {error}")))
            .ok();
        CronConfig {
            enabled: on,
            schedule,
        }
    }

    /// Redis when `REDIS_URL` or `REDIS_HOST` is set (the URL wins); its settings are read
    /// (and checked) either way.
    fn redis(&mut self, v: &Variable) -> Option<RedisConfig> {
        let explicit = self.explicit(v);
        let host = self.optional(&REDIS_HOST);
        let port: u16 = self.parsed(&REDIS_PORT, "a port number");
        let password = self.secret(&REDIS_PASSWORD);
        let db: u8 = self.parsed(&REDIS_DB, "a database number (0-255)");
        let key_prefix = self.text(&REDIS_KEY_PREFIX);
        if key_prefix.is_empty() || key_prefix.contains(['{', '}', ' ']) {
            self.problems.push(format!(
                "{REDIS_KEY_PREFIX}: expected a non-empty name without braces or spaces"
            ));
        }
        let pool_size = self.positive(&REDIS_POOL_SIZE) as usize;
        let timeout = Duration::from_millis(u64::from(self.positive(&REDIS_TIMEOUT_MS)));
        let tls_ca_file = self.optional(&REDIS_TLS_CA_FILE).map(PathBuf::from);
        let wait_replicas = self.parsed(&REDIS_WAIT_REPLICAS, "a number of replicas");
        let url = match (explicit, host) {
            (Some(url), _) => {
                if let Err(problem) = store_redis::check_url(&url) {
                    self.problems.push(format!("{v}: {problem}"));
                }
                url
            }
            (None, Some(host)) => {
                let auth = password
                    .as_ref()
                    .map(|p| format!(":{}@", percent_encode(p.expose_secret())))
                    .unwrap_or_default();
                format!("redis://{auth}{host}:{port}/{db}")
            }
            (None, None) => return None,
        };
        if tls_ca_file.is_some() && !url.starts_with("rediss") {
            self.problems.push(format!(
                "{REDIS_TLS_CA_FILE}: needs a rediss REDIS_URL (TLS)"
            ));
        }
        Some(RedisConfig {
            url: SecretString::from(url),
            key_prefix,
            pool_size,
            timeout,
            tls_ca_file,
            wait_replicas,
        })
    }

    /// The SMTP relay when `SMTP_HOST` is set. Its settings are read (and checked) either way.
    fn s3(&mut self, bucket: &Variable) -> Option<S3Settings> {
        let name = self.optional(bucket);
        let s3 = S3Settings {
            bucket: name.clone().unwrap_or_default(),
            region: self.text(&S3_REGION),
            endpoint: self.optional(&S3_ENDPOINT),
            access_key_id: self.optional(&S3_ACCESS_KEY_ID),
            secret_access_key: self.secret(&S3_SECRET_ACCESS_KEY),
            prefix: self.text(&S3_PREFIX),
            path_style: self.flag(&S3_FORCE_PATH_STYLE),
        };
        if let Some(endpoint) = &s3.endpoint
            && !is_http_url(endpoint)
        {
            self.problems.push(format!(
                "{S3_ENDPOINT}: expected an http(s) URL, got {endpoint:?}"
            ));
        }
        if s3.access_key_id.is_some() != s3.secret_access_key.is_some() {
            self.problems.push(format!(
                "{S3_ACCESS_KEY_ID} and {S3_SECRET_ACCESS_KEY}: set both or neither"
            ));
        }
        name.map(|_| s3)
    }

    fn smtp(&mut self, host: &Variable) -> Option<SmtpConfig> {
        let host = self.optional(host);
        let smtp = SmtpConfig {
            host: host.clone().unwrap_or_default(),
            port: self.parsed(&SMTP_PORT, "a port number"),
            user: self.optional(&SMTP_USER),
            password: self.secret(&SMTP_PASSWORD),
            from: self.text(&SMTP_FROM),
            secure: self.flag(&SMTP_SECURE),
            require_tls: self.flag(&SMTP_REQUIRE_TLS),
            ca_file: self.optional(&SMTP_TLS_CA_FILE).map(PathBuf::from),
        };
        host.map(|_| smtp)
    }
}

/// What is wrong with one line of an environment file (dotenvy names the part it could not
/// read): where it is, which variable, and how a value with spaces is written.
fn unreadable_line(path: &Path, fragment: &str, at: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let found = text
        .lines()
        .enumerate()
        .find(|(_, line)| !line.trim_start().starts_with('#') && line.contains(fragment));
    let (number, name) = found.map_or_else(
        || (String::new(), String::new()),
        |(index, line)| {
            let name = line.split('=').next().unwrap_or_default().trim();
            (format!(":{}", index + 1), format!("{name}: "))
        },
    );
    format!(
        "{}{number}: {name}cannot read {fragment:?} (at character {at}); a value with spaces or # goes in double quotes: NAME=\"…\"",
        path.display()
    )
}

/// Loads `env_file` (by default `.env` in the working directory, when present) into the
/// process environment; real environment variables win.
///
/// # Errors
/// An unreadable file, named with its line and variable, or a missing `--env-file`.
pub fn load_env_file(env_file: Option<&Path>) -> Result<(), ConfigErrors> {
    let path = env_file.map_or_else(|| PathBuf::from(".env"), Path::to_path_buf);
    match dotenvy::from_path(&path) {
        Ok(()) => Ok(()),
        Err(error) if error.not_found() && env_file.is_none() => Ok(()),
        Err(dotenvy::Error::LineParse(line, at)) => {
            Err(ConfigErrors(vec![unreadable_line(&path, &line, at)]))
        }
        Err(error) => Err(ConfigErrors(vec![format!("{}: {error}", path.display())])),
    }
}

/// The NestJS version's variables that have no meaning here, and what does their work. A
/// `.env` brought over with one of them is refused with this, never silently half-obeyed.
const RETIRED: [(&str, &str); 4] = [
    (
        "REDIS_RETRY_DELAY",
        "a lost Redis is retried with backoff up to every 10 s, for as long as it takes; remove it",
    ),
    (
        "REDIS_MAX_RETRIES",
        "requests wait at most REDIS_TIMEOUT_MS for Redis and are answered 503 NOT_READY after; remove it",
    ),
    (
        "REDIS_ENABLE_READY_CHECK",
        "a process waits for Redis to answer before it serves, always; remove it",
    ),
    (
        "REDIS_ENABLE_OFFLINE_QUEUE",
        "commands wait for a reconnect at most REDIS_TIMEOUT_MS, always; remove it",
    ),
];

/// Which process the settings are for: the HTTP process needs what the others never use (the
/// JWT secrets, the CORS origins), so only it is refused without them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Serves {
    Http,
    Jobs,
}

/// A value as an environment file writes it: in double quotes when it holds what a bare value
/// cannot (spaces, `#`, quotes, `$`), so that the file reads back exactly.
fn env_file_value(value: &str) -> String {
    if value
        .chars()
        .any(|c| c.is_whitespace() || matches!(c, '#' | '"' | '\'' | '$' | '\\'))
    {
        format!(
            "\"{}\"",
            value
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('$', "\\$")
        )
    } else {
        value.to_owned()
    }
}

/// A password as it may stand in a URL's user information.
fn percent_encode(raw: &str) -> String {
    raw.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// A 256-bit key written as 64 hex characters.
#[must_use]
pub fn parse_key(raw: &str) -> Option<[u8; 32]> {
    let mut key = [0u8; 32];
    hex::decode_to_slice(raw, &mut key).ok().map(|()| key)
}

/// Whether `host` names this machine only (a loopback or unspecified address, `localhost`).
fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.to_ascii_lowercase().ends_with(".localhost")
        || host
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified())
}

/// Whether `url`'s host names this machine only.
fn is_loopback_url(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = if authority.starts_with('[') {
        authority
            .split(']')
            .next()
            .map(|h| format!("{h}]"))
            .unwrap_or_default()
    } else {
        authority.split(':').next().unwrap_or_default().to_owned()
    };
    is_loopback_host(&host)
}

fn is_http_url(raw: &str) -> bool {
    (raw.starts_with("http://") || raw.starts_with("https://"))
        && raw.split("://").nth(1).is_some_and(|rest| !rest.is_empty())
}

impl Settings {
    /// Reads and validates the configuration through `lookup` (the process environment in
    /// production, a map in tests).
    ///
    /// # Errors
    /// [`ConfigErrors`] listing every problem.
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigErrors> {
        Self::read(lookup, Serves::Http).0
    }

    fn read(
        lookup: &dyn Fn(&str) -> Option<String>,
        serves: Serves,
    ) -> (Result<Self, ConfigErrors>, BTreeSet<&'static str>) {
        let mut r = Reader {
            lookup,
            problems: Vec::new(),
            read: BTreeSet::new(),
        };
        let mut settings = Self::read_variables(&mut r);
        let Reader {
            mut problems, read, ..
        } = r;
        for (name, instead) in RETIRED {
            if lookup(name).is_some() {
                problems.push(format!("{name}: not used by this version: {instead}"));
            }
        }
        settings.validate(&mut problems, serves);
        if problems.is_empty() {
            (Ok(settings), read)
        } else {
            (Err(ConfigErrors(problems)), read)
        }
    }

    /// The checks across variables, once each was read; `CORS_ORIGIN` defaults to the
    /// frontend's origin here.
    fn validate(&mut self, problems: &mut Vec<String>, serves: Serves) {
        let production = self.environment == Environment::Production;
        // What only the HTTP process uses is required only of it.
        let http = serves == Serves::Http;
        if self.cors_origins.is_empty() {
            if production && http {
                problems.push(format!("{CORS_ORIGIN}: must be set in production"));
            }
            self.cors_origins = vec![self.frontend_url.clone()];
        }
        if production && self.cors_credentials && self.cors_origins.iter().any(|o| o == "*") {
            problems.push(format!(
                "{CORS_ORIGIN}: \"*\" with {CORS_CREDENTIALS}=true lets every website make logged-in requests; list the allowed origins (or set {CORS_CREDENTIALS}=false)"
            ));
        }
        for origin in &self.cors_origins {
            if origin != "*" && !is_http_url(origin) {
                problems.push(format!(
                    "{CORS_ORIGIN}: {origin:?} is not an http(s) origin"
                ));
            }
        }
        if let (None, Some(upload)) = (&self.s3, &self.upload_dir) {
            let absolute = |path: &Path| std::path::absolute(path).unwrap_or(path.to_path_buf());
            let (upload, data) = (absolute(Path::new(upload)), absolute(&self.data_dir));
            if data.starts_with(&upload) || upload.starts_with(data.join("backups")) {
                problems.push(format!(
                    "{UPLOAD_DIR}: must neither hold {DATA_DIR} nor lie in its backups folder (a backup would copy the backups, and a restore would empty them)"
                ));
            }
        }
        if self.bull_board_username.is_some() != self.bull_board_password.is_some() {
            problems.push(format!(
                "{BULL_BOARD_USERNAME} and {BULL_BOARD_PASSWORD}: set both, or neither"
            ));
        }
        if self.access_ttl < Duration::from_secs(1) {
            problems.push(format!(
                "{JWT_ACCESS_TOKEN_EXPIRATION}: must be at least 1s"
            ));
        }
        if self.refresh_ttl <= self.access_ttl {
            problems.push(format!(
                "{JWT_REFRESH_TOKEN_EXPIRATION}: must be longer than the access-token lifetime"
            ));
        }
        if let Some(url) = &mut self.upload_base_url {
            *url = url.trim_end_matches('/').to_owned();
            if !is_http_url(url) {
                problems.push(format!(
                    "{UPLOAD_BASE_URL}: expected an http(s) URL, got {url:?}"
                ));
            }
        }
        if self.ws_ping_interval < Duration::from_millis(100)
            || self.ws_session_check < Duration::from_millis(100)
        {
            problems.push(format!(
                "{WS_PING_INTERVAL} and {WS_SESSION_CHECK_INTERVAL}: must be at least 100ms"
            ));
        }
        if self.ws_idle_timeout <= self.ws_ping_interval {
            problems.push(format!(
                "{WS_IDLE_TIMEOUT}: must be longer than {WS_PING_INTERVAL} (a client answers each ping)"
            ));
        }
        if self.ws_max_frame < 1024 {
            problems.push(format!("{WS_MAX_FRAME_BYTES}: must be at least 1024 bytes"));
        }
        if self.request_timeout <= self.ws_ping_interval {
            problems.push(format!(
                "{REQUEST_TIMEOUT}: must be longer than {WS_PING_INTERVAL} (a long poll waits that long)"
            ));
        }
        if self.json_body_limit < 1024 {
            problems.push(format!("{JSON_BODY_LIMIT}: must be at least 1024 bytes"));
        }
        if self.argon2_memory_cost < 8 * self.argon2_parallelism {
            problems.push(format!(
                "{ARGON2_MEMORY_COST}: must be at least 8 KiB per lane ({ARGON2_PARALLELISM})"
            ));
        }
        if production && self.smtp.is_none() && !self.email_log_transport {
            problems.push(format!(
                "{SMTP_HOST}: must be set in production (or {EMAIL_LOG_TRANSPORT}=true to log emails without their bodies)"
            ));
        }
        // Addresses written into emails and stored data stay there: in production they must be
        // ones a user's browser reaches, never this machine's loopback.
        if production && is_loopback_url(&self.frontend_url) {
            problems.push(format!(
                "{FRONTEND_URL}: {:?} would put this machine's own address into every email link; set the front end's public URL",
                self.frontend_url
            ));
        }
        if production && http {
            let problem = match &self.upload_base_url {
                Some(url) if is_loopback_url(url) => Some(format!(
                    "{UPLOAD_BASE_URL}: {url:?} would be stored in every uploaded file's URL; set the public URL files are served under"
                )),
                Some(_) => None,
                None if is_loopback_host(&self.host) => Some(format!(
                    "{UPLOAD_BASE_URL}: must be set in production when {HOST} is {:?}: the default, http://{}:{}/uploads, would be stored in every uploaded file's URL",
                    self.host, self.host, self.port
                )),
                // With Redis any number of instances may serve; files on one's disk would be
                // 404 on the others, and the default URL names one instance.
                None if self.redis.is_some() && self.s3.is_none() => Some(format!(
                    "{UPLOAD_BASE_URL}: must be set in production when {REDIS_URL} lets several instances serve and files stay on local disk ({S3_BUCKET} unset): point it at where every instance's files are served, or keep the files in a bucket"
                )),
                None => None,
            };
            problems.extend(problem);
        }
        if production && self.job_payload_key.is_none() {
            problems.push(format!("{JOB_PAYLOAD_KEY}: must be set in production"));
        }
        if let Some(key) = &self.job_payload_key
            && parse_key(key.expose_secret()).is_none()
        {
            problems.push(format!(
                "{JOB_PAYLOAD_KEY}: expected 64 hex characters (32 bytes)"
            ));
        }
        if let Some(keys) = &self.job_payload_keys_previous
            && keys
                .expose_secret()
                .split(',')
                .any(|key| parse_key(key.trim()).is_none())
        {
            problems.push(format!(
                "{JOB_PAYLOAD_KEYS_PREVIOUS}: expected comma-separated keys of 64 hex characters"
            ));
        }
        let secrets = [
            (&JWT_ACCESS_SECRET, &self.jwt_access_secret),
            (&JWT_REFRESH_SECRET, &self.jwt_refresh_secret),
        ];
        if production && http {
            for (name, secret) in secrets {
                match secret {
                    None => problems.push(format!("{name}: must be set in production")),
                    Some(s) if s.expose_secret().len() < 32 => {
                        problems.push(format!("{name}: must be at least 32 bytes"))
                    }
                    Some(_) => {}
                }
            }
        }
        if let (Some(access), Some(refresh)) = (&self.jwt_access_secret, &self.jwt_refresh_secret)
            && access.expose_secret() == refresh.expose_secret()
        {
            problems.push(format!(
                "{JWT_REFRESH_SECRET}: must differ from {JWT_ACCESS_SECRET}"
            ));
        }
        for (name, secret) in secrets {
            if let Some(s) = secret
                && s.expose_secret().len() < 32
                && !production
            {
                problems.push(format!(
                    "{name}: must be at least 32 bytes (unset it to have one generated)"
                ));
            }
        }
    }

    /// Reads the process environment (see [`load_env_file`]).
    ///
    /// # Errors
    /// [`ConfigErrors`] listing every problem.
    pub fn from_env(serves: Serves) -> Result<Self, ConfigErrors> {
        Self::read(&|name| std::env::var(name).ok(), serves).0
    }

    /// The `.env.example` text for [`VARIABLES`].
    #[must_use]
    pub fn env_example() -> String {
        let mut out = String::from(
            "# Console Backend configuration. Generated from crates/app/src/config.rs (VARIABLES);\n\
             # a test fails when the two differ. Copy to .env and adjust; real environment\n\
             # variables win over .env.\n",
        );
        let mut section = "";
        for variable in VARIABLES {
            if variable.section != section {
                section = variable.section;
                out.push_str(&format!("\n## {section}\n"));
            }
            out.push_str(&format!("# {}\n", variable.doc));
            let line = format!("{}={}\n", variable.name, env_file_value(variable.default));
            if variable.default.is_empty() {
                out.push_str(&format!("# {line}"))
            } else {
                out.push_str(&line)
            }
        }
        out
    }

    /// The Markdown table of [`VARIABLES`] that README.md carries between its
    /// `configuration:start` and `configuration:end` markers.
    #[must_use]
    pub fn configuration_table() -> String {
        let mut out = String::from("| variable | default | meaning |\n|---|---|---|\n");
        for variable in VARIABLES {
            let default = if variable.default.is_empty() {
                "—".to_owned()
            } else {
                format!("`{}`", variable.default)
            };
            out.push_str(&format!(
                "| `{}` | {default} | {} |\n",
                variable.name,
                variable.doc.replace('|', "\\|")
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, ConfigErrors> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::from_lookup(&move |name| map.get(name).cloned())
    }

    fn problems(pairs: &[(&str, &str)]) -> Vec<String> {
        settings(pairs).err().map(|e| e.0).unwrap_or_default()
    }

    #[test]
    fn env_example_is_generated_from_the_variables_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.env.example");
        if std::env::var_os("UPDATE_ENV_EXAMPLE").is_some() {
            std::fs::write(path, Settings::env_example()).unwrap_or_else(|e| panic!("{e}"));
        }
        let on_disk = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            on_disk == Settings::env_example(),
            ".env.example is stale: run `just env-example`"
        );
    }

    #[test]
    fn the_readme_configuration_table_is_generated_from_the_variables_table() {
        const START: &str = "<!-- configuration:start -->\n";
        const END: &str = "<!-- configuration:end -->";
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md");
        let readme = std::fs::read_to_string(path).unwrap_or_default();
        let (Some(start), Some(end)) = (readme.find(START), readme.find(END)) else {
            panic!("README.md lacks the configuration markers");
        };
        let current = &readme[start + START.len()..end];
        if std::env::var_os("UPDATE_ENV_EXAMPLE").is_some() {
            let updated = format!(
                "{}{}{}",
                &readme[..start + START.len()],
                Settings::configuration_table(),
                &readme[end..]
            );
            std::fs::write(path, updated).unwrap_or_else(|e| panic!("{e}"));
        } else {
            assert!(
                current == Settings::configuration_table(),
                "README.md's configuration table is stale: run `just env-example`"
            );
        }
    }

    #[test]
    fn the_parser_reads_exactly_the_declared_variables() {
        let (result, read) = Settings::read(&|_| None, Serves::Http);
        assert!(result.is_ok(), "{:?}", result.err());
        let declared: BTreeSet<&str> = VARIABLES.iter().map(|v| v.name).collect();
        assert_eq!(read, declared);
    }

    #[test]
    fn defaults_follow_the_contract() {
        let s = settings(&[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (s.environment, s.host.as_str(), s.port),
            (Environment::Development, "127.0.0.1", 3000)
        );
        assert_eq!(
            (s.access_ttl, s.refresh_ttl),
            (Duration::from_secs(900), Duration::from_secs(7 * 86400))
        );
        assert_eq!(
            (
                s.argon2_memory_cost,
                s.argon2_time_cost,
                s.argon2_parallelism
            ),
            (65536, 3, 4)
        );
        assert_eq!(
            (
                s.throttle_window.as_secs(),
                s.throttle_limit,
                s.throttle_auth_limit
            ),
            (60, 100, 5)
        );
        assert_eq!(s.json_body_limit, 1024 * 1024);
        assert!(s.smtp.is_none() && s.mongodb_uri.is_none());
    }

    #[test]
    fn every_problem_gets_its_own_line_naming_the_variable() {
        let found = problems(&[
            ("PORT", "eighty"),
            ("THROTTLE_LIMIT", "0"),
            ("SMTP_SECURE", "maybe"),
            ("SMTP_HOST", "x"),
        ]);
        let named: Vec<&str> = found.iter().filter_map(|p| p.split(':').next()).collect();
        assert_eq!(
            named,
            ["PORT", "THROTTLE_LIMIT", "SMTP_SECURE"],
            "in the order of the declarations: {found:?}"
        );
    }

    #[test]
    fn production_requires_long_distinct_secrets_and_origins() {
        let found = problems(&[("APP_ENV", "production")]);
        assert!(
            found
                .iter()
                .any(|p| p.starts_with("JWT_ACCESS_SECRET: must be set")),
            "{found:?}"
        );
        assert!(
            found
                .iter()
                .any(|p| p.starts_with("JWT_REFRESH_SECRET: must be set"))
        );
        assert!(found.iter().any(|p| p.starts_with("CORS_ORIGIN")));
        let same = "s".repeat(40);
        let found = problems(&[
            ("APP_ENV", "production"),
            ("JWT_ACCESS_SECRET", &same),
            ("JWT_REFRESH_SECRET", &same),
            ("CORS_ORIGIN", "https://a.dev"),
            ("SMTP_HOST", "smtp.a.dev"),
            ("JOB_PAYLOAD_KEY", TEST_KEY),
            ("FRONTEND_URL", "https://a.dev"),
            ("UPLOAD_BASE_URL", "https://files.a.dev/uploads"),
        ]);
        assert_eq!(
            found,
            vec!["JWT_REFRESH_SECRET: must differ from JWT_ACCESS_SECRET".to_owned()]
        );
        let found = problems(&[
            ("NODE_ENV", "production"),
            ("JWT_ACCESS_SECRET", "short"),
            ("JWT_REFRESH_SECRET", &same),
            ("CORS_ORIGIN", "https://a.dev"),
            ("SMTP_HOST", "smtp.a.dev"),
            ("JOB_PAYLOAD_KEY", TEST_KEY),
            ("FRONTEND_URL", "https://a.dev"),
            ("UPLOAD_BASE_URL", "https://files.a.dev/uploads"),
        ]);
        assert_eq!(
            found,
            vec!["JWT_ACCESS_SECRET: must be at least 32 bytes".to_owned()]
        );
    }

    const TEST_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    #[test]
    fn the_job_payload_key_is_required_in_production_and_must_be_32_hex_bytes() {
        let found = problems(&[("APP_ENV", "production")]);
        assert!(
            found
                .iter()
                .any(|p| p == "JOB_PAYLOAD_KEY: must be set in production"),
            "{found:?}"
        );
        assert_eq!(
            problems(&[("JOB_PAYLOAD_KEY", "abc")]),
            ["JOB_PAYLOAD_KEY: expected 64 hex characters (32 bytes)"]
        );
        assert_eq!(
            problems(&[
                ("JOB_PAYLOAD_KEY", TEST_KEY),
                ("JOB_PAYLOAD_KEYS_PREVIOUS", &format!("{TEST_KEY}, nope")),
            ]),
            ["JOB_PAYLOAD_KEYS_PREVIOUS: expected comma-separated keys of 64 hex characters"]
        );
        assert_eq!(parse_key(TEST_KEY).map(|k| k[1]), Some(0x11));
    }

    #[test]
    fn an_upload_folder_that_holds_the_data_or_its_backups_is_refused() {
        for (data, upload) in [
            ("/srv/console", "/srv/console"),
            ("/srv/console/data", "/srv/console"),
            ("/srv/console", "/srv/console/backups/files"),
        ] {
            let found = problems(&[("DATA_DIR", data), ("UPLOAD_DIR", upload)]);
            assert!(
                found
                    .iter()
                    .any(|p| p.starts_with("UPLOAD_DIR: must neither")),
                "{data} {upload}: {found:?}"
            );
        }
        for (data, upload) in [
            ("/srv/console", "/srv/console/uploads"),
            ("/srv/data", "/srv/files"),
        ] {
            assert!(problems(&[("DATA_DIR", data), ("UPLOAD_DIR", upload)]).is_empty());
        }
    }

    #[test]
    fn cron_jobs_default_to_the_contract_schedules_and_take_overrides() {
        let s = settings(&[("SCHEDULER_SAMPLE_JOB_CRON", "*/2 * * * * *")])
            .unwrap_or_else(|e| panic!("{e}"));
        let expression = |c: &CronConfig| c.schedule.as_ref().map(|s| s.as_str().to_owned());
        assert_eq!(expression(&s.sample_job).as_deref(), Some("*/2 * * * * *"));
        assert_eq!(
            expression(&s.session_cleanup).as_deref(),
            Some("0 0 * * * *")
        );
        assert!(s.session_cleanup.enabled && !s.database_maintenance.enabled);
        let found = problems(&[("SCHEDULER_SESSION_CLEANUP_CRON", "hourly")]);
        assert_eq!(found.len(), 1);
        assert!(
            found[0].starts_with("SCHEDULER_SESSION_CLEANUP_CRON: \"hourly\" is not"),
            "{found:?}"
        );
    }

    #[test]
    fn redis_is_off_by_default_and_reached_by_url_or_host() {
        assert!(settings(&[]).map(|s| s.redis.is_none()).unwrap_or(false));
        let by_host = settings(&[
            ("REDIS_HOST", "cache.internal"),
            ("REDIS_PASSWORD", "p@ss word"),
            ("REDIS_DB", "2"),
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        let redis = by_host.redis.unwrap_or_else(|| panic!("configured"));
        assert_eq!(
            redis.url.expose_secret(),
            "redis://:p%40ss%20word@cache.internal:6379/2"
        );
        assert_eq!((redis.key_prefix.as_str(), redis.pool_size), ("console", 4));
        assert_eq!(
            problems(&[("REDIS_URL", "http://x"), ("REDIS_KEY_PREFIX", "{a}")]),
            [
                "REDIS_KEY_PREFIX: expected a non-empty name without braces or spaces",
                "REDIS_URL: expected a URL whose scheme is one of redis, rediss, \
                 redis-cluster, rediss-cluster, redis-sentinel, rediss-sentinel"
            ]
        );
    }

    #[test]
    fn a_mongodb_uri_is_checked_without_quoting_it() {
        assert!(settings(&[("MONGODB_URI", "mongodb://app:secret@db:27017/console")]).is_ok());
        let found = problems(&[("MONGODB_URI", "mongodb://app:secret@db:notaport/console")]);
        assert_eq!(
            found,
            ["MONGODB_URI: expected a mongodb:// or mongodb+srv:// connection string"]
        );
    }

    #[test]
    fn redis_urls_name_a_server_a_cluster_or_a_sentinel_group() {
        for url in [
            "rediss://:secret@cache.internal:6380/1",
            "redis-cluster://10.0.0.1:7000?node=10.0.0.2:7000&node=10.0.0.3:7000",
            "rediss-cluster://user:secret@10.0.0.1:7000",
            "redis-sentinel://10.0.0.1:26379/0?sentinelServiceName=main&node=10.0.0.2:26379",
        ] {
            assert!(settings(&[("REDIS_URL", url)]).is_ok(), "{url}");
        }
        let found = problems(&[("REDIS_URL", "redis-sentinel://:secret@10.0.0.1:26379/0")]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("REDIS_URL: ") && !found[0].contains("secret"),
            "a Sentinel group needs its service name, and the password stays out: {found:?}"
        );
    }

    #[test]
    fn production_refuses_any_origin_with_credentials() {
        let secrets = [
            ("APP_ENV", "production"),
            (
                "JWT_ACCESS_SECRET",
                "a-secret-of-at-least-thirty-two-bytes-1",
            ),
            (
                "JWT_REFRESH_SECRET",
                "a-secret-of-at-least-thirty-two-bytes-2",
            ),
        ];
        let wildcard = [secrets.as_slice(), &[("CORS_ORIGIN", "*")]].concat();
        let found = problems(&wildcard);
        assert!(
            found
                .iter()
                .any(|p| p.starts_with("CORS_ORIGIN: \"*\" with CORS_CREDENTIALS=true")),
            "{found:?}"
        );
        let without_credentials = [
            secrets.as_slice(),
            &[("CORS_ORIGIN", "*"), ("CORS_CREDENTIALS", "false")],
        ]
        .concat();
        assert!(
            !problems(&without_credentials)
                .iter()
                .any(|p| p.starts_with("CORS_ORIGIN")),
            "any origin without credentials is a deliberate public API"
        );
    }

    #[test]
    fn production_refuses_the_log_transport_unless_it_is_allowed() {
        let (access, refresh) = ("a".repeat(40), "b".repeat(40));
        let production = [
            ("APP_ENV", "production"),
            ("JWT_ACCESS_SECRET", access.as_str()),
            ("JWT_REFRESH_SECRET", refresh.as_str()),
            ("CORS_ORIGIN", "https://a.dev"),
            ("JOB_PAYLOAD_KEY", TEST_KEY),
            ("FRONTEND_URL", "https://a.dev"),
            ("UPLOAD_BASE_URL", "https://files.a.dev/uploads"),
        ];
        let found = problems(&production);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("SMTP_HOST: must be set in production"));
        assert!(found[0].contains("EMAIL_LOG_TRANSPORT=true"), "{found:?}");
        let allowed = settings(&[&production[..], &[("EMAIL_LOG_TRANSPORT", "true")]].concat())
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(allowed.smtp.is_none() && allowed.email_log_transport);
        let relayed = settings(&[&production[..], &[("SMTP_HOST", "smtp.a.dev")]].concat());
        assert!(relayed.is_ok(), "{:?}", relayed.err());
        assert!(settings(&[]).is_ok(), "development logs emails by default");
    }

    #[test]
    fn the_example_file_reads_back_as_the_defaults_and_a_bad_line_is_named() {
        let example = Settings::env_example();
        let read: HashMap<String, String> = dotenvy::from_read_iter(example.as_bytes())
            .map(|entry| entry.unwrap_or_else(|e| panic!("{e}")))
            .collect();
        for variable in VARIABLES.iter().filter(|v| !v.default.is_empty()) {
            assert_eq!(
                read.get(variable.name).map(String::as_str),
                Some(variable.default)
            );
        }
        assert!(example.contains("SMTP_FROM=\"Console <no-reply@localhost>\""));
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("console.env");
        std::fs::write(&path, "# comment\nPORT=3000\nSMTP_FROM=Console <a@b.c>\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let problem = load_env_file(Some(&path))
            .err()
            .map(|e| e.0)
            .unwrap_or_default();
        assert_eq!(problem.len(), 1, "{problem:?}");
        assert!(
            problem[0].starts_with(&format!("{}:3: SMTP_FROM: cannot read", path.display())),
            "{problem:?}"
        );
        let missing = load_env_file(Some(&dir.path().join("nope.env")));
        assert!(
            missing.is_err(),
            "an --env-file that is not there is an error"
        );
    }

    #[test]
    fn workers_and_schedulers_need_no_jwt_secrets_nor_origins_in_production() {
        let production = [
            ("APP_ENV", "production"),
            ("JOB_PAYLOAD_KEY", TEST_KEY),
            ("EMAIL_LOG_TRANSPORT", "true"),
            ("FRONTEND_URL", "https://a.dev"),
        ];
        let map: HashMap<String, String> = production
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let lookup = move |name: &str| map.get(name).cloned();
        let jobs = Settings::read(&lookup, Serves::Jobs).0;
        assert!(jobs.is_ok(), "{:?}", jobs.err());
        let http = Settings::read(&lookup, Serves::Http)
            .0
            .err()
            .map(|e| e.0)
            .unwrap_or_default();
        for name in ["JWT_ACCESS_SECRET", "JWT_REFRESH_SECRET", "CORS_ORIGIN"] {
            assert!(http.iter().any(|p| p.starts_with(name)), "{name}: {http:?}");
        }
    }

    #[test]
    fn the_nestjs_redis_options_are_refused_with_what_replaces_them() {
        let found = problems(&[
            ("REDIS_MAX_RETRIES", "3"),
            ("REDIS_ENABLE_OFFLINE_QUEUE", "false"),
        ]);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found.iter().any(|p| p.starts_with(
            "REDIS_MAX_RETRIES: not used by this version: requests wait at most REDIS_TIMEOUT_MS"
        )));
    }

    #[test]
    fn a_log_level_is_a_level_or_directives_and_the_nestjs_names_are_read() {
        let level = |raw: &str| settings(&[("LOG_LEVEL", raw)]).map(|s| s.log_level);
        assert_eq!(level("verbose").ok().as_deref(), Some("trace"));
        assert_eq!(level("log").ok().as_deref(), Some("info"));
        assert_eq!(
            level("warn,http_api=debug").ok().as_deref(),
            Some("warn,http_api=debug")
        );
        assert!(
            level("loud").is_err(),
            "a bare word would silence every log"
        );
        assert!(level("http_api=noisy").is_err());
    }

    #[test]
    fn production_with_redis_keeps_files_where_every_instance_reaches_them() {
        let (access, refresh) = ("a".repeat(40), "b".repeat(40));
        let production = [
            ("APP_ENV", "production"),
            ("JWT_ACCESS_SECRET", access.as_str()),
            ("JWT_REFRESH_SECRET", refresh.as_str()),
            ("CORS_ORIGIN", "https://a.dev"),
            ("JOB_PAYLOAD_KEY", TEST_KEY),
            ("EMAIL_LOG_TRANSPORT", "true"),
            ("FRONTEND_URL", "https://a.dev"),
            ("HOST", "10.0.0.5"),
            ("REDIS_URL", "redis://127.0.0.1:6379"),
        ];
        let found = problems(&production);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("UPLOAD_BASE_URL: must be set in production"));
        for fix in [
            ("UPLOAD_BASE_URL", "https://files.a.dev/uploads"),
            ("S3_BUCKET", "console-files"),
        ] {
            let fixed = settings(&[&production[..], &[fix]].concat());
            assert!(fixed.is_ok(), "{fix:?}: {:?}", fixed.err());
        }
        assert!(
            settings(&production[..8]).is_ok(),
            "one instance without Redis"
        );
    }

    #[test]
    fn production_refuses_to_write_this_machines_address_into_links_and_file_urls() {
        let (access, refresh) = ("a".repeat(40), "b".repeat(40));
        let production = [
            ("APP_ENV", "production"),
            ("JWT_ACCESS_SECRET", access.as_str()),
            ("JWT_REFRESH_SECRET", refresh.as_str()),
            ("CORS_ORIGIN", "https://a.dev"),
            ("JOB_PAYLOAD_KEY", TEST_KEY),
            ("EMAIL_LOG_TRANSPORT", "true"),
        ];
        let found = problems(&production);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].starts_with("FRONTEND_URL: \"http://localhost:5173\""));
        assert!(found[1].starts_with("UPLOAD_BASE_URL: must be set in production when HOST"));
        for (frontend, files, refused) in [
            ("https://a.dev", "http://127.0.0.1:3000/uploads", 1),
            ("http://[::1]:8080", "https://files.a.dev", 1),
            ("https://app.localhost", "https://files.a.dev", 1),
            ("https://a.dev", "https://files.a.dev/uploads", 0),
        ] {
            let found = problems(
                &[
                    &production[..],
                    &[("FRONTEND_URL", frontend), ("UPLOAD_BASE_URL", files)],
                ]
                .concat(),
            );
            assert_eq!(found.len(), refused, "{frontend} {files}: {found:?}");
        }
        let jobs_only: HashMap<String, String> =
            [&production[..], &[("FRONTEND_URL", "https://a.dev")]]
                .concat()
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
        let jobs = Settings::read(
            &move |name: &str| jobs_only.get(name).cloned(),
            Serves::Jobs,
        )
        .0;
        assert!(
            jobs.is_ok(),
            "a worker writes no file URL: {:?}",
            jobs.err()
        );
    }

    #[test]
    fn a_bucket_takes_both_keys_or_neither_and_an_http_endpoint() {
        let bucket = [("S3_BUCKET", "files")];
        let s = settings(&bucket).unwrap_or_else(|e| panic!("{e}"));
        let s3 = s.s3.unwrap_or_else(|| panic!("S3_BUCKET is set"));
        assert_eq!((s3.region.as_str(), s3.path_style), ("us-east-1", false));
        let found = problems(
            &[
                &bucket[..],
                &[("S3_ACCESS_KEY_ID", "id"), ("S3_ENDPOINT", "minio:9000")],
            ]
            .concat(),
        );
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found
                .iter()
                .any(|p| p.starts_with("S3_ENDPOINT: expected an http(s) URL"))
        );
        assert!(
            found
                .iter()
                .any(|p| p.starts_with("S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY"))
        );
    }

    #[test]
    fn smtp_tls_is_starttls_unless_secure_and_required_only_when_asked() {
        let s = settings(&[("SMTP_HOST", "smtp.a.dev")]).unwrap_or_else(|e| panic!("{e}"));
        let smtp = s.smtp.unwrap_or_else(|| panic!("SMTP_HOST is set"));
        assert!(!smtp.secure && !smtp.require_tls && smtp.ca_file.is_none());
        let s = settings(&[
            ("SMTP_HOST", "smtp.a.dev"),
            ("SMTP_REQUIRE_TLS", "true"),
            ("SMTP_TLS_CA_FILE", "/etc/console/relay-ca.pem"),
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        let smtp = s.smtp.unwrap_or_else(|| panic!("SMTP_HOST is set"));
        assert!(smtp.require_tls);
        assert_eq!(
            smtp.ca_file,
            Some(PathBuf::from("/etc/console/relay-ca.pem"))
        );
    }

    #[test]
    fn debug_output_of_the_settings_shows_no_secret() {
        let (access, refresh) = ("access-secret-".repeat(3), "refresh-secret-".repeat(3));
        let s = settings(&[
            ("JWT_ACCESS_SECRET", &access),
            ("JWT_REFRESH_SECRET", &refresh),
            ("SMTP_HOST", "smtp.a.dev"),
            ("SMTP_USER", "mailer"),
            ("SMTP_PASSWORD", "smtp-password-value"),
            (
                "MONGODB_URI",
                "mongodb://app:mongo-password-value@db/console",
            ),
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        let debug = format!("{s:?}");
        assert!(debug.contains("mailer"), "{debug}");
        for secret in [
            "access-secret",
            "refresh-secret",
            "smtp-password-value",
            "mongo-password-value",
        ] {
            assert!(!debug.contains(secret), "{secret} in {debug}");
        }
    }

    #[test]
    fn durations_accept_seconds_and_units() {
        let s = settings(&[
            ("JWT_ACCESS_TOKEN_EXPIRATION", "90"),
            ("JWT_REFRESH_TOKEN_EXPIRATION", "2h"),
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (s.access_ttl.as_secs(), s.refresh_ttl.as_secs()),
            (90, 7200)
        );
        assert!(
            problems(&[("JWT_ACCESS_TOKEN_EXPIRATION", "soon")])[0]
                .starts_with("JWT_ACCESS_TOKEN_EXPIRATION:")
        );
    }

    #[test]
    fn location_lookups_are_off_unless_a_provider_is_chosen() {
        let s = settings(&[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.location_provider, LocationProvider::None);
        assert_eq!(s.location_cache_ttl, Duration::from_secs(24 * 3600));
        assert_eq!(s.location_timeout, Duration::from_millis(2000));
        let s = settings(&[
            ("LOCATION_PROVIDER", "maxmind"),
            ("LOCATION_MAXMIND_DB_PATH", "/geo/GeoLite2-City.mmdb"),
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            s.location_provider,
            LocationProvider::MaxMind(PathBuf::from("/geo/GeoLite2-City.mmdb"))
        );
    }

    #[test]
    fn the_nestjs_location_switch_means_the_http_provider() {
        let s = settings(&[
            ("LOCATION_ENABLED", "true"),
            ("LOCATION_API_URL", "https://pro.ip-api.com/json"),
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            s.location_provider,
            LocationProvider::Http("https://pro.ip-api.com/json".to_owned())
        );
        let s = settings(&[("LOCATION_ENABLED", "false")]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.location_provider, LocationProvider::None);
    }

    #[test]
    fn location_problems_name_the_variable() {
        assert_eq!(
            problems(&[("LOCATION_PROVIDER", "maxmind")]),
            ["LOCATION_MAXMIND_DB_PATH: must be set with LOCATION_PROVIDER=maxmind"]
        );
        assert_eq!(
            problems(&[("LOCATION_PROVIDER", "geoip")]),
            ["LOCATION_PROVIDER: expected none, maxmind or http, got \"geoip\""]
        );
        assert_eq!(
            problems(&[
                ("LOCATION_PROVIDER", "http"),
                ("LOCATION_API_URL", "ip-api.com")
            ]),
            ["LOCATION_API_URL: expected an http(s) URL, got \"ip-api.com\""]
        );
        assert_eq!(
            problems(&[("LOCATION_PROVIDER", "http"), ("LOCATION_ENABLED", "false")]),
            ["LOCATION_ENABLED: false contradicts LOCATION_PROVIDER=http"]
        );
        assert_eq!(
            problems(&[("LOCATION_TIMEOUT_MS", "0")]),
            ["LOCATION_TIMEOUT_MS: must be at least 1"]
        );
    }

    #[test]
    fn cors_origins_default_to_the_frontend_and_accept_lists() {
        let s = settings(&[("FRONTEND_URL", "https://me.dev/")]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.cors_origins, vec!["https://me.dev".to_owned()]);
        let s = settings(&[("CORS_ORIGIN", "https://a.dev, https://b.dev")])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            s.cors_origins,
            vec!["https://a.dev".to_owned(), "https://b.dev".to_owned()]
        );
    }
}
