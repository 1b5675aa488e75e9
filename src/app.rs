//! Builds herald from its settings (store, HTTP clients, compiled rules, sinks) and
//! polls feeds with them. An [`App`] is one generation of the configuration: a
//! reload builds a new one on the same store (`daemon` swaps them).
//!
//! The only place that turns `config` types into the stages' own settings.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use futures::StreamExt;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

use crate::api::ApiState;
use crate::config::{
    ApiLimits, FeedSettings, Redactor, RuleSettings, Settings, SinkKind, SinkSettings,
};
use crate::domain::alert::AlertTarget;
use crate::domain::digest::DigestSchedule;
use crate::domain::feed::{FeedRecord, FeedSpec, FeedStatus};
use crate::fetch::{self, Fetcher};
use crate::ingest::{self, PollReport, PollStatus, Watch};
use crate::metrics::Metrics;
use crate::outbox::{self, DispatchReport, Dispatcher, Throttles};
use crate::rules::{Matcher, Rule, RuleQuery};
use crate::search::{self, FeedInfo};
use crate::sinks::email::EmailTarget;
use crate::sinks::slack_app::SlackAppTarget;
use crate::sinks::telegram::TelegramTarget;
use crate::sinks::template::MessageTemplate;
use crate::sinks::{Sender, Sink, SinkTarget};
use crate::store::{Store, StoreError};

/// Polls in flight per fetch allowed at once (see [`App::poll_once`]).
const POLLS_PER_FETCH: usize = 2;

/// A configured feed and its row in the store.
#[derive(Debug, Clone)]
pub struct ConfiguredFeed {
    pub settings: FeedSettings,
    pub record: FeedRecord,
    pub interval: Duration,
}

/// A running herald: settings, database and HTTP client.
pub struct App {
    pub settings: Settings,
    pub store: Store,
    pub fetcher: Arc<Fetcher>,
    pub watch: Arc<Watch>,
    pub dispatcher: Arc<Dispatcher>,
    /// Woken when new alerts are recorded, so their first attempt follows at once.
    /// Shared by every generation, so a poll of the old one still wakes the
    /// dispatcher of the new.
    pub new_alerts: Arc<Notify>,
    /// Names this process's claims on feeds and deliveries.
    pub instance: String,
    /// Counters; like `new_alerts`, shared by every generation.
    pub metrics: Arc<Metrics>,
}

/// The sinks of the configuration as the sender takes them.
/// Every configured sink as the sender takes it, each template compiled for
/// its target's markup.
pub fn configured_sinks(settings: &Settings) -> Result<HashMap<String, Sink>, InvalidTemplates> {
    let mut sinks = HashMap::with_capacity(settings.sinks.len());
    let mut errors = Vec::new();
    for (name, configured) in &settings.sinks {
        match sink_of(name, configured) {
            Ok(sink) => {
                sinks.insert(name.clone(), sink);
            }
            Err(error) => errors.push(error),
        }
    }
    if errors.is_empty() {
        Ok(sinks)
    } else {
        Err(InvalidTemplates(errors))
    }
}

/// One configured sink as the sender takes it; the only place secret URLs are
/// exposed, to be handed to the HTTP client. The error is a template's, as
/// `file:line:col: sink NAME: template: message`.
pub fn sink_of(name: &str, configured: &SinkSettings) -> Result<Sink, String> {
    let target = match &configured.kind {
        SinkKind::Slack { url } => SinkTarget::Slack {
            url: url.expose().clone(),
        },
        SinkKind::Discord { url } => SinkTarget::Discord {
            url: url.expose().clone(),
        },
        SinkKind::Webhook { url, secret } => SinkTarget::Webhook {
            url: url.expose().clone(),
            secret: secret.as_ref().map(|s| s.expose().to_owned()),
        },
        SinkKind::Email {
            url,
            from,
            to,
            tls_ca,
        } => SinkTarget::Email(EmailTarget {
            url: url.expose().clone(),
            from: from.clone(),
            to: to.clone(),
            tls_ca: tls_ca.clone(),
        }),
        SinkKind::SlackApp {
            token,
            channel,
            api_url,
        } => SinkTarget::SlackApp(SlackAppTarget {
            api_url: api_url.clone(),
            token: token.expose().to_owned(),
            channel: channel.clone(),
        }),
        SinkKind::Teams { url } => SinkTarget::Teams {
            url: url.expose().clone(),
        },
        SinkKind::Ntfy { url, token } => SinkTarget::Ntfy {
            url: url.expose().clone(),
            token: token.as_ref().map(|token| token.expose().to_owned()),
        },
        SinkKind::Telegram {
            token,
            chat_id,
            api_url,
        } => SinkTarget::Telegram(TelegramTarget {
            api_url: api_url.clone(),
            token: token.expose().to_owned(),
            chat_id: chat_id.clone(),
        }),
        SinkKind::Log => SinkTarget::Log,
    };
    let Some(source) = &configured.template else {
        return Ok(Sink::new(name, target));
    };
    let Some(markup) = crate::sinks::markup(&target) else {
        return Err(format!(
            "{}: sink {name}: a `{}` sink takes no template",
            source.start,
            target.kind()
        ));
    };
    let template = MessageTemplate::compile(&source.text, markup).map_err(|error| {
        format!(
            "{}: sink {name}: template: {error}",
            source.position(error.line, error.column)
        )
    })?;
    Ok(Sink::new(name, target).with_template(Arc::new(template)))
}

