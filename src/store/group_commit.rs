//! Group commit: writers queue their batches, and whichever holds the story
//! index writes every queued batch in one transaction.
//!
//! Writes of one process take turns anyway (the story index is one), so a
//! writer that waits for its turn hands its batch to the one ahead of it
//! instead of waiting for its own transaction. Under load one commit then
//! covers the items of many feeds; alone, a batch is written at once. A group
//! that fails is written again batch by batch, and a batch the database
//! refuses item by item: a bad item costs only itself.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use tokio::sync::oneshot;

use super::story_index::StoryIndex;
use super::{Incoming, StoreError};
use crate::domain::article::{RejectedItem, SaveSummary};
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
    /// [`MAX_GROUP_ITEMS`] items (always at least one batch), one per feed: a
    /// feed's second batch (two pollers of one feed) waits for the next group,
    /// so it sees what the first stored.
    pub fn take_group(&self) -> Vec<WriteJob> {
        let mut jobs = self.jobs.lock().unwrap_or_else(PoisonError::into_inner);
        let mut items = 0;
        let mut feeds = std::collections::HashSet::new();
        let mut group = Vec::new();
        let mut waiting = Vec::new();
        for job in jobs.drain(..) {
            let fits = group.is_empty() || items + job.articles.len() <= MAX_GROUP_ITEMS;
            // Once one batch waits, all after it wait too: batches are written
            // in the order they came.
            if waiting.is_empty() && fits && feeds.insert(job.feed_id) {
                items += job.articles.len();
                group.push(job);
            } else {
                waiting.push(job);
            }
        }
        *jobs = waiting;
        group
    }
}

/// A backend's write of a group: the given batches in one transaction.
pub(super) trait GroupWriter {
    fn write_jobs<'a>(
        &'a self,
        index: &'a mut StoryIndex,
        jobs: &'a [WriteJob],
    ) -> impl Future<Output = Result<Vec<SaveSummary>, StoreError>> + Send + 'a;
}

impl WriteQueue {
    /// Stores one feed's batch: queues it, then, holding the story index,
    /// writes every queued group through `writer`, and returns this batch's
    /// outcome, whoever wrote it.
    pub async fn save(
        &self,
        index: &tokio::sync::Mutex<StoryIndex>,
        (feed_id, articles, settings, now): (i64, &[Incoming], &StorySettings, DateTime<Utc>),
        writer: &impl GroupWriter,
    ) -> Result<SaveSummary, StoreError> {
        let answer = self.push(feed_id, articles, settings, now);
        {
            let mut index = index.lock().await;
            loop {
                let group = self.take_group();
                if group.is_empty() {
                    break;
                }
                write_group(&mut index, group, writer).await;
            }
        }
        answer.await.unwrap_or(Err(StoreError::Abandoned))
    }
}

/// Writes queued batches in one transaction, or one by one if that fails.
async fn write_group(index: &mut StoryIndex, group: Vec<WriteJob>, writer: &impl GroupWriter) {
    if group.len() > 1 {
        match writer.write_jobs(index, &group).await {
            Ok(summaries) => {
                for (job, summary) in group.into_iter().zip(summaries) {
                    job.answer(Ok(summary));
                }
                return;
            }
            Err(error) => {
                tracing::debug!(%error, "group write failed; writing its batches one by one");
            }
        }
    }
    for job in group {
        let result = write_batch(index, &job, writer).await;
        job.answer(result);
    }
}

/// One feed's batch in one transaction; if the database refuses a row of it,
/// item by item, so that one bad item costs only itself.
async fn write_batch(
    index: &mut StoryIndex,
    job: &WriteJob,
    writer: &impl GroupWriter,
) -> Result<SaveSummary, StoreError> {
    let error = match write_one(index, job, writer).await {
        Err(error) if error.is_refused_data() && job.articles.len() > 1 => error,
        other => return other,
    };
    tracing::debug!(%error, feed_id = job.feed_id, "batch refused; writing its items one by one");
    let mut summary = SaveSummary::default();
    for article in &job.articles {
        let (reply, _) = oneshot::channel();
        let single = WriteJob {
            feed_id: job.feed_id,
            articles: vec![article.clone()],
            settings: job.settings,
            now: job.now,
            reply,
        };
        match write_one(index, &single, writer).await {
            Ok(stored) => summary.absorb(stored),
            Err(error) if error.is_refused_data() => summary.rejected.push(RejectedItem {
                item_key: article.article.item_key.clone(),
                error: error.to_string(),
            }),
            Err(error) => return Err(error),
        }
    }
    Ok(summary)
}

async fn write_one(
    index: &mut StoryIndex,
    job: &WriteJob,
    writer: &impl GroupWriter,
) -> Result<SaveSummary, StoreError> {
    writer
        .write_jobs(index, std::slice::from_ref(job))
        .await
        .map(|mut summaries| summaries.pop().unwrap_or_default())
}

/// Small writes of one kind (a feed's 304 recorded on its row) made one
/// statement for all that are waiting: the first to come writes every queued
/// one, the others wait for its answer. A batch that fails is written again
/// item by item, so each gets its own outcome.
/// An item waiting in a [`Batcher`], with where its outcome goes.
type Waiting<T> = (T, oneshot::Sender<Result<(), StoreError>>);

