//! Group commit: writers queue their batches, and whichever holds the story
//! index writes every queued batch in one transaction.
//!
//! Writes of one process take turns anyway (the story index is one), so a
//! writer that waits for its turn hands its batch to the one ahead of it
//! instead of waiting for its own transaction. Under load one commit then
//! covers the items of many feeds; alone, a batch is written at once. A group
//! that fails is written again batch by batch, so a batch that cannot be
//! stored fails only its own feed.

use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use tokio::sync::oneshot;

use super::{Incoming, SaveSummary, StoreError};
use crate::stories::StorySettings;

/// Items per transaction beyond which a group is not grown: a transaction's
/// work stays bounded (and its story lock short) however many feeds wait.
pub(super) const MAX_GROUP_ITEMS: usize = 5_000;

/// One feed's batch, waiting to be written.
pub(super) struct WriteJob {
    pub feed_id: i64,
    pub articles: Vec<Incoming>,
    pub settings: StorySettings,
    pub now: DateTime<Utc>,
    reply: oneshot::Sender<Result<SaveSummary, StoreError>>,
}

impl WriteJob {
    pub fn answer(self, result: Result<SaveSummary, StoreError>) {
        // The writer may have given up waiting (its poll was cancelled): then
        // nobody needs the answer.
        let _ = self.reply.send(result);
    }
}

/// Batches waiting for the writer.
#[derive(Clone, Default)]
pub(super) struct WriteQueue {
    jobs: Arc<Mutex<Vec<WriteJob>>>,
}

impl std::fmt::Debug for WriteQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteQueue").finish_non_exhaustive()
    }
}

impl WriteQueue {
    /// Queues a batch; the receiver gets its outcome once some writer has
    /// written it.
    pub fn push(
        &self,
        feed_id: i64,
        articles: &[Incoming],
        settings: &StorySettings,
        now: DateTime<Utc>,
    ) -> oneshot::Receiver<Result<SaveSummary, StoreError>> {
        let (reply, answer) = oneshot::channel();
        let job = WriteJob {
            feed_id,
            articles: articles.to_vec(),
            settings: *settings,
            now,
            reply,
        };
        self.jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(job);
        answer
    }

    /// The next group to write: queued batches in order, up to
    /// [`MAX_GROUP_ITEMS`] items (always at least one batch).
    pub fn take_group(&self) -> Vec<WriteJob> {
        let mut jobs = self.jobs.lock().unwrap_or_else(PoisonError::into_inner);
        let mut items = 0;
        let mut count = 0;
        for job in jobs.iter() {
            if count > 0 && items + job.articles.len() > MAX_GROUP_ITEMS {
                break;
            }
            items += job.articles.len();
            count += 1;
        }
        jobs.drain(..count).collect()
    }
}

/// Waits for a queued batch's outcome.
pub(super) async fn outcome(
    answer: oneshot::Receiver<Result<SaveSummary, StoreError>>,
) -> Result<SaveSummary, StoreError> {
    answer.await.unwrap_or(Err(StoreError::Abandoned))
}
