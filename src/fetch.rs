//! HTTP only: conditional GET, body and redirect limits, per-host and global concurrency.
//!
//! Owns the pooled HTTP clients and everything a feed server can do to them: redirects,
//! status codes, `Retry-After`, validators, compressed and oversized bodies, stalls,
//! and leading herald to addresses `[fetch] private_networks` forbids (`net_policy`).
//! Returns a [`FetchOutcome`]; never parses, never stores, knows nothing of feeds' rows.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use chrono::Utc;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Client, Response, StatusCode, redirect};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use url::Url;

pub use crate::domain::address::PrivateNetworks;
pub use crate::domain::redact::Redactor;
pub use crate::domain::retry::parse_retry_after;
use crate::domain::transport::{describe_io, humanize};
use crate::net_policy::{self, PublicOnly, Refused, Route};

/// Longest a whole fetch (connect, headers, body, every redirect hop) may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest body accepted, counted after decompression, in bytes.
pub const DEFAULT_MAX_BODY: u64 = 10_000_000;
/// Most redirect hops followed before giving up.
pub const DEFAULT_MAX_REDIRECTS: usize = 5;
/// Most fetches in flight at once, whole instance.
pub const DEFAULT_CONCURRENCY: usize = 64;
/// Most fetches in flight at once per host name, so one publisher is never hammered.
pub const DEFAULT_PER_HOST: usize = 2;
/// Versioned and with a contact address, so publishers can tell who polls them.
pub const DEFAULT_USER_AGENT: &str = concat!(
    "herald/",
    env!("CARGO_PKG_VERSION"),
    " (+https://github.com/herald-rss/herald)"
);

/// Feed types first; generic XML next; anything else last, since many feeds are
/// served as `text/html` or `application/octet-stream` and are still worth parsing.
const FEED_ACCEPT: &str = "application/rss+xml, application/atom+xml, application/feed+json, \
                           application/xml;q=0.9, text/xml;q=0.9, */*;q=0.8";

/// How the fetcher behaves; `Default` gives the `DEFAULT_*` values.
#[derive(Clone, Debug, PartialEq)]
pub struct FetchSettings {
    pub timeout: Duration,
    pub max_body: u64,
    pub max_redirects: usize,
    pub concurrency: usize,
    pub per_host: usize,
    pub user_agent: String,
    /// When a special (private, loopback, link-local…) address may be connected to.
    pub private_networks: PrivateNetworks,
    /// How URLs appear in errors and logs: credentials hidden.
    pub redactor: Redactor,
}

impl Default for FetchSettings {
    fn default() -> Self {
        FetchSettings {
            timeout: DEFAULT_TIMEOUT,
            max_body: DEFAULT_MAX_BODY,
            max_redirects: DEFAULT_MAX_REDIRECTS,
            concurrency: DEFAULT_CONCURRENCY,
            per_host: DEFAULT_PER_HOST,
            user_agent: DEFAULT_USER_AGENT.to_owned(),
            private_networks: PrivateNetworks::default(),
            redactor: Redactor::default(),
        }
    }
}

/// A server's cache validators (`ETag`, `Last-Modified`), sent back on the next fetch.
#[derive(Default, Clone, Debug, PartialEq, Eq)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

/// What one fetch produced.
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "built once per fetch and consumed at once; a box would buy nothing"
)]
pub enum FetchOutcome {
    /// The server answered 304: the document is unchanged, there is nothing to parse.
    NotModified,
    Fetched(FetchedDocument),
}

/// A document the server sent, with what is needed to parse it and to ask again.
#[derive(Debug, Clone)]
pub struct FetchedDocument {
    /// Decompressed body, at most `max_body` bytes.
    pub body: Bytes,
    /// The `Content-Type` header, whose charset the parser honours.
    pub content_type: Option<String>,
    /// Validators for the next conditional fetch.
    pub validators: Validators,
    /// The address the body was finally read from, after any redirects.
    pub final_url: Url,
    /// Set when every redirect hop was permanent (301/308): the feed's new address.
    pub moved_to: Option<Url>,
    pub status: u16,
}

