//! Entries → articles: identities, canonical URLs, sanitised HTML and plain text.
//!
//! Owns herald's identity rules for items and articles. Knows nothing of HTTP, feed formats or storage.

use std::cell::RefCell;
use std::fmt::Write as _;

use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};
use url::Url;

use crate::domain::article::NewArticle;
use crate::domain::entry::{ParsedEntry, Text};
use crate::domain::text::{has_stripped, stripped};

/// Query parameters that track a click rather than name a page, matched
/// without regard to case. Every `utm_*` parameter is dropped as well.
pub const TRACKING_PARAMS: &[&str] = &[
    "fbclid",
    "gclid",
    "dclid",
    "msclkid",
    "mc_cid",
    "mc_eid",
    "ref",
    "ref_src",
    "_ga",
    "igshid",
    "yclid",
    "cmpid",
    "ocid",
    "smid",
    "sr_share",
    "at_medium",
    "at_campaign",
];

/// Longest stored title, in characters. The database is shared by every feed: one
/// hostile or broken feed must not bloat it, nor every alert that quotes it.
pub const MAX_TITLE_CHARS: usize = 1_000;

/// Longest stored summary or content, HTML or text, in bytes (same reason as
/// [`MAX_TITLE_CHARS`]; 100 KB holds any real article).
pub const MAX_TEXT_BYTES: usize = 100 * 1024;

/// Longest identity (`item_key`, canonical URL) stored as such, in bytes: both are
/// indexed, and PostgreSQL refuses B-tree entries above ~2.7 KB. A longer guid is
/// replaced by its hash; a longer URL gets no canonical form (the item key still
/// identifies the item).
pub const MAX_KEY_BYTES: usize = 2_000;

/// Longest link kept, in bytes; beyond it the link is dropped as garbage.
pub const MAX_URL_BYTES: usize = 8 * 1024;

/// Longest language tag kept, in bytes; a longer one is garbage and dropped. Real tags
/// (`en`, `zh-Hant-TW`) are far shorter, and a feed's language is copied into each of
/// its articles, so one oversized `<language>` would be stored once per item.
pub const MAX_LANGUAGE_BYTES: usize = 64;

/// How far past `now` a publication time may lie before it is treated as a clock or
/// time-zone error: such items would otherwise sit at the top of every listing.
pub const MAX_FUTURE_SKEW: Duration = Duration::hours(1);

/// How many characters of the summary stand in for a missing title.
const TITLE_FROM_SUMMARY_CHARS: usize = 100;

// ---------------------------------------------------------------------------------------
// URLs

/// The canonical form of a link, resolved against `base` when relative.
///
/// `None` for anything but an http(s) URL.
pub fn canonical_url(link: &str, base: Option<&Url>) -> Option<Url> {
    let mut url = absolute_url(link, base)?;
    // The url crate already lower-cases scheme and host, drops default ports and
    // normalises percent-encoding.
    url.set_fragment(None);
    let query = url.query().map(without_tracking_params);
    if let Some(query) = query {
        url.set_query((!query.is_empty()).then_some(query.as_str()));
    }
    Some(url)
}

/// The link as an absolute http(s) URL.
fn absolute_url(link: &str, base: Option<&Url>) -> Option<Url> {
    let link = link.trim();
    if link.is_empty() {
        return None;
    }
    let url = Url::options().base_url(base).parse(link).ok()?;
    matches!(url.scheme(), "http" | "https").then_some(url)
}

