//! Configuration from the environment (and an optional `.env`), typed and validated. Every
//! variable is declared once in [`VARIABLES`]; `.env.example` is rendered from that table and a
//! test keeps the two, and the variables the parser reads, identical.

use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl std::str::FromStr for LogFormat {
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

const fn var(
    section: &'static str,
    name: &'static str,
    default: &'static str,
    doc: &'static str,
) -> Variable {
    Variable {
        name,
        default,
        doc,
        section,
    }
}

/// Every variable the processes read.
pub const VARIABLES: &[Variable] = &[
    var(
        "Process",
        "APP_ENV",
        "development",
        "development | production | test (NODE_ENV is read when APP_ENV is unset)",
    ),
    var(
        "Process",
        "NODE_ENV",
        "",
        "Fallback for APP_ENV, for .env files of the NestJS version",
    ),
    var(
        "Process",
        "HOST",
        "127.0.0.1",
        "Address the HTTP server binds",
    ),
    var(
        "Process",
        "PORT",
        "3000",
        "Port the HTTP server binds (0: any free port)",
    ),
    var(
        "Process",
        "DATA_DIR",
        "./data",
        "Directory of the embedded database and generated development secrets",
    ),
    var(
        "Process",
        "SQLITE_SYNCHRONOUS",
        "full",
        "full: every acknowledged write of the embedded database survives a power loss; normal: cheaper commits, the last ones may be lost on power loss (see docs/adr/0006)",
    ),
    var(
        "Process",
        "LOG_LEVEL",
        "info",
        "Log filter (tracing EnvFilter syntax, e.g. info,http_api=debug); RUST_LOG wins when set",
    ),
    var(
        "Process",
        "LOG_FORMAT",
        "text",
        "text: one readable line per event; json: one JSON object per line (with the request's span fields)",
    ),
    var(
        "Process",
        "SHUTDOWN_TIMEOUT_SECS",
        "30",
        "How long SIGTERM/SIGINT waits for in-flight work before exiting",
    ),
    var(
        "HTTP",
        "FRONTEND_URL",
        "http://localhost:5173",
        "Base URL of links in emails (reset, verification)",
    ),
    var(
        "HTTP",
        "CORS_ORIGIN",
        "",
        "Comma-separated allowed origins (default: FRONTEND_URL); required in production",
    ),
    var(
        "HTTP",
        "CORS_CREDENTIALS",
        "true",
        "Whether browsers may send credentials cross-origin",
    ),
    var(
        "HTTP",
        "CORS_PREFLIGHT_MAX_AGE",
        "86400",
        "Seconds browsers may cache a preflight answer",
    ),
    var(
        "HTTP",
        "JSON_BODY_LIMIT",
        "1048576",
        "Largest accepted JSON body in bytes (larger: 413)",
    ),
    var(
        "HTTP",
        "PUBLIC_CACHE_TTL",
        "60s",
        "How long a rendered public portfolio may be served from memory; changes on this instance clear it at once (0s: no cache)",
    ),
    var(
        "HTTP",
        "TRUSTED_PROXY_HEADER",
        "",
        "Header carrying the client IP behind a reverse proxy (e.g. X-Forwarded-For); unset: the peer address",
    ),
    var(
        "HTTP",
        "TRUSTED_PROXIES",
        "127.0.0.1,::1",
        "Peers whose TRUSTED_PROXY_HEADER is believed",
    ),
    var("HTTP", "THROTTLE_TTL", "60", "Rate-limit window in seconds"),
    var(
        "HTTP",
        "THROTTLE_LIMIT",
        "100",
        "Requests per window per client",
    ),
    var(
        "HTTP",
        "THROTTLE_AUTH_LIMIT",
        "5",
        "Requests per window per client on POST /auth/* routes",
    ),
    var(
        "Auth",
        "JWT_ACCESS_SECRET",
        "",
        "Access-token signing secret, >= 32 bytes (development: generated into DATA_DIR when unset)",
    ),
    var(
        "Auth",
        "JWT_REFRESH_SECRET",
        "",
        "Refresh-token signing secret, >= 32 bytes, distinct from the access secret",
    ),
    var(
        "Auth",
        "JWT_ACCESS_TOKEN_EXPIRATION",
        "15m",
        "Access-token lifetime (e.g. 900s, 15m, 1h)",
    ),
    var(
        "Auth",
        "JWT_REFRESH_TOKEN_EXPIRATION",
        "7d",
        "Refresh-token and session lifetime",
    ),
    var(
        "Auth",
        "JWT_REFRESH_REUSE_INTERVAL",
        "0",
        "Seconds a just-rotated refresh token may still be retried (0: never)",
    ),
    var(
        "Auth",
        "SESSION_CHECK_TTL",
        "5s",
        "How long an instance trusts a session-liveness check; a revoke on another instance bites within this (0s: check every request)",
    ),
    var(
        "Auth",
        "ARGON2_MEMORY_COST",
        "65536",
        "Argon2id memory in KiB",
    ),
    var("Auth", "ARGON2_TIME_COST", "3", "Argon2id iterations"),
    var("Auth", "ARGON2_PARALLELISM", "4", "Argon2id lanes"),
    var(
        "Auth",
        "ARGON2_MAX_CONCURRENT",
        "",
        "Hashes computed at once (default: number of CPUs)",
    ),
    var(
        "Auth",
        "ADMIN_EMAILS",
        "",
        "Comma-separated emails whose accounts have role admin",
    ),
    var(
        "Location",
        "LOCATION_PROVIDER",
        "",
        "Where session locations come from: none, maxmind (a local database file) or http (an ip-api.com-style service); default http when LOCATION_ENABLED=true, else none",
    ),
    var(
        "Location",
        "LOCATION_ENABLED",
        "",
        "The NestJS version's switch: true with LOCATION_PROVIDER unset means http",
    ),
    var(
        "Location",
        "LOCATION_MAXMIND_DB_PATH",
        "",
        "GeoLite2-City or GeoIP2-City .mmdb file, read at start (required with maxmind)",
    ),
    var(
        "Location",
        "LOCATION_API_URL",
        "http://ip-api.com/json",
        "Lookup URL of the http provider; the address is appended. It receives users' IP addresses (ip-api.com's free tier: plain HTTP, non-commercial use)",
    ),
    var(
        "Location",
        "LOCATION_CACHE_TTL",
        "24h",
        "How long a looked-up address is remembered (up to 10000 addresses)",
    ),
    var(
        "Location",
        "LOCATION_TIMEOUT_MS",
        "2000",
        "Longest wait for the http provider; a slow or failed lookup leaves the location unknown",
    ),
    var(
        "Storage",
        "MONGODB_URI",
        "",
        "MongoDB connection string; unset: the embedded database under DATA_DIR",
    ),
    var(
        "Storage",
        "MONGODB_DATABASE",
        "",
        "Database name (default: the URI's path, else console)",
    ),
    var(
        "Email",
        "SMTP_HOST",
        "",
        "SMTP server; unset: emails are written to the log (production: only with EMAIL_LOG_TRANSPORT=true)",
    ),
    var("Email", "SMTP_PORT", "587", "SMTP port"),
    var("Email", "SMTP_USER", "", "SMTP user name"),
    var("Email", "SMTP_PASSWORD", "", "SMTP password"),
    var(
        "Email",
        "SMTP_FROM",
        "Console <no-reply@localhost>",
        "Sender mailbox",
    ),
    var(
        "Email",
        "SMTP_SECURE",
        "false",
        "true: implicit TLS (port 465); false: STARTTLS whenever the server offers it",
    ),
    var(
        "Email",
        "SMTP_REQUIRE_TLS",
        "false",
        "true: never send in clear; a server that does not offer STARTTLS gets neither credentials nor mail",
    ),
    var(
        "Email",
        "SMTP_TLS_CA_FILE",
        "",
        "PEM file of CA certificates trusted for the SMTP server besides the public roots (an internal relay)",
    ),
    var(
        "Email",
        "EMAIL_LOG_TRANSPORT",
        "false",
        "true: production may run without SMTP_HOST, logging each email's recipient and subject but never its body",
    ),
    var(
        "Jobs",
        "EMAIL_QUEUE_ATTEMPTS",
        "5",
        "Attempts per email job before it is kept as failed",
    ),
    var(
        "Jobs",
        "EMAIL_QUEUE_BACKOFF_MS",
        "2000",
        "Delay before the first retry; doubles each retry",
    ),
    var(
        "Jobs",
        "JOB_VISIBILITY_TIMEOUT_MS",
        "30000",
        "After this, an unacknowledged job is handed to another worker",
    ),
];

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

/// Typed, validated configuration.
#[derive(Clone, Debug)]
pub struct Settings {
    pub environment: Environment,
    pub host: String,
    pub port: u16,
    pub data_dir: PathBuf,
    /// How far a commit of the embedded database is on disk before it is acknowledged.
    pub sqlite_durability: store_sqlite::Durability,
    pub log_level: String,
    pub log_format: LogFormat,
    pub shutdown_timeout: Duration,
    pub frontend_url: String,
    pub cors_origins: Vec<String>,
    pub cors_credentials: bool,
    pub cors_max_age: usize,
    pub json_body_limit: usize,
    pub public_cache_ttl: Duration,
    pub trusted_proxy_header: Option<String>,
    pub trusted_proxies: Vec<IpAddr>,
    pub throttle_window: Duration,
    pub throttle_limit: u32,
    pub throttle_auth_limit: u32,
    pub jwt_access_secret: Option<SecretString>,
    pub jwt_refresh_secret: Option<SecretString>,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    pub refresh_reuse_interval: Duration,
    /// How long a positive session-liveness check is trusted.
    pub session_check_ttl: Duration,
    pub argon2_memory_cost: u32,
    pub argon2_time_cost: u32,
    pub argon2_parallelism: u32,
    pub argon2_max_concurrent: usize,
    pub admin_emails: HashSet<String>,
    pub location_provider: LocationProvider,
    pub location_cache_ttl: Duration,
    pub location_timeout: Duration,
    pub mongodb_uri: Option<SecretString>,
    pub mongodb_database: Option<String>,
    pub smtp: Option<SmtpConfig>,
    /// Production without `smtp` was allowed explicitly.
    pub email_log_transport: bool,
    pub email_attempts: u32,
    pub email_backoff: Duration,
    pub job_visibility_timeout: Duration,
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
struct Reader<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    problems: Vec<String>,
    read: BTreeSet<&'static str>,
}

impl Reader<'_> {
    fn raw(&mut self, name: &'static str) -> Option<String> {
        self.read.insert(name);
        let declared = VARIABLES.iter().find(|v| v.name == name);
        if declared.is_none() {
            self.problems
                .push(format!("{name}: read but not declared in VARIABLES"));
        }
        (self.lookup)(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .or_else(|| {
                declared
                    .map(|v| v.default.to_owned())
                    .filter(|d| !d.is_empty())
            })
    }

    fn optional(&mut self, name: &'static str) -> Option<String> {
        self.raw(name)
    }

    fn string(&mut self, name: &'static str) -> String {
        self.raw(name).unwrap_or_default()
    }

    fn parsed<T: std::str::FromStr + Default>(&mut self, name: &'static str, what: &str) -> T {
        let Some(raw) = self.raw(name) else {
            return T::default();
        };
        raw.parse().unwrap_or_else(|_| {
            self.problems
                .push(format!("{name}: expected {what}, got {raw:?}"));
            T::default()
        })
    }

    fn positive(&mut self, name: &'static str) -> u32 {
        let value: u32 = self.parsed(name, "a whole number");
        if value == 0 {
            self.problems.push(format!("{name}: must be at least 1"));
        }
        value
    }

    fn flag(&mut self, name: &'static str) -> bool {
        match self
            .raw(name)
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("false" | "0" | "no" | "off") => false,
            Some("true" | "1" | "yes" | "on") => true,
            Some(other) => {
                self.problems
                    .push(format!("{name}: expected true or false, got {other:?}"));
                false
            }
        }
    }

    fn duration(&mut self, name: &'static str) -> Duration {
        let Some(raw) = self.raw(name) else {
            return Duration::ZERO;
        };
        if let Ok(seconds) = raw.parse::<u64>() {
            return Duration::from_secs(seconds);
        }
        humantime::parse_duration(&raw).unwrap_or_else(|_| {
            self.problems.push(format!(
                "{name}: expected a duration like 900, 15m, 7d; got {raw:?}"
            ));
            Duration::ZERO
        })
    }

    fn millis(&mut self, name: &'static str) -> Duration {
        Duration::from_millis(self.parsed::<u64>(name, "milliseconds"))
    }

    fn list(&mut self, name: &'static str) -> Vec<String> {
        self.raw(name)
            .map(|raw| {
                raw.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    fn secret(&mut self, name: &'static str) -> Option<SecretString> {
        self.raw(name).map(SecretString::from)
    }
}

fn is_http_url(raw: &str) -> bool {
    (raw.starts_with("http://") || raw.starts_with("https://"))
        && raw.split("://").nth(1).is_some_and(|rest| !rest.is_empty())
}

/// `LOCATION_PROVIDER`, else the NestJS version's `LOCATION_ENABLED` (which meant its HTTP
/// service), with the settings the chosen provider needs.
fn location_provider(r: &mut Reader<'_>) -> LocationProvider {
    let enabled = r
        .optional("LOCATION_ENABLED")
        .map(|_| r.flag("LOCATION_ENABLED"));
    let database = r.optional("LOCATION_MAXMIND_DB_PATH");
    let url = r.string("LOCATION_API_URL");
    let chosen = r
        .optional("LOCATION_PROVIDER")
        .map(|p| p.to_ascii_lowercase());
    let name = match (chosen, enabled) {
        (Some(name), Some(false)) if name != "none" => {
            r.problems.push(format!(
                "LOCATION_ENABLED: false contradicts LOCATION_PROVIDER={name}"
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
                r.problems.push(
                    "LOCATION_MAXMIND_DB_PATH: must be set with LOCATION_PROVIDER=maxmind"
                        .to_owned(),
                );
                LocationProvider::None
            }
        },
        "http" => {
            if !is_http_url(&url) {
                r.problems.push(format!(
                    "LOCATION_API_URL: expected an http(s) URL, got {url:?}"
                ));
            }
            LocationProvider::Http(url)
        }
        other => {
            r.problems.push(format!(
                "LOCATION_PROVIDER: expected none, maxmind or http, got {other:?}"
            ));
            LocationProvider::None
        }
    }
}

impl Settings {
    /// Reads and validates the configuration through `lookup` (the process environment in
    /// production, a map in tests).
    ///
    /// # Errors
    /// [`ConfigErrors`] listing every problem.
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigErrors> {
        Self::read(lookup).0
    }

    fn read(
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> (Result<Self, ConfigErrors>, BTreeSet<&'static str>) {
        let mut r = Reader {
            lookup,
            problems: Vec::new(),
            read: BTreeSet::new(),
        };
        let node_env = r.optional("NODE_ENV");
        let app_env = lookup("APP_ENV")
            .filter(|v| !v.trim().is_empty())
            .or(node_env);
        let declared_env = r.string("APP_ENV");
        let environment = match app_env.unwrap_or(declared_env).trim() {
            "development" | "dev" => Environment::Development,
            "production" | "prod" => Environment::Production,
            "test" => Environment::Test,
            other => {
                r.problems.push(format!(
                    "APP_ENV: expected development, production or test, got {other:?}"
                ));
                Environment::Development
            }
        };
        let frontend_url = r.string("FRONTEND_URL").trim_end_matches('/').to_owned();
        if !is_http_url(&frontend_url) {
            r.problems.push(format!(
                "FRONTEND_URL: expected an http(s) URL, got {frontend_url:?}"
            ));
        }
        let explicit_origins = r.list("CORS_ORIGIN");
        if environment == Environment::Production && explicit_origins.is_empty() {
            r.problems
                .push("CORS_ORIGIN: must be set in production".to_owned());
        }
        let cors_origins = if explicit_origins.is_empty() {
            vec![frontend_url.clone()]
        } else {
            explicit_origins
        };
        let cors_credentials = r.flag("CORS_CREDENTIALS");
        if environment == Environment::Production
            && cors_credentials
            && cors_origins.iter().any(|o| o == "*")
        {
            r.problems.push(
                "CORS_ORIGIN: \"*\" with CORS_CREDENTIALS=true lets every website make logged-in requests; list the allowed origins (or set CORS_CREDENTIALS=false)"
                    .to_owned(),
            );
        }
        for origin in &cors_origins {
            if origin != "*" && !is_http_url(origin) {
                r.problems
                    .push(format!("CORS_ORIGIN: {origin:?} is not an http(s) origin"));
            }
        }
        let trusted_proxies = r
            .list("TRUSTED_PROXIES")
            .into_iter()
            .filter_map(|raw| match raw.parse() {
                Ok(ip) => Some(ip),
                Err(_) => {
                    r.problems
                        .push(format!("TRUSTED_PROXIES: {raw:?} is not an IP address"));
                    None
                }
            })
            .collect();
        let location_provider = location_provider(&mut r);
        let smtp_host = r.optional("SMTP_HOST");
        let smtp = SmtpConfig {
            host: smtp_host.clone().unwrap_or_default(),
            port: r.parsed("SMTP_PORT", "a port number"),
            user: r.optional("SMTP_USER"),
            password: r.secret("SMTP_PASSWORD"),
            from: r.string("SMTP_FROM"),
            secure: r.flag("SMTP_SECURE"),
            require_tls: r.flag("SMTP_REQUIRE_TLS"),
            ca_file: r.optional("SMTP_TLS_CA_FILE").map(PathBuf::from),
        };
        let settings = Self {
            environment,
            host: r.string("HOST"),
            port: r.parsed("PORT", "a port number (0-65535)"),
            data_dir: PathBuf::from(r.string("DATA_DIR")),
            sqlite_durability: r.parsed("SQLITE_SYNCHRONOUS", "full or normal"),
            log_level: r.string("LOG_LEVEL"),
            log_format: r.parsed("LOG_FORMAT", "text or json"),
            shutdown_timeout: Duration::from_secs(u64::from(r.positive("SHUTDOWN_TIMEOUT_SECS"))),
            frontend_url,
            cors_origins,
            cors_credentials,
            cors_max_age: r.parsed("CORS_PREFLIGHT_MAX_AGE", "seconds"),
            json_body_limit: r.parsed("JSON_BODY_LIMIT", "bytes"),
            public_cache_ttl: r.duration("PUBLIC_CACHE_TTL"),
            trusted_proxy_header: r.optional("TRUSTED_PROXY_HEADER"),
            trusted_proxies,
            throttle_window: Duration::from_secs(u64::from(r.positive("THROTTLE_TTL"))),
            throttle_limit: r.positive("THROTTLE_LIMIT"),
            throttle_auth_limit: r.positive("THROTTLE_AUTH_LIMIT"),
            jwt_access_secret: r.secret("JWT_ACCESS_SECRET"),
            jwt_refresh_secret: r.secret("JWT_REFRESH_SECRET"),
            access_ttl: r.duration("JWT_ACCESS_TOKEN_EXPIRATION"),
            refresh_ttl: r.duration("JWT_REFRESH_TOKEN_EXPIRATION"),
            refresh_reuse_interval: r.duration("JWT_REFRESH_REUSE_INTERVAL"),
            session_check_ttl: r.duration("SESSION_CHECK_TTL"),
            argon2_memory_cost: r.positive("ARGON2_MEMORY_COST"),
            argon2_time_cost: r.positive("ARGON2_TIME_COST"),
            argon2_parallelism: r.positive("ARGON2_PARALLELISM"),
            argon2_max_concurrent: r
                .optional("ARGON2_MAX_CONCURRENT")
                .map(|_| r.positive("ARGON2_MAX_CONCURRENT") as usize)
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from)),
            admin_emails: r
                .list("ADMIN_EMAILS")
                .into_iter()
                .map(|e| e.to_lowercase())
                .collect(),
            location_provider,
            location_cache_ttl: r.duration("LOCATION_CACHE_TTL"),
            location_timeout: Duration::from_millis(u64::from(r.positive("LOCATION_TIMEOUT_MS"))),
            mongodb_uri: r.secret("MONGODB_URI"),
            mongodb_database: r.optional("MONGODB_DATABASE"),
            smtp: smtp_host.map(|_| smtp),
            email_log_transport: r.flag("EMAIL_LOG_TRANSPORT"),
            email_attempts: r.positive("EMAIL_QUEUE_ATTEMPTS"),
            email_backoff: r.millis("EMAIL_QUEUE_BACKOFF_MS"),
            job_visibility_timeout: r.millis("JOB_VISIBILITY_TIMEOUT_MS"),
        };
        let mut problems = r.problems;
        settings.check(&mut problems);
        let read = r.read;
        if problems.is_empty() {
            (Ok(settings), read)
        } else {
            (Err(ConfigErrors(problems)), read)
        }
    }

    fn check(&self, problems: &mut Vec<String>) {
        if self.access_ttl < Duration::from_secs(1) {
            problems.push("JWT_ACCESS_TOKEN_EXPIRATION: must be at least 1s".to_owned());
        }
        if self.refresh_ttl <= self.access_ttl {
            problems.push(
                "JWT_REFRESH_TOKEN_EXPIRATION: must be longer than the access-token lifetime"
                    .to_owned(),
            );
        }
        if self.json_body_limit < 1024 {
            problems.push("JSON_BODY_LIMIT: must be at least 1024 bytes".to_owned());
        }
        if self.argon2_memory_cost < 8 * self.argon2_parallelism {
            problems.push(
                "ARGON2_MEMORY_COST: must be at least 8 KiB per lane (ARGON2_PARALLELISM)"
                    .to_owned(),
            );
        }
        if self.environment == Environment::Production
            && self.smtp.is_none()
            && !self.email_log_transport
        {
            problems.push(
                "SMTP_HOST: must be set in production (or EMAIL_LOG_TRANSPORT=true to log emails without their bodies)"
                    .to_owned(),
            );
        }
        if self.environment == Environment::Production {
            for (name, secret) in [
                ("JWT_ACCESS_SECRET", &self.jwt_access_secret),
                ("JWT_REFRESH_SECRET", &self.jwt_refresh_secret),
            ] {
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
            problems.push("JWT_REFRESH_SECRET: must differ from JWT_ACCESS_SECRET".to_owned());
        }
        for (name, secret) in [
            ("JWT_ACCESS_SECRET", &self.jwt_access_secret),
            ("JWT_REFRESH_SECRET", &self.jwt_refresh_secret),
        ] {
            if let Some(s) = secret
                && s.expose_secret().len() < 32
                && self.environment != Environment::Production
            {
                problems.push(format!(
                    "{name}: must be at least 32 bytes (unset it to have one generated)"
                ));
            }
        }
    }

    /// Reads the process environment, after loading `.env` from the working directory when
    /// present (real environment variables win).
    ///
    /// # Errors
    /// [`ConfigErrors`] listing every problem, including an unreadable `.env`.
    pub fn from_env() -> Result<Self, ConfigErrors> {
        match dotenvy::dotenv() {
            Ok(_) => {}
            Err(error) if error.not_found() => {}
            Err(error) => return Err(ConfigErrors(vec![format!(".env: {error}")])),
        }
        Self::from_lookup(&|name| std::env::var(name).ok())
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
            let line = format!("{}={}\n", variable.name, variable.default);
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
        let (result, read) = Settings::read(&|_| None);
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
            ["SMTP_SECURE", "PORT", "THROTTLE_LIMIT"],
            "{found:?}"
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
        ]);
        assert_eq!(
            found,
            vec!["JWT_ACCESS_SECRET: must be at least 32 bytes".to_owned()]
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
