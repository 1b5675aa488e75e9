//! A feed document reduced to what herald keeps, independent of the parser.
//!
//! `parse` produces these from bytes; `normalize` turns them into articles.
//! Neither stage knows the other: this module is their shared vocabulary.

use chrono::{DateTime, Utc};

/// A parsed feed document.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParsedFeed {
    /// The feed's own title, plain text.
    pub title: Option<String>,
    /// The site the feed belongs to (RSS `<link>`, Atom `rel=alternate`, JSON `home_page_url`).
    pub site_url: Option<String>,
    /// Language of the feed as declared (`en`, `fr-FR`).
    pub language: Option<String>,
    /// Entries in document order.
    pub entries: Vec<ParsedEntry>,
}

/// One item of a feed, as the document states it (nothing resolved or cleaned yet).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParsedEntry {
    /// RSS `guid`, Atom `id`, JSON Feed `id`; `None` when absent or empty.
    pub id: Option<String>,
    /// The entry's link to the article (may be relative to the feed URL).
    pub link: Option<String>,
    pub title: Option<Text>,
    /// RSS `description`, Atom `summary`, JSON `summary`.
    pub summary: Option<Text>,
    /// RSS `content:encoded`, Atom `content`, JSON `content_html`/`content_text`.
    pub content: Option<Text>,
    /// Author names (or e-mail addresses when no name is given), document order.
    pub authors: Vec<String>,
    /// `None` when absent or unparseable.
    pub published: Option<DateTime<Utc>>,
    pub updated: Option<DateTime<Utc>>,
    /// Language of the entry when declared, else the feed's.
    pub language: Option<String>,
}

/// A piece of feed text and whether it is markup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    pub body: String,
    /// True for HTML/XHTML (and for RSS, where text is HTML by convention); false for plain text.
    pub is_html: bool,
}