pub(super) struct Batcher<T> {
    queue: Arc<Mutex<Vec<Waiting<T>>>>,
    turn: Arc<tokio::sync::Mutex<()>>,
}

impl<T> Clone for Batcher<T> {
    fn clone(&self) -> Self {
        Batcher {
            queue: Arc::clone(&self.queue),
            turn: Arc::clone(&self.turn),
        }
    }
}

impl<T> Default for Batcher<T> {
    fn default() -> Self {
        Batcher {
            queue: Arc::default(),
            turn: Arc::default(),
        }
    }
}

impl<T> std::fmt::Debug for Batcher<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher").finish_non_exhaustive()
    }
}

/// Items per batched statement.
const MAX_BATCH: usize = 1_000;

impl<T: Clone> Batcher<T> {
    pub async fn submit<F, Fut>(&self, item: T, write: F) -> Result<(), StoreError>
    where
        F: Fn(Vec<T>) -> Fut,
        Fut: Future<Output = Result<(), StoreError>>,
    {
        let (reply, answer) = oneshot::channel();
        self.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((item, reply));
        {
            let _turn = self.turn.lock().await;
            loop {
                let batch: Vec<_> = {
                    let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
                    let count = queue.len().min(MAX_BATCH);
                    queue.drain(..count).collect()
                };
                if batch.is_empty() {
                    break;
                }
                let items: Vec<T> = batch.iter().map(|(item, _)| item.clone()).collect();
                match write(items).await {
                    Ok(()) => {
                        for (_, reply) in batch {
                            let _ = reply.send(Ok(()));
                        }
                    }
                    Err(error) if batch.len() == 1 => {
                        if let Some((_, reply)) = batch.into_iter().next() {
                            let _ = reply.send(Err(error));
                        }
                    }
                    Err(_) => {
                        for (item, reply) in batch {
                            let _ = reply.send(write(vec![item]).await);
                        }
                    }
                }
            }
        }
        answer.await.unwrap_or(Err(StoreError::Abandoned))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Writes that fail whenever the batch holds item 13, counting statements.
    async fn write(batch: Vec<u32>, statements: &AtomicUsize) -> Result<(), StoreError> {
        statements.fetch_add(1, Ordering::SeqCst);
        tokio::task::yield_now().await;
        if batch.contains(&13) {
            return Err(StoreError::Corrupt("item 13".into()));
        }
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn waiting_items_share_a_write_and_a_bad_one_fails_alone() {
        let batcher: Batcher<u32> = Batcher::default();
        let statements = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..40u32)
            .map(|item| {
                let (batcher, statements) = (batcher.clone(), Arc::clone(&statements));
                tokio::spawn(async move {
                    let outcome = batcher
                        .submit(item, |batch| write(batch, &statements))
                        .await;
                    (item, outcome.is_ok())
                })
            })
            .collect();
        for task in tasks {
            let (item, ok) = task.await.unwrap_or((u32::MAX, false));
            assert_eq!(ok, item != 13, "item {item}");
        }
        // Forty items, each written once on its own after a failed batch at
        // most: fewer statements than items plus batches.
        assert!(statements.load(Ordering::SeqCst) <= 40 + 40);
    }

    fn items(count: usize) -> Vec<Incoming> {
        let article = crate::domain::article::NewArticle {
            item_key: "k".into(),
            canonical_url: None,
            url: None,
            title: "t".into(),
            summary_html: None,
            summary_text: None,
            content_html: None,
            content_text: None,
            author: None,
            language: None,
            published_at: Utc::now(),
            updated_at: None,
            fingerprint: "f".into(),
        };
        vec![Incoming::from(article); count]
    }

    #[test]
    fn a_group_stops_growing_at_the_item_bound_but_takes_at_least_one_batch() {
        let queue = WriteQueue::default();
        let (settings, now) = (StorySettings::default(), Utc::now());
        let _answers = [
            queue.push(1, &items(MAX_GROUP_ITEMS + 1), &settings, now),
            queue.push(2, &items(MAX_GROUP_ITEMS / 2), &settings, now),
            queue.push(3, &items(MAX_GROUP_ITEMS / 2), &settings, now),
            queue.push(4, &items(1), &settings, now),
        ];
        let feeds = |group: Vec<WriteJob>| group.iter().map(|j| j.feed_id).collect::<Vec<_>>();
        assert_eq!(feeds(queue.take_group()), [1]);
        assert_eq!(feeds(queue.take_group()), [2, 3]);
        assert_eq!(feeds(queue.take_group()), [4]);
        assert!(queue.take_group().is_empty());
    }

    #[test]
    fn a_feeds_second_batch_waits_for_the_next_group() {
        let queue = WriteQueue::default();
        let (settings, now) = (StorySettings::default(), Utc::now());
        let _answers = [
            queue.push(1, &items(1), &settings, now),
            queue.push(2, &items(1), &settings, now),
            queue.push(1, &items(1), &settings, now),
            queue.push(3, &items(1), &settings, now),
        ];
        let feeds = |group: Vec<WriteJob>| group.iter().map(|j| j.feed_id).collect::<Vec<_>>();
        assert_eq!(feeds(queue.take_group()), [1, 2]);
        assert_eq!(feeds(queue.take_group()), [1, 3]);
    }
}
