//! Feed documents for property tests: RSS 2.0, RSS 1.0, Atom and JSON Feed built from
//! random parts. Near-valid on purpose: random bytes almost never get past the first
//! `<`, while a real document with a control character in a title, an odd entity, a
//! wrong charset label or a cut-off end reaches every stage behind the parser.

use proptest::prelude::*;
use proptest::sample::Index;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Rss2,
    Rss1,
    Atom,
    Json,
}

/// How text is written into the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escaping {
    /// XML-escaped (`&` → `&amp;`), or a JSON string: the text arrives intact.
    Escaped,
    /// In `<![CDATA[…]]>` (XML), which the text may itself close early.
    Cdata,
    /// Pasted in as is: markup in the text becomes the document's own.
    Raw,
}

#[derive(Debug, Clone)]
pub struct Item {
    pub id: Option<String>,
    pub link: Option<String>,
    pub title: Option<String>,
    pub summary: Option<String>,
    pub content: Option<String>,
    pub author: Option<String>,
    pub published: Option<String>,
    pub updated: Option<String>,
    pub language: Option<String>,
    /// Atom's `type` attribute on title, summary and content.
    pub text_type: &'static str,
}

#[derive(Debug, Clone)]
pub struct Document {
    pub format: Format,
    /// The `version` of `<rss>`, when there is one.
    pub rss_version: Option<&'static str>,
    pub title: String,
    pub link: Option<String>,
    pub language: Option<String>,
    pub items: Vec<Item>,
    pub escaping: Escaping,
    /// The encoding the XML declaration names.
    pub declared: Option<&'static str>,
    /// The encoding the bytes are in.
    pub encoding: &'static str,
    pub bom: bool,
    pub content_type: Option<String>,
    /// Where the body is cut off, as if the connection dropped.
    pub truncate_at: Option<Index>,
}

const WORDS: &[&str] = &[
    "Iran",
    "North Korea",
    "sanctions",
    " ",
    "  ",
    "\n",
    "\t",
    "\r\n",
    "São Paulo",
    "Москва",
    "日本語のニュース",
    "عاجل",
    "e\u{301}",
    "\u{a0}",
    "\u{2028}",
    "\u{feff}",
    "\u{200b}",
    "\u{ffff}",
    "\u{fffd}",
    "🦀",
    "a.b",
    "x",
];

const MARKUP: &[&str] = &[
    "<p>",
    "</p>",
    "<br/>",
    "<div",
    "<b>bold</b>",
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "<scr<script>ipt>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<a href=\"javascript:alert(1)\">click</a>",
    "<a href=\"/relative/path\">relative</a>",
    "<a href='https://example.com/?a=1&amp;b=2'>abs</a>",
    "<style>p { color: red }</style>",
    "<iframe src=\"https://evil.example/\"></iframe>",
    "<svg><script>alert(1)</script></svg>",
    "<math><mi xlink:href=\"javascript:alert(1)\">m</mi></math>",
    "<noscript><p title=\"</noscript><script>alert(1)</script>\">",
    "<template><script>alert(1)</script></template>",
    "<object data=x></object>",
    "<!--",
    "-->",
    "<![CDATA[",
    "]]>",
    "<",
    ">",
    "</",
    "\"",
    "'",
    "<?xml version=\"1.0\"?>",
    "<!DOCTYPE x [<!ENTITY e \"boom\">]>",
];

const ENTITIES: &[&str] = &[
    "&amp;",
    "&lt;",
    "&gt;",
    "&quot;",
    "&apos;",
    "&nbsp;",
    "&eacute;",
    "&#0;",
    "&#1;",
    "&#x1b;",
    "&#x9b;",
    "&#127;",
    "&#xD800;",
    "&#x10FFFF;",
    "&#1114112;",
    "&#99999999999;",
    "&#x;",
    "&#;",
    "&",
    "&bogus;",
    "&amp;#27;",
    "&amp;lt;script&amp;gt;alert(1)&amp;lt;/script&amp;gt;",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
];

const CONTROLS: &[&str] = &[
    "\0",
    "\u{1}",
    "\u{7}",
    "\u{8}",
    "\u{b}",
    "\u{c}",
    "\u{1b}[31m",
    "\u{1f}",
    "\u{7f}",
    "\u{85}",
    "\u{9b}2J",
];

fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(WORDS).prop_map(str::to_owned),
        3 => prop::sample::select(MARKUP).prop_map(str::to_owned),
        2 => prop::sample::select(ENTITIES).prop_map(str::to_owned),
        1 => prop::sample::select(CONTROLS).prop_map(str::to_owned),
        2 => any::<char>().prop_map(String::from),
        1 => "\\PC{0,12}",
    ]
}

