//! Bytes → [`ParsedFeed`]: character-set detection and feed-rs.
//!
//! Owns: decoding (BOM, HTTP charset, XML declaration) and the mapping from feed-rs
//! types. feed-rs types never leave this module. Knows nothing of URLs, storage or rules.

use std::borrow::Cow;
use std::panic::{AssertUnwindSafe, catch_unwind};

use encoding_rs::{Encoding, UTF_8, UTF_16BE, UTF_16LE, WINDOWS_1252};
use feed_rs::model::{Entry, Feed, FeedType, Link, Person};
use feed_rs::parser::{ParseErrorKind, ParseFeedError as FeedRsError};

use crate::domain::entry::{ParsedEntry, ParsedFeed, Text};
use crate::domain::text::{has_control, is_control, stripped};

/// Why a document could not be read as a feed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseFeedError {
    #[error("empty document: the response has no body")]
    Empty,
    #[error(
        "not a feed: expected RSS, Atom or JSON Feed, found {found}{}",
        page_hint(found)
    )]
    NotAFeed { found: String },
    #[error("invalid XML at line {line}: {message}")]
    InvalidXml { line: usize, message: String },
    #[error("invalid JSON at line {line}, column {column}: {message}")]
    InvalidJson {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("invalid feed at line {line}: {message}")]
    InvalidFeed { line: usize, message: String },
    #[error("feed parser failed on this document (internal error in feed-rs)")]
    ParserPanicked,
}

/// What [`describe_document`] calls a web page.
const HTML_PAGE: &str = "an HTML page";

/// A web page configured as a feed is a common mistake with a command to fix it.
fn page_hint(found: &str) -> &'static str {
    if found == HTML_PAGE {
        "; this is a web page; `herald feeds add URL` finds its feeds"
    } else {
        ""
    }
}

/// Parses an RSS 0.9x/1.0/2.0, Atom or JSON Feed document.
///
/// `content_type` is the HTTP `Content-Type` header, whose `charset` is honoured.
pub fn parse_feed(body: &[u8], content_type: Option<&str>) -> Result<ParsedFeed, ParseFeedError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ParseFeedError::Empty);
    }
    let document = decode_to_utf8(body, content_type.and_then(charset_of));
    let document = with_root_feed_rs_understands(document);
    let feed = run_feed_rs_tolerating_text_types(document)?;
    Ok(map_feed(feed))
}

/// feed-rs rejects a whole Atom feed for one text construct with a `type` it does not
/// know (`text/plain`, `application/octet-stream`, empty). Such a construct is read as
/// text (or HTML when the type says so) and the document parsed again, a few times at
/// most; well-formed feeds never take this path.
fn run_feed_rs_tolerating_text_types(mut document: Cow<'_, [u8]>) -> Result<Feed, ParseFeedError> {
    const MAX_RETRIES: usize = 4;
    for _ in 0..MAX_RETRIES {
        match run_feed_rs(&document) {
            Err(RunError::UnknownTextType(mime)) => {
                let replacement: &[u8] = if mime.contains("html") {
                    b"html"
                } else {
                    b"text"
                };
                let retyped = replace_type_attribute(&document, mime.as_bytes(), replacement);
                match retyped {
                    Some(retyped) => document = Cow::Owned(retyped),
                    None => break,
                }
            }
            other => return other.map_err(|error| error.into_parse_error(&document)),
        }
    }
    run_feed_rs(&document).map_err(|error| error.into_parse_error(&document))
}

/// `type="mime"` (either quote) replaced everywhere; `None` when absent.
fn replace_type_attribute(document: &[u8], mime: &[u8], replacement: &[u8]) -> Option<Vec<u8>> {
    let mut out = document.to_vec();
    let mut changed = false;
    for quote in [b'"', b'\''] {
        let needle = [b"type=".as_slice(), &[quote], mime, &[quote]].concat();
        let wanted = [b"type=".as_slice(), &[quote], replacement, &[quote]].concat();
        let mut from = 0;
        while let Some(at) = find(&out[from..], &needle) {
            let at = from + at;
            out.splice(at..at + needle.len(), wanted.iter().copied());
            from = at + wanted.len();
            changed = true;
        }
    }
    changed.then_some(out)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Namespace URIs of old feed formats that feed-rs does not know, and the ones it reads
/// the same documents with: RSS 2.0 as UserLand published it, RSS 0.90, Atom 0.3.
const NAMESPACE_ALIASES: &[(&str, &str)] = &[
    (
        "http://backend.userland.com/rss2",
        "http://purl.org/rss/1.0/",
    ),
    (
        "http://backend.userland.com/rss",
        "http://purl.org/rss/1.0/",
    ),
    (
        "http://my.netscape.com/rdf/simple/0.9/",
        "http://purl.org/rss/1.0/",
    ),
    ("http://purl.org/atom/ns#", "http://www.w3.org/2005/Atom"),
];

/// RSS versions feed-rs dispatches on; any other `<rss>` is read as RSS 2.0, its
/// superset in practice (0.93, 0.94, 2.01, or no version at all).
const RSS_VERSIONS: &[&str] = &["2.0", "0.91", "0.92"];

/// Rewrites the root start tag where feed-rs would otherwise find no feed (an `<rss>`
/// without a known version) or no entries (a namespace it does not know). Only the root
/// tag is touched, and only for such documents.
fn with_root_feed_rs_understands(document: Cow<'_, [u8]>) -> Cow<'_, [u8]> {
    let Some((start, end)) = root_tag_span(&document) else {
        return document;
    };
    let Ok(tag) = std::str::from_utf8(&document[start..end]) else {
        return document;
    };
    let mut fixed = tag.to_string();
    for (alias, known) in NAMESPACE_ALIASES {
        fixed = fixed.replace(&format!("\"{alias}\""), &format!("\"{known}\""));
    }
    let rss_attributes = fixed
        .strip_prefix("<rss")
        .filter(|rest| rest.starts_with(|c: char| c.is_ascii_whitespace() || c == '>'));
    if let Some(attributes) = rss_attributes {
        let version = attribute_value(attributes, "version");
        if !version.is_some_and(|version| RSS_VERSIONS.contains(&version.trim())) {
            let attributes = without_attribute(attributes, "version");
            fixed = format!("<rss version=\"2.0\"{attributes}");
        }
    }
    if fixed == tag {
        return document;
    }
    let mut out = Vec::with_capacity(document.len() + 16);
    out.extend_from_slice(&document[..start]);
    out.extend_from_slice(fixed.as_bytes());
    out.extend_from_slice(&document[end..]);
    Cow::Owned(out)
}

/// The byte range of the root element's start tag, after the prolog (declaration,
/// comments, processing instructions, doctype).
fn root_tag_span(document: &[u8]) -> Option<(usize, usize)> {
    let mut at = 0;
    loop {
        at += document
            .get(at..)?
            .iter()
            .position(|b| !b.is_ascii_whitespace())?;
        let rest = &document[at..];
        let skip_to = |marker: &[u8]| find(rest, marker).map(|end| at + end + marker.len());
        at = if rest.starts_with(b"<!--") {
            skip_to(b"-->")?
        } else if rest.starts_with(b"<?") {
            skip_to(b"?>")?
        } else if rest.starts_with(b"<!") {
            skip_to(b">")?
        } else if rest.starts_with(b"<") {
            let end = rest.iter().position(|&b| b == b'>')?;
            return Some((at, at + end + 1));
        } else {
            return None;
        };
    }
}

fn attribute_value<'a>(attributes: &'a str, name: &str) -> Option<&'a str> {
    let (start, end) = attribute_span(attributes, name)?;
    let pair = &attributes[start..end];
    let value = pair.split_once('=')?.1.trim();
    Some(
        value
            .get(1..value.len().saturating_sub(1))
            .unwrap_or_default(),
    )
}

