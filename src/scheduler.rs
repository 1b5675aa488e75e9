//! `herald run`'s feed loop: which configured feeds are due, claimed with leases in
//! the database so that several instances on one PostgreSQL fetch each due feed
//! once, and polled within the configured concurrency.
//!
//! The due time lives on the feed row (`next_fetch_at`, written by the poll that
//! fetched it, with back-off, `Retry-After` and jitter applied by
//! [`crate::domain::schedule`]), so a restart or another instance continues the
//! schedule where it stands. A claim lasts for one fetch only: recording the fetch
//! releases it, and a claim whose instance died lapses after [`feed_lease`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::app::{App, ConfiguredFeed};

/// Longest sleep between looks at the feeds table: other instances, and feeds
/// whose claims lapsed, change what is due without telling this one.
pub const IDLE_CHECK: Duration = Duration::from_secs(5);

/// Shortest pause between two looks at the feeds table.
const MIN_RECHECK: Duration = Duration::from_millis(50);

/// How long a claimed feed stays with this instance: one whole fetch (bounded by
/// the fetch timeout), storing its items, and a margin.
pub fn feed_lease(fetch_timeout: Duration) -> Duration {
    fetch_timeout.saturating_mul(2) + Duration::from_secs(10)
}

/// The feeds of one configuration generation, by feed id.
struct Generation {
    app: Arc<App>,
    feeds: HashMap<i64, ConfiguredFeed>,
}

impl Generation {
    async fn load(app: Arc<App>) -> anyhow::Result<Generation> {
        let feeds: HashMap<i64, ConfiguredFeed> = app
            .configured_feeds()
            .await?
            .into_iter()
            .map(|feed| (feed.record.id, feed))
            .collect();
        Ok(Generation { app, feeds })
    }
}

/// Polls due feeds until `shutdown` turns true, always with the latest App from
/// `apps`; then waits for polls in flight (the caller bounds how long).
pub async fn run(mut apps: watch::Receiver<Arc<App>>, mut shutdown: watch::Receiver<bool>) {
    let mut polls: JoinSet<()> = JoinSet::new();
    let mut generation: Option<Generation> = None;
    loop {
        if *shutdown.borrow() {
            break;
        }
        let app = Arc::clone(&apps.borrow_and_update());
        let current = match generation.take() {
            Some(loaded) if Arc::ptr_eq(&loaded.app, &app) => Some(loaded),
            _ => match Generation::load(Arc::clone(&app)).await {
                Ok(loaded) => {
                    tracing::info!(feeds = loaded.feeds.len(), "scheduling feeds");
                    Some(loaded)
                }
                Err(error) => {
                    tracing::warn!(error = format!("{error:#}"), "cannot read the feeds");
                    None
                }
            },
        };
        let wait = match &current {
            Some(loaded) => claim_and_poll(loaded, &mut polls).await,
            None => IDLE_CHECK,
        };
        generation = current;
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            Some(_) = polls.join_next(), if !polls.is_empty() => {}
            _ = app_changed(&mut apps) => {}
            _ = shutdown.changed() => {}
        }
    }
    while polls.join_next().await.is_some() {}
}

/// Claims as many due feeds as there are free fetch slots and starts polling them;
/// returns how long to sleep before looking again.
async fn claim_and_poll(loaded: &Generation, polls: &mut JoinSet<()>) -> Duration {
    let app = &loaded.app;
    let concurrency = app.settings.fetch.concurrency;
    let free = concurrency.saturating_sub(polls.len());
    // Claim in batches: one claim query per finished poll would cost more than
    // the polls themselves when thousands of feeds answer 304 in a few seconds.
    if free == 0 || (free < (concurrency / 4).max(1) && !polls.is_empty()) {
        return IDLE_CHECK;
    }
    app.refresh_mutes().await;
    let now = Utc::now();
    let lease = chrono::Duration::from_std(feed_lease(app.settings.fetch.timeout))
        .unwrap_or(chrono::TimeDelta::MAX);
    let lease_until = now.checked_add_signed(lease).unwrap_or(now);
    let limit = i64::try_from(free).unwrap_or(i64::MAX);
    let claimed = match app
        .store
        .claim_due_feeds(&app.instance, now, lease_until, limit)
        .await
    {
        Ok(claimed) => claimed,
        Err(error) => {
            tracing::warn!(%error, "cannot claim due feeds");
            return IDLE_CHECK;
        }
    };
    let filled = claimed.len() == free;
    for record in claimed {
        let Some(configured) = loaded.feeds.get(&record.id) else {
            // Activated by another instance's newer configuration: leave the claim
            // to lapse, so an instance that knows the feed's settings takes it.
            tracing::debug!(
                feed = %app.redactor().show(&record.url),
                "claimed a feed this configuration lacks"
            );
            continue;
        };
        let feed = ConfiguredFeed {
            settings: configured.settings.clone(),
            interval: configured.interval,
            record,
        };
        let app = Arc::clone(app);
        polls.spawn(async move {
            app.poll(&feed).await;
        });
    }
    if filled {
        // More may be due: look again as soon as a slot frees.
        return IDLE_CHECK;
    }
    match app.store.next_feed_due_at().await {
        // A feed due but not claimed is being claimed by another instance right
        // now: look again soon, not in a busy loop.
        Ok(Some(due)) => (due - Utc::now())
            .to_std()
            .unwrap_or(Duration::ZERO)
            .clamp(MIN_RECHECK, IDLE_CHECK),
        Ok(None) => IDLE_CHECK,
        Err(error) => {
            tracing::warn!(%error, "cannot read when feeds are due");
            IDLE_CHECK
        }
    }
}

/// Resolves when a new App is published; never, once nobody can publish one.
pub(crate) async fn app_changed(apps: &mut watch::Receiver<Arc<App>>) {
    if apps.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
}
