//! OPML subscription lists: reading what feed readers (Miniflux, FreshRSS, …)
//! export, and writing OPML 2.0 that they import.
//!
//! Reading: every `<outline>` with an `xmlUrl` is a feed; its `title` (else
//! `text`) is its name; the `text`/`title` of the outlines it sits in and its
//! `category` attribute (comma-separated, `/`-delimited) are its tags. Values are
//! decoded once as XML and once more as HTML, since exporters often escape an
//! already-escaped title (`&amp;#39;`). Knows nothing of the configuration.

use std::fmt::Write;

use quick_xml::events::{BytesStart, Event};

/// A feed as an OPML file lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpmlFeed {
    /// `xmlUrl`, entities decoded, not yet checked.
    pub url: String,
    pub title: Option<String>,
    /// Enclosing outlines' titles, then `category` entries; each once.
    pub tags: Vec<String>,
}

/// Why a file is not an OPML subscription list.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OpmlError {
    #[error("invalid XML at line {line}: {message}")]
    Xml { line: usize, message: String },
    #[error("not an OPML file: the root element is <{0}>, expected <opml>")]
    NotOpml(String),
    #[error("not an OPML file: no element")]
    Empty,
}

/// The feeds an OPML document lists, in document order.
pub fn read(document: &[u8]) -> Result<Vec<OpmlFeed>, OpmlError> {
    let document = document.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(document);
    let mut reader = quick_xml::Reader::from_reader(document);
    reader.config_mut().check_end_names = true;
    let mut buffer = Vec::new();
    let mut feeds = Vec::new();
    // The titles of the open outlines; `None` for one without a title.
    let mut folders: Vec<Option<String>> = Vec::new();
    let mut root_seen = false;
    loop {
        let event = reader
            .read_event_into(&mut buffer)
            .map_err(|error| OpmlError::Xml {
                line: line_at(document, reader.error_position()),
                message: error.to_string(),
            })?;
        match event {
            Event::Eof => break,
            Event::Start(ref tag) | Event::Empty(ref tag) => {
                let is_empty = matches!(event, Event::Empty(_));
                let name = tag.local_name().as_ref().to_owned();
                if !root_seen {
                    root_seen = true;
                    if !name.eq_ignore_ascii_case("opml") {
                        return Err(OpmlError::NotOpml(name));
                    }
                }
                if name != "outline" {
                    continue;
                }
                let outline = Outline::read(tag);
                if let Some(url) = outline.xml_url {
                    let mut tags: Vec<String> = Vec::new();
                    let categories = outline.category.iter().flat_map(|list| {
                        list.split(',')
                            .flat_map(|path| path.split('/'))
                            .map(str::trim)
                            .filter(|tag| !tag.is_empty())
                            .map(str::to_owned)
                            .collect::<Vec<_>>()
                    });
                    for tag in folders.iter().flatten().cloned().chain(categories) {
                        if !tags.contains(&tag) {
                            tags.push(tag);
                        }
                    }
                    feeds.push(OpmlFeed {
                        url,
                        title: outline.title,
                        tags,
                    });
                }
                if !is_empty {
                    folders.push(outline_title_for_folder(tag));
                }
            }
            Event::End(ref tag) if tag.local_name().as_ref() == "outline" => {
                folders.pop();
            }
            _ => {}
        }
        buffer.clear();
    }
    if !root_seen {
        return Err(OpmlError::Empty);
    }
    Ok(feeds)
}

/// The attributes of an `<outline>` that matter here, decoded.
struct Outline {
    xml_url: Option<String>,
    title: Option<String>,
    category: Option<String>,
}

impl Outline {
    fn read(tag: &BytesStart<'_>) -> Outline {
        let mut outline = Outline {
            xml_url: None,
            title: None,
            category: None,
        };
        let mut text = None;
        for attribute in tag.html_attributes().flatten() {
            let raw = &attribute.value;
            match attribute.key.local_name().as_ref() {
                "xmlUrl" | "xmlurl" => {
                    let url = htmlize::unescape_attribute(raw.as_ref()).trim().to_owned();
                    outline.xml_url = (!url.is_empty()).then_some(url);
                }
                "title" => outline.title = display_text(raw),
                "text" => text = display_text(raw),
                "category" => outline.category = display_text(raw),
                _ => {}
            }
        }
        outline.title = outline.title.or(text);
        outline
    }
}

fn outline_title_for_folder(tag: &BytesStart<'_>) -> Option<String> {
    Outline::read(tag).title
}