fn without_attribute(attributes: &str, name: &str) -> String {
    match attribute_span(attributes, name) {
        Some((start, end)) => format!("{}{}", &attributes[..start], &attributes[end..]),
        None => attributes.to_string(),
    }
}

/// The range of `name="value"` (either quote) in a start tag's attribute text.
fn attribute_span(attributes: &str, name: &str) -> Option<(usize, usize)> {
    let mut from = 0;
    while let Some(found) = attributes[from..].find(name) {
        let start = from + found;
        from = start + name.len();
        let preceded_by_space = attributes[..start].ends_with(|c: char| c.is_ascii_whitespace());
        let rest = attributes[from..].trim_start();
        let Some(value) = rest.strip_prefix('=').map(str::trim_start) else {
            continue;
        };
        let Some(quote) = value.chars().next().filter(|c| matches!(c, '"' | '\'')) else {
            continue;
        };
        let Some(close) = value[1..].find(quote) else {
            continue;
        };
        if preceded_by_space {
            let value_start = attributes.len() - value.len();
            return Some((start, value_start + close + 2));
        }
    }
    None
}

/// A feed-rs failure, with the one cause [`parse_feed`] can work around set apart.
enum RunError {
    UnknownTextType(String),
    Other(FeedRsError),
    Panicked,
}

impl RunError {
    fn into_parse_error(self, document: &[u8]) -> ParseFeedError {
        let error = match self {
            RunError::UnknownTextType(mime) => ParseFeedError::InvalidFeed {
                line: 1,
                message: format!("unsupported content type{}", quoted_if_plain(&mime)),
            },
            RunError::Other(error) => explain(error, document),
            RunError::Panicked => ParseFeedError::ParserPanicked,
        };
        tidy(error)
    }
}

/// Longest message kept in an error, in characters.
const MAX_MESSAGE_CHARS: usize = 200;

/// The error with its message on one short line, without control characters. The
/// parsers' messages quote names from the document (`expected </title>, but </…>
/// was found`), and the document decides what those hold: a NUL or an escape
/// sequence must not reach `herald feeds`' terminal, nor a name of 10 KB the feed's row.
fn tidy(error: ParseFeedError) -> ParseFeedError {
    match error {
        ParseFeedError::NotAFeed { found } => ParseFeedError::NotAFeed {
            found: tidy_message(found),
        },
        ParseFeedError::InvalidXml { line, message } => ParseFeedError::InvalidXml {
            line,
            message: tidy_message(without_quoted_text(&message)),
        },
        ParseFeedError::InvalidJson {
            line,
            column,
            message,
        } => ParseFeedError::InvalidJson {
            line,
            column,
            message: tidy_message(message),
        },
        ParseFeedError::InvalidFeed { line, message } => ParseFeedError::InvalidFeed {
            line,
            message: tidy_message(message),
        },
        ParseFeedError::Empty | ParseFeedError::ParserPanicked => error,
    }
}

/// quick-xml's message with what it quotes between backticks kept only when it is a
/// plain name or a bit of punctuation (`--`): the "name" of an end tag runs to the next
/// `>`, so `</&quot;Iran …>` quotes the text after it, and an entity runs to the next `;`.
fn without_quoted_text(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for (index, part) in message.split('`').enumerate() {
        if index > 0 {
            out.push('`');
        }
        let quoted = index % 2 == 1;
        let open = if part.starts_with("</") {
            "</"
        } else if part.starts_with('<') {
            "<"
        } else {
            ""
        };
        let close = if part.len() > open.len() && part.ends_with('>') {
            ">"
        } else {
            ""
        };
        let name = &part[open.len()..part.len() - close.len()];
        let punctuation =
            (1..=3).contains(&name.len()) && name.chars().all(|c| c.is_ascii_punctuation());
        if quoted && !is_plain_element_name(name) && !punctuation {
            out.push_str(open);
            out.push('…');
            out.push_str(close);
        } else {
            out.push_str(part);
        }
    }
    out
}

