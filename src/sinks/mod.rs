//! Alert delivery to one sink: the payload each sink type expects, and one attempt
//! to send it, classified as delivered, worth retrying, or permanently refused.
//!
//! Owns the HTTP client used for alerts and Slack's pacing (at most one
//! message per second per webhook). Knows nothing of the outbox, the store, rules or
//! config: it never retries or schedules — the outbox calls [`Sender::send`] (or
//! [`Sender::send_digest`] for a [`Digest`]) once per attempt, records the
//! [`AttemptOutcome`] and decides when to try again (`domain::retry`). Webhook URLs and secrets are credentials: they never appear in
//! `Debug`, in an outcome's error or in a log line written here.

pub mod discord;
pub mod email;
pub mod log;
pub mod ntfy;
pub mod slack;
pub mod slack_app;
pub mod teams;
pub mod telegram;
pub mod template;
mod text;
pub mod webhook;

use crate::domain::address::PrivateNetworks;
use crate::domain::transport::{describe_io, humanize};
use crate::net_policy::{self, PublicOnly};
use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::Utc;
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Client, Response, StatusCode, redirect};
use sha2::{Digest as _, Sha256};
use tokio::time::Instant;
use url::Url;

use crate::domain::alert::AlertMessage;
use crate::domain::article::{Article, ArticleSource};
use crate::domain::retry::parse_retry_after;
use template::{Markup, MessageTemplate};

/// Longest one delivery attempt may take, connect to last byte.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Slack accepts about one message per second per webhook and answers 429 beyond
/// (<https://api.slack.com/apis/rate-limits>); herald waits instead of being refused.
pub const SLACK_INTERVAL: Duration = Duration::from_secs(1);
/// Kept from a refusal's body for `herald alerts`: enough for Slack's
/// `invalid_payload` or Discord's JSON error, not a whole error page.
pub const MAX_EXCERPT_CHARS: usize = 500;
/// Bytes of a response body read at most, to get the excerpt.
const MAX_EXCERPT_BYTES: usize = 4 * MAX_EXCERPT_CHARS;

/// Sent with every request: the delivery's stable id, so a receiver can drop repeats.
pub const DELIVERY_HEADER: &str = "x-herald-delivery";

/// Digest stories per message for webhooks and the log: they have no message
/// limits of their own, but a receiver should not have to take an unbounded body.
pub const GENEROUS_DIGEST_CAPACITY: usize = 100;

/// Several alerts in one message: a digest period's stories, or the part of them that fits one message.
#[derive(Debug, Clone)]
pub struct Digest {
    /// Stable across retries (`X-Herald-Delivery`): the carrying delivery's id.
    pub delivery_id: String,
    /// What the digest covers, for its heading, e.g. "every 1h" or "at 08:00 (Europe/Berlin)".
    pub schedule: String,
    /// 1-based part number and the number of parts when a period's stories did not fit one message.
    pub part: usize,
    pub parts: usize,
    /// The alerts, in the order to show them (the caller orders them: most-covered, then newest first).
    pub items: Vec<AlertMessage>,
}

/// The schedule in a digest's heading: cut on its own so that an absurdly long
/// one cannot push the part number out of a heading the sink cuts to its limit.
const MAX_SCHEDULE: usize = 120;

impl Digest {
    /// "3 stories — every 1h (part 1 of 2)", shared so that every chat sink
    /// words it alike. `shown` is how many items the sink could fit: when a
    /// caller passed more than [`digest_capacity`], the reader learns that
    /// stories are missing rather than silently losing them.
    fn heading(&self, shown: usize) -> String {
        let count = self.items.len();
        let noun = if count == 1 { "story" } else { "stories" };
        let schedule = text::fit(&text::one_line(&self.schedule), MAX_SCHEDULE);
        let mut heading = format!("{count} {noun} — {schedule}");
        let mut notes = Vec::new();
        if self.parts > 1 {
            notes.push(format!("part {} of {}", self.part, self.parts));
        }
        if shown < count {
            notes.push(format!("{shown} shown"));
        }
        if !notes.is_empty() {
            heading.push_str(&format!(" ({})", notes.join("; ")));
        }
        heading
    }
}

/// The markup a target reads its message text in, and so how a template's
/// values are escaped; none for a webhook, whose body is JSON for a program.
pub fn markup(target: &SinkTarget) -> Option<Markup> {
    match target {
        SinkTarget::Slack { .. } | SinkTarget::SlackApp(_) => Some(Markup::SlackMrkdwn),
        SinkTarget::Discord { .. } => Some(Markup::DiscordMarkdown),
        SinkTarget::Log => Some(Markup::Plain),
        SinkTarget::Email(_) | SinkTarget::Telegram(_) => Some(Markup::Html),
        // Teams shows a template's text in a text run, ntfy as plain text.
        SinkTarget::Teams { .. } | SinkTarget::Ntfy { .. } => Some(Markup::Plain),
        SinkTarget::Webhook { .. } => None,
    }
}

/// Alerts per digest message for a sink type, so that each message stays within the
/// service's limits (Slack: 50 blocks per message; Discord: 10 embeds, 6,000 characters in all;
/// webhooks and the log: a generous 100).
pub fn digest_capacity(target: &SinkTarget) -> usize {
    match target {
        SinkTarget::Slack { .. } | SinkTarget::SlackApp(_) => slack::DIGEST_CAPACITY,
        SinkTarget::Discord { .. } => discord::DIGEST_CAPACITY,
        SinkTarget::Email(_) => email::DIGEST_CAPACITY,
        SinkTarget::Teams { .. } => teams::DIGEST_CAPACITY,
        SinkTarget::Ntfy { .. } => ntfy::DIGEST_CAPACITY,
        SinkTarget::Telegram(_) => telegram::DIGEST_CAPACITY,
        SinkTarget::Webhook { .. } | SinkTarget::Log => GENEROUS_DIGEST_CAPACITY,
    }
}

