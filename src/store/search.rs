//! What both backends share of the search index: turning the backlog's
//! articles into their index words, off the async runtime's threads.

use std::future::Future;

use futures::StreamExt as _;
use futures::stream::BoxStream;

use super::StoreError;
use crate::domain::article::{ArticleCursor, ArticleText};
use crate::rules::index_words;

/// An article of the backlog: id, title, summary text, content text.
pub(super) struct BacklogText {
    id: i64,
    title: String,
    summary: Option<String>,
    content: Option<String>,
}

impl BacklogText {
    pub(super) fn from_row(
        (id, title, summary, content): (i64, String, Option<String>, Option<String>),
    ) -> BacklogText {
        BacklogText {
            id,
            title,
            summary,
            content,
        }
    }
}

/// `(id, words)` of the articles that can be indexed, and the ids of those
/// with too many words to index.
pub(super) async fn indexed_words(
    texts: Vec<BacklogText>,
) -> Result<(Vec<(i64, String)>, Vec<i64>), StoreError> {
    // A few hundred articles are tens of milliseconds of tokenising: enough to
    // stall every other task on this runtime thread.
    tokio::task::spawn_blocking(move || {
        let mut indexed = Vec::with_capacity(texts.len());
        let mut oversized = Vec::new();
        for text in texts {
            let words = index_words(
                &text.title,
                text.summary.as_deref().unwrap_or_default(),
                text.content.as_deref().unwrap_or_default(),
            );
            match words {
                Some(words) => indexed.push((text.id, words)),
                None => oversized.push(text.id),
            }
        }
        (indexed, oversized)
    })
    .await
    // The blocking task ended without a result (the runtime is shutting
    // down): this batch is not indexed and stays in the backlog.
    .map_err(|_| StoreError::Abandoned)
}

/// Rows of a search's first page; each next page is four times larger, up to
/// [`LAST_PAGE_ROWS`].
const FIRST_PAGE_ROWS: i64 = 32;
const LAST_PAGE_ROWS: i64 = 2048;

/// A search read as a stream of pages, each a statement of its own that
/// starts after the last article of the one before: a reader that stops early
/// (the API's page of 20) leaves the rest unread, and no statement holds a
/// snapshot for a whole scan. `read_page(after, rows)` returns up to `rows`
/// articles in search order after `after`.
pub(super) fn paged<F, Fut>(
    after: Option<ArticleCursor>,
    read_page: F,
) -> BoxStream<'static, Result<ArticleText, StoreError>>
where
    F: Fn(Option<ArticleCursor>, i64) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Vec<ArticleText>, StoreError>> + Send + 'static,
{
    let start = Some((after, FIRST_PAGE_ROWS));
    futures::stream::unfold((start, read_page), |(next, read_page)| async move {
        let (after, rows) = next?;
        match read_page(after, rows).await {
            Ok(page) => {
                let full = i64::try_from(page.len()).is_ok_and(|n| n == rows);
                let last = page.last().map(ArticleCursor::after).or(after);
                let next = full.then_some((last, (rows * 4).min(LAST_PAGE_ROWS)));
                let items = futures::stream::iter(page.into_iter().map(Ok));
                Some((items.boxed(), (next, read_page)))
            }
            Err(error) => {
                let failed = futures::stream::iter([Err(error)]);
                Some((failed.boxed(), (None, read_page)))
            }
        }
    })
    .flatten()
    .boxed()
}

/// A search through the index: `keys` lists every candidate's id in search
/// order (ids and times only, no text), then `read_text` reads the articles a
/// chunk of ids at a time, so a reader that stops early reads little text and
/// the candidate set is looked up once.
pub(super) fn candidates_then_text<K, F, Fut>(
    keys: K,
    read_text: F,
) -> BoxStream<'static, Result<ArticleText, StoreError>>
where
    K: Future<Output = Result<Vec<i64>, StoreError>> + Send + 'static,
    F: Fn(Vec<i64>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Vec<ArticleText>, StoreError>> + Send + 'static,
{
    futures::stream::once(async move {
        let ids = match keys.await {
            Ok(ids) => ids,
            Err(error) => return futures::stream::iter([Err(error)]).boxed(),
        };
        let mut chunks = Vec::new();
        let (mut start, mut rows) = (0, usize::try_from(FIRST_PAGE_ROWS).unwrap_or(32));
        while start < ids.len() {
            let end = (start + rows).min(ids.len());
            chunks.push(ids[start..end].to_vec());
            start = end;
            rows = (rows * 4).min(usize::try_from(LAST_PAGE_ROWS).unwrap_or(2048));
        }
        let read_text = std::sync::Arc::new(read_text);
        futures::stream::iter(chunks)
            .then(move |chunk| {
                let read_text = std::sync::Arc::clone(&read_text);
                async move {
                    let order = chunk.clone();
                    let mut texts: std::collections::HashMap<i64, ArticleText> = read_text(chunk)
                        .await?
                        .into_iter()
                        .map(|text| (text.id, text))
                        .collect();
                    // Removed since its id was read: left out, as a later
                    // search would leave it out.
                    let ordered: Vec<Result<ArticleText, StoreError>> = order
                        .iter()
                        .filter_map(|id| texts.remove(id))
                        .map(Ok)
                        .collect();
                    Ok::<_, StoreError>(ordered)
                }
            })
            .flat_map(|chunk| match chunk {
                Ok(texts) => futures::stream::iter(texts).boxed(),
                Err(error) => futures::stream::iter([Err(error)]).boxed(),
            })
            .boxed()
    })
    .flatten()
    .boxed()
}