fn tidy_message(message: String) -> String {
    let fits = message.len() <= MAX_MESSAGE_CHARS;
    if fits && !message.contains(['\n', '\r', '\t']) && !has_control(&message) {
        return message;
    }
    let mut tidy = String::with_capacity(message.len().min(MAX_MESSAGE_CHARS + 3));
    for (count, c) in message.chars().filter(|&c| !is_control(c)).enumerate() {
        if count == MAX_MESSAGE_CHARS {
            tidy.push('…');
            break;
        }
        tidy.push(if c.is_whitespace() { ' ' } else { c });
    }
    tidy
}

fn run_feed_rs(document: &[u8]) -> Result<Feed, RunError> {
    // Ids are left empty when the document has none: feed-rs would otherwise invent one
    // from a hash or a random UUID, and herald's identity rules must see the
    // absence. Sanitising is herald's job, once per new article, not per poll.
    let parser = feed_rs::parser::Builder::new()
        .id_generator(|_, _, _| String::new())
        .sanitize_content(false)
        .build();
    // A panic inside a third-party parser on hostile bytes must cost one feed, not the
    // worker that polls it.
    match catch_unwind(AssertUnwindSafe(|| parser.parse(document))) {
        Ok(Ok(feed)) => Ok(feed),
        Ok(Err(FeedRsError::ParseError(ParseErrorKind::UnknownMimeType { mime, .. }))) => {
            Err(RunError::UnknownTextType(mime))
        }
        Ok(Err(error)) => Err(RunError::Other(error)),
        Err(_) => Err(RunError::Panicked),
    }
}

// ---------------------------------------------------------------------------------------
// Character sets

/// The encoding named by a `Content-Type` header's `charset` parameter.
fn charset_of(content_type: &str) -> Option<&'static Encoding> {
    content_type.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("charset") {
            return None;
        }
        Encoding::for_label(value.trim().trim_matches(['"', '\'']).as_bytes())
    })
}

/// Returns the document as UTF-8 bytes whose XML declaration, if any, no longer names
/// another encoding (feed-rs honours the declaration and would decode a second time).
fn decode_to_utf8<'a>(body: &'a [u8], http_charset: Option<&'static Encoding>) -> Cow<'a, [u8]> {
    if let Some((encoding, bom_len)) = Encoding::for_bom(body) {
        return transcode(&body[bom_len..], encoding);
    }
    if let Some(encoding) = utf16_without_bom(body) {
        return transcode(body, encoding);
    }
    let valid_utf8 = std::str::from_utf8(body).is_ok();
    let is_json = first_significant_byte(body) == Some(b'{');
    let encoding = if is_json {
        // JSON Feed is UTF-8 by definition; a charset parameter only helps when it is not.
        if valid_utf8 {
            UTF_8
        } else {
            http_charset.unwrap_or(WINDOWS_1252)
        }
    } else {
        let declared = declared_encoding(body).map(|(encoding, _)| encoding);
        choose_encoding(http_charset, declared, valid_utf8, !body.is_ascii())
    };
    transcode(body, encoding)
}

/// Picks the encoding of a document without a byte-order mark.
///
/// The HTTP charset wins over the XML declaration (RFC 7303 §3.2), but servers lie: a
/// default `charset=utf-8` on a Latin-1 file, or a default `ISO-8859-1` on a UTF-8 file.
/// Bytes that are invalid UTF-8 cannot be UTF-8, and non-ASCII bytes that happen to be
/// valid UTF-8 almost never are anything else, so those facts overrule a label.
fn choose_encoding(
    http: Option<&'static Encoding>,
    declared: Option<&'static Encoding>,
    valid_utf8: bool,
    has_non_ascii: bool,
) -> &'static Encoding {
    // A UTF-16 label on a document readable as ASCII is a mislabel (WHATWG maps it so).
    let labels: Vec<&'static Encoding> = [http, declared]
        .into_iter()
        .flatten()
        .map(Encoding::output_encoding)
        .collect();
    let says_utf8 = labels.contains(&UTF_8);
    match labels.first() {
        None if valid_utf8 => UTF_8,
        None => WINDOWS_1252,
        Some(&first) if first == UTF_8 && !valid_utf8 => labels
            .iter()
            .copied()
            .find(|&label| label != UTF_8)
            .unwrap_or(WINDOWS_1252),
        Some(_) if says_utf8 && valid_utf8 && has_non_ascii => UTF_8,
        Some(&first) => first,
    }
}

fn transcode<'a>(body: &'a [u8], encoding: &'static Encoding) -> Cow<'a, [u8]> {
    let text = if encoding == UTF_8 {
        String::from_utf8_lossy(body)
    } else {
        encoding.decode_without_bom_handling(body).0
    };
    match declared_encoding(text.as_bytes()) {
        // The text is UTF-8 now: a declaration naming anything else must go.
        Some((declared, (start, end))) if declared != UTF_8 => {
            let mut out = Vec::with_capacity(text.len());
            out.extend_from_slice(&text.as_bytes()[..start]);
            out.extend_from_slice(&text.as_bytes()[end..]);
            Cow::Owned(out)
        }
        _ => match text {
            Cow::Borrowed(text) => Cow::Borrowed(text.as_bytes()),
            Cow::Owned(text) => Cow::Owned(text.into_bytes()),
        },
    }
}

fn utf16_without_bom(body: &[u8]) -> Option<&'static Encoding> {
    match body {
        [b'<', 0, ..] => Some(UTF_16LE),
        [0, b'<', ..] => Some(UTF_16BE),
        _ => None,
    }
}

fn first_significant_byte(body: &[u8]) -> Option<u8> {
    body.iter().copied().find(|b| !b.is_ascii_whitespace())
}

/// The byte range of a leading `<?xml ...?>` declaration.
fn declaration_span(body: &[u8]) -> Option<(usize, usize)> {
    let start = body.iter().position(|b| !b.is_ascii_whitespace())?;
    if !body[start..].starts_with(b"<?xml") {
        return None;
    }
    let head = &body[start..body.len().min(start + 512)];
    let end = head.windows(2).position(|w| w == b"?>")?;
    Some((start, start + end + 2))
}