/// Free text as feeds carry it in titles and bodies.
pub fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(piece(), 0..10).prop_map(|pieces| pieces.concat())
}

/// A title or body, sometimes longer than herald stores.
fn long_text() -> impl Strategy<Value = String> {
    prop_oneof![
        30 => text(),
        1 => (1000..1200usize).prop_map(|n| format!("{} tail", "Long title word ".repeat(n / 16 + 60))),
        1 => (2..4usize).prop_map(|n| {
            "<p>A paragraph of news &amp; more.</p><script>x()</script><img src=/i.png>".repeat(n * 900)
        }),
    ]
}

fn link() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(&[
            "https://news.example.com/world/story-1",
            "https://news.example.com/world/story-1?utm_source=rss&id=7#comments",
            "HTTPS://NEWS.EXAMPLE.COM:443/World/%7Estory?ref=x",
            "http://例え.jp/パス?q=日本",
            "/relative/story-2",
            "story-3.html",
            "//other.example/story-4",
            "javascript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "mailto:editor@example.com",
            "http://[::1]:8080/local",
            "http://127.0.0.1/",
            "https://ex ample.com/space",
            "https://example.com/%zz%",
            "http://",
            "",
            "   ",
            "https://example.com/a\u{0}b",
        ][..]).prop_map(str::to_owned),
        1 => text(),
        1 => prop::sample::select(&[1990usize, 2100, 9000][..])
            .prop_map(|n| format!("https://news.example.com/{}", "a".repeat(n))),
    ]
}

fn id() -> impl Strategy<Value = String> {
    prop_oneof![
        // Few distinct values, so that documents repeat an id now and then.
        4 => prop::sample::select(&["item-1", "item-2", "urn:uuid:1", "tag:example.com,2025:1"][..])
            .prop_map(str::to_owned),
        2 => link(),
        1 => text(),
        1 => prop::sample::select(&[1990usize, 2100][..]).prop_map(|n| "g".repeat(n)),
    ]
}

fn date() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(
            &[
                "Tue, 03 Jun 2025 12:00:00 GMT",
                "Tue, 3 Jun 2025 12:00:00 +0200",
                "03 Jun 2025 12:00 EST",
                "Fri, 31 Dec 9999 23:59:59 GMT",
                "Sat, 01 Jan 0000 00:00:00 GMT",
                "Mon, 30 Jun 2025 23:59:60 GMT",
                "Tue, 03 Jun 2025 12:00:00 +9999",
                "2025-06-03T12:00:00Z",
                "2025-06-03T12:00:00.123456789+05:30",
                "2025-02-30T00:00:00Z",
                "+275760-09-13T00:00:00Z",
                "1970-01-01T00:00:00Z",
                "yesterday",
                "",
            ][..]
        )
        .prop_map(str::to_owned),
        (0i64..=253_402_300_799).prop_map(|secs| {
            chrono::DateTime::from_timestamp(secs, 0)
                .unwrap_or_default()
                .to_rfc2822()
        }),
        text(),
    ]
}

fn language() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(
            &[
                "en",
                "EN-us",
                " fr ",
                "pt-BR",
                "zh-Hant-TW",
                "",
                "\u{0}de",
                "x"
            ][..]
        )
        .prop_map(str::to_owned),
        text(),
        (100..3000usize).prop_map(|n| "l".repeat(n)),
    ]
}

fn item() -> impl Strategy<Value = Item> {
    (
        (
            prop::option::weighted(0.8, id()),
            prop::option::weighted(0.8, link()),
            prop::option::weighted(0.9, long_text()),
            prop::option::weighted(0.7, long_text()),
            prop::option::weighted(0.4, long_text()),
        ),
        (
            prop::option::weighted(0.5, text()),
            prop::option::weighted(0.7, date()),
            prop::option::weighted(0.3, date()),
            prop::option::weighted(0.2, language()),
            prop::sample::select(
                &[
                    "html",
                    "text",
                    "xhtml",
                    "text/plain",
                    "text/html",
                    "application/octet-stream",
                    "",
                ][..],
            ),
        ),
    )
        .prop_map(
            |(
                (id, link, title, summary, content),
                (author, published, updated, language, text_type),
            )| Item {
                id,
                link,
                title,
                summary,
                content,
                author,
                published,
                updated,
                language,
                text_type,
            },
        )
}

