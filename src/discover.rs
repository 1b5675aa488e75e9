//! Feed discovery: the feeds a web page announces with
//! `<link rel="alternate" type="application/rss+xml" href="…">` (or Atom, or JSON
//! Feed), their `href`s resolved against the page's `<base href>` and address.
//!
//! A small tolerant scanner, not an HTML parser: it reads start tags only, skips
//! comments, scripts and styles, and takes attributes quoted either way or not at
//! all, which is what pages in the wild write. Knows nothing of fetching.

use url::Url;

/// The kind of feed a link announces, from its `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedKind {
    Rss,
    Atom,
    Json,
}

impl FeedKind {
    fn from_type(mime: &str) -> Option<FeedKind> {
        let mime = mime.split(';').next().unwrap_or("").trim();
        match mime.to_ascii_lowercase().as_str() {
            "application/rss+xml" | "application/rdf+xml" => Some(FeedKind::Rss),
            "application/atom+xml" => Some(FeedKind::Atom),
            "application/feed+json" => Some(FeedKind::Json),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FeedKind::Rss => "RSS",
            FeedKind::Atom => "Atom",
            FeedKind::Json => "JSON Feed",
        }
    }
}

/// A feed a page links to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alternate {
    pub url: Url,
    pub kind: FeedKind,
    /// The link's `title`, entities decoded, when it has a non-blank one.
    pub title: Option<String>,
}

/// The feeds `html`, read from `page`, links to, in document order, each once.
/// Only http and https links count: herald fetches nothing else.
pub fn alternates(html: &[u8], page: &Url) -> Vec<Alternate> {
    let text = String::from_utf8_lossy(html);
    let tags = start_tags(&text);
    // The first <base> with an href applies to the whole document, even links
    // before it.
    let base = tags
        .iter()
        .filter(|tag| tag.name == "base")
        .find_map(|tag| tag.attribute("href"))
        .and_then(|href| page.join(href.trim()).ok())
        .unwrap_or_else(|| page.clone());
    let mut found: Vec<Alternate> = Vec::new();
    for tag in tags.iter().filter(|tag| tag.name == "link") {
        let is_alternate = tag.attribute("rel").is_some_and(|rel| {
            rel.split_ascii_whitespace()
                .any(|token| token.eq_ignore_ascii_case("alternate"))
        });
        let Some(kind) = tag.attribute("type").and_then(FeedKind::from_type) else {
            continue;
        };
        let Some(href) = tag.attribute("href").map(str::trim) else {
            continue;
        };
        if !is_alternate || href.is_empty() {
            continue;
        }
        let Ok(mut url) = base.join(href) else {
            continue;
        };
        if !matches!(url.scheme(), "http" | "https") {
            continue;
        }
        url.set_fragment(None);
        if found.iter().any(|known| known.url == url) {
            continue;
        }
        let title = tag
            .attribute("title")
            .map(|title| title.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|title| !title.is_empty());
        found.push(Alternate { url, kind, title });
    }
    found
}

/// A start tag: its lower-cased name and its attributes, values decoded.
#[derive(Debug)]
struct StartTag {
    name: String,
    attributes: Vec<(String, String)>,
}