/// The encoding named by the XML declaration, with the declaration's byte range.
/// An unknown label counts as absent (quick-xml ignores it too).
fn declared_encoding(body: &[u8]) -> Option<(&'static Encoding, (usize, usize))> {
    let span = declaration_span(body)?;
    let declaration = &body[span.0..span.1];
    let at = declaration.windows(8).position(|w| w == b"encoding")?;
    let rest = &declaration[at + 8..];
    let rest = rest.trim_ascii_start().strip_prefix(b"=")?;
    let rest = rest.trim_ascii_start();
    let quote = *rest.first()?;
    if quote != b'"' && quote != b'\'' {
        return None;
    }
    let value = &rest[1..];
    let label = &value[..value.iter().position(|&b| b == quote)?];
    Some((Encoding::for_label(label)?, span))
}

// ---------------------------------------------------------------------------------------
// Errors

/// Turns a feed-rs error into a message that says what was wrong and where.
fn explain(error: FeedRsError, document: &[u8]) -> ParseFeedError {
    match error {
        FeedRsError::ParseError(ParseErrorKind::NoFeedRoot) => ParseFeedError::NotAFeed {
            found: describe_document(document),
        },
        FeedRsError::ParseError(kind) => ParseFeedError::InvalidFeed {
            line: line_at(document, error_offset(&kind)),
            message: describe_kind(&kind),
        },
        FeedRsError::JsonSerde(error) => explain_json(&error, document),
        FeedRsError::JsonUnsupportedVersion(version) => ParseFeedError::NotAFeed {
            found: if is_json_feed_version_url(&version) {
                format!("JSON with unsupported JSON Feed version {version:?}")
            } else {
                "JSON with an unsupported JSON Feed version".to_string()
            },
        },
        FeedRsError::XmlReader(error) => {
            let (offset, message) = locate_xml_error(document)
                .unwrap_or_else(|| (document.len() as u64, error.to_string()));
            ParseFeedError::InvalidXml {
                line: line_at(document, offset),
                message,
            }
        }
        FeedRsError::IoError(error) => explain_io(&error, document),
    }
}

fn explain_json(error: &serde_json::Error, document: &[u8]) -> ParseFeedError {
    // serde_json appends " at line L column C"; the variants say where in their own way.
    let message = error.to_string();
    let message = message
        .rsplit_once(" at line ")
        .map_or(message.as_str(), |(text, _)| text);
    let message = without_values(message);
    if error.is_data() && serde_json::from_slice::<serde_json::Value>(document).is_ok() {
        return ParseFeedError::NotAFeed {
            found: format!("JSON that is not a JSON Feed ({message})"),
        };
    }
    ParseFeedError::InvalidJson {
        line: error.line(),
        column: error.column(),
        message,
    }
}

/// A version URL is worth showing; any other value is the body's text.
fn is_json_feed_version_url(version: &str) -> bool {
    version.len() <= 48
        && version
            .strip_prefix("https://jsonfeed.org/version/")
            .is_some_and(|rest| rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '.'))
}

/// serde's message with the document's own values taken out: quoted strings
/// (`invalid type: string "…"`) and the name in `unknown variant`/`unknown field`,
/// while the expected names, which are the JSON Feed schema's, stay.
fn without_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut chars = message.chars();
    while let Some(c) = chars.next() {
        if c == '"' {
            out.push_str("\"…\"");
            let mut escaped = false;
            for inner in chars.by_ref() {
                match inner {
                    '\\' if !escaped => escaped = true,
                    '"' if !escaped => break,
                    _ => escaped = false,
                }
            }
        } else {
            out.push(c);
        }
    }
    for prefix in ["unknown variant `", "unknown field `"] {
        if let Some(at) = out.find(prefix) {
            let start = at + prefix.len();
            if let Some(length) = out[start..].find('`') {
                out.replace_range(start..start + length, "…");
            }
        }
    }
    out
}

fn explain_io(error: &std::io::Error, document: &[u8]) -> ParseFeedError {
    // Decoding is done before feed-rs sees the bytes, so an I/O error here comes from
    // quick-xml's decoder or reader: report it as the XML problem it is.
    let (offset, message) =
        locate_xml_error(document).unwrap_or_else(|| (document.len() as u64, error.to_string()));
    ParseFeedError::InvalidXml {
        line: line_at(document, offset),
        message,
    }
}

fn error_offset(kind: &ParseErrorKind) -> u64 {
    match kind {
        ParseErrorKind::NoFeedRoot => 0,
        ParseErrorKind::UnknownMimeType { position, .. }
        | ParseErrorKind::MissingContent { position, .. }
        | ParseErrorKind::UnknownEnumVariant { position, .. }
        | ParseErrorKind::IllegalState { position, .. } => *position,
    }
}

fn describe_kind(kind: &ParseErrorKind) -> String {
    match kind {
        ParseErrorKind::UnknownMimeType { mime, .. } => {
            format!("unsupported content type{}", quoted_if_plain(mime))
        }
        ParseErrorKind::MissingContent { reference, .. } => format!("missing {reference}"),
        ParseErrorKind::UnknownEnumVariant { reference, .. } => {
            format!("unknown value{}", quoted_if_plain(reference))
        }
        ParseErrorKind::IllegalState { reference, .. } => format!("unexpected {reference}"),
        ParseErrorKind::NoFeedRoot => "no feed element".to_string(),
    }
}

/// ` "value"` when the value is short and made of the characters of content types and
/// element names, else nothing: it comes from the document (an attribute, an element's
/// text), which errors describe but never quote.
fn quoted_if_plain(value: &str) -> String {
    let plain = !value.is_empty()
        && value.len() <= 60
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+' | '/' | ':'));
    if plain {
        format!(" {value:?}")
    } else {
        String::new()
    }
}