/// The query without tracking parameters, the others in their order and encoding.
fn without_tracking_params(query: &str) -> String {
    query
        .split('&')
        .filter(|pair| {
            !pair.is_empty() && !is_tracking_param(pair.split('=').next().unwrap_or(pair))
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn is_tracking_param(name: &str) -> bool {
    let is_utm = name
        .get(..4)
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case("utm_"));
    is_utm
        || TRACKING_PARAMS
            .iter()
            .any(|param| param.eq_ignore_ascii_case(name))
}

// ---------------------------------------------------------------------------------------
// Identities

/// The item's identity within its feed: guid/id, else link, else a hash of
/// title and publication date.
pub fn item_key(entry: &ParsedEntry) -> String {
    if let Some(id) = entry
        .id
        .as_deref()
        .map(str::trim)
        .filter(|id| !id.is_empty())
    {
        return bounded_key(id);
    }
    if let Some(link) = entry
        .link
        .as_deref()
        .map(str::trim)
        .filter(|link| !link.is_empty())
    {
        // Canonical when absolute, so a tracking parameter that changes on every poll
        // does not make the same item new again.
        return match canonical_url(link, None) {
            Some(url) => bounded_key(url.as_str()),
            None => bounded_key(link),
        };
    }
    let mut hasher = Sha256::new();
    hash_field(
        &mut hasher,
        entry.title.as_ref().map(|title| title.body.as_str()),
    );
    hash_field(
        &mut hasher,
        entry.published.map(|at| at.to_rfc3339()).as_deref(),
    );
    format!("hash:{}", hex(&hasher.finalize()))
}

fn bounded_key(key: &str) -> String {
    if key.len() <= MAX_KEY_BYTES {
        key.to_string()
    } else {
        format!("hash:{}", hex(&Sha256::digest(key.as_bytes())))
    }
}

/// A hash of everything the feed says about the item: a change means it was edited.
pub fn fingerprint(entry: &ParsedEntry) -> String {
    let mut hasher = Sha256::new();
    hash_field(
        &mut hasher,
        entry.title.as_ref().map(|text| text.body.as_str()),
    );
    hash_field(&mut hasher, entry.link.as_deref());
    hash_field(
        &mut hasher,
        entry.summary.as_ref().map(|text| text.body.as_str()),
    );
    hash_field(
        &mut hasher,
        entry.content.as_ref().map(|text| text.body.as_str()),
    );
    for author in &entry.authors {
        hash_field(&mut hasher, Some(author));
    }
    hash_field(
        &mut hasher,
        entry.published.map(|at| at.to_rfc3339()).as_deref(),
    );
    hash_field(
        &mut hasher,
        entry.updated.map(|at| at.to_rfc3339()).as_deref(),
    );
    hex(&hasher.finalize())
}

/// Length-prefixed, so that moving text between fields changes the hash.
fn hash_field(hasher: &mut Sha256, field: Option<&str>) {
    match field {
        Some(text) => {
            hasher.update((text.len() as u64 + 1).to_le_bytes());
            hasher.update(text.as_bytes());
        }
        None => hasher.update(0u64.to_le_bytes()),
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

// ---------------------------------------------------------------------------------------
// HTML

/// Elements whose boundaries separate words when rendered.
const BLOCK_ELEMENTS: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "br",
    "caption",
    "dd",
    "div",
    "dl",
    "dt",
    "figcaption",
    "figure",
    "footer",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "img",
    "li",
    "main",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "table",
    "td",
    "th",
    "tr",
    "ul",
];

/// Elements whose content is not text a reader sees.
const HIDDEN_ELEMENTS: &[&str] = &[
    "script", "style", "template", "noscript", "iframe", "object",
];

/// Plain text of an HTML fragment, on one line: tags and comments removed, block
/// boundaries turned into spaces, `script`/`style` content dropped, entities decoded,
/// whitespace collapsed.
///
/// A single linear scan rather than an HTML parser: this runs on every article for
/// matching, must tolerate any broken markup, and a tree builder (html5ever, under
/// ammonia) costs as much as sanitising. A `<` that does not start a tag is text.
pub fn html_to_text(html: &str) -> String {
    let mut raw = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(at) = rest.find('<') {
        raw.push_str(&rest[..at]);
        let markup = &rest[at..];
        rest = match skip_markup(markup, &mut raw) {
            Some(after) => after,
            None => {
                raw.push('<');
                &markup[1..]
            }
        };
    }
    raw.push_str(rest);
    collapse_whitespace(&htmlize::unescape(raw))
}

/// Consumes the markup at the start of `markup` (which starts with `<`), writing any
/// text it carries (CDATA, a word break) into `out`. `None` when it is not markup.
fn skip_markup<'a>(markup: &'a str, out: &mut String) -> Option<&'a str> {
    if let Some(comment) = markup.strip_prefix("<!--") {
        return Some(after(comment, "-->"));
    }
    if let Some(cdata) = markup.strip_prefix("<![CDATA[") {
        let end = cdata.find("]]>").unwrap_or(cdata.len());
        // CDATA holds literal text: protect its `&` from entity decoding.
        out.push_str(&cdata[..end].replace('&', "&amp;"));
        return Some(after(cdata, "]]>"));
    }
    let body = &markup[1..];
    let closing = body.starts_with('/');
    let name_start = usize::from(closing);
    let first = body[name_start..].chars().next()?;
    if !(first.is_ascii_alphabetic() || (!closing && matches!(first, '!' | '?'))) {
        return None;
    }
    // Like a browser, a tag never closed swallows the rest of the fragment.
    let Some(end) = tag_end(body) else {
        return Some("");
    };
    let name: String = body[name_start..end]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let rest = &body[end + 1..];
    if BLOCK_ELEMENTS.contains(&name.as_str()) {
        out.push(' ');
    }
    if !closing && HIDDEN_ELEMENTS.contains(&name.as_str()) {
        return Some(skip_hidden_content(rest, &name));
    }
    Some(rest)
}

/// The index of the `>` closing a tag, skipping quoted attribute values.
fn tag_end(tag: &str) -> Option<usize> {
    let mut quote = None;
    for (index, byte) in tag.bytes().enumerate() {
        match (quote, byte) {
            (None, b'"' | b'\'') => quote = Some(byte),
            (Some(open), _) if open == byte => quote = None,
            (None, b'>') => return Some(index),
            _ => {}
        }
    }
    None
}

fn skip_hidden_content<'a>(text: &'a str, name: &str) -> &'a str {
    let mut from = 0;
    while let Some(found) = text[from..].find("</") {
        let at = from + found;
        let candidate = text.as_bytes().get(at + 2..at + 2 + name.len());
        if candidate.is_some_and(|candidate| candidate.eq_ignore_ascii_case(name.as_bytes())) {
            return after(&text[at..], ">");
        }
        from = at + 2;
    }
    ""
}

