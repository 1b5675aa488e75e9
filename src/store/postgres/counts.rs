//! Counts read on hot paths (`/metrics`), kept by the triggers of migration 0010
//! rather than recounted: their cost does not grow with the tables.

use super::PgStore;
use crate::store::{DeliveryStatus, FeedStatus, StoreError};

impl PgStore {
    /// Feeds per status: the sum of the counter shards, exact.
    pub async fn feeds_by_status(&self) -> Result<Vec<(FeedStatus, i64)>, StoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT status, sum(feeds)::bigint FROM feed_status_counts
             GROUP BY status HAVING sum(feeds) <> 0",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(status, count)| Ok((FeedStatus::parse(&status)?, count)))
            .collect()
    }

    /// Deliveries per status: open ones counted in the `deliveries_status` index
    /// (they are the queue, normally short), finished ones from the counter shards.
    pub async fn deliveries_by_status(&self) -> Result<Vec<(DeliveryStatus, i64)>, StoreError> {
        // One statement, one snapshot: a delivery finishing meanwhile is counted once.
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT status, count(*) FROM deliveries
             WHERE status IN ('pending', 'failed') GROUP BY status
             UNION ALL
             SELECT status, sum(deliveries)::bigint FROM delivery_totals
             GROUP BY status HAVING sum(deliveries) <> 0",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(status, count)| Ok((DeliveryStatus::from_column(&status)?, count)))
            .collect()
    }
}
