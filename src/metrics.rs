//! herald's Prometheus metrics: counters and the fetch latency histogram, fed from
//! poll and dispatch reports, and gauges of database state read at scrape time.
//!
//! Knows nothing of HTTP: the API serves what [`Metrics::scrape`] returns. Every
//! metric and its labels are listed in `docs/metrics.md`.

use std::fmt;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::domain::delivery::DeliveryStatus;
use crate::domain::feed::FeedStatus;
use crate::ingest::{PollReport, PollStatus};
use crate::outbox::DispatchReport;
use crate::store::{Store, StoreError};

/// The media type of what [`Metrics::scrape`] returns (OpenMetrics 1.0 text, which
/// Prometheus negotiates and parses).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds of the fetch latency buckets, in seconds: from a local 304 to the
/// default 30 s timeout.
const FETCH_SECONDS_BUCKETS: [f64; 12] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0,
];

const PREFIX: &str = "herald";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChangeLabel {
    change: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SinkLabel {
    sink: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: &'static str,
}

/// Why a scrape could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot encode metrics")]
    Encode(#[from] fmt::Error),
}

/// What the database holds now, as the scrape-time gauges show it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DatabaseState {
    pub feeds: Vec<(FeedStatus, i64)>,
    pub deliveries: Vec<(DeliveryStatus, i64)>,
    /// Sinks marked broken, by name.
    pub broken_sinks: Vec<String>,
}

impl DatabaseState {
    pub async fn read(store: &Store) -> Result<DatabaseState, StoreError> {
        Ok(DatabaseState {
            feeds: store.feeds_by_status().await?,
            deliveries: store.deliveries_by_status().await?,
            broken_sinks: store
                .broken_sinks()
                .await?
                .into_iter()
                .map(|broken| broken.sink)
                .collect(),
        })
    }
}

/// The process's metrics since it started. Shared (`Arc`) by the workers that record
/// and the API that serves them; recording is lock-free.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    fetches: Family<OutcomeLabel, Counter>,
    fetch_seconds: Histogram,
    articles: Family<ChangeLabel, Counter>,
    rule_hits: Counter,
    deliveries: Family<OutcomeLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix(PREFIX);
        let fetches = Family::<OutcomeLabel, Counter>::default();
        let fetch_seconds = Histogram::new(FETCH_SECONDS_BUCKETS);
        let articles = Family::<ChangeLabel, Counter>::default();
        let rule_hits = Counter::default();
        let deliveries = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "fetches",
            "Feed polls, by outcome (disabled: the feed answered 410 Gone)",
            fetches.clone(),
        );
        registry.register_with_unit(
            "fetch_duration",
            "Time to fetch, parse and store one feed",
            Unit::Seconds,
            fetch_seconds.clone(),
        );
        registry.register(
            "articles_stored",
            "Articles written: new ones, new sources of stored ones (merged), edits (updated); reprint: new ones that joined a stored story",
            articles.clone(),
        );
        registry.register(
            "rule_hits",
            "Rule hits recorded as alerts, including those held back from delivery",
            rule_hits.clone(),
        );
        registry.register(
            "deliveries",
            "Delivery attempts, by outcome (failed: to be retried; deferred: waits for a digest)",
            deliveries.clone(),
        );
        // Every outcome is shown from the start, at zero: a series that appears only
        // on its first event hides that event from rate() and from alerts on it.
        for outcome in [
            PollStatus::Ok,
            PollStatus::NotModified,
            PollStatus::Error,
            PollStatus::Disabled,
        ] {
            fetches.get_or_create_owned(&OutcomeLabel {
                outcome: outcome.as_str(),
            });
        }
        for change in ["new", "merged", "updated", "reprint"] {
            articles.get_or_create_owned(&ChangeLabel { change });
        }
        for outcome in ["delivered", "failed", "dead", "deferred"] {
            deliveries.get_or_create_owned(&OutcomeLabel { outcome });
        }
        Metrics {
            registry,
            fetches,
            fetch_seconds,
            articles,
            rule_hits,
            deliveries,
        }
    }

    /// Counts one poll of one feed.
    pub fn record_poll(&self, report: &PollReport) {
        self.fetches
            .get_or_create(&OutcomeLabel {
                outcome: report.status.as_str(),
            })
            .inc();
        self.fetch_seconds.observe(report.elapsed.as_secs_f64());
        for (change, count) in [
            ("new", report.new),
            ("merged", report.merged),
            ("updated", report.updated),
            ("reprint", report.reprints),
        ] {
            self.articles
                .get_or_create(&ChangeLabel { change })
                .inc_by(as_u64(count));
        }
        self.rule_hits.inc_by(as_u64(report.alerts));
    }

    /// Counts one dispatch pass's attempts.
    pub fn record_dispatch(&self, report: &DispatchReport) {
        for (outcome, count) in [
            ("delivered", report.delivered),
            ("failed", report.failed),
            ("dead", report.dead),
            ("deferred", report.deferred),
        ] {
            self.deliveries
                .get_or_create(&OutcomeLabel { outcome })
                .inc_by(as_u64(count));
        }
    }

    /// The exposition: this process's counters, then the database's state now.
    pub async fn scrape(&self, store: &Store) -> Result<String, ScrapeError> {
        let state = DatabaseState::read(store).await?;
        Ok(self.encode(&state)?)
    }

    /// The exposition text for `state` (see [`CONTENT_TYPE`]).
    pub fn encode(&self, state: &DatabaseState) -> Result<String, fmt::Error> {
        let mut text = String::new();
        encode_registry(&mut text, &self.registry)?;
        // Built afresh for each scrape, so two scrapes at once never mix their readings.
        let mut gauges = Registry::with_prefix(PREFIX);
        let feeds = Family::<StatusLabel, Gauge>::default();
        for status in FeedStatus::ALL {
            let count = count_of(&state.feeds, status);
            feeds
                .get_or_create(&StatusLabel {
                    status: status.as_str(),
                })
                .set(count);
        }
        gauges.register("feeds", "Feeds in the database, by status", feeds);
        let outbox = Family::<StatusLabel, Gauge>::default();
        for status in DeliveryStatus::ALL {
            let count = count_of(&state.deliveries, status);
            outbox
                .get_or_create(&StatusLabel {
                    status: status.as_str(),
                })
                .set(count);
        }
        gauges.register(
            "outbox_deliveries",
            "Deliveries in the alert outbox, by status",
            outbox,
        );
        let broken = Family::<SinkLabel, Gauge>::default();
        for sink in &state.broken_sinks {
            broken
                .get_or_create(&SinkLabel { sink: sink.clone() })
                .set(1);
        }
        gauges.register(
            "sink_broken",
            "1 for each sink whose endpoint said it is gone: its alerts wait (herald sinks)",
            broken,
        );
        encode_registry(&mut text, &gauges)?;
        encode_eof(&mut text)?;
        Ok(text)
    }
}

