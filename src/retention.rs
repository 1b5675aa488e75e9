//! `[retention]` applied: what `herald run` removes every few minutes, and
//! what `herald prune` removes (or, with `--dry-run`, counts) at once.
//!
//! The store removes rows in small batches with a pause between them (see
//! `store::retention`), so a first run over a year of articles takes a while
//! but never holds the database from polls and deliveries for long.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::app::App;
use crate::config::Settings;
use crate::domain::retention::{DEFAULT_BATCH as DEFAULT_PRUNE_BATCH, PrunePolicy, PruneReport};

/// How often `herald run` looks for rows to remove.
pub const PRUNE_EVERY: Duration = Duration::from_secs(5 * 60);

/// How long `herald run` waits after starting before its first look: the
/// first polls and deliveries go first.
pub const FIRST_PRUNE_AFTER: Duration = Duration::from_secs(30);

/// Pause between two batches in `herald run`: the writers waiting behind a
/// batch get the database for at least this long before the next one.
pub const DAEMON_PAUSE: Duration = Duration::from_millis(200);

/// Pause between two batches of `herald prune`, which may run beside
/// `herald run` on the same database.
pub const COMMAND_PAUSE: Duration = Duration::from_millis(20);

/// `now` less `kept`; `None` (nothing is old enough) when kept forever or
/// further back than time goes.
fn before(now: DateTime<Utc>, kept: Option<Duration>) -> Option<DateTime<Utc>> {
    let kept = chrono::Duration::from_std(kept?).ok()?;
    now.checked_sub_signed(kept)
}

/// What the settings keep, as of `now`.
pub fn policy(settings: &Settings, now: DateTime<Utc>, pause: Duration) -> PrunePolicy {
    // No article that may still alert is compared with a fingerprint older
    // than alerts.max_age + stories.window (see `PrunePolicy`).
    let compared = settings
        .alerts
        .max_age
        .saturating_add(settings.stories.window);
    PrunePolicy {
        articles_before: before(now, settings.retention.articles),
        deliveries_before: before(now, settings.retention.deliveries),
        fingerprints_before: before(now, Some(compared)),
        batch: DEFAULT_PRUNE_BATCH,
        pause,
    }
}

/// One pass with the app's settings.
pub async fn prune_once(app: &App, pause: Duration) -> anyhow::Result<PruneReport> {
    let policy = policy(&app.settings, Utc::now(), pause);
    Ok(app.store.prune(&policy).await?)
}

/// Prunes every [`PRUNE_EVERY`] with the latest App from `apps`, until
/// `shutdown` turns true (a batch in flight is rolled back).
pub async fn run(apps: watch::Receiver<Arc<App>>, mut shutdown: watch::Receiver<bool>) {
    let mut wait = FIRST_PRUNE_AFTER;
    loop {
        if *shutdown.borrow() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return,
        }
        wait = PRUNE_EVERY;
        let app = Arc::clone(&apps.borrow());
        let pass = tokio::select! {
            pass = prune_once(&app, DAEMON_PAUSE) => pass,
            _ = shutdown.changed() => return,
        };
        match pass {
            Ok(report) if report.total() > 0 => tracing::info!(
                articles = report.articles,
                article_sources = report.article_sources,
                stories = report.stories,
                alerts = report.alerts,
                deliveries = report.deliveries,
                delivery_attempts = report.delivery_attempts,
                story_fingerprints = report.story_fingerprints,
                articles_waiting = report.articles_waiting,
                "retention removed old rows"
            ),
            Ok(_) => {}
            Err(error) => tracing::warn!(
                error = format!("{error:#}"),
                "retention failed; trying again later"
            ),
        }
    }
}