/// Encodings the bytes may be in, as `encoding_rs` labels.
const ENCODINGS: &[&str] = &[
    "UTF-8",
    "UTF-8",
    "UTF-8",
    "windows-1252",
    "ISO-8859-7",
    "windows-1251",
    "Shift_JIS",
    "UTF-16LE",
    "UTF-16BE",
];

/// Labels a document or server may give, right or wrong.
const LABELS: &[&str] = &[
    "UTF-8",
    "utf8",
    "ISO-8859-1",
    "windows-1251",
    "UTF-16",
    "Shift_JIS",
    "bogus",
    "",
];

pub fn document() -> impl Strategy<Value = Document> {
    (
        (
            prop_oneof![
                3 => Just(Format::Rss2),
                1 => Just(Format::Rss1),
                3 => Just(Format::Atom),
                2 => Just(Format::Json),
            ],
            prop::option::weighted(
                0.9,
                prop::sample::select(&["2.0", "0.91", "0.92", "2.01", "0.94", "", "3"][..]),
            ),
            text(),
            prop::option::weighted(0.7, link()),
            prop::option::weighted(0.4, language()),
            prop::collection::vec(item(), 0..6),
        ),
        (
            prop_oneof![
                4 => Just(Escaping::Escaped),
                2 => Just(Escaping::Cdata),
                1 => Just(Escaping::Raw),
            ],
            prop::option::weighted(0.5, prop::sample::select(LABELS)),
            prop::sample::select(ENCODINGS),
            any::<bool>(),
            prop::option::weighted(
                0.5,
                prop_oneof![
                    prop::sample::select(
                        &[
                            "application/rss+xml",
                            "application/atom+xml",
                            "application/feed+json",
                            "text/html"
                        ][..]
                    )
                    .prop_map(str::to_owned),
                    prop::sample::select(LABELS)
                        .prop_map(|label| format!("text/xml; charset={label}")),
                    prop::sample::select(LABELS)
                        .prop_map(|label| format!("application/json;charset=\"{label}\"")),
                ],
            ),
            prop::option::weighted(0.2, any::<Index>()),
        ),
    )
        .prop_map(
            |(
                (format, rss_version, title, link, language, items),
                (escaping, declared, encoding, bom, content_type, truncate_at),
            )| Document {
                format,
                rss_version,
                title,
                link,
                language,
                items,
                escaping,
                declared,
                encoding,
                bom,
                content_type,
                truncate_at,
            },
        )
}

/// Characters XML 1.0 does not allow in a document, even as a character reference.
fn is_xml_invalid(c: char) -> bool {
    matches!(c, '\0'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}')
}

impl Document {
    /// The document's text, before encoding.
    pub fn text(&self) -> String {
        match self.format {
            Format::Json => self.json(),
            Format::Rss2 | Format::Rss1 | Format::Atom => self.xml(),
        }
    }

    /// The body as served.
    pub fn bytes(&self) -> Vec<u8> {
        let text = self.text();
        let mut bytes = match self.encoding {
            "UTF-16LE" => {
                let mut out = if self.bom {
                    vec![0xff, 0xfe]
                } else {
                    Vec::new()
                };
                out.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
                out
            }
            "UTF-16BE" => {
                let mut out = if self.bom {
                    vec![0xfe, 0xff]
                } else {
                    Vec::new()
                };
                out.extend(text.encode_utf16().flat_map(u16::to_be_bytes));
                out
            }
            "UTF-8" if self.bom => [&[0xef, 0xbb, 0xbf][..], text.as_bytes()].concat(),
            label => {
                let encoding = encoding_rs::Encoding::for_label(label.as_bytes())
                    .unwrap_or(encoding_rs::UTF_8);
                encoding.encode(&text).0.into_owned()
            }
        };
        if let Some(at) = self.truncate_at {
            bytes.truncate(at.index(bytes.len() + 1));
        }
        bytes
    }