/// Why a fetch failed. Messages are short and meant for `herald feeds`; the URLs
/// they name are redacted ([`Redactor`]), since they end up stored and shown.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("timed out after {}", humantime::format_duration(*limit))]
    Timeout { limit: Duration },
    #[error("body exceeds the {} limit", format_size(*limit))]
    BodyTooLarge { limit: u64 },
    #[error("more than {limit} redirects")]
    TooManyRedirects { limit: usize },
    #[error("bad redirect from {from}: {reason}")]
    BadRedirect { from: String, reason: String },
    #[error("{}", describe_status(*code, *retry_after))]
    Status {
        code: u16,
        retry_after: Option<Duration>,
    },
    /// 410: the publisher says the feed is gone for good.
    #[error("HTTP 410 Gone")]
    Gone,
    /// The private-networks policy forbids the address; nothing was connected to.
    #[error("{0}")]
    Refused(Box<PolicyRefusal>),
    #[error("unsupported url {url}: {reason}")]
    UnsupportedUrl { url: String, reason: &'static str },
    #[error("body could not be decoded: {0}")]
    Decode(String),
    #[error("{0}")]
    Transport(String),
    #[error("fetcher could not be set up: {0}")]
    Setup(String),
}

impl FetchError {
    /// Whether trying again soon may succeed. A `false` is permanent-ish: the feed
    /// is still retried at back-off, but the caller can tell a user it needs a look.
    pub fn is_retryable(&self) -> bool {
        match self {
            FetchError::Timeout { .. } | FetchError::Transport(_) => true,
            FetchError::Status { code, .. } => *code >= 500 || *code == 429 || *code == 408,
            FetchError::BodyTooLarge { .. }
            | FetchError::TooManyRedirects { .. }
            | FetchError::BadRedirect { .. }
            | FetchError::Refused(_)
            | FetchError::Gone
            | FetchError::UnsupportedUrl { .. }
            | FetchError::Decode(_)
            | FetchError::Setup(_) => false,
        }
    }

