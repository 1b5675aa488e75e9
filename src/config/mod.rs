//! `herald.toml` → validated [`Settings`].
//!
//! Owns the config file format: lookup of the file, `${VAR}` substitution, includes,
//! defaults, and validation with `file:line:col` errors. Produces plain values (URLs,
//! durations, byte counts, redacting secret types); the app turns them into the
//! pipeline's own types. It knows no other herald module, and rule queries are kept as
//! text with their [`Location`]: the rules module parses them.
//!
//! Syntax decisions:
//! - `${NAME}` works in every string value; `$${` is a literal `${`; a lone `$` is kept.
//! - Sizes: `KB`/`MB`/`GB` are decimal (1000ⁿ), `KiB`/`MiB`/`GiB` binary (1024ⁿ), `B` or
//!   a plain integer is bytes.
//! - `[api]` absent, or `listen = false`, disables the API; `[api]` without `listen`
//!   serves on [`DEFAULT_API_LISTEN`].
//! - Included files may hold `feeds`, `sinks`, `rules` and further `include`s. A file
//!   reached twice is read once; a file that includes itself, directly or not, is an
//!   error.
//! - `feeds.d/managed.toml` beside the main file is read last, without an include
//!   line: feeds and a `disabled` list that `herald feeds` writes ([`managed`]).
//! - Sink and rule names are `[A-Za-z0-9_-]+`; a rule must list its `sinks` (an empty
//!   list mutes it).

mod collect;
mod loader;
mod location;
pub mod managed;
mod raw;
mod secret;
#[cfg(test)]
mod tests;
mod values;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::time::Duration;

use url::Url;

use crate::domain::digest::DigestSchedule;
use crate::domain::quiet_hours::QuietHours;

pub use crate::domain::address::PrivateNetworks;
pub use crate::domain::redact::Redactor;
pub use location::Location;
pub use secret::{DatabaseBackend, DatabaseUrl, Secret, SecretUrl};

/// Environment variable naming the config file when `--config` is not given.
pub const ENV_CONFIG: &str = "HERALD_CONFIG";
/// Environment variable that overrides `database.url`.
pub const ENV_DATABASE_URL: &str = "HERALD_DATABASE_URL";

/// Environment variable for the log format, between `--log-format` and `[log] format`.
pub const ENV_LOG_FORMAT: &str = "HERALD_LOG_FORMAT";

/// Config file looked up in the working directory.
pub const LOCAL_CONFIG_PATH: &str = "herald.toml";
/// Config file looked up last, where packages install it.
pub const SYSTEM_CONFIG_PATH: &str = "/etc/herald/herald.toml";

/// Embedded SQLite next to the working directory: zero set-up.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://herald.db";

/// Telegram's Bot API, where a `telegram` sink posts unless `api_url` says otherwise.
pub const TELEGRAM_API: &str = "https://api.telegram.org";

