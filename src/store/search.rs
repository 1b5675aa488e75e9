//! What both backends share of the search index: turning the backlog's
//! articles into their index words, off the async runtime's threads.

use super::StoreError;
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