    /// How long the server asked us to wait (`Retry-After`), if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            FetchError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// Fetches documents over one pooled client within global and per-host limits.
///
/// Cheap to clone: clones share the clients, their pools and the limits.
#[derive(Clone)]
pub struct Fetcher {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetcher")
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

struct Inner {
    /// For the hosts the policy lets through whatever they resolve to.
    direct: Client,
    /// For every other host: special addresses in DNS answers are refused.
    checked: Client,
    settings: FetchSettings,
    global: Arc<Semaphore>,
    // One entry per host ever fetched; hosts come from the configured feeds, so the
    // map stays as small as the config.
    hosts: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl Fetcher {
    pub fn new(settings: FetchSettings) -> Result<Fetcher, FetchError> {
        if settings.concurrency == 0 || settings.per_host == 0 {
            return Err(FetchError::Setup(
                "concurrency and per-host limits must be at least 1".into(),
            ));
        }
        let direct = build_client(&settings, false)?;
        let checked = build_client(&settings, true)?;
        let global = Arc::new(Semaphore::new(settings.concurrency));
        Ok(Fetcher {
            inner: Arc::new(Inner {
                direct,
                checked,
                settings,
                global,
                hosts: Mutex::new(HashMap::new()),
            }),
        })
    }

    pub fn settings(&self) -> &FetchSettings {
        &self.inner.settings
    }

    /// Fetches `url`, conditionally when `validators` are known.
    ///
    /// Waits for a concurrency slot first; the timeout starts once the slot is held,
    /// so a long queue never fails a feed. The per-host slot is that of `url`'s host,
    /// held through every redirect hop and the whole body.
    pub async fn fetch(
        &self,
        url: &Url,
        validators: &Validators,
    ) -> Result<FetchOutcome, FetchError> {
        self.fetch_moved(url, url, validators).await
    }

    /// [`Fetcher::fetch`] of `url`, where an earlier permanent redirect moved the feed
    /// from the `configured` URL: only the configured URL's host is the operator's
    /// choice, so the private-networks policy treats `url` as reached by redirect.
    pub async fn fetch_moved(
        &self,
        configured: &Url,
        url: &Url,
        validators: &Validators,
    ) -> Result<FetchOutcome, FetchError> {
        let host = host_key(url, &self.inner.settings.redactor)?;
        let _permits = self.acquire_permits(&host).await?;
        let limit = self.inner.settings.timeout;
        tokio::time::timeout(limit, self.follow_redirects(configured, url, validators))
            .await
            .map_err(|_| FetchError::Timeout { limit })?
    }

    /// Per-host first, then global: a task holding a global slot while it waits for
    /// a busy host would starve every other host.
    async fn acquire_permits(&self, host: &str) -> Result<[OwnedSemaphorePermit; 2], FetchError> {
        let host_limit = self.host_semaphore(host);
        let closed = |_| FetchError::Transport("fetcher is shut down".into());
        let host_permit = host_limit.acquire_owned().await.map_err(closed)?;
        let global_permit = Arc::clone(&self.inner.global)
            .acquire_owned()
            .await
            .map_err(closed)?;
        Ok([host_permit, global_permit])
    }

    fn host_semaphore(&self, host: &str) -> Arc<Semaphore> {
        // A panic elsewhere while holding this lock cannot leave the map inconsistent.
        let mut hosts = self
            .inner
            .hosts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let per_host = self.inner.settings.per_host;
        Arc::clone(
            hosts
                .entry(host.to_owned())
                .or_insert_with(|| Arc::new(Semaphore::new(per_host))),
        )
    }

    async fn follow_redirects(
        &self,
        configured: &Url,
        start: &Url,
        validators: &Validators,
    ) -> Result<FetchOutcome, FetchError> {
        let max_redirects = self.inner.settings.max_redirects;
        let mut url = start.clone();
        let mut hops = 0;
        let mut every_hop_permanent = true;
        let mut redirected_from = (start != configured).then(|| configured.clone());
        loop {
            let response = self
                .send(configured, &url, redirected_from.as_ref(), validators)
                .await?;
            let status = response.status();
            if !is_redirect(status) {
                let moved_to = (hops > 0 && every_hop_permanent).then(|| url.clone());
                return self.finish(response, url, moved_to).await;
            }
            if hops == max_redirects {
                return Err(FetchError::TooManyRedirects {
                    limit: max_redirects,
                });
            }
            let redactor = &self.inner.settings.redactor;
            let next = redirect_target(&url, response.headers(), redactor)?;
            tracing::debug!(
                from = %redactor.show(url.as_str()),
                to = %redactor.show(next.as_str()),
                status = status.as_u16(),
                "following redirect"
            );
            every_hop_permanent &= is_permanent_redirect(status);
            redirected_from = Some(std::mem::replace(&mut url, next));
            hops += 1;
        }
    }

    /// One hop to `url` of a fetch that started at `configured`, through the client
    /// the private-networks policy picks for it.
    async fn send(
        &self,
        configured: &Url,
        url: &Url,
        redirected_from: Option<&Url>,
        validators: &Validators,
    ) -> Result<Response, FetchError> {
        let policy = self.inner.settings.private_networks;
        let refusal = |refused: Refused| {
            // Under "deny" the configured host needs only "configured"; anything a
            // redirect reaches needs "allow".
            let permitted_by =
                if policy == PrivateNetworks::Deny && net_policy::same_host(configured, url) {
                    PrivateNetworks::Configured
                } else {
                    PrivateNetworks::Allow
                };
            FetchError::Refused(Box::new(PolicyRefusal {
                refused,
                redirected_from: redirected_from
                    .map(|from| self.inner.settings.redactor.url(from.as_str()).into_owned()),
                permitted_by,
            }))
        };
        let client = match net_policy::route(policy, configured, url).map_err(refusal)? {
            Route::Direct => &self.inner.direct,
            Route::Checked => &self.inner.checked,
        };
        client
            .get(url.clone())
            .headers(request_headers(validators))
            .send()
            .await
            .map_err(|e| match net_policy::find_refusal(&e) {
                Some(refused) => refusal(refused.clone()),
                None => FetchError::Transport(describe_transport(&e)),
            })
    }

    async fn finish(
        &self,
        response: Response,
        final_url: Url,
        moved_to: Option<Url>,
    ) -> Result<FetchOutcome, FetchError> {
        let status = response.status();
        if status == StatusCode::NOT_MODIFIED {
            return Ok(FetchOutcome::NotModified);
        }
        if status == StatusCode::GONE {
            return Err(FetchError::Gone);
        }
        if !status.is_success() {
            return Err(FetchError::Status {
                code: status.as_u16(),
                retry_after: header_text(response.headers(), header::RETRY_AFTER)
                    .and_then(|value| parse_retry_after(&value, Utc::now())),
            });
        }
        let headers = response.headers();
        let content_type = header_text(headers, header::CONTENT_TYPE);
        let validators = Validators {
            etag: header_text(headers, header::ETAG),
            last_modified: header_text(headers, header::LAST_MODIFIED),
        };
        let body = read_body(response, self.inner.settings.max_body).await?;
        Ok(FetchOutcome::Fetched(FetchedDocument {
            body,
            content_type,
            validators,
            final_url,
            moved_to,
            status: status.as_u16(),
        }))
    }
}

/// `checked`: special addresses in DNS answers are refused. Proxies from the
/// environment are used only under "allow": a proxy resolves and connects on herald's
/// behalf, where the policy cannot see the address.
fn build_client(settings: &FetchSettings, checked: bool) -> Result<Client, FetchError> {
    let mut builder = Client::builder()
        .user_agent(settings.user_agent.as_str())
        // Redirects are followed by hand to count hops, refuse odd schemes, apply the
        // private-networks policy to each hop and notice permanent moves (301/308
        // update the stored URL).
        .redirect(redirect::Policy::none())
        .pool_max_idle_per_host(settings.per_host);
    if settings.private_networks != PrivateNetworks::Allow {
        builder = builder.no_proxy();
    }
    if checked {
        builder = builder.dns_resolver(PublicOnly);
    }
    builder
        .build()
        .map_err(|e| FetchError::Setup(describe_transport(&e)))
}

/// A connection the private-networks policy forbade, with what an operator needs to
/// judge it.
#[derive(Debug)]
pub struct PolicyRefusal {
    pub refused: Refused,
    /// The URL whose redirect led there, when it was not the configured URL itself;
    /// redacted.
    pub redirected_from: Option<String>,
    /// The `private_networks` value that would let the connection through.
    pub permitted_by: PrivateNetworks,
}

impl std::fmt::Display for PolicyRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "refused to connect to {}", self.refused)?;
        if let Some(from) = &self.redirected_from {
            write!(f, " reached by redirect from {from}")?;
        }
        write!(
            f,
            ": set [fetch] private_networks = \"{}\" to permit",
            self.permitted_by
        )
    }
}