/// Re-reads the document with quick-xml alone to find where it stops being XML: feed-rs
/// reports the cause but not the position.
fn locate_xml_error(document: &[u8]) -> Option<(u64, String)> {
    let mut reader = quick_xml::Reader::from_reader(document);
    reader.config_mut().check_end_names = true;
    let mut buffer = Vec::new();
    loop {
        match reader.read_event_into(&mut buffer) {
            Ok(quick_xml::events::Event::Eof) => return None,
            Ok(_) => buffer.clear(),
            Err(error) => return Some((reader.error_position(), error.to_string())),
        }
    }
}

fn line_at(document: &[u8], offset: u64) -> usize {
    let end = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(document.len());
    1 + document[..end].iter().filter(|&&b| b == b'\n').count()
}

/// What the document is, when it is not a feed: for messages an operator can act on.
///
/// Describes, never quotes: the body may come from anywhere a feed's URL or a DNS
/// answer leads, and what it says ends up in `herald feeds`, the API and the log.
fn describe_document(document: &[u8]) -> String {
    let text = String::from_utf8_lossy(&document[..document.len().min(4096)]);
    let mut rest = text.trim_start();
    loop {
        if rest.starts_with('{') || rest.starts_with('[') {
            return "JSON that is not a JSON Feed".to_string();
        }
        if rest.is_empty() {
            return "a document without any element".to_string();
        }
        let Some(after) = rest.strip_prefix('<') else {
            return format!("a text document of {}", describe_size(document.len()));
        };
        let lowered = after.get(..8).unwrap_or(after).to_ascii_lowercase();
        if lowered.starts_with("!doctype") {
            if after
                .get(..14)
                .unwrap_or(after)
                .to_ascii_lowercase()
                .contains("html")
            {
                return HTML_PAGE.to_string();
            }
            rest = skip_past(after, ">");
        } else if after.starts_with("!--") {
            rest = skip_past(after, "-->");
        } else if after.starts_with('?') {
            rest = skip_past(after, "?>");
        } else {
            let name: String = after
                .chars()
                .take_while(|c| !c.is_whitespace() && !matches!(c, '>' | '/'))
                .collect();
            let local = name.rsplit(':').next().unwrap_or(&name);
            return if local.eq_ignore_ascii_case("html") {
                HTML_PAGE.to_string()
            } else if local == "rss" {
                "an <rss> document without a <channel>".to_string()
            } else if is_plain_element_name(&name) {
                // A short element name is the document's structure, not its content.
                format!("XML document with root element <{name}>")
            } else {
                format!("an XML-like document of {}", describe_size(document.len()))
            };
        }
    }
}

/// At most 40 letters, digits, `-`, `_`, `.` and `:`, starting with a letter: what
/// feeds and other vocabularies use, and too plain to carry a credential's value.
fn is_plain_element_name(name: &str) -> bool {
    name.len() <= 40
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
}

fn describe_size(bytes: usize) -> String {
    if bytes == 1 {
        "1 byte".to_string()
    } else {
        format!("{bytes} bytes")
    }
}

fn skip_past<'a>(text: &'a str, marker: &str) -> &'a str {
    text.find(marker)
        .map_or("", |at| &text[at + marker.len()..])
        .trim_start()
}

// ---------------------------------------------------------------------------------------
// Mapping from feed-rs

fn map_feed(feed: Feed) -> ParsedFeed {
    let rss = matches!(
        feed.feed_type,
        FeedType::RSS0 | FeedType::RSS1 | FeedType::RSS2
    );
    let language = non_empty(feed.language);
    let entries = feed
        .entries
        .into_iter()
        .map(|entry| map_entry(entry, rss, language.as_deref()))
        .collect();
    ParsedFeed {
        title: feed.title.and_then(|title| {
            let html = rss || is_html_subtype(title.content_type.subty().as_str());
            feed_title(title.content, html)
        }),
        site_url: preferred_link(&feed.links),
        language,
        entries,
    }
}

fn map_entry(entry: Entry, rss: bool, feed_language: Option<&str>) -> ParsedEntry {
    ParsedEntry {
        id: non_empty(Some(entry.id)),
        link: preferred_link(&entry.links),
        title: entry.title.and_then(|title| {
            let html = rss || is_html_subtype(title.content_type.subty().as_str());
            to_text(title.content, html)
        }),
        summary: entry.summary.and_then(|summary| {
            let html = rss || is_html_subtype(summary.content_type.subty().as_str());
            to_text(summary.content, html)
        }),
        content: entry.content.and_then(|content| {
            let html = rss || is_html_subtype(content.content_type.subty().as_str());
            to_text(content.body?, html)
        }),
        authors: entry.authors.iter().filter_map(person_name).collect(),
        published: entry.published,
        updated: entry.updated,
        language: non_empty(entry.language).or_else(|| feed_language.map(str::to_string)),
    }
}

/// The feed's title as plain text: it names the feed in listings and alerts. Titles
/// carry entities, rarely tags, so decoding is enough here.
fn feed_title(title: String, is_html: bool) -> Option<String> {
    let title = if is_html && title.contains('&') {
        htmlize::unescape(title).into_owned()
    } else {
        title
    };
    non_empty(Some(title))
}

fn to_text(body: String, is_html: bool) -> Option<Text> {
    Some(Text {
        body: non_empty(Some(body))?,
        is_html,
    })
}

/// `html` and `xhtml+xml`; RSS has no content types (its text is HTML by convention,
/// titles included), which callers decide before asking.
fn is_html_subtype(subtype: &str) -> bool {
    subtype.contains("html")
}

/// The link to the page: `rel=alternate` (Atom's default), else a link without a
/// relation; never `self`, `enclosure`, comments or the like.
fn preferred_link(links: &[Link]) -> Option<String> {
    let usable = |link: &&Link| link.target.is_none() && !link.href.trim().is_empty();
    links
        .iter()
        .filter(usable)
        .find(|link| link.rel.as_deref() == Some("alternate"))
        .or_else(|| links.iter().filter(usable).find(|link| link.rel.is_none()))
        .map(|link| stripped(link.href.trim().to_string()))
}