/// Names this process's claims: host and pid, plus randomness so that a restarted
/// process never mistakes its predecessor's claims for its own.
fn instance_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "herald".to_owned());
    format!(
        "{host}:{}:{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

/// Rules that do not parse, each as `file:line:col: rule NAME: message`.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.join("\n"))]
pub struct InvalidRules(pub Vec<String>);

/// Message templates that do not compile, each as
/// `file:line:col: sink NAME: template: message`.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.join("\n"))]
pub struct InvalidTemplates(pub Vec<String>);

/// Parses every configured rule and compiles them into one matcher.
///
/// Warnings (lower-case `and`/`or`/`not`) are returned beside the result, for
/// `herald check` to print.
pub fn compile_rules(settings: &Settings) -> (Result<Watch, InvalidRules>, Vec<String>) {
    let mut rules = Vec::with_capacity(settings.rules.len());
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    for (name, rule) in &settings.rules {
        match RuleQuery::parse(&rule.query) {
            Ok(query) => {
                for warning in query.warnings() {
                    warnings.push(format!("{}: rule {name}: {warning}", rule.query_location));
                }
                rules.push(Rule {
                    name: name.clone(),
                    query,
                    tags: rule.tags.clone(),
                });
            }
            Err(error) => errors.push(format!("{}: rule {name}: {error}", rule.query_location)),
        }
    }
    let watch = if errors.is_empty() {
        Ok(Watch {
            mutes: Default::default(),
            matcher: Matcher::compile(rules),
            sinks: settings
                .rules
                .iter()
                .map(|(name, rule)| (Arc::from(name.as_str()), alert_targets(settings, rule)))
                .collect(),
            max_age: settings.alerts.max_age,
            // The loader has checked both values against the same bounds.
            stories: crate::stories::StorySettings {
                window: settings.stories.window,
                threshold: settings.stories.threshold,
            },
        })
    } else {
        Err(InvalidRules(errors))
    };
    (watch, warnings)
}

impl App {
    /// Connects to the database and applies pending migrations.
    pub async fn open(settings: Settings) -> anyhow::Result<App> {
        // Rules first: a bad rule is a configuration error, reported before any
        // connection is attempted.
        let (watch, _) = compile_rules(&settings);
        watch?;
        configured_sinks(&settings)?;
        let store = Store::connect_within(
            settings.database.url.expose(),
            settings.database.busy_timeout,
            settings.database.connect_timeout,
        )
        .await
        .with_context(|| format!("database {}", settings.database.url))?;
        store
            .migrate()
            .await
            .with_context(|| format!("database {}", settings.database.url))?;
        App::assemble(
            settings,
            store,
            instance_id(),
            Arc::new(Notify::new()),
            Arc::new(Metrics::new()),
        )
    }

    /// The same process and database with new settings: what a reload swaps in.
    /// Fails, changing nothing, when the settings are not usable.
    pub fn reconfigure(&self, settings: Settings) -> anyhow::Result<App> {
        if settings.database.url != self.settings.database.url {
            anyhow::bail!(
                "database.url changed from {} to {}: restart herald to switch databases",
                self.settings.database.url,
                settings.database.url
            );
        }
        App::assemble(
            settings,
            self.store.clone(),
            self.instance.clone(),
            Arc::clone(&self.new_alerts),
            Arc::clone(&self.metrics),
        )
    }

    fn assemble(
        settings: Settings,
        store: Store,
        instance: String,
        new_alerts: Arc<Notify>,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<App> {
        let (watch, _) = compile_rules(&settings);
        let watch = Arc::new(watch?);
        let fetcher = Fetcher::new(fetch_settings(&settings)).context("HTTP client")?;
        let sender = Sender::new(
            crate::sinks::DEFAULT_TIMEOUT,
            &settings.fetch.user_agent,
            settings.fetch.private_networks,
        )
        .context("HTTP client for alerts")?;
        let dispatcher = Dispatcher {
            store: store.clone(),
            sender,
            sinks: configured_sinks(&settings)?,
            in_flight: settings
                .sinks
                .iter()
                .map(|(name, sink)| (name.clone(), sink.max_in_flight))
                .collect(),
            queries: settings
                .rules
                .iter()
                .map(|(name, rule)| (name.clone(), rule.query.clone()))
                .collect(),
            owner: instance.clone(),
            lease: settings.alerts.lease,
            give_up: settings.alerts.give_up,
            redactor: settings.fetch.redactor.clone(),
            digests: digest_schedules(&settings),
            quiet_hours: settings
                .sinks
                .iter()
                .filter_map(|(name, sink)| Some((name.clone(), sink.quiet_hours.clone()?)))
                .collect(),
            throttles: throttles(&settings),
        };
        Ok(App {
            settings,
            store,
            fetcher: Arc::new(fetcher),
            watch,
            dispatcher: Arc::new(dispatcher),
            new_alerts,
            instance,
            metrics,
        })
    }

    /// Brings the feeds table in step with the configuration and returns each
    /// configured feed with its stored state, in configuration order.
    pub async fn configured_feeds(&self) -> anyhow::Result<Vec<ConfiguredFeed>> {
        let specs: Vec<FeedSpec> = self
            .settings
            .feeds
            .iter()
            .map(|feed| FeedSpec {
                url: feed.url.to_string(),
                name: feed.name.clone(),
            })
            .collect();
        let records = self.store.sync_feeds(&specs).await?;
        let feeds = self
            .settings
            .feeds
            .iter()
            .zip(records)
            .map(|(settings, record)| ConfiguredFeed {
                interval: settings.effective_interval(&self.settings.fetch),
                settings: settings.clone(),
                record,
            })
            .collect();
        Ok(feeds)
    }

    /// What `feed:` and `tag:` see of every stored feed: its name and URL, and the
    /// tags the configuration gives it now.
    pub async fn feed_infos(&self) -> anyhow::Result<HashMap<i64, FeedInfo>> {
        let records = self.store.feeds().await?;
        Ok(search::feed_infos(records, &self.settings.feeds))
    }

    /// Polls each given feed once, all at once within the fetcher's concurrency
    /// limits; reports come back in the order given.
    pub async fn poll_once(&self, feeds: &[ConfiguredFeed]) -> Vec<PollReport> {
        self.read_mutes().await;
        // The fetcher holds fetches to `fetch.concurrency`; polls beyond it wait
        // there while those fetched are parsed and stored, so the network, the
        // cores and the database's writer are all kept busy. A document waiting
        // to be stored is held in memory: twice the fetches bounds them.
        let limit = self
            .settings
            .fetch
            .concurrency
            .max(1)
            .saturating_mul(POLLS_PER_FETCH);
        futures::stream::iter(feeds.iter().map(|feed| self.poll(feed)))
            .buffered(limit)
            .collect()
            .await
    }

    /// Reads the rule mutes again when those in hand are older than
    /// [`crate::ingest::Mutes::REFRESH`]. A database that cannot be read
    /// keeps the mutes in hand (the poll that follows reports the database).
    pub async fn refresh_mutes(&self) {
        if self.watch.mutes.stale() {
            self.read_mutes().await;
        }
    }

    /// Reads the rule mutes in force now.
    pub async fn read_mutes(&self) {
        match self.store.rule_mutes(Utc::now()).await {
            Ok(mutes) => self.watch.mutes.replace(mutes),
            Err(error) => tracing::warn!(%error, "cannot read rule mutes"),
        }
    }

    /// Polls one feed and wakes the dispatcher when alerts were recorded.
    pub async fn poll(&self, feed: &ConfiguredFeed) -> PollReport {
        if feed.record.status == FeedStatus::Disabled {
            return disabled_report(feed, self.redactor());
        }
        let report = ingest::poll_feed(
            &self.store,
            &self.fetcher,
            &self.watch,
            &feed.record,
            &feed.settings.tags,
            feed.interval,
        )
        .await;
        self.metrics.record_poll(&report);
        log_report(&report);
        if report.alerts > 0 {
            self.new_alerts.notify_one();
        }
        report
    }

    /// The configured rules' names.
    pub fn rule_names(&self) -> Arc<std::collections::BTreeSet<String>> {
        Arc::new(self.settings.rules.keys().cloned().collect())
    }

    /// The configured sinks' names and types, by name: what `herald sinks`
    /// and `/api/v1/sinks` list.
    pub fn sink_kinds(&self) -> Arc<Vec<(String, String)>> {
        Arc::new(
            self.settings
                .sinks
                .iter()
                .map(|(name, sink)| (name.clone(), sink.kind.type_name().to_owned()))
                .collect(),
        )
    }

    /// How URLs are shown: credentials hidden (`[fetch] secret_params`).
    pub fn redactor(&self) -> &Redactor {
        &self.settings.fetch.redactor
    }

    /// One attempt at each delivery due now.
    pub async fn dispatch_once(&self) -> Result<DispatchReport, StoreError> {
        let report = self.dispatcher.run_once(Utc::now()).await?;
        self.metrics.record_dispatch(&report);
        Ok(report)
    }

    /// Binds `[api] listen`, when the API is enabled, before any work starts: a
    /// port already taken is a startup error, not a silent lack of monitoring.
    /// `feeds` and `redactor` bring the API the configured feeds and the
    /// `[fetch] secret_params` of later generations. The limits
    /// are `[api]`'s, with fewer connections if the open-file limit calls for it.
    pub async fn bind_api(
        &self,
        feeds: watch::Receiver<Arc<Vec<FeedSettings>>>,
        redactor: watch::Receiver<Redactor>,
        rules: watch::Receiver<Arc<std::collections::BTreeSet<String>>>,
        sinks: watch::Receiver<Arc<Vec<(String, String)>>>,
        stories: watch::Receiver<crate::stories::StorySettings>,
    ) -> anyhow::Result<Option<(TcpListener, ApiState, ApiLimits)>> {
        let Some(settings) = &self.settings.api else {
            return Ok(None);
        };
        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("cannot listen on {} for the HTTP API", settings.listen))?;
        tracing::info!(address = %settings.listen, "HTTP API listening");
        let state = ApiState {
            store: self.store.clone(),
            metrics: Arc::clone(&self.metrics),
            token: settings.token.clone(),
            feeds,
            redactor,
            rules,
            sinks,
            stories,
        };
        let configured = settings.limits.max_connections;
        let max_connections = api_connection_limit(
            configured,
            self.settings.fetch.concurrency,
            open_file_limit(),
        );
        if max_connections < configured {
            tracing::warn!(
                max_connections = configured,
                serving = max_connections,
                "the open-file limit (ulimit -n, LimitNOFILE=) leaves room for fewer API \
                 connections than configured once feed fetches, the database and sinks \
                 have theirs; serving fewer"
            );
        }
        let limits = ApiLimits {
            max_connections,
            ..settings.limits.clone()
        };
        Ok(Some((listener, state, limits)))
    }
}

/// Descriptors kept for everything but the API and feed fetches: the database pool
/// (16), concurrent sends to sinks (16), and the listener, runtime, log and SQLite
/// files, DNS lookups.
const RESERVED_DESCRIPTORS: usize = 64;

/// `configured` API connections, or fewer when the process may not open enough
/// files for them and for `fetch_concurrency` fetches and [`RESERVED_DESCRIPTORS`]:
/// API clients must never take the descriptors feeds and deliveries need. At least 1.
fn api_connection_limit(
    configured: usize,
    fetch_concurrency: usize,
    open_files: Option<usize>,
) -> usize {
    let Some(open_files) = open_files else {
        return configured;
    };
    let others = fetch_concurrency.saturating_add(RESERVED_DESCRIPTORS);
    configured.min(open_files.saturating_sub(others)).max(1)
}

/// The soft RLIMIT_NOFILE, or `None` when unlimited or unknown.
fn open_file_limit() -> Option<usize> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes to `limit`, which lives across the call.
    let status = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    if status != 0 || limit.rlim_cur == libc::RLIM_INFINITY {
        return None;
    }
    usize::try_from(limit.rlim_cur).ok()
}