fn host_key(url: &Url, redactor: &Redactor) -> Result<String, FetchError> {
    let unsupported = |reason| FetchError::UnsupportedUrl {
        url: redactor.url(url.as_str()).into_owned(),
        reason,
    };
    if !matches!(url.scheme(), "http" | "https") {
        return Err(unsupported("only http and https are fetched"));
    }
    let host = url.host_str().ok_or_else(|| unsupported("no host"))?;
    Ok(host.to_ascii_lowercase())
}

fn request_headers(validators: &Validators) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(header::ACCEPT, HeaderValue::from_static(FEED_ACCEPT));
    // A stored validator that is not a valid header value (it came from a server)
    // is dropped: the fetch turns unconditional instead of failing forever.
    let conditional = [
        (header::IF_NONE_MATCH, &validators.etag),
        (header::IF_MODIFIED_SINCE, &validators.last_modified),
    ];
    for (name, value) in conditional {
        if let Some(value) = value.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
            headers.insert(name, value);
        }
    }
    headers
}

fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

fn is_permanent_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 308)
}

/// The next hop: `Location` resolved against the current URL (RFC 9110 §10.2.2
/// allows relative references), http or https only.
fn redirect_target(
    from: &Url,
    headers: &HeaderMap,
    redactor: &Redactor,
) -> Result<Url, FetchError> {
    let bad = |reason: String| FetchError::BadRedirect {
        from: redactor.url(from.as_str()).into_owned(),
        reason,
    };
    let location = headers
        .get(header::LOCATION)
        .ok_or_else(|| bad("no Location header".into()))?
        .to_str()
        .map_err(|_| bad("Location is not text".into()))?;
    let target = from.join(location).map_err(|e| {
        bad(format!(
            "invalid Location {:?}: {e}",
            redactor.text(location)
        ))
    })?;
    if !matches!(target.scheme(), "http" | "https") {
        return Err(bad(format!("refusing to follow to {}", target.scheme())));
    }
    Ok(target)
}