fn person_name(person: &Person) -> Option<String> {
    non_empty(person.name.clone()).or_else(|| non_empty(person.email.clone()))
}

/// Trimmed, without control or hidden format characters (a JSON `\u0000` or
/// an XML `&#1;` arrives decoded), `None` when nothing is left.
fn non_empty(text: Option<String>) -> Option<String> {
    let text = stripped(text?);
    let trimmed = text.trim();
    if trimmed.is_empty() {
        None
    } else if trimmed.len() == text.len() {
        Some(text)
    } else {
        Some(trimmed.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};
    use proptest::prelude::*;

    const LATIN1_RSS: &[u8] = include_bytes!("../tests/fixtures/feeds/rss2-iso-8859-1.xml");
    const CP1251_RSS: &[u8] = include_bytes!("../tests/fixtures/feeds/rss2-windows-1251.xml");
    const GREEK_RSS: &[u8] = include_bytes!("../tests/fixtures/feeds/rss2-iso-8859-7.xml");
    const ATOM: &[u8] = include_bytes!("../tests/fixtures/feeds/atom.xml");
    const RSS1: &[u8] = include_bytes!("../tests/fixtures/feeds/rss1.rdf");
    const JSON_FEED: &[u8] = include_bytes!("../tests/fixtures/feeds/feed.json");
    const FIXTURES: &[&[u8]] = &[LATIN1_RSS, CP1251_RSS, GREEK_RSS, ATOM, RSS1, JSON_FEED];

    fn parse(body: &[u8], content_type: Option<&str>) -> ParsedFeed {
        parse_feed(body, content_type).unwrap()
    }

    fn first_title(feed: &ParsedFeed) -> &str {
        &feed.entries[0].title.as_ref().unwrap().body
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

    fn rss_with_title(declaration: &str, title: &str) -> String {
        format!(
            "{declaration}<rss version=\"2.0\"><channel><title>t</title>\
             <item><title>{title}</title></item></channel></rss>"
        )
    }

    #[test]
    fn declared_single_byte_encodings_are_decoded() {
        let cases: &[(&[u8], &str, &str)] = &[
            (LATIN1_RSS, "Notícias do Brasil", "Chuva forte em São Paulo"),
            (
                CP1251_RSS,
                "Новости Оренбурга",
                "Новый Ледовый дворец откроют в Бузулуке",
            ),
            (GREEK_RSS, "Ειδήσεις", "Πορτραίτα καραντίνας στην Αθήνα"),
        ];
        for (body, feed_title, entry_title) in cases {
            let feed = parse(body, Some("application/rss+xml"));
            assert_eq!(feed.title.as_deref(), Some(*feed_title));
            assert_eq!(first_title(&feed), *entry_title);
        }
    }

    #[test]
    fn latin1_summary_keeps_accents() {
        let feed = parse(LATIN1_RSS, None);
        let summary = feed.entries[0].summary.clone().unwrap();
        assert_eq!(summary.body, "<p>Alerta da Defesa Civil: é grave.</p>");
    }

    #[test]
    fn charset_sources_are_weighed_like_a_browser() {
        let latin1 = |text: &str| encoding_rs::WINDOWS_1252.encode(text).0.into_owned();
        let cases: Vec<(&str, Vec<u8>, Option<&str>, &str)> = vec![
            (
                "utf-8 header on Latin-1 bytes: the declaration is right",
                latin1(&rss_with_title(
                    "<?xml version=\"1.0\" encoding=\"iso-8859-1\"?>",
                    "São Paulo",
                )),
                Some("text/xml; charset=utf-8"),
                "São Paulo",
            ),
            (
                "nothing declared, bytes not UTF-8: windows-1252",
                latin1(&rss_with_title("", "café €5")),
                None,
                "café €5",
            ),
            (
                "utf-8 declaration on Latin-1 bytes: windows-1252",
                latin1(&rss_with_title(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
                    "café",
                )),
                None,
                "café",
            ),
            (
                "header charset without declaration",
                encoding_rs::WINDOWS_1251
                    .encode(&rss_with_title("", "Москва"))
                    .0
                    .into_owned(),
                Some("application/rss+xml; charset=\"windows-1251\""),
                "Москва",
            ),
            (
                "header charset overrides the declaration",
                encoding_rs::WINDOWS_1251
                    .encode(&rss_with_title(
                        "<?xml version=\"1.0\" encoding=\"iso-8859-1\"?>",
                        "Москва",
                    ))
                    .0
                    .into_owned(),
                Some("text/xml;charset=windows-1251"),
                "Москва",
            ),
            (
                "Latin-1 header default on a UTF-8 document declared UTF-8",
                rss_with_title("<?xml version=\"1.0\" encoding=\"utf-8\"?>", "São Paulo")
                    .into_bytes(),
                Some("text/xml; charset=ISO-8859-1"),
                "São Paulo",
            ),
            (
                "UTF-8 header and a stale Latin-1 declaration on UTF-8 bytes",
                rss_with_title(
                    "<?xml version=\"1.0\" encoding=\"iso-8859-1\"?>",
                    "São Paulo",
                )
                .into_bytes(),
                Some("text/xml; charset=utf-8"),
                "São Paulo",
            ),
            (
                "UTF-8 byte-order mark wins over everything",
                [
                    b"\xEF\xBB\xBF".as_slice(),
                    rss_with_title("<?xml version=\"1.0\" encoding=\"iso-8859-1\"?>", "São")
                        .as_bytes(),
                ]
                .concat(),
                Some("text/xml; charset=iso-8859-1"),
                "São",
            ),
        ];
        for (case, body, content_type, expected) in cases {
            let feed = parse_feed(&body, content_type).unwrap_or_else(|e| panic!("{case}: {e}"));
            assert_eq!(first_title(&feed), expected, "{case}");
        }
    }

    #[test]
    fn utf16_documents_are_decoded() {
        let text = rss_with_title("<?xml version=\"1.0\" encoding=\"UTF-16\"?>", "Zürich");
        let little_endian: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let with_bom = [[0xFF, 0xFE].as_slice(), &little_endian].concat();
        let big_endian: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
        for body in [with_bom, little_endian, big_endian] {
            assert_eq!(first_title(&parse(&body, None)), "Zürich");
        }
    }

    /// (http charset, declared, valid UTF-8, has non-ASCII, expected)
    type EncodingCase = (
        Option<&'static Encoding>,
        Option<&'static Encoding>,
        bool,
        bool,
        &'static Encoding,
    );

    #[test]
    fn encoding_choice_table() {
        use encoding_rs::{ISO_8859_7, WINDOWS_1251};
        let cases: &[EncodingCase] = &[
            (None, None, true, true, UTF_8),
            (None, None, false, true, WINDOWS_1252),
            (None, Some(WINDOWS_1251), false, true, WINDOWS_1251),
            (None, Some(UTF_8), false, true, WINDOWS_1252),
            (
                Some(WINDOWS_1251),
                Some(ISO_8859_7),
                false,
                true,
                WINDOWS_1251,
            ),
            (Some(UTF_8), Some(ISO_8859_7), false, true, ISO_8859_7),
            (Some(UTF_8), None, false, true, WINDOWS_1252),
            (Some(WINDOWS_1252), Some(UTF_8), true, true, UTF_8),
            (Some(WINDOWS_1252), Some(UTF_8), true, false, WINDOWS_1252),
            (Some(WINDOWS_1252), None, true, true, WINDOWS_1252),
            (None, Some(UTF_16LE), true, true, UTF_8),
        ];
        for &(http, declared, valid, non_ascii, expected) in cases {
            let got = choose_encoding(http, declared, valid, non_ascii);
            assert_eq!(
                got, expected,
                "http={http:?} declared={declared:?} valid={valid}"
            );
        }
    }

    #[test]
    fn atom_entries_are_mapped() {
        let feed = parse(ATOM, Some("application/atom+xml"));
        assert_eq!(
            feed.title.as_deref(),
            Some("Example World Desk — Europe & Asia")
        );
        assert_eq!(feed.site_url.as_deref(), Some("https://world.example.com/"));
        assert_eq!(feed.language.as_deref(), Some("en-GB"));
        let entry = &feed.entries[0];
        assert_eq!(
            entry.id.as_deref(),
            Some("tag:world.example.com,2025:border")
        );
        assert_eq!(entry.link.as_deref(), Some("/2025/06/03/border"));
        assert_eq!(entry.title, plain("Tanks & <tractors> on the border"));
        assert_eq!(
            entry.summary,
            html("<p>Columns of <b>tanks</b> were seen.</p>")
        );
        let content = entry.content.as_ref().unwrap();
        assert!(
            content.is_html && content.body.contains("<em>story</em>"),
            "{content:?}"
        );
        assert_eq!(entry.authors, ["Jane Doe", "desk@world.example.com"]);
        assert_eq!(entry.published, Some(at("2025-06-03T07:30:00Z")));
        assert_eq!(entry.updated, Some(at("2025-06-03T11:00:00Z")));
        assert_eq!(entry.language.as_deref(), Some("en-GB"));
    }

    #[test]
    fn missing_id_stays_missing() {
        let feed = parse(ATOM, None);
        let entry = &feed.entries[1];
        assert_eq!(entry.id, None);
        assert_eq!(entry.updated, None, "an unparseable date is absent");
        assert_eq!(entry.summary, plain("Plain & simple"));
        assert_eq!(
            entry.language.as_deref(),
            Some("en-GB"),
            "the feed's language"
        );

        let rss = parse(rss_with_title("", "no guid").as_bytes(), None);
        assert_eq!(rss.entries[0].id, None);
    }

    #[test]
    fn rss1_entries_are_mapped() {
        let feed = parse(RSS1, None);
        let entry = &feed.entries[0];
        assert_eq!(
            entry.link.as_deref(),
            Some("https://tech.example.net/story/1?utm_source=rss")
        );
        assert_eq!(entry.title, html("Kernel 9.0 released"));
        assert_eq!(entry.summary, html("The <i>new</i> kernel is out."));
        assert_eq!(entry.authors, ["timothy"]);
        assert_eq!(entry.published, Some(at("2025-06-01T08:00:00Z")));
    }

    #[test]
    fn json_feed_entries_are_mapped() {
        let feed = parse(JSON_FEED, Some("application/feed+json; charset=iso-8859-1"));
        assert_eq!(feed.title.as_deref(), Some("Example Journal"));
        assert_eq!(
            feed.site_url.as_deref(),
            Some("https://journal.example.com/")
        );
        let first = &feed.entries[0];
        assert_eq!(first.title, plain("A <plain> title"));
        assert_eq!(
            first.content,
            html("<p>Hello <a href=\"/about\">world</a></p>")
        );
        assert_eq!(first.summary, plain("Hello world"));
        assert_eq!(first.authors, ["Ann Author"]);
        assert_eq!(first.language.as_deref(), Some("en-US"));
        let second = &feed.entries[1];
        assert_eq!(second.id.as_deref(), Some("2"));
        assert_eq!(second.content, plain("Just text & nothing else"));
        assert_eq!(second.published, None);
        assert_eq!(second.updated, Some(at("2025-06-02T12:00:00Z")));
    }

    #[test]
    fn rss_comments_link_is_not_the_article_link() {
        let body = "<rss version=\"2.0\"><channel><item><comments>https://a.example/c</comments>\
                    <link>https://a.example/story</link><guid>x1</guid></item></channel></rss>";
        let feed = parse(body.as_bytes(), None);
        assert_eq!(
            feed.entries[0].link.as_deref(),
            Some("https://a.example/story")
        );
        assert_eq!(feed.entries[0].id.as_deref(), Some("x1"));
    }

    #[test]
    fn old_dialects_are_read() {
        let cases: &[(&str, &str)] = &[
            (
                "no version",
                "<rss><channel><item><title>A</title></item></channel></rss>",
            ),
            (
                "version 0.94",
                "<rss version=\"0.94\"><channel><item><title>A</title></item></channel></rss>",
            ),
            (
                "UserLand namespace",
                "<rss version=\"2.0\" xmlns=\"http://backend.userland.com/rss2\"><channel>\
                 <item><title>A</title></item></channel></rss>",
            ),
            (
                "Atom 0.3",
                "<feed version=\"0.3\" xmlns=\"http://purl.org/atom/ns#\"><entry><title>A</title>\
                 <id>1</id></entry></feed>",
            ),
            (
                "Atom text type feed-rs does not know",
                "<feed xmlns=\"http://www.w3.org/2005/Atom\"><entry><title type=\"text/plain\">A</title>\
                 <id>1</id></entry></feed>",
            ),
        ];
        for (case, body) in cases {
            let feed = parse_feed(body.as_bytes(), None).unwrap_or_else(|e| panic!("{case}: {e}"));
            assert_eq!(feed.entries.len(), 1, "{case}");
            assert_eq!(first_title(&feed), "A", "{case}");
        }
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "empty document: the response has no body"),
            (b"  \n\t ", "empty document: the response has no body"),
            (
                b"<!DOCTYPE html>\n<html><head><title>Blocked</title></head></html>",
                "not a feed: expected RSS, Atom or JSON Feed, found an HTML page; this is a web page; `herald feeds add URL` finds its feeds",
            ),
            (
                b"<?xml version=\"1.0\"?>\n<catalog><book/></catalog>",
                "not a feed: expected RSS, Atom or JSON Feed, found XML document with root element <catalog>",
            ),
            (
                b"<?xml version=\"1.0\"?>\n<rss version=\"2.0\">\n<channel>\n<item><title>x</item>\n</channel></rss>",
                "invalid XML at line 4: ill-formed document: expected `</title>`, but `</item>` was found",
            ),
            (
                b"{\"title\": \"x\", \"items\": []}",
                "not a feed: expected RSS, Atom or JSON Feed, found JSON that is not a JSON Feed (missing field `version`)",
            ),
            (
                b"{\"version\": \"https://jsonfeed.org/version/1\",\n \"items\": [}",
                "invalid JSON at line 2, column 12: expected value",
            ),
            (b"Service Unavailable", "not a feed: expected RSS, Atom or JSON Feed, found a text document of 19 bytes"),
            (
                b"AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
                "not a feed: expected RSS, Atom or JSON Feed, found a text document of 63 bytes",
            ),
            (
                b"<AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG>",
                "not a feed: expected RSS, Atom or JSON Feed, found an XML-like document of 45 bytes",
            ),
        ];
        for (body, expected) in cases {
            let error = parse_feed(body, None).unwrap_err();
            assert_eq!(error.to_string(), *expected);
        }
    }

    #[test]
    fn errors_never_quote_the_document() {
        let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
        let bodies = [
            format!("AWS_SECRET_ACCESS_KEY={secret}"),
            format!("<!-- {secret} -->\n{secret}"),
            format!("{{\"version\": \"{secret}\", \"items\": []}}"),
            format!(
                "{{\"version\": \"https://jsonfeed.org/version/1\", \"title\": 5, \"items\": [{{\"id\": 1, \"title\": [\"{secret}\"]}}]}}"
            ),
            format!("{{\"version\": \"https://jsonfeed.org/version/1\", \"items\": \"{secret}\"}}"),
        ];
        for body in bodies {
            let error = parse_feed(body.as_bytes(), None).unwrap_err().to_string();
            assert!(!error.contains("wJalr"), "{body}: {error}");
        }
        assert_eq!(
            without_values(r#"invalid type: string "a \"b\" c", expected a sequence"#),
            r#"invalid type: string "…", expected a sequence"#
        );
        assert_eq!(
            without_values("unknown variant `secret`, expected `a` or `b`"),
            "unknown variant `…`, expected `a` or `b`"
        );
        assert_eq!(
            without_values("missing field `version`"),
            "missing field `version`"
        );
    }

    #[test]
    fn errors_quoting_the_document_stay_one_short_clean_line() {
        // Found by the property tests: quick-xml quotes the end tag it found, NUL included.
        let error = parse_feed(b"<rss version=\"2.0\"><channel><item><title></\0>", None)
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "invalid XML at line 1: ill-formed document: expected `</title>`, but `</…>` was found"
        );
        let name = "x".repeat(10_000);
        let long = format!("<rss version=\"2.0\"><channel></\u{1b}[2J{name}>");
        let error = parse_feed(long.as_bytes(), None).unwrap_err().to_string();
        assert!(error.len() < 300, "{} bytes", error.len());
        assert!(error.ends_with("but `</…>` was found"), "{error}");
        assert!(!error.contains('\u{1b}'), "{error}");
    }

    #[test]
    fn truncated_fixtures_never_panic() {
        for fixture in FIXTURES {
            for end in 0..fixture.len() {
                let _ = parse_feed(&fixture[..end], None);
            }
        }
    }

    proptest! {
        #[test]
        fn mutated_fixtures_never_panic(
            index in 0..FIXTURES.len(),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
            charset in prop::option::of(prop::sample::select(vec!["utf-8", "iso-8859-1", "utf-16", "bogus"])),
        ) {
            let mut body = FIXTURES[index].to_vec();
            for (at, byte) in edits {
                let at = at.index(body.len());
                body[at] = byte;
            }
            let content_type = charset.map(|charset| format!("text/xml; charset={charset}"));
            let _ = parse_feed(&body, content_type.as_deref());
        }

        #[test]
        fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_feed(&body, None);
        }
    }
}