fn count_of<S: PartialEq>(counts: &[(S, i64)], status: S) -> i64 {
    counts
        .iter()
        .filter(|(s, _)| *s == status)
        .map(|(_, count)| *count)
        .sum()
}

fn as_u64(count: usize) -> u64 {
    u64::try_from(count).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .and_then(|value| value.parse().ok())
    }

    fn poll(status: PollStatus, new: usize, alerts: usize, elapsed: Duration) -> PollReport {
        PollReport {
            url: "http://feed.example/rss".to_owned(),
            name: None,
            status,
            new,
            merged: 0,
            reprints: new.min(1),
            updated: 1,
            unchanged: 0,
            alerts,
            error: None,
            moved_to: None,
            duration_ms: 0,
            elapsed,
            inserted: Vec::new(),
        }
    }

    #[test]
    fn every_series_is_present_at_zero_before_anything_happens() {
        let text = Metrics::new().encode(&DatabaseState::default()).unwrap();
        for series in [
            r#"herald_fetches_total{outcome="ok"}"#,
            r#"herald_fetches_total{outcome="not_modified"}"#,
            r#"herald_fetches_total{outcome="error"}"#,
            r#"herald_fetches_total{outcome="disabled"}"#,
            "herald_fetch_duration_seconds_count",
            r#"herald_articles_stored_total{change="new"}"#,
            r#"herald_articles_stored_total{change="reprint"}"#,
            "herald_rule_hits_total",
            r#"herald_deliveries_total{outcome="dead"}"#,
            r#"herald_deliveries_total{outcome="deferred"}"#,
            r#"herald_feeds{status="never"}"#,
            r#"herald_outbox_deliveries{status="pending"}"#,
        ] {
            assert_eq!(sample(&text, series), Some(0.0), "{series} in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn polls_and_dispatches_move_their_counters() {
        let metrics = Metrics::new();
        metrics.record_poll(&poll(PollStatus::Ok, 3, 2, Duration::from_millis(40)));
        metrics.record_poll(&poll(PollStatus::Error, 0, 0, Duration::from_secs(3)));
        metrics.record_dispatch(&DispatchReport {
            delivered: 2,
            failed: 1,
            dead: 0,
            deferred: 3,
        });
        let state = DatabaseState {
            feeds: vec![(FeedStatus::Ok, 4), (FeedStatus::Error, 1)],
            deliveries: vec![(DeliveryStatus::Pending, 7)],
            broken_sinks: vec!["intel-slack".to_owned()],
        };
        let text = metrics.encode(&state).unwrap();
        let expect = [
            (r#"herald_fetches_total{outcome="ok"}"#, 1.0),
            (r#"herald_fetches_total{outcome="error"}"#, 1.0),
            (r#"herald_articles_stored_total{change="new"}"#, 3.0),
            (r#"herald_articles_stored_total{change="updated"}"#, 2.0),
            (r#"herald_articles_stored_total{change="reprint"}"#, 1.0),
            ("herald_rule_hits_total", 2.0),
            (r#"herald_deliveries_total{outcome="delivered"}"#, 2.0),
            (r#"herald_deliveries_total{outcome="failed"}"#, 1.0),
            (r#"herald_deliveries_total{outcome="deferred"}"#, 3.0),
            ("herald_fetch_duration_seconds_count", 2.0),
            (r#"herald_fetch_duration_seconds_bucket{le="0.05"}"#, 1.0),
            (r#"herald_fetch_duration_seconds_bucket{le="5.0"}"#, 2.0),
            (r#"herald_feeds{status="ok"}"#, 4.0),
            (r#"herald_feeds{status="error"}"#, 1.0),
            (r#"herald_outbox_deliveries{status="pending"}"#, 7.0),
            (r#"herald_outbox_deliveries{status="dead"}"#, 0.0),
            (r#"herald_sink_broken{sink="intel-slack"}"#, 1.0),
        ];
        for (series, value) in expect {
            assert_eq!(sample(&text, series), Some(value), "{series} in\n{text}");
        }
    }
}