/// Slack's Web API, where a `slack_app` sink posts unless `api_url` says otherwise.
pub const SLACK_API: &str = "https://slack.com/api";
/// How long a SQLite write waits for another process's write (`herald poll`
/// beside `herald run`, a migration) before it fails.
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// How long connecting to PostgreSQL may take before herald gives up and says
/// why: a server that is down answers at once; one that does not answer at all
/// (a wrong address, a firewall dropping packets) would otherwise hold every
/// command for the operating system's TCP timeout, minutes.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a feed is polled unless it says otherwise.
pub const DEFAULT_FETCH_INTERVAL: Duration = Duration::from_secs(15 * 60);
/// Whole-request timeout for one feed fetch.
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(30);
/// Feeds fetched at once by the whole instance.
pub const DEFAULT_FETCH_CONCURRENCY: usize = 64;
/// Feeds fetched at once from one host name, out of politeness.
pub const DEFAULT_FETCH_PER_HOST: usize = 2;
/// Largest feed body accepted, after decompression: 10 MB.
pub const DEFAULT_MAX_BODY: u64 = 10_000_000;
/// Redirects followed before a fetch fails.
pub const DEFAULT_MAX_REDIRECTS: usize = 5;
/// Where the HTTP API listens when `[api]` is present: loopback only.
pub const DEFAULT_API_LISTEN: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8645));
/// API connections served at once. Further clients wait in the kernel's listen
/// backlog, holding none of herald's file descriptors, until one closes.
pub const DEFAULT_API_MAX_CONNECTIONS: usize = 256;
/// Most API connections accepted: Linux's default ceiling on open files per process
/// (`fs.nr_open`), which no more connections could fit under anyway.
pub const MAX_API_CONNECTIONS: usize = 1 << 20;
/// How long an API client has to send a request's headers, from the moment it
/// connects or, between requests, from its first byte.
pub const DEFAULT_API_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long herald works on one API request before answering 503.
pub const DEFAULT_API_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long an API connection may sit with nothing moving: a kept-alive connection
/// waiting for its next request, or a client not reading its response.
pub const DEFAULT_API_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Items published longer ago than this are stored but never alert.
pub const DEFAULT_ALERT_MAX_AGE: Duration = Duration::from_secs(48 * 3600);
/// A delivery still failing after this long is dead.
pub const DEFAULT_ALERT_GIVE_UP: Duration = Duration::from_secs(24 * 3600);
/// How long a dispatcher owns the deliveries it claimed; a crashed instance's
/// claims are sent again by another once this has passed.
pub const DEFAULT_ALERT_LEASE: Duration = Duration::from_secs(60);
/// Shortest lease accepted: longer than one send may take (the 10 s sink timeout),
/// or a live dispatcher would lose deliveries it is still sending.
pub const MIN_ALERT_LEASE: Duration = Duration::from_secs(15);
/// How far back a reprint may join an existing story.
pub const DEFAULT_STORY_WINDOW: Duration = Duration::from_secs(72 * 3600);
/// Share of the shorter article's body (its estimated 3-word shingles) that must
/// appear in the other for the two to be one story, in (0, 1]. 0.5 sits midway
/// between what reprints score (≥ 0.68 in the evaluation) and what different
/// articles about the same names score (≤ 0.33); see docs/performance.md, "Stories".
pub const DEFAULT_STORY_THRESHOLD: f64 = 0.5;
/// How long finished deliveries (delivered or dead) and their attempts are kept:
/// a quarter of history to look back on when a receiver asks what it was sent.
pub const DEFAULT_DELIVERY_RETENTION: Duration = Duration::from_secs(90 * 24 * 3600);