/// Where a sink delivers. Plain values: the caller has validated and exposed them.
/// `Hash` feeds [`Sink::fingerprint`].
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum SinkTarget {
    Slack {
        url: Url,
    },
    Discord {
        url: Url,
    },
    Webhook {
        url: Url,
        secret: Option<String>,
    },
    Email(email::EmailTarget),
    SlackApp(slack_app::SlackAppTarget),
    /// A Teams Workflows webhook URL.
    Teams {
        url: Url,
    },
    /// An ntfy topic URL, and the access token if the topic needs one.
    Ntfy {
        url: Url,
        token: Option<String>,
    },
    Telegram(telegram::TelegramTarget),
    Log,
}

impl SinkTarget {
    /// The config's `type` for this target.
    pub fn kind(&self) -> &'static str {
        match self {
            SinkTarget::Slack { .. } => "slack",
            SinkTarget::Discord { .. } => "discord",
            SinkTarget::Webhook { .. } => "webhook",
            SinkTarget::Email(_) => "email",
            SinkTarget::SlackApp(_) => "slack_app",
            SinkTarget::Teams { .. } => "teams",
            SinkTarget::Ntfy { .. } => "ntfy",
            SinkTarget::Telegram(_) => "telegram",
            SinkTarget::Log => "log",
        }
    }
}

impl fmt::Debug for SinkTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SinkTarget::Slack { url } => f
                .debug_struct("Slack")
                .field("url", &redacted_url(url))
                .finish(),
            SinkTarget::Discord { url } => f
                .debug_struct("Discord")
                .field("url", &redacted_url(url))
                .finish(),
            SinkTarget::Webhook { url, secret } => f
                .debug_struct("Webhook")
                .field("url", &redacted_url(url))
                .field("secret", &secret.as_ref().map(|_| "***"))
                .finish(),
            SinkTarget::Email(target) => f
                .debug_struct("Email")
                .field("url", &redacted_url(&target.url))
                .field("from", &target.from)
                .field("to", &target.to)
                .finish(),
            SinkTarget::SlackApp(target) => f
                .debug_struct("SlackApp")
                .field("api_url", &redacted_url(&target.api_url))
                .field("token", &"***")
                .field("channel", &target.channel)
                .finish(),
            SinkTarget::Teams { url } => f
                .debug_struct("Teams")
                .field("url", &redacted_url(url))
                .finish(),
            SinkTarget::Ntfy { url, token } => f
                .debug_struct("Ntfy")
                .field("url", &redacted_url(url))
                .field("token", &token.as_ref().map(|_| "***"))
                .finish(),
            SinkTarget::Telegram(target) => f
                .debug_struct("Telegram")
                .field("api_url", &redacted_url(&target.api_url))
                .field("token", &"***")
                .field("chat_id", &target.chat_id)
                .finish(),
            SinkTarget::Log => f.write_str("Log"),
        }
    }
}

/// `https://hooks.slack.com/…`: the host helps an operator, the rest is the key.
fn redacted_url(url: &Url) -> String {
    let mut shown = format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default());
    if let Some(port) = url.port() {
        shown.push_str(&format!(":{port}"));
    }
    shown.push_str("/…");
    shown
}

/// A configured sink: its name (the key under `[sinks]`), where it delivers,
/// and the operator's message template, if any.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Sink {
    name: String,
    target: SinkTarget,
    template: Option<Arc<MessageTemplate>>,
}

impl Sink {
    pub fn new(name: impl Into<String>, target: SinkTarget) -> Sink {
        Sink {
            name: name.into(),
            target,
            template: None,
        }
    }

    /// Single alerts to this sink are `template` rendered (digests keep their list).
    pub fn with_template(mut self, template: Arc<MessageTemplate>) -> Sink {
        self.template = Some(template);
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn target(&self) -> &SinkTarget {
        &self.target
    }

    /// A digest of where and how the sink delivers, credentials included,
    /// stable across restarts: stored with a broken mark so that a changed
    /// configuration clears it. SHA-256, so the stored text reveals nothing
    /// of the credentials.
    pub fn fingerprint(&self) -> String {
        let mut hasher = Sha256Hasher(Sha256::new());
        self.target.hash(&mut hasher);
        hasher
            .0
            .finalize()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }
}

/// Feeds what `Hash` writes into SHA-256 (std's hashers may change between
/// Rust releases; this digest must not).
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        0
    }
}

/// What the outbox does next with a delivery after one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    /// Try again later; `retry_after` is the receiver's `Retry-After`, if it gave one.
    Retry {
        retry_after: Option<Duration>,
    },
    /// The receiver refused the delivery for good (4xx other than 408 and 429): it is
    /// dead at once, with the response recorded.
    Permanent,
    /// The endpoint itself is gone or refuses herald (401, 403, 404, 410: a
    /// deleted webhook, an archived channel, a revoked token): every alert
    /// would be refused alike, so the sink is marked broken and its alerts
    /// wait for the configuration to be fixed instead of dying.
    Broken,
}

/// One delivery attempt, as the outbox records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptOutcome {
    pub verdict: Verdict,
    /// `None` when no response arrived (transport failure) or for the `log` sink.
    pub http_status: Option<u16>,
    /// The first [`MAX_EXCERPT_CHARS`] characters of the response body, if any.
    pub response_excerpt: Option<String>,
    /// From the request being sent to the response being read; excludes pacing.
    pub latency: Duration,
    /// Why the attempt did not deliver, for a person; never holds the URL or secret.
    pub error: Option<String>,
    /// The id the service gave the message, where a later one may refer to
    /// it: Slack's `ts`, for the story's thread (`slack_app`).
    pub posted: Option<String>,
}

impl AttemptOutcome {
    fn failed(verdict: Verdict, error: String, latency: Duration) -> AttemptOutcome {
        AttemptOutcome {
            verdict,
            http_status: None,
            response_excerpt: None,
            latency,
            error: Some(error),
            posted: None,
        }
    }

    fn delivered(latency: Duration) -> AttemptOutcome {
        AttemptOutcome {
            verdict: Verdict::Delivered,
            http_status: None,
            response_excerpt: None,
            latency,
            error: None,
            posted: None,
        }
    }
}

/// Why a [`Sender`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("alert http client could not be set up: {0}")]
    Setup(String),
}

