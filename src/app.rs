//! Builds herald from its settings (store, HTTP client) and runs its work: one poll
//! pass for `herald poll`, the long-running loop for `herald run`.
//!
//! The only place that turns `config` types into the stages' own settings.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use futures::StreamExt;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::{FeedSettings, Settings};
use crate::fetch::{self, Fetcher};
use crate::ingest::{self, PollReport, PollStatus, Watch};
use crate::rules::{Matcher, Rule, RuleQuery};
use crate::search::FeedInfo;
use crate::store::{FeedRecord, FeedSpec, FeedStatus, Store};

/// How long `herald run` waits for in-flight fetches after SIGTERM/SIGINT.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

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
}

/// Rules that do not parse, each as `file:line:col: rule NAME: message`.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.join("\n"))]
pub struct InvalidRules(pub Vec<String>);

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
            matcher: Matcher::compile(rules),
            max_age: settings.alerts.max_age,
        })
    } else {
        Err(InvalidRules(errors))
    };
    (watch, warnings)
}

impl App {
    /// Connects to the database and applies pending migrations.
    pub async fn open(settings: Settings) -> anyhow::Result<App> {
        let (watch, _) = compile_rules(&settings);
        let watch = Arc::new(watch?);
        let store = Store::connect(settings.database.url.expose())
            .await
            .with_context(|| format!("database {}", settings.database.url))?;
        store
            .migrate()
            .await
            .with_context(|| format!("database {}", settings.database.url))?;
        let fetcher = Fetcher::new(fetch_settings(&settings)).context("HTTP client")?;
        Ok(App {
            settings,
            store,
            fetcher: Arc::new(fetcher),
            watch,
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
        let ids = self.store.sync_feeds(&specs).await?;
        let records = self.store.feeds().await?;
        let mut feeds = Vec::with_capacity(ids.len());
        for (settings, id) in self.settings.feeds.iter().zip(ids) {
            let record = records
                .iter()
                .find(|r| r.id == id)
                .cloned()
                .with_context(|| format!("feed {} vanished from the database", settings.url))?;
            feeds.push(ConfiguredFeed {
                interval: settings.effective_interval(&self.settings.fetch),
                settings: settings.clone(),
                record,
            });
        }
        Ok(feeds)
    }

    /// What `feed:` and `tag:` see of every stored feed: its name and URL, and the
    /// tags the configuration gives it now.
    pub async fn feed_infos(&self) -> anyhow::Result<HashMap<i64, FeedInfo>> {
        let tags: HashMap<String, &Vec<String>> = self
            .settings
            .feeds
            .iter()
            .map(|feed| (feed.url.to_string(), &feed.tags))
            .collect();
        let records = self.store.feeds().await?;
        Ok(records
            .into_iter()
            .map(|record| {
                let name = record.name.as_deref().or(record.title.as_deref());
                let label = match name {
                    Some(name) => format!("{name} {}", record.url),
                    None => record.url.clone(),
                };
                let tags = tags
                    .get(&record.url)
                    .map(|t| (*t).clone())
                    .unwrap_or_default();
                (record.id, FeedInfo { label, tags })
            })
            .collect())
    }

    /// Polls each given feed once, all at once within the fetcher's concurrency
    /// limits; reports come back in the order given.
    pub async fn poll_once(&self, feeds: &[ConfiguredFeed]) -> Vec<PollReport> {
        let limit = self.settings.fetch.concurrency.max(1);
        futures::stream::iter(feeds.iter().map(|feed| self.poll(feed)))
            .buffered(limit)
            .collect()
            .await
    }

    async fn poll(&self, feed: &ConfiguredFeed) -> PollReport {
        if feed.record.status == FeedStatus::Disabled {
            return disabled_report(feed);
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
        log_report(&report);
        report
    }

    /// Polls every configured feed at its interval until `shutdown` turns true; then
    /// lets fetches in flight finish (up to [`SHUTDOWN_GRACE`]) and returns.
    pub async fn run(self: Arc<Self>, shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
        let feeds = self.configured_feeds().await?;
        tracing::info!(feeds = feeds.len(), "scheduling feeds");
        let mut tasks = JoinSet::new();
        for feed in feeds {
            let app = Arc::clone(&self);
            let shutdown = shutdown.clone();
            tasks.spawn(async move { app.poll_feed_forever(feed, shutdown).await });
        }
        let mut shutdown_signal = shutdown.clone();
        let _ = shutdown_signal.wait_for(|stop| *stop).await;
        tracing::info!("shutting down: waiting for fetches in flight");
        let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                grace = ?SHUTDOWN_GRACE,
                "fetches still running after the grace period; abandoning them"
            );
            tasks.abort_all();
        }
        Ok(())
    }

    async fn poll_feed_forever(
        &self,
        mut feed: ConfiguredFeed,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            if feed.record.status == FeedStatus::Disabled {
                tracing::warn!(feed = %feed.settings.url, "feed disabled (410 Gone); not polling it");
                return;
            }
            let now = Utc::now();
            let wait = feed
                .record
                .next_fetch_at
                .and_then(|due| (due - now).to_std().ok())
                .unwrap_or(Duration::ZERO);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => return,
            }
            self.poll(&feed).await;
            match self.store.feed(feed.record.id).await {
                Ok(Some(record)) => feed.record = record,
                Ok(None) => return,
                Err(error) => {
                    tracing::warn!(feed = %feed.settings.url, %error, "cannot read feed state");
                    feed.record.next_fetch_at = Some(Utc::now() + feed.interval);
                }
            }
        }
    }
}

fn fetch_settings(settings: &Settings) -> fetch::FetchSettings {
    let f = &settings.fetch;
    fetch::FetchSettings {
        timeout: f.timeout,
        max_body: f.max_body,
        max_redirects: f.max_redirects,
        concurrency: f.concurrency,
        per_host: f.per_host,
        user_agent: f.user_agent.clone(),
    }
}

fn disabled_report(feed: &ConfiguredFeed) -> PollReport {
    PollReport {
        url: feed.record.url.clone(),
        name: feed
            .record
            .name
            .clone()
            .or_else(|| feed.record.title.clone()),
        status: PollStatus::Disabled,
        new: 0,
        merged: 0,
        updated: 0,
        unchanged: 0,
        alerts: 0,
        error: feed.record.error.clone(),
        moved_to: None,
        duration_ms: 0,
        inserted: Vec::new(),
    }
}

fn log_report(report: &PollReport) {
    match &report.error {
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
