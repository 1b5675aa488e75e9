//! Counts read on hot paths (`/metrics`), kept by the triggers of migration 0010
//! rather than recounted: their cost does not grow with the tables.

use super::SqliteStore;
use async_trait::async_trait;

use crate::domain::delivery::DeliveryStatus;
use crate::domain::feed::FeedStatus;
use crate::store::rows::{status_counts, stored_delivery_status, stored_feed_status};
use crate::store::{CountStore, StoreError};

#[async_trait]
impl CountStore for SqliteStore {
    /// Feeds per status, exact.
    async fn feeds_by_status(&self) -> Result<Vec<(FeedStatus, i64)>, StoreError> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, feeds FROM feed_status_counts WHERE feeds <> 0")
                .fetch_all(&self.pool)
                .await?;
        status_counts(rows, stored_feed_status)
    }

    /// Deliveries per status: open ones counted in the `deliveries_status` index
    /// (they are the queue, normally short), finished ones from their counters.
    async fn deliveries_by_status(&self) -> Result<Vec<(DeliveryStatus, i64)>, StoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT status, count(*) FROM deliveries
             WHERE status IN ('pending', 'failed') GROUP BY status
             UNION ALL
             SELECT status, deliveries FROM delivery_totals WHERE deliveries <> 0",
        )
        .fetch_all(&self.pool)
        .await?;
        status_counts(rows, stored_delivery_status)
    }
}