/// Sends alerts to every sink over one pooled HTTP client.
///
/// Cheap to clone: clones share the client and the pacing state, so pacing holds
/// across all the tasks of an instance.
#[derive(Clone)]
pub struct Sender {
    client: Client,
    slack_pacer: Arc<Pacer>,
    timeout: Duration,
    private_networks: PrivateNetworks,
}

impl fmt::Debug for Sender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// A request ready to go, minus the delivery header every sink adds.
struct Outgoing<'a> {
    url: &'a Url,
    body: Vec<u8>,
    headers: HeaderMap,
}

impl Sender {
    /// `timeout` bounds each attempt; `user_agent` names herald to receivers.
    ///
    /// `private_networks` as for feeds: a sink's URL is configured, so only "deny"
    /// refuses anything (its host when it is, or resolves to, a special address).
    pub fn new(
        timeout: Duration,
        user_agent: &str,
        private_networks: PrivateNetworks,
    ) -> Result<Sender, SinkError> {
        let mut builder = Client::builder()
            .user_agent(user_agent)
            .timeout(timeout)
            // A webhook answering with a redirect is misconfigured; following it
            // would send the alert (and its signature) somewhere nobody configured.
            .redirect(redirect::Policy::none());
        if private_networks != PrivateNetworks::Allow {
            // A proxy would resolve and connect where the policy cannot see.
            builder = builder.no_proxy();
        }
        if private_networks == PrivateNetworks::Deny {
            builder = builder.dns_resolver(PublicOnly);
        }
        let client = builder
            .build()
            .map_err(|e| SinkError::Setup(describe_transport(&e, None)))?;
        Ok(Sender {
            client,
            slack_pacer: Arc::new(Pacer::new(SLACK_INTERVAL)),
            timeout,
            private_networks,
        })
    }

    /// The longest one [`Sender::send`] can take to one sink: its turn in the Slack
    /// pacing (the sends before it to that sink are done) plus the request timeout.
    pub fn longest_send(&self) -> Duration {
        self.timeout + SLACK_INTERVAL
    }

    /// Makes one attempt to deliver `message` to `sink`. Never fails: every problem
    /// is an outcome for the outbox to record.
    pub async fn send(&self, sink: &Sink, message: &AlertMessage) -> AttemptOutcome {
        self.deliver(sink, Content::Alert(message), None).await
    }

    /// `send`, as a reply in the thread of Slack message `thread_ts` where the
    /// sink is a `slack_app` one (elsewhere the same as `send`).
    pub async fn send_in_thread(
        &self,
        sink: &Sink,
        message: &AlertMessage,
        thread_ts: Option<&str>,
    ) -> AttemptOutcome {
        self.deliver(sink, Content::Alert(message), thread_ts).await
    }

    /// One attempt to send a digest; classified exactly like `send`.
    pub async fn send_digest(&self, sink: &Sink, digest: &Digest) -> AttemptOutcome {
        self.deliver(sink, Content::Digest(digest), None).await
    }

    /// "also reported by …" in a `slack_app` sink's story thread; delivered
    /// at once (nothing to do) for any other sink.
    pub async fn send_spread_note(
        &self,
        sink: &Sink,
        thread_ts: &str,
        outlets: &[ArticleSource],
        note_id: &str,
    ) -> AttemptOutcome {
        match &sink.target {
            SinkTarget::SlackApp(target) => {
                let body = slack_app::spread_note(target, thread_ts, outlets);
                self.post_api(target, &body, note_id).await
            }
            _ => AttemptOutcome::delivered(Duration::ZERO),
        }
    }