fn header_text(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    let value = headers.get(name)?.to_str().ok()?.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

/// Reads the (decompressed) body chunk by chunk, giving up as soon as it passes
/// `max_body`, so a huge body or a compression bomb costs at most `max_body` bytes.
async fn read_body(mut response: Response, max_body: u64) -> Result<Bytes, FetchError> {
    let too_large = FetchError::BodyTooLarge { limit: max_body };
    // Only known without compression; a compressed body is checked while it inflates.
    let declared = response.content_length();
    if declared.is_some_and(|length| length > max_body) {
        return Err(too_large);
    }
    let capacity = declared.unwrap_or(0).min(max_body);
    let mut body = BytesMut::with_capacity(usize::try_from(capacity).unwrap_or(0));
    while let Some(chunk) = response.chunk().await.map_err(|e| body_error(&e))? {
        if (body.len() + chunk.len()) as u64 > max_body {
            return Err(too_large);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

fn body_error(error: &reqwest::Error) -> FetchError {
    if error.is_decode() {
        FetchError::Decode(describe_transport(error))
    } else {
        FetchError::Transport(describe_transport(error))
    }
}

/// The innermost cause of a client error, phrased for a person: reqwest's own
/// message only repeats the URL ("error sending request for url (…)").
fn describe_transport(error: &reqwest::Error) -> String {
    let mut innermost: &(dyn std::error::Error + 'static) = error;
    while let Some(source) = innermost.source() {
        innermost = source;
    }
    if let Some(io) = innermost.downcast_ref::<std::io::Error>()
        && let Some(text) = describe_io(io.kind())
    {
        return text.to_owned();
    }
    humanize(&innermost.to_string())
}

fn describe_status(code: u16, retry_after: Option<Duration>) -> String {
    let reason = StatusCode::from_u16(code)
        .ok()
        .and_then(|status| status.canonical_reason())
        .map(|reason| format!(" {reason}"))
        .unwrap_or_default();
    match retry_after {
        Some(wait) => format!(
            "HTTP {code}{reason} (retry after {})",
            humantime::format_duration(wait)
        ),
        None => format!("HTTP {code}{reason}"),
    }
}

/// Sizes as operators write them in the config ("10MB"), falling back to bytes.
fn format_size(bytes: u64) -> String {
    const UNITS: [(u64, &str); 4] = [
        (1_000_000, "MB"),
        (1 << 20, "MiB"),
        (1_000, "kB"),
        (1 << 10, "KiB"),
    ];
    UNITS
        .iter()
        .find(|(unit, _)| bytes >= *unit && bytes.is_multiple_of(*unit))
        .map(|(unit, name)| format!("{} {name}", bytes / unit))
        .unwrap_or_else(|| format!("{bytes} bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages() {
        fn check(error: FetchError, expected: &str) {
            assert_eq!(error.to_string(), expected);
        }
        check(
            FetchError::Timeout {
                limit: Duration::from_secs(30),
            },
            "timed out after 30s",
        );
        check(
            FetchError::Timeout {
                limit: Duration::from_millis(300),
            },
            "timed out after 300ms",
        );
        check(
            FetchError::BodyTooLarge { limit: 10_000_000 },
            "body exceeds the 10 MB limit",
        );
        check(
            FetchError::BodyTooLarge { limit: 10 << 20 },
            "body exceeds the 10 MiB limit",
        );
        check(
            FetchError::BodyTooLarge { limit: 1500 },
            "body exceeds the 1500 bytes limit",
        );
        check(
            FetchError::TooManyRedirects { limit: 5 },
            "more than 5 redirects",
        );
        check(
            FetchError::Status {
                code: 500,
                retry_after: None,
            },
            "HTTP 500 Internal Server Error",
        );
        check(
            FetchError::Status {
                code: 429,
                retry_after: Some(Duration::from_secs(120)),
            },
            "HTTP 429 Too Many Requests (retry after 2m)",
        );
        check(
            FetchError::Status {
                code: 599,
                retry_after: None,
            },
            "HTTP 599",
        );
        check(FetchError::Gone, "HTTP 410 Gone");
    }

    #[test]
    fn refusals_name_the_host_where_it_came_from_and_the_setting() {
        let refusal = |redirected_from: Option<&str>, permitted_by| {
            FetchError::Refused(Box::new(PolicyRefusal {
                refused: Refused {
                    host: "169.254.169.254".into(),
                    address: "169.254.169.254".parse().unwrap(),
                    range: crate::domain::address::SpecialRange::LinkLocal,
                },
                redirected_from: redirected_from.map(str::to_owned),
                permitted_by,
            }))
        };
        let redirected = refusal(Some("https://news.example/rss"), PrivateNetworks::Allow);
        assert_eq!(
            redirected.to_string(),
            "refused to connect to 169.254.169.254 (a link-local address) reached by redirect \
             from https://news.example/rss: set [fetch] private_networks = \"allow\" to permit"
        );
        assert!(!redirected.is_retryable());
        assert_eq!(
            refusal(None, PrivateNetworks::Configured).to_string(),
            "refused to connect to 169.254.169.254 (a link-local address): \
             set [fetch] private_networks = \"configured\" to permit"
        );
    }

    #[test]
    fn retryable_errors() {
        fn check(error: FetchError, expected: bool) {
            assert_eq!(error.is_retryable(), expected, "{error}");
        }
        let status = |code| FetchError::Status {
            code,
            retry_after: None,
        };
        check(
            FetchError::Timeout {
                limit: DEFAULT_TIMEOUT,
            },
            true,
        );
        check(FetchError::Transport("connection refused".into()), true);
        check(status(500), true);
        check(status(503), true);
        check(status(429), true);
        check(status(408), true);
        check(status(404), false);
        check(status(403), false);
        check(status(400), false);
        check(FetchError::Gone, false);
        check(FetchError::BodyTooLarge { limit: 1 }, false);
        check(FetchError::TooManyRedirects { limit: 5 }, false);
    }

    #[test]
    fn transport_messages_are_humanized() {
        fn check(raw: &str, expected: &str) {
            assert_eq!(humanize(raw), expected);
        }
        check(
            "Connection reset by peer (os error 104)",
            "connection reset by peer",
        );
        check("TLS handshake failed", "TLS handshake failed");
        check(
            "dns error: failed to lookup address",
            "dns error: failed to lookup address",
        );
        check("", "");
    }

    #[test]
    fn redirect_targets() {
        fn check(from: &str, location: Option<&str>, expected: Result<&str, &str>) {
            let mut headers = HeaderMap::new();
            if let Some(location) = location {
                headers.insert(header::LOCATION, HeaderValue::from_str(location).unwrap());
            }
            let got = redirect_target(&Url::parse(from).unwrap(), &headers, &Redactor::default())
                .map(String::from)
                .map_err(|e| e.to_string());
            assert_eq!(
                got,
                expected.map(str::to_owned).map_err(str::to_owned),
                "{from} -> {location:?}"
            );
        }
        check(
            "http://a.test/x/feed",
            Some("rss.xml"),
            Ok("http://a.test/x/rss.xml"),
        );
        check(
            "http://a.test/x/feed",
            Some("/rss"),
            Ok("http://a.test/rss"),
        );
        check(
            "http://a.test/feed",
            Some("https://b.test/f"),
            Ok("https://b.test/f"),
        );
        check(
            "http://a.test/feed",
            Some("//c.test/f"),
            Ok("http://c.test/f"),
        );
        check(
            "http://a.test/feed",
            Some("ftp://a.test/f"),
            Err("bad redirect from http://a.test/feed: refusing to follow to ftp"),
        );
        check(
            "http://a.test/feed",
            None,
            Err("bad redirect from http://a.test/feed: no Location header"),
        );
        // Errors are stored and shown: the URLs they name keep no credentials.
        check(
            "http://u:pw@a.test/feed?token=t&page=2",
            None,
            Err("bad redirect from http://u:***@a.test/feed?token=***&page=2: no Location header"),
        );
        check(
            "http://a.test/feed",
            Some("http://x:pw@[::1/f?key=k"),
            Err("bad redirect from http://a.test/feed: \
                 invalid Location \"http://x:***@[::1/f?key=***\": invalid IPv6 address"),
        );
    }

    #[test]
    fn conditional_headers_come_from_validators() {
        let validators = Validators {
            etag: Some("\"abc\"".into()),
            last_modified: Some("bad\nvalue".into()),
        };
        let headers = request_headers(&validators);
        assert_eq!(headers.get(header::IF_NONE_MATCH).unwrap(), "\"abc\"");
        assert!(headers.get(header::IF_MODIFIED_SINCE).is_none());
        assert!(
            headers
                .get(header::ACCEPT)
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("application/rss+xml")
        );
    }

    #[test]
    fn only_web_urls_are_fetched() {
        assert_eq!(
            host_key(
                &Url::parse("HTTP://Example.COM/feed").unwrap(),
                &Redactor::default()
            )
            .unwrap(),
            "example.com"
        );
        let error = host_key(
            &Url::parse("file:///etc/passwd").unwrap(),
            &Redactor::default(),
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "unsupported url file:///etc/passwd: only http and https are fetched"
        );
        let error = host_key(
            &Url::parse("ftp://u:pw@h.test/f?apikey=k").unwrap(),
            &Redactor::default(),
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "unsupported url ftp://u:***@h.test/f?apikey=***: only http and https are fetched"
        );
    }

    #[test]
    fn zero_limits_are_refused() {
        let settings = FetchSettings {
            per_host: 0,
            ..FetchSettings::default()
        };
        assert!(matches!(Fetcher::new(settings), Err(FetchError::Setup(_))));
    }
}