/// The text after the first `marker`, or nothing when the marker never comes.
fn after<'a>(text: &'a str, marker: &str) -> &'a str {
    text.find(marker)
        .map_or("", |at| &text[at + marker.len()..])
}

/// Plain text on one line; also where entity-decoded text (`&#0;`, `&#27;`,
/// `&#x202e;`) loses the control and hidden format characters the parser could
/// not see (see [`crate::domain::text::is_stripped`]). They go before the
/// words are split: one standing alone would otherwise leave an empty word behind,
/// and with it a leading or doubled space.
fn collapse_whitespace(text: &str) -> String {
    let cleaned;
    let text = if has_stripped(text) {
        cleaned = stripped(text.to_owned());
        &cleaned
    } else {
        text
    };
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Safe HTML for display: no scripts, styles, frames or event handlers; links open
/// without `window.opener` or referrer; relative URLs dropped (there is no base here).
pub fn sanitize_html(html: &str) -> String {
    sanitize_html_with_base(html, None)
}

/// As [`sanitize_html`], resolving relative URLs against `base` instead of dropping them.
fn sanitize_html_with_base(html: &str, base: Option<&Url>) -> String {
    thread_local! {
        // Building ammonia's allow-lists costs about as much as cleaning a short
        // summary, so each thread keeps one sanitiser and only swaps the base URL.
        static SANITIZER: RefCell<ammonia::Builder<'static>> =
            RefCell::new(ammonia::Builder::default());
    }
    SANITIZER.with_borrow_mut(|sanitizer| {
        // ammonia's defaults already strip script/style/iframe and `on*` attributes and
        // set rel="noopener noreferrer"; only relative URLs need a decision.
        sanitizer.url_relative(match base {
            Some(base) => ammonia::UrlRelative::RewriteWithBase(base.clone()),
            None => ammonia::UrlRelative::Deny,
        });
        // The sanitiser decodes character references, `&#27;` into ESC and
        // `&#x202e;` into a right-to-left override.
        stripped(sanitizer.clean(html).to_string())
    })
}

// ---------------------------------------------------------------------------------------
// Articles

/// Builds the article herald stores from a parsed entry of the feed at `feed_url`;
/// `now` stands in for a missing or implausible publication time.
pub fn to_article(entry: &ParsedEntry, feed_url: &Url, now: DateTime<Utc>) -> NewArticle {
    let url = article_url(entry, feed_url);
    let canonical = url
        .as_ref()
        .and_then(|url| canonical_url(url.as_str(), None))
        .map(String::from)
        .filter(|url| url.len() <= MAX_KEY_BYTES);
    let base = url.as_ref().unwrap_or(feed_url);
    let (summary_html, summary_text) = html_and_text(entry.summary.as_ref(), base);
    let (content_html, content_text) = html_and_text(entry.content.as_ref(), base);
    let title = article_title(entry, summary_text.as_deref().or(content_text.as_deref()));
    NewArticle {
        item_key: item_key(entry),
        canonical_url: canonical,
        url: url.map(String::from),
        title,
        summary_html,
        summary_text,
        content_html,
        content_text,
        author: article_author(&entry.authors),
        language: entry
            .language
            .as_deref()
            .map(|language| language.trim().to_lowercase())
            .filter(|language| !language.is_empty() && language.len() <= MAX_LANGUAGE_BYTES),
        published_at: publication_time(entry, now),
        updated_at: entry.updated,
        fingerprint: fingerprint(entry),
    }
}

/// The link made absolute; an RSS guid that is a permalink stands in for a missing link.
fn article_url(entry: &ParsedEntry, feed_url: &Url) -> Option<Url> {
    let from_link = entry
        .link
        .as_deref()
        .and_then(|link| absolute_url(link, Some(feed_url)));
    let url = from_link.or_else(|| {
        let id = entry.id.as_deref()?.trim();
        // Only an id that is already an absolute URL: a relative one is just a name.
        absolute_url(id, None)
    })?;
    (url.as_str().len() <= MAX_URL_BYTES).then_some(url)
}

fn article_title(entry: &ParsedEntry, fallback_text: Option<&str>) -> String {
    let title = entry.title.as_ref().map(plain_text).unwrap_or_default();
    if !title.is_empty() {
        // A cut right after a space would leave it trailing.
        return truncate_chars(&title, MAX_TITLE_CHARS)
            .trim_end()
            .to_string();
    }
    fallback_text.map(title_from_text).unwrap_or_default()
}

/// The first words of a text, cut at a word boundary, standing in for a title.
fn title_from_text(text: &str) -> String {
    let head = truncate_chars(text, TITLE_FROM_SUMMARY_CHARS);
    if head.len() == text.len() {
        return head.to_string();
    }
    let cut = head.rfind(' ').filter(|&at| at > 0).unwrap_or(head.len());
    format!("{}…", head[..cut].trim_end())
}

/// The stored (sanitised HTML, plain text) pair of a summary or content; `None` fields
/// when the text is empty once cleaned.
fn html_and_text(text: Option<&Text>, base: &Url) -> (Option<String>, Option<String>) {
    let Some(text) = text else {
        return (None, None);
    };
    let source = truncate_bytes(&text.body, MAX_TEXT_BYTES);
    let html = if text.is_html {
        sanitize_bounded(source, base)
    } else {
        escape_bounded(source)
    };
    let plain = plain_text(text);
    let plain = truncate_bytes(&plain, MAX_TEXT_BYTES);
    let html = Some(html).filter(|html| !html.trim().is_empty());
    let plain = Some(plain.to_string()).filter(|plain| !plain.is_empty());
    (html, plain)
}

/// Plain text as HTML, within [`MAX_TEXT_BYTES`]: escaping makes text longer (`<` is
/// four bytes as `&lt;`), so the escaped form is cut, never inside an entity.
fn escape_bounded(text: &str) -> String {
    let cleaned;
    let text = if has_stripped(text) {
        cleaned = stripped(text.to_owned());
        &cleaned
    } else {
        text
    };
    let escaped = htmlize::escape_text(text);
    if escaped.len() <= MAX_TEXT_BYTES {
        return escaped.into_owned();
    }
    let kept = truncate_bytes(&escaped, MAX_TEXT_BYTES);
    // Every `&` in escaped text starts an entity; one without its `;` was cut.
    let end = match kept.rfind('&') {
        Some(at) if !kept[at..].contains(';') => at,
        _ => kept.len(),
    };
    kept[..end].to_owned()
}

/// Sanitises, keeping the output within [`MAX_TEXT_BYTES`]: sanitised HTML can grow
/// (added `rel` attributes, escaping), and cutting it afterwards could split a tag, so
/// the input is shortened instead.
fn sanitize_bounded(html: &str, base: &Url) -> String {
    let mut source = html;
    loop {
        let clean = sanitize_html_with_base(source, Some(base));
        if clean.len() <= MAX_TEXT_BYTES || source.is_empty() {
            return clean;
        }
        let shorter = source.len() * MAX_TEXT_BYTES / clean.len() * 9 / 10;
        source = truncate_bytes(source, shorter);
    }
}

fn plain_text(text: &Text) -> String {
    if text.is_html {
        html_to_text(&text.body)
    } else {
        collapse_whitespace(&text.body)
    }
}

fn article_author(authors: &[String]) -> Option<String> {
    let names: Vec<&str> = authors
        .iter()
        .map(|name| name.trim())
        .filter(|name| !name.is_empty())
        .collect();
    let joined = names.join(", ");
    (!joined.is_empty()).then(|| truncate_chars(&joined, MAX_TITLE_CHARS).to_string())
}

/// `published`, else `updated`, else `now`; a time implausibly far in the future is
/// `now` (see [`MAX_FUTURE_SKEW`]).
fn publication_time(entry: &ParsedEntry, now: DateTime<Utc>) -> DateTime<Utc> {
    let stated = entry.published.or(entry.updated).unwrap_or(now);
    if stated > now + MAX_FUTURE_SKEW {
        now
    } else {
        stated
    }
}

fn truncate_chars(text: &str, max_chars: usize) -> &str {
    match text.char_indices().nth(max_chars) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

fn truncate_bytes(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_url() -> Url {
        Url::parse("https://news.example.com/world/rss.xml").unwrap()
    }

    fn now() -> DateTime<Utc> {
        at("2025-06-03T12:00:00Z")
    }

    fn at(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339).unwrap().to_utc()
    }

    fn html(body: &str) -> Option<Text> {
        Some(Text {
            body: body.into(),
            is_html: true,
        })
    }

    fn plain(body: &str) -> Option<Text> {
        Some(Text {
            body: body.into(),
            is_html: false,
        })
    }

    #[test]
    fn canonical_url_table() {
        fn check(link: &str, expected: Option<&str>) {
            let got = canonical_url(link, Some(&feed_url()));
            assert_eq!(got.as_ref().map(Url::as_str), expected, "link {link:?}");
        }
        check("https://example.com/a", Some("https://example.com/a"));
        check("  https://example.com/a \n", Some("https://example.com/a"));
        check("HTTPS://Example.COM/Path", Some("https://example.com/Path"));
        check("http://example.com:80/a", Some("http://example.com/a"));
        check("https://example.com:443/a", Some("https://example.com/a"));
        check(
            "https://example.com:8443/a",
            Some("https://example.com:8443/a"),
        );
        check(
            "https://example.com/a#comments",
            Some("https://example.com/a"),
        );
        check(
            "https://example.com/a?utm_source=rss&utm_medium=feed",
            Some("https://example.com/a"),
        );
        check(
            "https://example.com/a?UTM_Campaign=x&id=7",
            Some("https://example.com/a?id=7"),
        );
        check(
            "https://example.com/a?b=2&fbclid=x&a=1",
            Some("https://example.com/a?b=2&a=1"),
        );
        check(
            "https://example.com/a?gclid=1&dclid=2&msclkid=3&mc_cid=4&mc_eid=5&ref=6&ref_src=7",
            Some("https://example.com/a"),
        );
        check(
            "https://example.com/a?_ga=1&igshid=2&yclid=3&cmpid=4&ocid=5&smid=6&sr_share=7&at_medium=8&at_campaign=9",
            Some("https://example.com/a"),
        );
        check(
            "https://example.com/a?referrer=x&refs=y",
            Some("https://example.com/a?referrer=x&refs=y"),
        );
        check(
            "https://example.com/a?q=a%20b&x=%2F",
            Some("https://example.com/a?q=a%20b&x=%2F"),
        );
        check(
            "https://example.com/a?&&id=1&",
            Some("https://example.com/a?id=1"),
        );
        check("https://example.com/a?", Some("https://example.com/a"));
        check("https://example.com/a b", Some("https://example.com/a%20b"));
        check(
            "/2025/06/story",
            Some("https://news.example.com/2025/06/story"),
        );
        check(
            "story.html",
            Some("https://news.example.com/world/story.html"),
        );
        check("//cdn.example.org/x", Some("https://cdn.example.org/x"));
        check(
            "https://bücher.example/",
            Some("https://xn--bcher-kva.example/"),
        );
        check("mailto:desk@example.com", None);
        check("javascript:alert(1)", None);
        check("ftp://example.com/file", None);
        check("", None);
        check("   ", None);
        check("http://[::1", None);
    }

    #[test]
    fn relative_link_without_base_has_no_canonical_form() {
        assert_eq!(canonical_url("/story", None), None);
    }

    #[test]
    fn item_key_table() {
        fn check(entry: ParsedEntry, expected: &str) {
            assert_eq!(item_key(&entry), expected, "{entry:?}");
        }
        check(
            ParsedEntry {
                id: Some("  guid-1 ".into()),
                link: Some("https://e.com/a".into()),
                ..Default::default()
            },
            "guid-1",
        );
        check(
            ParsedEntry {
                id: Some("   ".into()),
                link: Some("https://E.com/a?utm_source=x#top".into()),
                ..Default::default()
            },
            "https://e.com/a",
        );
        check(
            ParsedEntry {
                link: Some(" /relative/a ".into()),
                ..Default::default()
            },
            "/relative/a",
        );
        let long_guid = "g".repeat(MAX_KEY_BYTES + 1);
        let hashed = item_key(&ParsedEntry {
            id: Some(long_guid),
            ..Default::default()
        });
        assert!(
            hashed.starts_with("hash:") && hashed.len() == 5 + 64,
            "{hashed}"
        );
    }

    #[test]
    fn item_key_without_id_or_link_hashes_title_and_date() {
        let entry = ParsedEntry {
            title: html("Quake"),
            published: Some(at("2025-06-01T00:00:00Z")),
            ..Default::default()
        };
        let key = item_key(&entry);
        assert!(key.starts_with("hash:") && key.len() == 5 + 64, "{key}");
        assert_eq!(key, item_key(&entry.clone()), "stable");
        let later = ParsedEntry {
            published: Some(at("2025-06-02T00:00:00Z")),
            ..entry.clone()
        };
        assert_ne!(key, item_key(&later));
        let retitled = ParsedEntry {
            title: html("Quake!"),
            ..entry
        };
        assert_ne!(key, item_key(&retitled));
    }

    #[test]
    fn fingerprint_changes_with_every_field() {
        let base = ParsedEntry {
            id: Some("1".into()),
            link: Some("https://e.com/a".into()),
            title: html("T"),
            summary: html("S"),
            content: html("C"),
            authors: vec!["A".into()],
            published: Some(at("2025-06-01T00:00:00Z")),
            updated: Some(at("2025-06-02T00:00:00Z")),
            language: Some("en".into()),
        };
        let original = fingerprint(&base);
        assert_eq!(original.len(), 64);
        assert_eq!(original, fingerprint(&base.clone()));
        let edits = [
            ParsedEntry {
                title: html("T2"),
                ..base.clone()
            },
            ParsedEntry {
                link: Some("https://e.com/b".into()),
                ..base.clone()
            },
            ParsedEntry {
                summary: html("S2"),
                ..base.clone()
            },
            ParsedEntry {
                content: html("C2"),
                ..base.clone()
            },
            ParsedEntry {
                content: None,
                ..base.clone()
            },
            ParsedEntry {
                authors: vec!["B".into()],
                ..base.clone()
            },
            ParsedEntry {
                published: None,
                ..base.clone()
            },
            ParsedEntry {
                updated: Some(at("2025-06-03T00:00:00Z")),
                ..base.clone()
            },
            // Text moved from summary to content is an edit, not the same item.
            ParsedEntry {
                summary: None,
                content: html("SC"),
                ..base.clone()
            },
        ];
        for edited in edits {
            assert_ne!(fingerprint(&edited), original, "{edited:?}");
        }
    }

    #[test]
    fn html_to_text_table() {
        fn check(input: &str, expected: &str) {
            assert_eq!(html_to_text(input), expected, "input {input:?}");
        }
        check("", "");
        check("plain words", "plain words");
        check("<p>a</p><p>b</p>", "a b");
        check("line<br>break<br/>again", "line break again");
        check("<div><ul><li>one</li><li>two</li></ul></div>", "one two");
        check("<b>bold</b>face and <i>ital</i>ic", "boldface and italic");
        check(
            "<p>Nested <span><a href=\"/x\">link <em>deep</em></a></span>.</p>",
            "Nested link deep.",
        );
        check("AT&amp;T &#8217;s &nbsp;rise&hellip;", "AT&T ’s rise…");
        check("&lt;b&gt;not a tag&lt;/b&gt;", "<b>not a tag</b>");
        check("a &amp;amp; b", "a &amp; b");
        check("fish &chips & peas", "fish &chips & peas");
        check("5 < 6 and 7 > 3", "5 < 6 and 7 > 3");
        check("a<3 b", "a<3 b");
        check("x <script>var a = '<p>';</script>y", "x y");
        check("x<style type=\"text/css\">p { color: red }</style>y", "xy");
        check("x<SCRIPT>alert(1)</SCRIPT >y", "xy");
        check("a<!-- hidden <p>comment</p> -->b", "ab");
        check("a<!-- never closed", "a");
        check("<![CDATA[<raw> & text]]> tail", "<raw> & text tail");
        check("<p>unclosed <b>bold", "unclosed bold");
        check("broken <a href=\"x>y\">link</a>", "broken link");
        check("broken <a href='x", "broken");
        check("<img src=x alt=photo>caption", "caption");
        check("  lots \n\n of \t  space  ", "lots of space");
        check("<p>São Paulo — ünïcödé</p>", "São Paulo — ünïcödé");
        check("tail <", "tail <");
        check("<", "<");
        check("&", "&");
        check("<script>never closed", "");
        check("<</p>>", "< >");
        // Found by the property tests: a control character between spaces, once
        // removed, left the title " Iran".
        check("&#1; Iran", "Iran");
        check("a &#27; &#1; b", "a b");
        check("a&#27;b", "ab");
    }

    proptest::proptest! {
        #[test]
        fn html_to_text_never_panics(html in "(<[a-z/!?]{0,3}|[<>&;#a-z ]|&[a-z#0-9]{0,6};?|<!--|-->|\\PC){0,60}") {
            let text = html_to_text(&html);
            proptest::prop_assert!(!text.starts_with(' ') && !text.ends_with(' '));
        }
    }

    #[test]
    fn sanitize_html_table() {
        fn check(input: &str, expected: &str) {
            assert_eq!(sanitize_html(input), expected, "input {input:?}");
        }
        check("<p>hi</p>", "<p>hi</p>");
        check(
            "<a href=\"https://e.com/\">x</a>",
            "<a href=\"https://e.com/\" rel=\"noopener noreferrer\">x</a>",
        );
        check("<p onclick=\"evil()\">x</p>", "<p>x</p>");
        check("a<script>evil()</script>b", "ab");
        check("a<style>p{}</style>b", "ab");
        check("a<iframe src=\"https://e.com\"></iframe>b", "ab");
        check(
            "<a href=\"javascript:evil()\">x</a>",
            "<a rel=\"noopener noreferrer\">x</a>",
        );
        check(
            "<a href=\"/relative\">x</a>",
            "<a rel=\"noopener noreferrer\">x</a>",
        );
        check("<p>unclosed", "<p>unclosed</p>");
    }

    #[test]
    fn to_article_resolves_links_and_cleans_text() {
        let entry = ParsedEntry {
            id: Some("tag:e,2025:1".into()),
            link: Some("/2025/06/story?utm_source=rss#top".into()),
            title: html("<b>Iran</b> &amp; North Korea&#8217;s talks"),
            summary: html("<p>Read <a href=\"/more\">more</a><script>x()</script></p>"),
            content: None,
            authors: vec!["Jane Doe".into(), " ".into(), "John Roe".into()],
            published: Some(at("2025-06-03T10:00:00Z")),
            updated: None,
            language: Some(" EN-gb ".into()),
        };
        let article = to_article(&entry, &feed_url(), now());
        assert_eq!(article.item_key, "tag:e,2025:1");
        assert_eq!(
            article.url.as_deref(),
            Some("https://news.example.com/2025/06/story?utm_source=rss#top")
        );
        assert_eq!(
            article.canonical_url.as_deref(),
            Some("https://news.example.com/2025/06/story")
        );
        assert_eq!(article.title, "Iran & North Korea’s talks");
        assert_eq!(
            article.summary_html.as_deref(),
            Some(
                "<p>Read <a href=\"https://news.example.com/more\" rel=\"noopener noreferrer\">more</a></p>"
            )
        );
        assert_eq!(article.summary_text.as_deref(), Some("Read more"));
        assert_eq!(article.content_html, None);
        assert_eq!(article.content_text, None, "no content stays no content");
        assert_eq!(article.author.as_deref(), Some("Jane Doe, John Roe"));
        assert_eq!(article.language.as_deref(), Some("en-gb"));
        assert_eq!(article.published_at, at("2025-06-03T10:00:00Z"));
        assert_eq!(article.fingerprint, fingerprint(&entry));
    }

    #[test]
    fn control_characters_are_removed_from_stored_titles_and_summaries() {
        let entry = ParsedEntry {
            id: Some("1".into()),
            title: plain("Markets\u{1b}[2J fall\u{7} &#27;again"),
            summary: html("<p>Shares&#27;[31m fell\u{0}</p>"),
            content: plain("Body\u{9b}2J text"),
            ..Default::default()
        };
        let article = to_article(&entry, &feed_url(), now());
        assert_eq!(article.title, "Markets[2J fall &#27;again");
        assert_eq!(article.summary_text.as_deref(), Some("Shares[31m fell"));
        assert_eq!(
            article.summary_html.as_deref(),
            Some("<p>Shares[31m fell</p>")
        );
        assert_eq!(article.content_text.as_deref(), Some("Body2J text"));
        assert_eq!(article.content_html.as_deref(), Some("Body2J text"));
    }

    #[test]
    fn bidi_overrides_and_isolates_are_removed_from_stored_titles_and_summaries() {
        let entry = ParsedEntry {
            id: Some("1".into()),
            // Shown as "Official statement: fdp.exe" by a terminal or browser
            // that honours the override.
            title: html("Official statement: \u{202e}exe.pdf&#x202C;"),
            summary: html(
                "<p>\u{2067}Iran\u{2069} talks, &#x2066;Ir\u{200b}an&#x2069; \u{202a}deal\u{202c}</p>",
            ),
            content: plain("\u{feff}\u{202d}forced\u{202c} left-to-right"),
            ..Default::default()
        };
        let article = to_article(&entry, &feed_url(), now());
        assert_eq!(article.title, "Official statement: exe.pdf");
        assert_eq!(
            article.summary_text.as_deref(),
            Some("Iran talks, Iran deal")
        );
        assert_eq!(
            article.summary_html.as_deref(),
            Some("<p>Iran talks, Iran deal</p>")
        );
        assert_eq!(
            article.content_text.as_deref(),
            Some("forced left-to-right")
        );
        assert_eq!(
            article.content_html.as_deref(),
            Some("forced left-to-right")
        );
    }

    #[test]
    fn an_oversized_language_is_dropped() {
        // Found by the property tests: `<language>` of 100 bytes, stored on every item.
        let language = |language: &str| {
            let entry = ParsedEntry {
                id: Some("1".into()),
                language: Some(language.into()),
                ..Default::default()
            };
            to_article(&entry, &feed_url(), now()).language
        };
        assert_eq!(language(&"l".repeat(100)), None);
        let longest = format!("en-{}", "x".repeat(MAX_LANGUAGE_BYTES - 3));
        assert_eq!(language(&longest), Some(longest.clone()));
    }

    #[test]
    fn a_title_cut_at_the_bound_does_not_end_in_a_space() {
        // Found by the property tests: a long title cut right after a space kept it.
        let entry = ParsedEntry {
            id: Some("1".into()),
            title: html(&"A paragraph of news &amp; more. ".repeat(100)),
            ..Default::default()
        };
        let title = to_article(&entry, &feed_url(), now()).title;
        assert!(
            title.starts_with("A paragraph of news & more. A"),
            "{title:?}"
        );
        assert_eq!(title.chars().count(), MAX_TITLE_CHARS - 1);
        assert!(title.ends_with("of news"), "{title:?}");
    }

    #[test]
    fn escaped_plain_text_stays_within_the_bound() {
        // Found by the property tests: a JSON Feed `summary` (plain text) full of
        // markup was cut to the bound and then escaped, which made it 149,450 bytes.
        for (text, tail) in [
            ("<".repeat(MAX_TEXT_BYTES), "&lt;"),
            (format!("x{}", "&".repeat(MAX_TEXT_BYTES)), "&amp;"),
            (format!("xx{}", "&".repeat(MAX_TEXT_BYTES)), "&amp;"),
            (format!("<p>{}", "é".repeat(MAX_TEXT_BYTES / 2)), "é"),
        ] {
            let entry = ParsedEntry {
                id: Some("1".into()),
                summary: plain(&text),
                ..Default::default()
            };
            let html = to_article(&entry, &feed_url(), now()).summary_html.unwrap();
            assert!(html.len() <= MAX_TEXT_BYTES, "{} bytes", html.len());
            assert!(
                html.len() > MAX_TEXT_BYTES - 8,
                "cut short: {} bytes",
                html.len()
            );
            assert!(html.ends_with(tail), "{:?}", &html[html.len() - 8..]);
        }
    }

    #[test]
    fn plain_text_is_escaped_not_interpreted() {
        let entry = ParsedEntry {
            id: Some("1".into()),
            title: plain("Use <b> & &amp; literally"),
            content: plain("x < y &\n\nz"),
            ..Default::default()
        };
        let article = to_article(&entry, &feed_url(), now());
        assert_eq!(article.title, "Use <b> & &amp; literally");
        assert_eq!(article.content_html.as_deref(), Some("x &lt; y &amp;\n\nz"));
        assert_eq!(article.content_text.as_deref(), Some("x < y & z"));
        assert_eq!(article.summary_text, None);
    }

    #[test]
    fn guid_permalink_stands_in_for_a_missing_link() {
        fn check(id: &str, expected: Option<&str>) {
            let entry = ParsedEntry {
                id: Some(id.into()),
                ..Default::default()
            };
            assert_eq!(
                to_article(&entry, &feed_url(), now()).url.as_deref(),
                expected,
                "{id}"
            );
        }
        check("https://e.com/story/1", Some("https://e.com/story/1"));
        check("urn:uuid:1234", None);
        check("/story/1", None);
        check("12345", None);
    }

    #[test]
    fn missing_title_comes_from_the_text() {
        fn check(entry: ParsedEntry, expected: &str) {
            assert_eq!(
                to_article(&entry, &feed_url(), now()).title,
                expected,
                "{entry:?}"
            );
        }
        check(
            ParsedEntry {
                summary: html("<p>Short note</p>"),
                ..Default::default()
            },
            "Short note",
        );
        let long = "word ".repeat(40);
        check(
            ParsedEntry {
                summary: plain(&long),
                ..Default::default()
            },
            &format!("{}…", "word ".repeat(20).trim_end()),
        );
        check(
            ParsedEntry {
                content: html("Only content"),
                ..Default::default()
            },
            "Only content",
        );
        check(
            ParsedEntry {
                title: html("  <br> "),
                ..Default::default()
            },
            "",
        );
        check(ParsedEntry::default(), "");
    }

    #[test]
    fn publication_time_falls_back_and_is_clamped() {
        fn check(published: Option<&str>, updated: Option<&str>, expected: &str) {
            let entry = ParsedEntry {
                published: published.map(at),
                updated: updated.map(at),
                ..Default::default()
            };
            let article = to_article(&entry, &feed_url(), now());
            assert_eq!(
                article.published_at,
                at(expected),
                "{published:?} {updated:?}"
            );
        }
        check(
            Some("2025-06-01T00:00:00Z"),
            Some("2025-06-02T00:00:00Z"),
            "2025-06-01T00:00:00Z",
        );
        check(None, Some("2025-06-02T00:00:00Z"), "2025-06-02T00:00:00Z");
        check(None, None, "2025-06-03T12:00:00Z");
        check(Some("2025-06-03T12:59:00Z"), None, "2025-06-03T12:59:00Z");
        check(Some("2025-06-03T13:01:00Z"), None, "2025-06-03T12:00:00Z");
        check(Some("2030-01-01T00:00:00Z"), None, "2025-06-03T12:00:00Z");
        check(None, Some("2030-01-01T00:00:00Z"), "2025-06-03T12:00:00Z");
    }

    #[test]
    fn absurd_sizes_are_trimmed() {
        let entry = ParsedEntry {
            title: plain(&"é".repeat(5_000)),
            summary: html(&format!("<p>{}</p>", "ab ".repeat(100_000))),
            content: plain(&"ü".repeat(200_000)),
            ..Default::default()
        };
        let article = to_article(&entry, &feed_url(), now());
        assert_eq!(article.title.chars().count(), MAX_TITLE_CHARS);
        for field in [
            &article.summary_html,
            &article.summary_text,
            &article.content_html,
            &article.content_text,
        ] {
            let field = field.as_deref().unwrap();
            assert!(
                field.len() <= MAX_TEXT_BYTES && field.len() > MAX_TEXT_BYTES / 2,
                "{}",
                field.len()
            );
        }
        assert!(
            article.summary_html.unwrap().ends_with("</p>"),
            "sanitised HTML stays well-formed"
        );
    }

    #[test]
    fn huge_link_is_dropped() {
        let entry = ParsedEntry {
            link: Some(format!("https://e.com/{}", "a".repeat(MAX_URL_BYTES))),
            ..Default::default()
        };
        let article = to_article(&entry, &feed_url(), now());
        assert_eq!(article.url, None);
        assert_eq!(article.canonical_url, None);
    }
}