    /// The one path every kind of message takes, so that pacing, signing and
    /// classification cannot drift apart between them.
    async fn deliver(
        &self,
        sink: &Sink,
        content: Content<'_>,
        thread_ts: Option<&str>,
    ) -> AttemptOutcome {
        let content = content.rendered_for(sink);
        let outgoing = match &sink.target {
            SinkTarget::Log => {
                let started = Instant::now();
                content.log(&sink.name);
                return AttemptOutcome::delivered(started.elapsed());
            }
            SinkTarget::Slack { url } => {
                self.slack_pacer.wait_turn(url.as_str()).await;
                Outgoing::json(url, &content.slack())
            }
            SinkTarget::Discord { url } => Outgoing::json(url, &content.discord()),
            SinkTarget::Webhook { url, secret } => {
                let (payload, event) = content.webhook();
                Outgoing::webhook(url, &payload, event, secret.as_deref())
            }
            SinkTarget::Email(target) => {
                let email = content.email();
                return email::send(target, &email, content.delivery_id(), self.timeout).await;
            }
            SinkTarget::SlackApp(target) => {
                let body = slack_app::post_body(target, content.slack(), thread_ts);
                return self.post_api(target, &body, content.delivery_id()).await;
            }
            SinkTarget::Teams { url } => Outgoing::json(url, &content.teams()),
            SinkTarget::Ntfy { url, token } => {
                let Some((root, topic)) = ntfy::split_topic_url(url) else {
                    return AttemptOutcome::failed(
                        Verdict::Broken,
                        "the ntfy url names no topic".to_owned(),
                        Duration::ZERO,
                    );
                };
                let mut outgoing = Outgoing::json(&root, &content.ntfy(&topic));
                if let Some(token) = token
                    && let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}"))
                {
                    outgoing.headers.insert(header::AUTHORIZATION, value);
                }
                return self.post(outgoing, content.delivery_id()).await;
            }
            SinkTarget::Telegram(target) => {
                let url = target.send_message_url();
                let outgoing = Outgoing::json(&url, &content.telegram(target));
                let outcome = self.post(outgoing, content.delivery_id()).await;
                return telegram_outcome(outcome);
            }
        };
        self.post(outgoing, content.delivery_id()).await
    }

    /// One `chat.postMessage` call, paced per channel, read from its body.
    async fn post_api(
        &self,
        target: &slack_app::SlackAppTarget,
        body: &serde_json::Value,
        delivery_id: &str,
    ) -> AttemptOutcome {
        self.slack_pacer
            .wait_turn(&format!("{}#{}", target.api_url, target.channel))
            .await;
        let started = Instant::now();
        let url = target.post_message_url();
        if let Err(refused) = net_policy::route(self.private_networks, &url, &url) {
            return AttemptOutcome::failed(
                Verdict::Retry { retry_after: None },
                describe_refusal(&refused),
                started.elapsed(),
            );
        }
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        if let Ok(delivery) = HeaderValue::from_str(delivery_id) {
            headers.insert(HeaderName::from_static(DELIVERY_HEADER), delivery);
        }
        let sent = self
            .client
            .post(url.clone())
            .headers(headers)
            .bearer_auth(&target.token)
            .body(body.to_string())
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(error) => {
                let message = if error.is_timeout() {
                    format!(
                        "timed out after {}",
                        humantime::format_duration(self.timeout)
                    )
                } else {
                    describe_transport(&error, Some(&url))
                };
                return AttemptOutcome::failed(
                    Verdict::Retry { retry_after: None },
                    message,
                    started.elapsed(),
                );
            }
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| parse_retry_after(value, Utc::now()));
        let text = read_excerpt(response).await.unwrap_or_default();
        let answer = slack_app::read_answer(status.as_u16(), &text, retry_after);
        let error = (answer.verdict != Verdict::Delivered).then(|| match &answer.error {
            // The code itself is the excerpt.
            Some(_) => "Slack refused the message".to_owned(),
            None => describe_status(status, retry_after),
        });
        AttemptOutcome {
            verdict: answer.verdict,
            http_status: Some(status.as_u16()),
            response_excerpt: answer.error.or_else(|| {
                (answer.verdict != Verdict::Delivered && !text.is_empty())
                    .then(|| scrub(&text, Some(&url)))
            }),
            latency: started.elapsed(),
            error,
            posted: answer.ts,
        }
    }

    async fn post(&self, outgoing: Outgoing<'_>, delivery_id: &str) -> AttemptOutcome {
        let started = Instant::now();
        let Ok(delivery) = HeaderValue::from_str(delivery_id) else {
            return AttemptOutcome::failed(
                Verdict::Permanent,
                "delivery id is not a valid header value".to_owned(),
                started.elapsed(),
            );
        };
        let url = outgoing.url;
        if let Err(refused) = net_policy::route(self.private_networks, url, url) {
            // Retried rather than dead: a reloaded configuration can lift the refusal.
            return AttemptOutcome::failed(
                Verdict::Retry { retry_after: None },
                describe_refusal(&refused),
                started.elapsed(),
            );
        }
        let result = self
            .client
            .post(url.clone())
            .headers(outgoing.headers)
            .header(HeaderName::from_static(DELIVERY_HEADER), delivery)
            .body(outgoing.body)
            .send()
            .await;
        match result {
            Ok(response) => self.read_answer(response, url, started).await,
            Err(error) => {
                let verdict = if error.is_builder() {
                    Verdict::Permanent
                } else {
                    Verdict::Retry { retry_after: None }
                };
                let message = if let Some(refused) = net_policy::find_refusal(&error) {
                    describe_refusal(refused)
                } else if error.is_timeout() {
                    format!(
                        "timed out after {}",
                        humantime::format_duration(self.timeout)
                    )
                } else {
                    describe_transport(&error, Some(url))
                };
                AttemptOutcome::failed(verdict, message, started.elapsed())
            }
        }
    }

    async fn read_answer(&self, response: Response, url: &Url, started: Instant) -> AttemptOutcome {
        let status = response.status();
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| parse_retry_after(value, Utc::now()));
        let excerpt = read_excerpt(response)
            .await
            .map(|text| scrub(&text, Some(url)));
        let verdict = classify(status.as_u16(), retry_after);
        AttemptOutcome {
            verdict,
            http_status: Some(status.as_u16()),
            response_excerpt: excerpt,
            latency: started.elapsed(),
            error: (verdict != Verdict::Delivered).then(|| describe_status(status, retry_after)),
            posted: None,
        }
    }
}

impl<'a> Outgoing<'a> {
    fn json(url: &'a Url, payload: &serde_json::Value) -> Outgoing<'a> {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        Outgoing {
            url,
            // `Display` of a JSON value is its compact serialisation and cannot fail.
            body: payload.to_string().into_bytes(),
            headers,
        }
    }

    /// A webhook body with its event named and, given a secret, signed over the
    /// exact bytes sent, so a receiver can verify before parsing.
    fn webhook(
        url: &'a Url,
        payload: &serde_json::Value,
        event: &'static str,
        secret: Option<&str>,
    ) -> Outgoing<'a> {
        let mut outgoing = Outgoing::json(url, payload);
        outgoing.headers.insert(
            HeaderName::from_static(webhook::EVENT_HEADER),
            HeaderValue::from_static(event),
        );
        if let Some(secret) = secret
            && let Ok(value) = HeaderValue::from_str(&webhook::signature(secret, &outgoing.body))
        {
            outgoing
                .headers
                .insert(HeaderName::from_static(webhook::SIGNATURE_HEADER), value);
        }
        outgoing
    }
}