/// The fetcher's settings from the configuration's `[fetch]`.
pub fn fetch_settings(settings: &Settings) -> fetch::FetchSettings {
    let f = &settings.fetch;
    fetch::FetchSettings {
        timeout: f.timeout,
        max_body: f.max_body,
        max_redirects: f.max_redirects,
        concurrency: f.concurrency,
        per_host: f.per_host,
        user_agent: f.user_agent.clone(),
        private_networks: f.private_networks,
        redactor: f.redactor.clone(),
    }
}

fn disabled_report(feed: &ConfiguredFeed, redactor: &Redactor) -> PollReport {
    PollReport {
        url: redactor.url(&feed.record.url).into_owned(),
        name: feed
            .record
            .name
            .clone()
            .or_else(|| feed.record.title.clone()),
        status: PollStatus::Disabled,
        new: 0,
        merged: 0,
        reprints: 0,
        updated: 0,
        unchanged: 0,
        alerts: 0,
        error: feed
            .record
            .error
            .as_deref()
            .map(|error| redactor.text(error).into_owned()),
        moved_to: None,
        duration_ms: 0,
        elapsed: Duration::ZERO,
        inserted: Vec::new(),
    }
}

/// A report's URLs and error come redacted from `ingest`.
fn log_report(report: &PollReport) {
    match &report.error {
        Some(error) if report.status == PollStatus::Ok => tracing::warn!(
            feed = %report.url,
            new = report.new,
            updated = report.updated,
            %error,
            "fetched; some items not stored"
        ),
        Some(error) => tracing::warn!(feed = %report.url, %error, "fetch failed"),
        None => tracing::info!(
            feed = %report.url,
            status = ?report.status,
            new = report.new,
            updated = report.updated,
            "fetched"
        ),
    }
}