/// A title as a person reads it: entities decoded twice (see the module's
/// comment), white space collapsed, control characters dropped; `None` if blank.
fn display_text(raw: &str) -> Option<String> {
    let once = htmlize::unescape_attribute(raw);
    let twice = htmlize::unescape(once.as_ref());
    let text = twice
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    (!text.is_empty()).then_some(text)
}

fn line_at(document: &[u8], offset: u64) -> usize {
    let end = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(document.len());
    1 + document[..end].iter().filter(|&&b| b == b'\n').count()
}

/// A feed to write into an OPML file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportFeed {
    pub url: String,
    pub title: Option<String>,
    pub tags: Vec<String>,
}

/// OPML 2.0 listing `feeds`: each under an outline named for its first tag (the
/// folder or category Miniflux and FreshRSS import it into), every tag in its
/// `category`; untagged feeds at the top level.
pub fn write(title: &str, date_created: &str, feeds: &[ExportFeed]) -> String {
    let mut out = String::new();
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<opml version=\"2.0\">\n");
    out.push_str("  <head>\n");
    let _ = writeln!(out, "    <title>{}</title>", escape(title));
    let _ = writeln!(
        out,
        "    <dateCreated>{}</dateCreated>",
        escape(date_created)
    );
    out.push_str("  </head>\n  <body>\n");
    let mut folders: Vec<&str> = Vec::new();
    for feed in feeds {
        if let Some(first) = feed.tags.first()
            && !folders.contains(&first.as_str())
        {
            folders.push(first);
        }
    }
    for feed in feeds.iter().filter(|feed| feed.tags.is_empty()) {
        write_feed(&mut out, "    ", feed);
    }
    for folder in folders {
        let name = escape(folder);
        let _ = writeln!(out, "    <outline text=\"{name}\" title=\"{name}\">");
        for feed in feeds
            .iter()
            .filter(|feed| feed.tags.first().map(String::as_str) == Some(folder))
        {
            write_feed(&mut out, "      ", feed);
        }
        out.push_str("    </outline>\n");
    }
    out.push_str("  </body>\n</opml>\n");
    out
}

fn write_feed(out: &mut String, indent: &str, feed: &ExportFeed) {
    let title = escape(feed.title.as_deref().unwrap_or(&feed.url));
    let _ = write!(
        out,
        "{indent}<outline type=\"rss\" text=\"{title}\" title=\"{title}\" xmlUrl=\"{}\"",
        escape(&feed.url)
    );
    if !feed.tags.is_empty() {
        let _ = write!(out, " category=\"{}\"", escape(&feed.tags.join(",")));
    }
    out.push_str("/>\n");
}

/// For text and double-quoted attributes; characters XML 1.0 forbids are dropped.
fn escape(text: &str) -> String {
    let allowed: String = text
        .chars()
        .filter(|&c| !c.is_control() || matches!(c, '\t' | '\n' | '\r'))
        .collect();
    htmlize::escape_attribute(allowed).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_written_reads_back() {
        let feeds = vec![
            ExportFeed {
                url: "https://a.example/rss?x=1&y=2".to_owned(),
                title: Some("A \"quoted\" <b>&amp; co".to_owned()),
                tags: vec!["world".to_owned(), "wire".to_owned()],
            },
            ExportFeed {
                url: "https://b.example/feed".to_owned(),
                title: None,
                tags: Vec::new(),
            },
        ];
        let text = write("herald", "Mon, 02 Mar 2026 12:00:00 +0000", &feeds);
        let read_back = read(text.as_bytes()).unwrap();
        assert_eq!(read_back.len(), 2);
        let a = read_back
            .iter()
            .find(|f| f.url.starts_with("https://a"))
            .unwrap();
        assert_eq!(a.url, "https://a.example/rss?x=1&y=2");
        // Read as HTML too, so `&amp;` in a title becomes `&`.
        assert_eq!(a.title.as_deref(), Some("A \"quoted\" <b>& co"));
        assert_eq!(a.tags, ["world", "wire"]);
        let b = read_back
            .iter()
            .find(|f| f.url.starts_with("https://b"))
            .unwrap();
        assert_eq!(b.title.as_deref(), Some("https://b.example/feed"));
        assert!(b.tags.is_empty());
    }

    #[test]
    fn what_is_not_opml_is_named() {
        assert_eq!(
            read(b"<rss><channel/></rss>"),
            Err(OpmlError::NotOpml("rss".to_owned()))
        );
        assert_eq!(read(b"  "), Err(OpmlError::Empty));
        assert!(matches!(
            read(b"<opml>\n<body>\n<outline></body></opml>"),
            Err(OpmlError::Xml { line: 3, .. })
        ));
    }
}