/// What one attempt carries: a single alert, the same as its sink's template
/// rendered it, or a digest of several.
#[derive(Clone)]
enum Content<'a> {
    Alert(&'a AlertMessage),
    Rendered(&'a AlertMessage, String),
    Digest(&'a Digest),
}

impl<'a> Content<'a> {
    /// A single alert through the sink's template, if it has one. A render
    /// that fails (the template was checked against a sample, so only a
    /// runaway loop on odd text) sends herald's own message rather than none.
    fn rendered_for(self, sink: &Sink) -> Content<'a> {
        let (Content::Alert(message), Some(template)) = (&self, &sink.template) else {
            return self;
        };
        match template.render(message) {
            Ok(text) => Content::Rendered(message, text),
            Err(error) => {
                tracing::warn!(
                    sink = %sink.name,
                    delivery = %message.delivery_id,
                    %error,
                    "message template failed; sending the default message"
                );
                self
            }
        }
    }

    fn delivery_id(&self) -> &str {
        match self {
            Content::Alert(message) | Content::Rendered(message, _) => &message.delivery_id,
            Content::Digest(digest) => &digest.delivery_id,
        }
    }

    fn log(&self, sink_name: &str) {
        match self {
            Content::Alert(message) => log::emit(sink_name, message),
            Content::Rendered(message, text) => log::emit_text(sink_name, message, text),
            Content::Digest(digest) => log::emit_digest(sink_name, digest),
        }
    }

    fn slack(&self) -> serde_json::Value {
        match self {
            Content::Alert(message) => slack::payload(message),
            Content::Rendered(_, text) => slack::text_payload(text),
            Content::Digest(digest) => slack::digest_payload(digest),
        }
    }

    fn discord(&self) -> serde_json::Value {
        match self {
            Content::Alert(message) => discord::payload(message),
            Content::Rendered(_, text) => discord::text_payload(text),
            Content::Digest(digest) => discord::digest_payload(digest),
        }
    }

    fn teams(&self) -> serde_json::Value {
        match self {
            Content::Alert(message) => teams::payload(message),
            Content::Rendered(_, text) => teams::text_payload(text),
            Content::Digest(digest) => teams::digest_payload(digest),
        }
    }

    fn ntfy(&self, topic: &str) -> serde_json::Value {
        match self {
            Content::Alert(message) => ntfy::payload(topic, message),
            Content::Rendered(message, text) => ntfy::text_payload(topic, message, text),
            Content::Digest(digest) => ntfy::digest_payload(topic, digest),
        }
    }

    fn telegram(&self, target: &telegram::TelegramTarget) -> serde_json::Value {
        match self {
            Content::Alert(message) => telegram::payload(target, message),
            Content::Rendered(_, text) => telegram::text_payload(target, text),
            Content::Digest(digest) => telegram::digest_payload(target, digest),
        }
    }

    fn email(&self) -> email::Email {
        match self {
            Content::Alert(message) => email::alert(message, None),
            // A template writes the HTML part; the plain one stays herald's.
            Content::Rendered(message, html) => email::alert(message, Some(html)),
            Content::Digest(digest) => email::digest(digest),
        }
    }

    /// The body and the event header naming it, which receivers switch on.
    fn webhook(&self) -> (serde_json::Value, &'static str) {
        match self {
            Content::Alert(message) | Content::Rendered(message, _) => {
                (webhook::payload(message), webhook::EVENT)
            }
            Content::Digest(digest) => (webhook::digest_payload(digest), webhook::DIGEST_EVENT),
        }
    }
}

/// Telegram's answer read further than its status: the wait a 429 asks for
/// in its body, and a 400 saying the chat is gone (the sink is broken).
fn telegram_outcome(mut outcome: AttemptOutcome) -> AttemptOutcome {
    let body = outcome.response_excerpt.as_deref().unwrap_or_default();
    match (outcome.http_status, outcome.verdict) {
        (Some(429), Verdict::Retry { retry_after: None }) => {
            if let Some(wait) = telegram::retry_after(body) {
                outcome.verdict = Verdict::Retry {
                    retry_after: Some(wait),
                };
                outcome.error = Some(format!(
                    "HTTP 429 Too Many Requests (retry after {})",
                    humantime::format_duration(wait)
                ));
            }
        }
        (Some(400), _) if telegram::chat_is_gone(body) => outcome.verdict = Verdict::Broken,
        _ => {}
    }
    outcome
}

/// 2xx delivered; 408, 429 and 5xx retried (obeying any `Retry-After`);
/// 401, 403, 404 and 410 say the endpoint is gone or closed to herald (the
/// sink is broken); any other status refused for good. 3xx is never followed
/// (see [`Sender::new`]), so it is a configuration error, and retrying would
/// not fix it.
pub fn classify(status: u16, retry_after: Option<Duration>) -> Verdict {
    match status {
        200..=299 => Verdict::Delivered,
        408 | 429 | 500..=599 => Verdict::Retry { retry_after },
        401 | 403 | 404 | 410 => Verdict::Broken,
        _ => Verdict::Permanent,
    }
}

fn describe_status(status: StatusCode, retry_after: Option<Duration>) -> String {
    let reason = status
        .canonical_reason()
        .map(|reason| format!(" {reason}"))
        .unwrap_or_default();
    match retry_after {
        Some(wait) => format!(
            "HTTP {}{reason} (retry after {})",
            status.as_u16(),
            humantime::format_duration(wait)
        ),
        None => format!("HTTP {}{reason}", status.as_u16()),
    }
}

/// The start of the response body, decoded leniently; `None` when empty or unreadable.
async fn read_excerpt(mut response: Response) -> Option<String> {
    let mut body = Vec::new();
    while body.len() < MAX_EXCERPT_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    body.truncate(MAX_EXCERPT_BYTES);
    let text = String::from_utf8_lossy(&body);
    let excerpt: String = text.trim().chars().take(MAX_EXCERPT_CHARS).collect();
    (!excerpt.is_empty()).then_some(excerpt)
}

/// A sink's URL is configured, so only "deny" refuses it, and "configured" would not.
fn describe_refusal(refused: &net_policy::Refused) -> String {
    format!(
        "refused to connect to {refused}: set [fetch] private_networks = \"{}\" to permit",
        PrivateNetworks::Configured
    )
}

/// The innermost cause of a client error, phrased for a person: reqwest's own
/// message repeats the URL ("error sending request for url (…)"), a credential here.
fn describe_transport(error: &reqwest::Error, url: Option<&Url>) -> String {
    let mut innermost: &(dyn std::error::Error + 'static) = error;
    while let Some(source) = innermost.source() {
        innermost = source;
    }
    if let Some(io) = innermost.downcast_ref::<std::io::Error>()
        && let Some(text) = describe_io(io.kind())
    {
        return text.to_owned();
    }
    scrub(&humanize(&innermost.to_string()), url)
}

/// Belt and braces for text that came from elsewhere (an error's cause, a response
/// body): the URL, or its path and query (the credential part), shown redacted.
fn scrub(text: &str, url: Option<&Url>) -> String {
    let Some(url) = url else {
        return text.to_owned();
    };
    let mut scrubbed = text.replace(url.as_str(), &redacted_url(url));
    let secret_part = &url[url::Position::BeforePath..];
    if secret_part.len() > 1 {
        scrubbed = scrubbed.replace(secret_part, "/…");
    }
    scrubbed
}

/// Spaces messages to one key (a webhook URL) at least `interval` apart.
///
/// Each caller reserves the next free slot under a short lock and sleeps outside it,
/// so concurrent senders to one webhook queue up in order and senders to other
/// webhooks never wait.
struct Pacer {
    interval: Duration,
    next_free: Mutex<HashMap<String, Instant>>,
}

/// Past this many keys, slots already in the past are forgotten.
const PACER_PRUNE_AT: usize = 1024;

impl Pacer {
    fn new(interval: Duration) -> Pacer {
        Pacer {
            interval,
            next_free: Mutex::new(HashMap::new()),
        }
    }

    async fn wait_turn(&self, key: &str) {
        let slot = self.reserve(key, Instant::now());
        tokio::time::sleep_until(slot).await;
    }

    fn reserve(&self, key: &str, now: Instant) -> Instant {
        let mut next_free = self
            .next_free
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if next_free.len() >= PACER_PRUNE_AT {
            next_free.retain(|_, free| *free > now);
        }
        let slot = next_free.get(key).map_or(now, |free| (*free).max(now));
        next_free.insert(key.to_owned(), slot + self.interval);
        slot
    }
}

/// The article's web address (as published, else canonical) if it is one a chat
/// client may link to: http or https.
fn article_link(article: &Article) -> Option<Url> {
    [&article.url, &article.canonical_url]
        .into_iter()
        .flatten()
        .filter_map(|text| Url::parse(text).ok())
        .find(|url| {
            matches!(url.scheme(), "http" | "https")
                && url.host_str().is_some_and(|host| !host.is_empty())
        })
}

/// "also reported by 3 other outlets", when the story ran elsewhere too.
fn also_reported(message: &AlertMessage) -> Option<String> {
    match message.also_reported_by.len() {
        0 => None,
        1 => Some("also reported by 1 other outlet".to_owned()),
        n => Some(format!("also reported by {n} other outlets")),
    }
}

/// The feed to credit: the first source's name, else its host.
fn feed_label(article: &Article) -> String {
    match article.feeds.first() {
        Some(source) => source_label(source),
        None => "unknown feed".to_owned(),
    }
}

/// A feed as a reader knows it: its name, else its host.
fn source_label(source: &ArticleSource) -> String {
    let name = source
        .name
        .as_deref()
        .map(text::one_line)
        .filter(|name| !name.is_empty());
    name.or_else(|| {
        Url::parse(&source.url)
            .ok()
            .and_then(|url| url.host_str().map(str::to_owned))
    })
    .unwrap_or_else(|| source.url.clone())
}

/// The headline as chat shows it: one line, and never blank (a bare link or
/// an empty embed title says nothing about the story).
fn display_title(article: &Article) -> String {
    match text::one_line(&article.title) {
        title if title.is_empty() => "(untitled)".to_owned(),
        title => title,
    }
}

/// A feed name in a digest's outlet list: each is cut on its own, so one
/// absurdly long name cannot push the others, or the count, out of the line.
const MAX_OUTLET_NAME: usize = 60;

/// "Miami Herald · also reported by 2 other outlets: Wire, paper.example":
/// the credited feed and the count come first, so a sink cutting the line to
/// its limit only loses names from the end. Unescaped: each sink escapes it.
fn outlets(message: &AlertMessage) -> String {
    let mut line = text::fit(&feed_label(&message.article), MAX_OUTLET_NAME);
    if let Some(spread) = also_reported(message) {
        let others: Vec<String> = message
            .also_reported_by
            .iter()
            .map(|source| text::fit(&source_label(source), MAX_OUTLET_NAME))
            .collect();
        line.push_str(" · ");
        line.push_str(&spread);
        line.push_str(": ");
        line.push_str(&others.join(", "));
    }
    line
}

#[cfg(test)]
pub(crate) mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::domain::alert::FiredRule;
    use crate::domain::article::ArticleSource;

    /// The alert every payload test starts from.
    /// Two feeds besides the credited one that carried the story, one
    /// without a name.
    pub(crate) fn two_other_outlets() -> Vec<ArticleSource> {
        vec![
            ArticleSource {
                url: "https://wire.example/rss".to_owned(),
                name: Some("Wire".to_owned()),
            },
            ArticleSource {
                url: "https://paper.example/rss".to_owned(),
                name: None,
            },
        ]
    }

    pub(crate) fn message() -> AlertMessage {
        AlertMessage {
            delivery_id: "d-0001".to_owned(),
            alert_id: 42,
            rule: FiredRule {
                name: "nk-iran".to_owned(),
                query: "\"North Korea\" Iran".to_owned(),
            },
            article: Article {
                id: 7,
                url: Some("https://www.miamiherald.com/news/article1.html?a=1&b=2".to_owned()),
                canonical_url: Some("https://www.miamiherald.com/news/article1.html".to_owned()),
                title: "North Korean delegation visits Tehran".to_owned(),
                summary: Some("A rare visit by officials from Pyongyang.".to_owned()),
                author: None,
                language: Some("en".to_owned()),
                published_at: Utc.with_ymd_and_hms(2026, 3, 1, 12, 30, 0).unwrap(),
                updated_at: None,
                first_seen_at: Utc.with_ymd_and_hms(2026, 3, 1, 12, 31, 5).unwrap(),
                feeds: vec![ArticleSource {
                    url: "https://www.miamiherald.com/rss".to_owned(),
                    name: Some("Miami Herald".to_owned()),
                }],
                story_id: Some(3),
            },
            matched: vec!["north korea".to_owned(), "iran".to_owned()],
            also_reported_by: Vec::new(),
        }
    }

    /// Feed text trying what chat services act on: a mention, emphasis, a masked
    /// link and an HTML entity's start.
    pub(crate) const HOSTILE: &str = "<@here> *bold* [x](http://evil) & co";

    /// A digest of `count` alerts on distinct stories titled "Story 1", "Story 2", ….
    pub(crate) fn digest(count: usize) -> Digest {
        let items = (0..count)
            .map(|index| {
                let mut item = message();
                item.delivery_id = format!("d-{index:04}");
                item.alert_id = 100 + i64::try_from(index).unwrap();
                item.article.id = 1000 + i64::try_from(index).unwrap();
                item.article.title = format!("Story {}", index + 1);
                item
            })
            .collect();
        Digest {
            delivery_id: "g-0001".to_owned(),
            schedule: "every 1h".to_owned(),
            part: 1,
            parts: 1,
            items,
        }
    }

    /// A digest of `count` alerts whose every feed-derived string (and the
    /// schedule) is far past any service's limit, in multi-byte and escaped text.
    pub(crate) fn long_digest(count: usize) -> Digest {
        let mut digest = digest(count);
        for item in &mut digest.items {
            item.article.title = format!("Пхеньян 😀 {HOSTILE} @everyone ").repeat(300);
            // As long as a link may be once escaped (`&` becomes `&amp;` for Slack).
            item.article.url = Some(format!("https://example.com/{}?a=1&b=2", "p".repeat(1950)));
            item.article.feeds[0].name = Some("ü&".repeat(5000));
            item.rule.name = "r&[".repeat(1000);
            item.also_reported_by = (0..200)
                .map(|n| ArticleSource {
                    url: format!("https://outlet{n}.example/rss"),
                    name: Some(format!("Outlet {n} {HOSTILE} @everyone")),
                })
                .collect();
        }
        digest.schedule = "at 08:00 & <!channel> [x](y) @everyone ".repeat(200);
        digest.part = 3;
        digest.parts = 9;
        digest
    }

    #[test]
    fn status_classification() {
        fn check(status: u16, retry_after: Option<u64>, expected: Verdict) {
            let retry_after = retry_after.map(Duration::from_secs);
            assert_eq!(classify(status, retry_after), expected, "HTTP {status}");
        }
        let retry = |seconds: Option<u64>| Verdict::Retry {
            retry_after: seconds.map(Duration::from_secs),
        };
        check(200, None, Verdict::Delivered);
        check(204, None, Verdict::Delivered);
        check(429, Some(2), retry(Some(2)));
        check(503, Some(30), retry(Some(30)));
        check(429, None, retry(None));
        check(408, None, retry(None));
        check(500, None, retry(None));
        check(502, None, retry(None));
        check(400, None, Verdict::Permanent);
        check(401, None, Verdict::Broken);
        check(403, None, Verdict::Broken);
        check(404, None, Verdict::Broken);
        check(410, None, Verdict::Broken);
        check(422, None, Verdict::Permanent);
        check(413, None, Verdict::Permanent);
        check(301, None, Verdict::Permanent);
    }

    #[test]
    fn debug_never_shows_url_or_secret() {
        fn check(target: SinkTarget, expected: &str) {
            let shown = format!("{:?}", Sink::new("s", target));
            assert_eq!(shown, expected);
            assert!(
                !shown.contains("T0001") && !shown.contains("hunter2"),
                "{shown}"
            );
        }
        let slack = Url::parse("https://hooks.slack.com/services/T0001/B0001/XXXX").unwrap();
        let hook = Url::parse("http://127.0.0.1:9000/hook/T0001?token=T0001").unwrap();
        check(
            SinkTarget::Slack { url: slack.clone() },
            r#"Sink { name: "s", target: Slack { url: "https://hooks.slack.com/…" }, template: None }"#,
        );
        check(
            SinkTarget::Discord { url: slack },
            r#"Sink { name: "s", target: Discord { url: "https://hooks.slack.com/…" }, template: None }"#,
        );
        check(
            SinkTarget::Webhook {
                url: hook,
                secret: Some("hunter2".to_owned()),
            },
            r#"Sink { name: "s", target: Webhook { url: "http://127.0.0.1:9000/…", secret: Some("***") }, template: None }"#,
        );
        check(
            SinkTarget::Log,
            r#"Sink { name: "s", target: Log, template: None }"#,
        );
    }

    #[test]
    fn scrub_removes_url_and_its_path() {
        let url = Url::parse("https://hooks.example/services/T0001/SECRET").unwrap();
        let scrubbed = scrub(
            "error sending request for url (https://hooks.example/services/T0001/SECRET): /services/T0001/SECRET",
            Some(&url),
        );
        assert_eq!(
            scrubbed,
            "error sending request for url (https://hooks.example/…): /…"
        );
    }

    #[test]
    fn pacer_spaces_one_key_and_leaves_others_alone() {
        let pacer = Pacer::new(Duration::from_secs(1));
        let now = Instant::now();
        assert_eq!(pacer.reserve("a", now), now);
        assert_eq!(pacer.reserve("a", now), now + Duration::from_secs(1));
        assert_eq!(pacer.reserve("a", now), now + Duration::from_secs(2));
        assert_eq!(pacer.reserve("b", now), now);
        // A key idle for longer than the interval goes at once.
        let later = now + Duration::from_secs(10);
        assert_eq!(pacer.reserve("a", later), later);
    }

    #[test]
    fn digest_heading_counts_stories_parts_and_what_is_shown() {
        let mut digest = digest(3);
        assert_eq!(digest.heading(3), "3 stories — every 1h");
        digest.part = 2;
        digest.parts = 4;
        assert_eq!(digest.heading(3), "3 stories — every 1h (part 2 of 4)");
        assert_eq!(
            digest.heading(2),
            "3 stories — every 1h (part 2 of 4; 2 shown)"
        );
        digest.items.truncate(1);
        digest.parts = 1;
        digest.schedule = "at 08:00\n(Europe/Berlin)".to_owned();
        assert_eq!(digest.heading(1), "1 story — at 08:00 (Europe/Berlin)");
    }

    #[test]
    fn a_long_schedule_cannot_push_the_part_out_of_the_heading() {
        let heading = long_digest(2).heading(2);
        assert!(heading.ends_with("… (part 3 of 9)"), "{heading}");
        assert!(text::length(&heading) < 2 * MAX_SCHEDULE);
    }

    #[test]
    fn outlets_lead_with_the_credited_feed_and_the_count() {
        let mut message = message();
        assert_eq!(outlets(&message), "Miami Herald");
        message.also_reported_by = two_other_outlets();
        assert_eq!(
            outlets(&message),
            "Miami Herald · also reported by 2 other outlets: Wire, paper.example"
        );
        message.article.feeds[0].name = Some("x".repeat(1000));
        let line = outlets(&message);
        assert!(
            line.ends_with("… · also reported by 2 other outlets: Wire, paper.example"),
            "{line}"
        );
        assert!(text::length(&line) < 2 * MAX_OUTLET_NAME + 40);
    }

    #[test]
    fn digest_capacity_per_sink_type() {
        let url = Url::parse("https://hooks.example/x").unwrap();
        let capacity = |target: SinkTarget| digest_capacity(&target);
        assert_eq!(capacity(SinkTarget::Slack { url: url.clone() }), 49);
        assert_eq!(capacity(SinkTarget::Discord { url: url.clone() }), 10);
        assert_eq!(capacity(SinkTarget::Webhook { url, secret: None }), 100);
        assert_eq!(capacity(SinkTarget::Log), 100);
    }

    #[test]
    fn each_content_names_its_own_webhook_event() {
        let message = message();
        let digest = digest(2);
        let (payload, event) = Content::Alert(&message).webhook();
        assert_eq!(
            (payload["event"].as_str(), event),
            (Some("rule.matched"), "rule.matched")
        );
        let (payload, event) = Content::Digest(&digest).webhook();
        assert_eq!(
            (payload["event"].as_str(), event),
            (Some("digest"), "digest")
        );
        assert_eq!(Content::Digest(&digest).delivery_id(), "g-0001");
    }

    /// Independent of [`webhook::signature`]: what a receiver would compute.
    fn hmac_hex(secret: &str, body: &[u8]) -> String {
        use hmac::{Hmac, KeyInit, Mac};
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body);
        let digest = mac.finalize().into_bytes();
        let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
        format!("sha256={hex}")
    }

    #[test]
    fn webhook_digest_is_signed_over_its_exact_body() {
        let url = Url::parse("https://hooks.example/in").unwrap();
        let digest = digest(3);
        let payload = webhook::digest_payload(&digest);
        let signed = Outgoing::webhook(&url, &payload, webhook::DIGEST_EVENT, Some("s3cret"));
        let header = |name: &str| signed.headers.get(name).and_then(|v| v.to_str().ok());
        assert_eq!(header("x-herald-event"), Some("digest"));
        assert_eq!(header("content-type"), Some("application/json"));
        let expected = hmac_hex("s3cret", &signed.body);
        assert_eq!(header("x-herald-signature"), Some(expected.as_str()));
        assert_ne!(
            header("x-herald-signature"),
            Some(hmac_hex("other", &signed.body).as_str())
        );
        let sent: serde_json::Value = serde_json::from_slice(&signed.body).unwrap();
        assert_eq!(sent, payload);

        let unsigned = Outgoing::webhook(&url, &payload, webhook::DIGEST_EVENT, None);
        assert_eq!(unsigned.body, signed.body);
        assert!(!unsigned.headers.contains_key("x-herald-signature"));
        assert_eq!(unsigned.headers["x-herald-event"], "digest");
    }

    /// Accepts one HTTP request on a local port, answers 204 and hands back the
    /// request's headers (names lowercased) and body.
    async fn receive_one() -> (
        Url,
        tokio::task::JoinHandle<(HashMap<String, String>, Vec<u8>)>,
    ) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}/hook", listener.local_addr().unwrap())).unwrap();
        let handle = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            let mut buffer = [0u8; 16 * 1024];
            let (head_end, headers) = loop {
                let read = stream.read(&mut buffer).await.unwrap();
                assert!(read > 0, "connection closed mid-request");
                request.extend_from_slice(&buffer[..read]);
                if let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8(request[..end].to_vec()).unwrap();
                    let headers: HashMap<String, String> = head
                        .lines()
                        .skip(1)
                        .filter_map(|line| line.split_once(':'))
                        .map(|(name, value)| (name.to_lowercase(), value.trim().to_owned()))
                        .collect();
                    break (end + 4, headers);
                }
            };
            let length: usize = headers["content-length"].parse().unwrap();
            while request.len() < head_end + length {
                let read = stream.read(&mut buffer).await.unwrap();
                assert!(read > 0, "connection closed mid-body");
                request.extend_from_slice(&buffer[..read]);
            }
            stream
                .write_all(
                    b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                )
                .await
                .unwrap();
            (headers, request[head_end..].to_vec())
        });
        (url, handle)
    }

    #[tokio::test]
    async fn send_digest_posts_the_signed_digest_with_its_delivery_id() {
        let (url, received) = receive_one().await;
        let sender = Sender::new(
            Duration::from_secs(5),
            "herald-test/1",
            PrivateNetworks::default(),
        )
        .unwrap();
        let sink = Sink::new(
            "audit",
            SinkTarget::Webhook {
                url,
                secret: Some("s3cret".to_owned()),
            },
        );
        let digest = digest(3);
        let outcome = sender.send_digest(&sink, &digest).await;
        assert_eq!(outcome.verdict, Verdict::Delivered, "{outcome:?}");
        assert_eq!(outcome.http_status, Some(204));
        let (headers, body) = received.await.unwrap();
        assert_eq!(headers["x-herald-event"], "digest");
        assert_eq!(headers["x-herald-delivery"], "g-0001");
        assert_eq!(headers["x-herald-signature"], hmac_hex("s3cret", &body));
        assert_eq!(
            body,
            webhook::digest_payload(&digest).to_string().into_bytes()
        );
    }

    #[tokio::test]
    async fn send_digest_to_the_log_is_delivered_at_once() {
        let sender = Sender::new(
            Duration::from_secs(5),
            "herald-test/1",
            PrivateNetworks::default(),
        )
        .unwrap();
        let outcome = sender
            .send_digest(&Sink::new("audit", SinkTarget::Log), &digest(3))
            .await;
        assert_eq!(outcome.verdict, Verdict::Delivered);
        assert_eq!(outcome.http_status, None);
        assert_eq!(outcome.error, None);
    }

    #[test]
    fn feed_label_prefers_the_name_then_the_host() {
        let mut article = message().article;
        assert_eq!(feed_label(&article), "Miami Herald");
        article.feeds[0].name = Some("  ".to_owned());
        assert_eq!(feed_label(&article), "www.miamiherald.com");
        article.feeds.clear();
        assert_eq!(feed_label(&article), "unknown feed");
    }
}