/// Where a rule's alerts go, each sink with the digest they wait for there.
fn alert_targets(settings: &Settings, rule: &RuleSettings) -> Arc<[AlertTarget]> {
    rule.sinks
        .iter()
        .map(|sink| AlertTarget {
            sink: sink.clone(),
            digest: rule
                .digest_for(settings.sinks.get(sink))
                .map(DigestSchedule::key),
        })
        .collect()
}

/// Every digest schedule the configuration names, by key: those of quiet
/// hours and throttles too.
fn digest_schedules(settings: &Settings) -> HashMap<String, DigestSchedule> {
    let of_sinks = settings
        .sinks
        .values()
        .filter_map(|sink| sink.digest.clone());
    let of_rules = settings
        .rules
        .values()
        .filter_map(|rule| rule.digest.clone());
    let of_quiet_hours = settings
        .sinks
        .values()
        .filter_map(|sink| Some(sink.quiet_hours.as_ref()?.digest()));
    let of_throttles = (!throttles(settings).is_empty()).then(outbox::throttle_digest);
    of_sinks
        .chain(of_rules)
        .chain(of_quiet_hours)
        .chain(of_throttles)
        .map(|schedule| (schedule.key(), schedule))
        .collect()
}

/// The configured `max_per_hour` limits.
fn throttles(settings: &Settings) -> Throttles {
    Throttles {
        sinks: settings
            .sinks
            .iter()
            .filter_map(|(name, sink)| Some((name.clone(), sink.max_per_hour?)))
            .collect(),
        rules: settings
            .rules
            .iter()
            .filter_map(|(name, rule)| Some((name.clone(), rule.max_per_hour?)))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_connections_leave_room_for_fetches_and_the_rest() {
        assert_eq!(api_connection_limit(256, 64, None), 256);
        assert_eq!(api_connection_limit(256, 64, Some(65_536)), 256);
        // 300 open files and the default 64 fetches at once.
        assert_eq!(api_connection_limit(256, 64, Some(300)), 300 - 64 - 64);
        assert_eq!(api_connection_limit(256, 64, Some(100)), 1);
    }
}