    /// Whether this is a valid feed that any reader must accept, with one entry per
    /// item: nothing cut off, UTF-8 labelled as such, all text intact, and in RSS 1.0
    /// every item with the link that format requires (items without one are dropped).
    pub fn is_well_formed(&self) -> bool {
        let utf8_label = |label: &str| label.eq_ignore_ascii_case("utf-8");
        let strings = self.strings();
        self.truncate_at.is_none()
            && self.encoding == "UTF-8"
            && self.declared.is_none_or(utf8_label)
            && self
                .content_type
                .as_deref()
                .is_none_or(|content_type| !content_type.contains("charset"))
            && match self.format {
                Format::Json => self.escaping != Escaping::Raw,
                Format::Rss2 | Format::Rss1 | Format::Atom => {
                    let links = self.format != Format::Rss1
                        || self.items.iter().all(|item| {
                            item.link
                                .as_deref()
                                .is_some_and(|link| !link.trim().is_empty())
                        });
                    links
                        && self.escaping == Escaping::Escaped
                        && strings.iter().all(|text| !text.chars().any(is_xml_invalid))
                        && self
                            .items
                            .iter()
                            .all(|item| matches!(item.text_type, "html" | "text"))
                }
            }
    }

    /// Every piece of text the document carries, for checks on what leaks into errors.
    pub fn strings(&self) -> Vec<&str> {
        let mut all: Vec<&str> = vec![&self.title];
        all.extend(self.link.as_deref());
        all.extend(self.language.as_deref());
        for item in &self.items {
            for text in [
                &item.id,
                &item.link,
                &item.title,
                &item.summary,
                &item.content,
                &item.author,
                &item.published,
                &item.updated,
                &item.language,
            ] {
                all.extend(text.as_deref());
            }
        }
        all
    }

    fn escape(&self, text: &str) -> String {
        match self.escaping {
            Escaping::Escaped => text
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&quot;"),
            Escaping::Cdata => format!("<![CDATA[{text}]]>"),
            Escaping::Raw => text.to_owned(),
        }
    }

    /// Attribute values are escaped unless the document is raw: CDATA cannot go there.
    fn attribute(&self, text: &str) -> String {
        match self.escaping {
            Escaping::Raw => text.to_owned(),
            Escaping::Escaped | Escaping::Cdata => text
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('"', "&quot;"),
        }
    }

    fn element(&self, out: &mut String, name: &str, text: Option<&str>) {
        if let Some(text) = text {
            out.push_str(&format!("<{name}>{}</{name}>", self.escape(text)));
        }
    }

    fn xml(&self) -> String {
        let mut out = String::new();
        match self.declared {
            Some(label) => out.push_str(&format!("<?xml version=\"1.0\" encoding=\"{label}\"?>\n")),
            None => out.push_str("<?xml version=\"1.0\"?>\n"),
        }
        match self.format {
            Format::Rss2 => self.rss2(&mut out),
            Format::Rss1 => self.rss1(&mut out),
            Format::Atom => self.atom(&mut out),
            Format::Json => unreachable!("JSON Feed is not XML"),
        }
        out
    }

    fn rss2(&self, out: &mut String) {
        match self.rss_version {
            Some(version) => out.push_str(&format!(
                "<rss version=\"{version}\" xmlns:content=\"http://purl.org/rss/1.0/modules/content/\" \
                 xmlns:dc=\"http://purl.org/dc/elements/1.1/\">"
            )),
            None => out.push_str(
                "<rss xmlns:content=\"http://purl.org/rss/1.0/modules/content/\" \
                 xmlns:dc=\"http://purl.org/dc/elements/1.1/\">",
            ),
        }
        out.push_str("<channel>");
        self.element(out, "title", Some(&self.title));
        self.element(out, "link", self.link.as_deref());
        self.element(out, "language", self.language.as_deref());
        for item in &self.items {
            out.push_str("<item>");
            if let Some(id) = &item.id {
                out.push_str(&format!(
                    "<guid isPermaLink=\"false\">{}</guid>",
                    self.escape(id)
                ));
            }
            self.element(out, "link", item.link.as_deref());
            self.element(out, "title", item.title.as_deref());
            self.element(out, "description", item.summary.as_deref());
            self.element(out, "content:encoded", item.content.as_deref());
            self.element(out, "dc:creator", item.author.as_deref());
            self.element(out, "pubDate", item.published.as_deref());
            self.element(out, "dc:language", item.language.as_deref());
            out.push_str("</item>");
        }
        out.push_str("</channel></rss>");
    }

    fn rss1(&self, out: &mut String) {
        out.push_str(
            "<rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\" \
             xmlns=\"http://purl.org/rss/1.0/\" xmlns:dc=\"http://purl.org/dc/elements/1.1/\">",
        );
        out.push_str("<channel rdf:about=\"https://news.example.com/\">");
        self.element(out, "title", Some(&self.title));
        self.element(out, "link", self.link.as_deref());
        self.element(out, "dc:language", self.language.as_deref());
        out.push_str("</channel>");
        for item in &self.items {
            match &item.id {
                Some(id) => out.push_str(&format!("<item rdf:about=\"{}\">", self.attribute(id))),
                None => out.push_str("<item>"),
            }
            self.element(out, "title", item.title.as_deref());
            self.element(out, "link", item.link.as_deref());
            self.element(out, "description", item.summary.as_deref());
            self.element(out, "dc:creator", item.author.as_deref());
            self.element(out, "dc:date", item.published.as_deref());
            out.push_str("</item>");
        }
        out.push_str("</rdf:RDF>");
    }

