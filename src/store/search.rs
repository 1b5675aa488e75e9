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
    .map_err(|error| StoreError::Corrupt(format!("indexing articles: {error}")))
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