impl StartTag {
    fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// The `<base>` and `<link>` start tags of a document.
fn start_tags(text: &str) -> Vec<StartTag> {
    let mut tags = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('<') {
        rest = &rest[open + 1..];
        if let Some(after) = rest.strip_prefix("!--") {
            rest = after.find("-->").map_or("", |end| &after[end + 3..]);
            continue;
        }
        let name_len = rest
            .find(|c: char| c.is_ascii_whitespace() || c == '>' || c == '/')
            .unwrap_or(rest.len());
        let name = rest[..name_len].to_ascii_lowercase();
        rest = &rest[name_len..];
        match name.as_str() {
            "script" | "style" | "template" | "textarea" | "title" => {
                let close = format!("</{name}");
                rest = find_ignoring_case(rest, &close).map_or("", |end| &rest[end..]);
            }
            "link" | "base" => {
                let (attributes, after) = attributes(rest);
                rest = after;
                tags.push(StartTag { name, attributes });
            }
            _ => {}
        }
    }
    tags
}

fn find_ignoring_case(haystack: &str, needle: &str) -> Option<usize> {
    haystack
        .as_bytes()
        .windows(needle.len())
        .position(|window| window.eq_ignore_ascii_case(needle.as_bytes()))
}

/// Attributes up to the tag's `>`, and the text after it. A name given twice keeps
/// its first value, as browsers do.
fn attributes(mut rest: &str) -> (Vec<(String, String)>, &str) {
    let mut attributes: Vec<(String, String)> = Vec::new();
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == '/');
        if rest.is_empty() {
            return (attributes, rest);
        }
        if let Some(after) = rest.strip_prefix('>') {
            return (attributes, after);
        }
        let name_len = rest
            .find(|c: char| c.is_ascii_whitespace() || matches!(c, '=' | '>' | '/'))
            .unwrap_or(rest.len())
            .max(1.min(rest.len()));
        let name = rest[..name_len].to_ascii_lowercase();
        rest = rest[name_len..].trim_start_matches(|c: char| c.is_ascii_whitespace());
        let mut value = String::new();
        if let Some(after) = rest.strip_prefix('=') {
            let after = after.trim_start_matches(|c: char| c.is_ascii_whitespace());
            let (raw, remaining) = match after.chars().next() {
                Some(quote @ ('"' | '\'')) => {
                    let inner = &after[1..];
                    match inner.find(quote) {
                        Some(end) => (&inner[..end], &inner[end + 1..]),
                        None => (inner, ""),
                    }
                }
                _ => {
                    let end = after
                        .find(|c: char| c.is_ascii_whitespace() || c == '>')
                        .unwrap_or(after.len());
                    (&after[..end], &after[end..])
                }
            };
            value = htmlize::unescape_attribute(raw).into_owned();
            rest = remaining;
        }
        if !attributes.iter().any(|(known, _)| *known == name) {
            attributes.push((name, value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page() -> Url {
        Url::parse("https://news.example/section/world/index.html").unwrap()
    }

    fn urls(html: &str) -> Vec<String> {
        alternates(html.as_bytes(), &page())
            .into_iter()
            .map(|alternate| alternate.url.to_string())
            .collect()
    }

    #[test]
    fn relative_absolute_and_protocol_relative_hrefs_resolve_against_the_page() {
        let html = r#"<link rel="alternate" type="application/rss+xml" href="feed.xml">
            <link rel=alternate type=application/atom+xml href=/atom.xml>
            <link rel='alternate' type='application/feed+json' href='//cdn.example/feed.json'>
            <link rel="alternate" type="application/rss+xml" href="https://other.example/rss">"#;
        assert_eq!(
            urls(html),
            [
                "https://news.example/section/world/feed.xml",
                "https://news.example/atom.xml",
                "https://cdn.example/feed.json",
                "https://other.example/rss"
            ]
        );
    }

    #[test]
    fn base_href_applies_to_every_link_even_one_before_it() {
        let html = r#"<link rel="alternate" type="application/rss+xml" href="rss">
            <base href="/feeds/"><base href="/ignored/">
            <link rel="alternate" type="application/atom+xml" href="atom">"#;
        assert_eq!(
            urls(html),
            [
                "https://news.example/feeds/rss",
                "https://news.example/feeds/atom"
            ]
        );
    }

    #[test]
    fn only_feed_alternates_count_and_each_once() {
        let html = r#"
            <!-- <link rel="alternate" type="application/rss+xml" href="/commented"> -->
            <script>var s = '<link rel="alternate" type="application/rss+xml" href="/scripted">';</script>
            <link rel="stylesheet" type="text/css" href="/style.css">
            <link rel="alternate" hreflang="fr" href="/fr/">
            <link rel="alternate" type="application/rss+xml" href="javascript:alert(1)">
            <LINK REL="Alternate Feed" TYPE="Application/RSS+XML; charset=utf-8" HREF="/rss?a=1&amp;b=2" TITLE="  World &amp; more ">
            <link rel="alternate" type="application/rss+xml" href="/rss?a=1&b=2#top">"#;
        let found = alternates(html.as_bytes(), &page());
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].url.as_str(), "https://news.example/rss?a=1&b=2");
        assert_eq!(found[0].kind, FeedKind::Rss);
        assert_eq!(found[0].title.as_deref(), Some("World & more"));
    }

    #[test]
    fn broken_markup_ends_the_scan_without_a_panic() {
        for html in [
            "<link rel=\"alternate\" type=\"application/rss+xml\" href=\"/a",
            "<link",
            "<!-- never closed",
            "<script>never closed",
            "<",
            "<link rel=alternate type=application/rss+xml href=/a/ >",
        ] {
            let _ = alternates(html.as_bytes(), &page());
        }
        assert_eq!(
            urls("<link rel=alternate type=application/rss+xml href=/a/ >"),
            ["https://news.example/a/"]
        );
    }
}