    fn atom(&self, out: &mut String) {
        match &self.language {
            Some(language) => out.push_str(&format!(
                "<feed xmlns=\"http://www.w3.org/2005/Atom\" xml:lang=\"{}\">",
                self.attribute(language)
            )),
            None => out.push_str("<feed xmlns=\"http://www.w3.org/2005/Atom\">"),
        }
        self.element(out, "title", Some(&self.title));
        if let Some(link) = &self.link {
            out.push_str(&format!("<link href=\"{}\"/>", self.attribute(link)));
        }
        for item in &self.items {
            match &item.language {
                Some(language) => out.push_str(&format!(
                    "<entry xml:lang=\"{}\">",
                    self.attribute(language)
                )),
                None => out.push_str("<entry>"),
            }
            self.element(out, "id", item.id.as_deref());
            if let Some(link) = &item.link {
                out.push_str(&format!(
                    "<link rel=\"alternate\" href=\"{}\"/>",
                    self.attribute(link)
                ));
            }
            for (name, text) in [
                ("title", &item.title),
                ("summary", &item.summary),
                ("content", &item.content),
            ] {
                if let Some(text) = text {
                    out.push_str(&format!(
                        "<{name} type=\"{}\">{}</{name}>",
                        item.text_type,
                        self.escape(text)
                    ));
                }
            }
            if let Some(author) = &item.author {
                out.push_str("<author>");
                self.element(out, "name", Some(author));
                out.push_str("</author>");
            }
            self.element(out, "published", item.published.as_deref());
            self.element(out, "updated", item.updated.as_deref());
            out.push_str("</entry>");
        }
        out.push_str("</feed>");
    }

    fn json(&self) -> String {
        if self.escaping == Escaping::Raw {
            return self.json_pasted();
        }
        let items: Vec<serde_json::Value> = self
            .items
            .iter()
            .map(|item| {
                let mut object = serde_json::Map::new();
                let mut put = |key: &str, value: &Option<String>| {
                    if let Some(value) = value {
                        object.insert(key.to_owned(), serde_json::Value::from(value.as_str()));
                    }
                };
                put("id", &item.id);
                put("url", &item.link);
                put("title", &item.title);
                put("summary", &item.summary);
                put(
                    if item.text_type.contains("html") {
                        "content_html"
                    } else {
                        "content_text"
                    },
                    &item.content,
                );
                put("date_published", &item.published);
                put("date_modified", &item.updated);
                put("language", &item.language);
                if let Some(author) = &item.author {
                    object.insert(
                        "authors".to_owned(),
                        serde_json::json!([{ "name": author }]),
                    );
                }
                serde_json::Value::Object(object)
            })
            .collect();
        let mut feed = serde_json::json!({
            "version": "https://jsonfeed.org/version/1.1",
            "title": self.title,
            "items": items,
        });
        if let Some(link) = &self.link {
            feed["home_page_url"] = serde_json::Value::from(link.as_str());
        }
        if let Some(language) = &self.language {
            feed["language"] = serde_json::Value::from(language.as_str());
        }
        feed.to_string()
    }

    /// JSON Feed written by string pasting, as a broken generator would: quotes,
    /// backslashes and control characters in the text break the JSON.
    fn json_pasted(&self) -> String {
        let field = |key: &str, value: &Option<String>| {
            value
                .as_ref()
                .map(|value| format!("\"{key}\": \"{value}\", "))
                .unwrap_or_default()
        };
        let items: Vec<String> = self
            .items
            .iter()
            .map(|item| {
                format!(
                    "{{{}{}{}{}{}{}\"x\": 0}}",
                    field("id", &item.id),
                    field("url", &item.link),
                    field("title", &item.title),
                    field("content_html", &item.content),
                    field("summary", &item.summary),
                    field("date_published", &item.published),
                )
            })
            .collect();
        format!(
            "{{\"version\": \"https://jsonfeed.org/version/1\", \"title\": \"{}\", \"items\": [{}]}}",
            self.title,
            items.join(",")
        )
    }
}