/// The User-Agent sent with every fetch: versioned, with a contact URL, so a feed's
/// operator can tell who is polling.
pub fn default_user_agent() -> String {
    format!(
        "herald/{} (+https://github.com/herald-rss/herald)",
        env!("CARGO_PKG_VERSION")
    )
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file itself cannot be read (an included one is reported as `Invalid`,
    /// at the `include` entry naming it).
    #[error("{message}")]
    Read { path: PathBuf, message: String },
    #[error("{location}: {}", escaped_controls(.message))]
    Invalid { location: Location, message: String },
    #[error("environment variable {var}: {}", escaped_controls(.message))]
    Environment { var: &'static str, message: String },
    #[error(
        "no config file found (tried {}), expected --config PATH or {ENV_CONFIG}",
        tried.iter().map(|path| path.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    NotFound { tried: Vec<PathBuf> },
}

/// Messages quote values as written, and a value may hold line breaks or escape
/// sequences (`"a\nb"`, `"\u001b[2J"`); an error is one line in a log or on a
/// terminal, so these are shown escaped.
fn escaped_controls(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for c in message.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Everything `herald.toml` and its includes say, validated and with defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The main config file, as given.
    pub path: PathBuf,
    pub database: DatabaseSettings,
    pub fetch: FetchSettings,
    /// `None` when the API is disabled.
    pub api: Option<ApiSettings>,
    pub alerts: AlertSettings,
    pub stories: StorySettings,
    pub log: LogSettings,
    /// The feeds to poll, in file order: the main file's, then each include's,
    /// then the managed file's.
    pub retention: RetentionSettings,
    /// In file order: the main file's, then each include's.
    pub feeds: Vec<FeedSettings>,
    /// Configured feeds the managed file's `disabled` list switches off: not
    /// polled, their stored articles kept.
    pub disabled_feeds: Vec<FeedSettings>,
    /// The managed file's `disabled` list as written (normalised), including URLs
    /// no file configures any more.
    pub disabled_urls: Vec<String>,
    pub sinks: BTreeMap<String, SinkSettings>,
    pub rules: BTreeMap<String, RuleSettings>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseSettings {
    pub url: DatabaseUrl,
    /// SQLite only: how long a write waits for another process's.
    pub busy_timeout: Duration,
    /// PostgreSQL only: how long opening the first connection may take.
    pub connect_timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchSettings {
    /// At least one second: tests use seconds, and politeness comes from conditional GET
    /// and per-host limits, not a hidden minimum.
    pub interval: Duration,
    pub timeout: Duration,
    pub concurrency: usize,
    pub per_host: usize,
    /// Bytes, after decompression.
    pub max_body: u64,
    pub user_agent: String,
    pub max_redirects: usize,
    /// When fetches and sinks may connect to private, loopback, link-local and other
    /// special addresses; see the README's "Fetch policy".
    pub private_networks: PrivateNetworks,
    /// `secret_params`: which query parameters of a URL are hidden wherever herald
    /// shows it; see the README's "Credentials in feed URLs".
    pub redactor: Redactor,
}

impl Default for FetchSettings {
    fn default() -> Self {
        Self {
            interval: DEFAULT_FETCH_INTERVAL,
            timeout: DEFAULT_FETCH_TIMEOUT,
            concurrency: DEFAULT_FETCH_CONCURRENCY,
            per_host: DEFAULT_FETCH_PER_HOST,
            max_body: DEFAULT_MAX_BODY,
            user_agent: default_user_agent(),
            max_redirects: DEFAULT_MAX_REDIRECTS,
            private_networks: PrivateNetworks::default(),
            redactor: Redactor::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiSettings {
    pub listen: SocketAddr,
    /// Bearer token required on every request when set.
    pub token: Option<Secret>,
    pub limits: ApiLimits,
}

/// What one API client may hold, so that clients that connect and send nothing (or
/// send slowly, or stop reading) cannot starve the API or the process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiLimits {
    /// In 1..=[`MAX_API_CONNECTIONS`].
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub request_timeout: Duration,
    pub idle_timeout: Duration,
}

impl Default for ApiLimits {
    fn default() -> Self {
        Self {
            max_connections: DEFAULT_API_MAX_CONNECTIONS,
            header_timeout: DEFAULT_API_HEADER_TIMEOUT,
            request_timeout: DEFAULT_API_REQUEST_TIMEOUT,
            idle_timeout: DEFAULT_API_IDLE_TIMEOUT,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertSettings {
    pub max_age: Duration,
    pub give_up: Duration,
    /// See [`DEFAULT_ALERT_LEASE`].
    pub lease: Duration,
}

impl Default for AlertSettings {
    fn default() -> Self {
        Self {
            max_age: DEFAULT_ALERT_MAX_AGE,
            give_up: DEFAULT_ALERT_GIVE_UP,
            lease: DEFAULT_ALERT_LEASE,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct StorySettings {
    pub window: Duration,
    /// See [`DEFAULT_STORY_THRESHOLD`]: higher merges fewer reprints (a copy that
    /// drops more of the text starts a story of its own), lower risks merging
    /// different events that share names. In (0, 1].
    pub threshold: f64,
}

impl Default for StorySettings {
    fn default() -> Self {
        Self {
            window: DEFAULT_STORY_WINDOW,
            threshold: DEFAULT_STORY_THRESHOLD,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogSettings {
    /// Read when the process starts; `--log-format` and `HERALD_LOG_FORMAT`
    /// take precedence.
    pub format: LogFormat,
}

/// How log lines are written on stderr.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// For people and the journal: `LEVEL target: message key=value`.
    #[default]
    Text,
    /// One JSON object a line, for log shippers.
    Json,
}

impl LogFormat {
    /// `text` or `json`; `human`, this format's former name, still reads as `text`.
    pub fn parse(text: &str) -> Result<LogFormat, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "text" | "human" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!(
                "invalid log format \"{}\", expected \"text\" or \"json\"",
                escaped_controls(text)
            )),
        }
    }
}

/// `[retention]`: how long stored rows are kept. `None` keeps them forever.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionSettings {
    /// Articles published (else first seen) longer ago than this are removed,
    /// with their sources; a news archive keeps them by default.
    pub articles: Option<Duration>,
    /// Finished deliveries (delivered, dead), and their attempts, are removed
    /// this long after they finished.
    pub deliveries: Option<Duration>,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self {
            articles: None,
            deliveries: Some(DEFAULT_DELIVERY_RETENTION),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedSettings {
    pub url: Url,
    pub name: Option<String>,
    pub interval: Option<Duration>,
    pub tags: Vec<String>,
    /// Where the feed's `url` is written.
    pub location: Location,
}

impl FeedSettings {
    /// The feed's own interval, else the `[fetch]` default.
    pub fn effective_interval(&self, fetch: &FetchSettings) -> Duration {
        self.interval.unwrap_or(fetch.interval)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkSettings {
    pub kind: SinkKind,
    /// Deliveries sent at once (`max_in_flight`, webhooks only): 1 keeps the
    /// receiver's order strict.
    pub max_in_flight: usize,
    /// Alerts to this sink wait for the digest of their period, unless their
    /// rule has a digest of its own.
    pub digest: Option<DigestSchedule>,
    /// Alerts sent instantly in any hour at most (`max_per_hour`); those
    /// beyond wait for the hourly digest.
    pub max_per_hour: Option<usize>,
    /// Alerts in this stretch of the day wait, to go out as one digest at its end.
    pub quiet_hours: Option<QuietHours>,
    /// The operator's message template (`template` or `template_file`),
    /// compiled by the sinks for the target's markup.
    pub template: Option<TemplateSource>,
    /// Where the sink is named (the `NAME` in its `[sinks.NAME]` header).
    pub location: Location,
}

/// A message template's text and where it is written, so that an error in
/// it is reported at its own line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateSource {
    pub text: String,
    /// Where the text starts: the first character inside the TOML string, or
    /// the template file's first.
    pub start: Location,
    /// Whether the file holds the text exactly (no escapes): then a place in
    /// the template is a place in the file.
    pub verbatim: bool,
}

impl TemplateSource {
    /// `file:line:column` of a 1-based place in the template; without a
    /// verbatim copy, where the template starts, with the place in words.
    pub fn position(&self, line: Option<usize>, column: Option<usize>) -> String {
        let Some(line) = line else {
            return self.start.to_string();
        };
        if !self.verbatim {
            let column = column.map(|c| format!(", column {c}")).unwrap_or_default();
            return format!("{} (template line {line}{column})", self.start);
        }
        let column = column.unwrap_or(1);
        let place = Location {
            file: self.start.file.clone(),
            line: self.start.line + line - 1,
            column: if line == 1 {
                self.start.column + column - 1
            } else {
                column
            },
        };
        place.to_string()
    }
}

/// A sink's type with what that type needs: illegal combinations (a `log` sink with a
/// URL, a Slack sink without one) are rejected when the file is loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkKind {
    Slack {
        url: SecretUrl,
    },
    Discord {
        url: SecretUrl,
    },
    Webhook {
        url: SecretUrl,
        secret: Option<Secret>,
    },
    Email {
        url: SecretUrl,
        from: String,
        to: Vec<String>,
        /// PEM certificates trusted for the server besides the system's
        /// (`tls_ca`: a relay with a private authority).
        tls_ca: Option<String>,
    },
    /// A Teams Workflows webhook (Adaptive Cards).
    Teams {
        url: SecretUrl,
    },
    /// An ntfy topic URL (`https://ntfy.sh/TOPIC`), with an access token if
    /// the topic needs one.
    Ntfy {
        url: SecretUrl,
        token: Option<Secret>,
    },
    /// A Telegram bot writing to a chat (Bot API `sendMessage`).
    Telegram {
        token: Secret,
        chat_id: String,
        /// Telegram's Bot API, unless `api_url` says otherwise.
        api_url: Url,
    },
    /// A bot token posting with `chat.postMessage`: a story's alerts and
    /// spread in one thread.
    SlackApp {
        token: Secret,
        channel: String,
        /// Slack's Web API, unless `api_url` says otherwise.
        api_url: Url,
    },
    Log,
}

impl SinkKind {
    /// The `type` value as written in the file.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Slack { .. } => "slack",
            Self::Discord { .. } => "discord",
            Self::Webhook { .. } => "webhook",
            Self::Email { .. } => "email",
            Self::SlackApp { .. } => "slack_app",
            Self::Teams { .. } => "teams",
            Self::Ntfy { .. } => "ntfy",
            Self::Telegram { .. } => "telegram",
            Self::Log => "log",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSettings {
    /// Unparsed; the rules module reports its syntax errors relative to `query_location`.
    pub query: String,
    /// Where the query's string value starts (its opening quote).
    pub query_location: Location,
    /// Each names a sink in [`Settings::sinks`].
    pub sinks: Vec<String>,
    /// Only feeds carrying one of these tags; empty means every feed.
    pub tags: Vec<String>,
    /// The rule's alerts wait for the digest of their period, on every sink
    /// it names (over the sink's own digest).
    pub digest: Option<DigestSchedule>,
    /// The rule's alerts sent instantly to each sink in any hour at most;
    /// those beyond wait for the hourly digest.
    pub max_per_hour: Option<usize>,
}

impl RuleSettings {
    /// The digest an alert of this rule to `sink` waits for, if any: the
    /// rule's own, else the sink's.
    pub fn digest_for<'a>(&'a self, sink: Option<&'a SinkSettings>) -> Option<&'a DigestSchedule> {
        self.digest.as_ref().or_else(|| sink?.digest.as_ref())
    }
}

/// The file `herald feeds add`, `import`, `disable`… write, read with the main file
/// `main` without being included: `feeds.d/managed.toml` in the main file's
/// directory.
pub fn managed_path(main: &Path) -> PathBuf {
    main.parent()
        .unwrap_or(Path::new(""))
        .join(MANAGED_DIR)
        .join(MANAGED_FILE)
}

/// See [`managed_path`].
pub const MANAGED_DIR: &str = "feeds.d";
/// See [`managed_path`].
pub const MANAGED_FILE: &str = "managed.toml";

/// A feed URL as the config file takes it: absolute http(s), normalised the way
/// `url` compares them, so `herald feeds` commands match what the file says.
pub fn feed_url(text: &str, redactor: &Redactor) -> Result<Url, String> {
    values::parse_feed_url(text, redactor)
}

/// Resolution order: explicit path (`--config`), else `$HERALD_CONFIG`, else
/// `./herald.toml`, else `/etc/herald/herald.toml`.
pub fn resolve_path(explicit: Option<&Path>) -> Result<PathBuf, ConfigError> {
    let env = |name: &str| std::env::var(name).ok();
    let fallbacks = [
        PathBuf::from(LOCAL_CONFIG_PATH),
        PathBuf::from(SYSTEM_CONFIG_PATH),
    ];
    resolve_path_from(explicit, &env, &fallbacks)
}

/// [`resolve_path`] with the environment and fallback files injected, for tests.
fn resolve_path_from(
    explicit: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
    fallbacks: &[PathBuf],
) -> Result<PathBuf, ConfigError> {
    if let Some(path) = explicit {
        return Ok(path.to_path_buf());
    }
    if let Some(path) = env(ENV_CONFIG).filter(|path| !path.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    fallbacks
        .iter()
        .find(|path| path.is_file())
        .cloned()
        .ok_or_else(|| ConfigError::NotFound {
            tried: fallbacks.to_vec(),
        })
}

/// Loads and validates a config file, reading the process environment for `${VAR}` and
/// `HERALD_DATABASE_URL`.
pub fn load(path: &Path) -> Result<Settings, ConfigError> {
    load_with_env(path, &|name| std::env::var(name).ok())
}

/// [`load`] with an injectable environment lookup, so tests need not mutate the process
/// environment (unsafe in edition 2024, and racy across tests).
pub fn load_with_env(
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Settings, ConfigError> {
    loader::load(path, env)
}
