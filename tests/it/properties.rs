//! Property tests: whatever a feed, a rule or a config file holds, herald answers with
//! a result or an error, never a panic, and what it stores keeps its bounds.
//!
//! Case counts are modest so that `cargo test` stays fast; `PROPTEST_CASES` raises
//! them, which is what `scripts/fuzz` does.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, Utc};
use herald::config::{self, ConfigError};
use herald::domain::article::NewArticle;
use herald::domain::feed::FeedSpec;
use herald::domain::text::is_control;
use herald::ingest::{self, IngestError, Source, Watch};
use herald::normalize::{
    self, MAX_FUTURE_SKEW, MAX_KEY_BYTES, MAX_LANGUAGE_BYTES, MAX_TEXT_BYTES, MAX_TITLE_CHARS,
    MAX_URL_BYTES,
};
use herald::parse::{self, ParseFeedError};
use herald::rules::{Matcher, Rule, RuleQuery};
use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestRunner};
use url::Url;

use crate::support::arbitrary_feeds::{self, Document};
use crate::support::db::{Backend, TestDb};

/// `default` cases, unless `PROPTEST_CASES` asks for another number.
fn cases(default: u32) -> ProptestConfig {
    if std::env::var_os("PROPTEST_CASES").is_some() {
        ProptestConfig::default()
    } else {
        ProptestConfig::with_cases(default)
    }
}

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-06-03T12:00:00Z")
        .unwrap()
        .to_utc()
}

fn feed_url() -> Url {
    Url::parse("https://news.example.com/world/rss.xml").unwrap()
}

// ---------------------------------------------------------------------------------------
// Parse and normalise

/// What an operator sees of a rejected document: one line, describing rather than
/// quoting the body (which may come from anywhere a feed URL leads).
fn check_parse_error(error: &ParseFeedError, document: &Document) -> Result<(), TestCaseError> {
    let message = error.to_string();
    prop_assert!(
        !message.contains(['\n', '\r']) && !message.chars().any(is_control),
        "not one clean line: {message:?}"
    );
    prop_assert!(
        message.chars().count() <= 300,
        "{} characters",
        message.chars().count()
    );
    for text in document.strings() {
        let text = text.trim();
        prop_assert!(
            text.chars().count() < 12 || !message.contains(text),
            "error quotes the body's text {text:?}: {message:?}"
        );
    }
    Ok(())
}

/// One line of plain text, as titles and search texts are stored.
fn check_plain(field: &str, text: &str) -> Result<(), TestCaseError> {
    prop_assert!(
        !text
            .chars()
            .any(|c| is_control(c) || (c.is_whitespace() && c != ' ')),
        "{field} has control or line-breaking characters: {text:?}"
    );
    prop_assert!(
        !text.starts_with(' ') && !text.ends_with(' ') && !text.contains("  "),
        "{field} is not collapsed: {text:?}"
    );
    Ok(())
}

/// The start tags of serialised HTML with their attributes, as (name, value) pairs.
/// Text and attribute values have their `<` and `"` escaped, so every `<` starts a tag
/// and every `"` in one opens or closes a value.
fn tags(html: &str) -> Vec<(&str, Vec<(&str, &str)>)> {
    let mut found = Vec::new();
    for chunk in html.split('<').skip(1) {
        if chunk.starts_with('/') {
            continue;
        }
        let name_end = chunk
            .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
            .unwrap_or(chunk.len());
        let mut attributes = Vec::new();
        let mut rest = &chunk[name_end..];
        loop {
            rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == '/');
            if rest.is_empty() || rest.starts_with('>') {
                break;
            }
            let name_len = rest
                .find(|c: char| c.is_whitespace() || matches!(c, '=' | '>' | '/'))
                .unwrap_or(rest.len());
            let name = &rest[..name_len];
            rest = &rest[name_len..];
            let mut value = "";
            if let Some(quoted) = rest.strip_prefix("=\"") {
                let end = quoted.find('"').unwrap_or(quoted.len());
                value = &quoted[..end];
                rest = quoted.get(end + 1..).unwrap_or_default();
            }
            attributes.push((name, value));
        }
        found.push((&chunk[..name_end], attributes));
    }
    found
}

/// Sanitised HTML: nothing that runs script, loads a frame or carries a control character.
fn check_html(field: &str, html: &str) -> Result<(), TestCaseError> {
    let lower = html.to_ascii_lowercase();
    for banned in [
        "<script",
        "<iframe",
        "<style",
        "<object",
        "<embed",
        "<svg",
        "<math",
        "<noscript",
        "<template",
    ] {
        prop_assert!(!lower.contains(banned), "{field} keeps {banned}: {html:?}");
    }
    for (tag, attributes) in tags(&lower) {
        for (name, value) in attributes {
            prop_assert!(
                !name.starts_with("on"),
                "{field} keeps {name} on <{tag}>: {html:?}"
            );
            prop_assert!(
                !value.trim_start().starts_with("javascript:")
                    && !value.trim_start().starts_with("data:"),
                "{field} keeps a script URL on <{tag}>: {html:?}"
            );
        }
    }
    prop_assert!(
        !html.chars().any(is_control),
        "{field} has control characters: {html:?}"
    );
    prop_assert!(
        html.len() <= MAX_TEXT_BYTES,
        "{field} is {} bytes",
        html.len()
    );
    prop_assert!(!html.trim().is_empty(), "{field} is Some but blank");
    Ok(())
}

/// What a stored article promises, whatever the feed said.
fn check_article(article: &NewArticle, now: DateTime<Utc>) -> Result<(), TestCaseError> {
    check_plain("title", &article.title)?;
    prop_assert!(article.title.chars().count() <= MAX_TITLE_CHARS);
    for (field, text) in [
        ("summary_text", &article.summary_text),
        ("content_text", &article.content_text),
    ] {
        if let Some(text) = text {
            check_plain(field, text)?;
            prop_assert!(!text.is_empty(), "{field} is Some but empty");
            prop_assert!(
                text.len() <= MAX_TEXT_BYTES,
                "{field} is {} bytes",
                text.len()
            );
        }
    }
    for (field, html) in [
        ("summary_html", &article.summary_html),
        ("content_html", &article.content_html),
    ] {
        if let Some(html) = html {
            check_html(field, html)?;
        }
    }
    if let Some(author) = &article.author {
        prop_assert!(!author.chars().any(is_control), "author {author:?}");
        prop_assert!(!author.trim().is_empty());
        prop_assert!(author.chars().count() <= MAX_TITLE_CHARS);
    }
    if let Some(language) = &article.language {
        prop_assert!(!language.chars().any(is_control), "language {language:?}");
        prop_assert!(!language.is_empty());
        prop_assert!(
            language.len() <= MAX_LANGUAGE_BYTES,
            "language is {} bytes",
            language.len()
        );
    }
    // The identity is indexed: bounded and storable (PostgreSQL refuses NUL).
    prop_assert!(!article.item_key.is_empty());
    prop_assert!(article.item_key.len() <= MAX_KEY_BYTES);
    prop_assert!(
        !article.item_key.chars().any(is_control),
        "item_key {:?}",
        article.item_key
    );
    for (field, url, max) in [
        ("url", &article.url, MAX_URL_BYTES),
        ("canonical_url", &article.canonical_url, MAX_KEY_BYTES),
    ] {
        if let Some(url) = url {
            prop_assert!(url.len() <= max, "{field} is {} bytes", url.len());
            prop_assert!(
                url.starts_with("http://") || url.starts_with("https://"),
                "{field} {url:?}"
            );
            prop_assert!(
                !url.chars().any(|c| is_control(c) || c.is_whitespace()),
                "{field} {url:?}"
            );
        }
    }
    prop_assert!(article.published_at <= now + MAX_FUTURE_SKEW);
    prop_assert_eq!(article.fingerprint.len(), 64);
    Ok(())
}

/// Parses the document and checks every article made from it.
fn check_document(document: &Document) -> Result<(), TestCaseError> {
    let body = document.bytes();
    match parse::parse_feed(&body, document.content_type.as_deref()) {
        Ok(feed) => {
            if document.is_well_formed() {
                prop_assert_eq!(feed.entries.len(), document.items.len());
            }
            for text in [&feed.title, &feed.site_url, &feed.language]
                .into_iter()
                .flatten()
            {
                prop_assert!(!text.chars().any(is_control), "feed field {text:?}");
            }
            for entry in &feed.entries {
                let article = normalize::to_article(entry, &feed_url(), now());
                check_article(&article, now())?;
                // Identity and change detection must not depend on anything but the entry.
                prop_assert_eq!(&normalize::item_key(entry), &article.item_key);
                prop_assert_eq!(&normalize::fingerprint(entry), &article.fingerprint);
            }
        }
        Err(error) => {
            prop_assert!(
                !document.is_well_formed(),
                "a well-formed document was rejected: {error}"
            );
            check_parse_error(&error, document)?;
        }
    }
    Ok(())
}

/// Starts of documents that get random bytes past the first few checks.
const PREFIXES: &[&str] = &[
    "",
    "<?xml version=\"1.0\" encoding=\"utf-8\"?>",
    "<rss version=\"2.0\"><channel><item><title>",
    "<rss><channel><item><description><![CDATA[",
    "<feed xmlns=\"http://www.w3.org/2005/Atom\"><entry><content type=\"html\">",
    "<rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\" xmlns=\"http://purl.org/rss/1.0/\"><item>",
    "{\"version\": \"https://jsonfeed.org/version/1.1\", \"items\": [{\"id\": \"",
    "\u{feff}<",
    "\u{ff}\u{fe}<",
];

proptest! {
    #![proptest_config(cases(64))]

    #[test]
    fn parsing_arbitrary_bytes_never_panics(
        prefix in prop::sample::select(PREFIXES),
        bytes in prop::collection::vec(any::<u8>(), 0..2048),
        content_type in prop::option::of("[a-z/+]{0,20}(; ?charset=[a-zA-Z0-9_-]{0,12})?"),
    ) {
        let body = [prefix.as_bytes(), &bytes].concat();
        if let Err(error) = parse::parse_feed(&body, content_type.as_deref()) {
            let message = error.to_string();
            prop_assert!(!message.contains('\n') && !message.chars().any(is_control), "{message:?}");
            prop_assert!(message.chars().count() <= 300, "{} characters", message.chars().count());
        }
    }

    #[test]
    fn generated_documents_parse_and_normalise_within_bounds(document in arbitrary_feeds::document()) {
        check_document(&document)?;
    }
}

// ---------------------------------------------------------------------------------------
// Store

/// A rule that fires on many generated items, so matching and alerting run too.
fn watch() -> Watch {
    let query = RuleQuery::parse("iran OR \"north korea\" OR sanctions OR title:x*").unwrap();
    Watch {
        matcher: Matcher::compile([Rule {
            name: "world".to_owned(),
            query,
            tags: Vec::new(),
        }]),
        ..Watch::default()
    }
}

static FEEDS: AtomicUsize = AtomicUsize::new(0);

/// Stores the document twice for a feed of its own: every distinct item is accounted
/// for the first time, and the second time nothing is new.
async fn store_twice(
    db: &TestDb,
    watch: &Arc<Watch>,
    document: &Document,
) -> Result<(), TestCaseError> {
    let url = format!(
        "https://feed{}.example/rss",
        FEEDS.fetch_add(1, Ordering::Relaxed)
    );
    let feeds = db
        .store
        .sync_feeds(&[FeedSpec {
            url: url.clone(),
            name: None,
        }])
        .await
        .unwrap();
    let base = Url::parse(&url).unwrap();
    let source = Source {
        feed_id: feeds[0].id,
        base_url: &base,
        label: &url,
        tags: &[],
        backfilled: true,
    };
    let body = document.bytes();
    let content_type = document.content_type.as_deref();
    let first = ingest::store_document(&db.store, watch, &source, &body, content_type, now()).await;
    let parsed = parse::parse_feed(&body, content_type);
    let summary = match (first, parsed) {
        (Ok(summary), Ok(feed)) => {
            prop_assert_eq!(summary.entries, feed.entries.len());
            let keys: HashSet<String> = feed.entries.iter().map(normalize::item_key).collect();
            let saved = &summary.saved;
            prop_assert!(
                saved.rejected.is_empty(),
                "items refused: {:?}",
                saved.rejected
            );
            prop_assert_eq!(
                saved.inserted.len() + saved.merged + saved.updated + saved.unchanged,
                keys.len(),
                "not every item accounted for: {:?}",
                saved
            );
            summary
        }
        (Err(IngestError::Parse(error)), Err(expected)) => {
            prop_assert_eq!(error, expected);
            return Ok(());
        }
        (first, parsed) => {
            return Err(TestCaseError::fail(format!(
                "store gave {first:?} where parsing gave {}",
                if parsed.is_ok() { "a feed" } else { "an error" }
            )));
        }
    };
    let again = ingest::store_document(&db.store, watch, &source, &body, content_type, now())
        .await
        .map_err(|error| TestCaseError::fail(format!("second store failed: {error}")))?;
    prop_assert!(
        again.saved.inserted.is_empty(),
        "stored again: {:?}",
        again.saved
    );
    prop_assert_eq!(
        again.saved.merged + again.saved.updated,
        0,
        "changed again: {:?}",
        again.saved
    );
    prop_assert!(again.saved.alerts.is_empty());
    prop_assert_eq!(
        again.saved.unchanged,
        summary.saved.inserted.len()
            + summary.saved.merged
            + summary.saved.updated
            + summary.saved.unchanged
    );
    Ok(())
}

/// A real database per backend, shared by the cases; each case stores into a feed of
/// its own. Runs its own runtime because proptest's runner is synchronous.
fn stored_documents_are_accounted_for(backend: Backend) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let db = runtime.block_on(TestDb::new(backend));
    let watch = Arc::new(watch());
    // Each case writes to a real database: far fewer of them.
    let config = match std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse::<u32>().ok())
    {
        Some(n) => ProptestConfig::with_cases((n / 8).max(1)),
        None => ProptestConfig::with_cases(16),
    };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&arbitrary_feeds::document(), |document| {
        runtime.block_on(store_twice(&db, &watch, &document))
    });
    if let Err(error) = result {
        panic!("{error}");
    }
}

#[test]
fn stored_documents_are_accounted_for_on_sqlite() {
    stored_documents_are_accounted_for(Backend::Sqlite);
}

#[test]
fn stored_documents_are_accounted_for_on_postgres() {
    stored_documents_are_accounted_for(Backend::Postgres);
}

// ---------------------------------------------------------------------------------------
// Config

/// Loads `bytes` as the main config file with an empty environment, and checks any
/// error points inside the file: `file:line:column: message`, on one line.
fn check_config(bytes: &[u8]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("herald.toml");
    std::fs::write(&path, bytes).unwrap();
    let result = config::load_with_env(&path, &|_| None);
    let Err(error) = result else {
        return Ok(());
    };
    let message = error.to_string();
    prop_assert!(!message.contains(['\n', '\r']), "not one line: {message:?}");
    match &error {
        ConfigError::Invalid { location, .. } => {
            let text = String::from_utf8_lossy(bytes);
            let lines: Vec<&str> = text.split('\n').collect();
            prop_assert!(
                location.file == path || location.file.starts_with(dir.path()),
                "error in {}",
                location.file.display()
            );
            if location.file == path {
                prop_assert!(
                    (1..=lines.len()).contains(&location.line),
                    "line {} of {}: {message}",
                    location.line,
                    lines.len()
                );
                let columns = lines[location.line - 1].chars().count() + 1;
                prop_assert!(
                    (1..=columns).contains(&location.column),
                    "column {} of {columns}: {message}",
                    location.column
                );
            }
            let prefix = format!("{location}: ");
            prop_assert!(message.starts_with(&prefix), "{message:?}");
        }
        ConfigError::Read { .. } => {
            prop_assert!(
                std::str::from_utf8(bytes).is_err(),
                "readable file: {message}"
            );
        }
        ConfigError::Environment { .. } | ConfigError::NotFound { .. } => {}
    }
    Ok(())
}

/// Lines a config file is made of, right and wrong.
const CONFIG_LINES: &[&str] = &[
    "[database]",
    "url = \"sqlite://herald.db\"",
    "url = \"postgres://user:pa$$word@db/herald\"",
    "url = \"mysql://x\"",
    "url = \"${HERALD_DB}\"",
    "[fetch]",
    "interval = \"5m\"",
    "interval = \"0s\"",
    "interval = \"forever\"",
    "timeout = \"1h 30m\"",
    "concurrency = 0",
    "concurrency = -1",
    "concurrency = 99999999999999999999",
    "per_host = 2",
    "max_body = \"10MB\"",
    "max_body = \"99999999999999GiB\"",
    "max_body = 0",
    "max_body = -5",
    "user_agent = \"a\\u0000b\"",
    "user_agent = \"\"",
    "max_redirects = 3",
    "private_networks = \"allow\"",
    "private_networks = \"10.0.0.0/8, ::1/129\"",
    "[api]",
    "listen = false",
    "listen = \"127.0.0.1:99999\"",
    "listen = \"line one\\nline two\"",
    "token = \"${TOKEN}\"",
    "token = \"\"",
    "max_connections = 0",
    "header_timeout = \"1ms\"",
    "[alerts]",
    "max_age = \"48h\"",
    "lease = \"1s\"",
    "[stories]",
    "threshold = 0.0",
    "threshold = nan",
    "threshold = inf",
    "threshold = 0.5",
    "window = \"72h\"",
    "[[feeds]]",
    "url = \"https://news.example.com/rss\"",
    "url = \"ftp://x\"",
    "url = \"https://a.example/\\u001b[2J\"",
    "name = \"World\"",
    "tags = [\"world\", \"\"]",
    "tags = \"world\"",
    "[sinks.slack]",
    "[sinks.\"bad name\"]",
    "type = \"slack\"",
    "type = \"webhook\"",
    "type = \"log\"",
    "url = \"https://hooks.slack.com/services/x\"",
    "secret = \"s\"",
    "[rules.world]",
    "[rules.\"\"]",
    "query = \"\\\"North Korea\\\" Iran\"",
    "query = \"-sport\"",
    "query = \"(((\"",
    "sinks = [\"slack\"]",
    "sinks = [\"missing\"]",
    "sinks = []",
    "include = [\"other.toml\"]",
    "include = [\"herald.toml\"]",
    "include = [\"/\"]",
    "include = [\"*.toml\"]",
    "x = \"\"\"multi",
    "line\"\"\"",
    "x = '''",
    "a = { b = 1 }",
    "[a.b.c]",
    "key = \"unterminated",
    "= 1",
    "[",
    "]]",
    "\"\\u00e9\" = 1",
    "# comment é 日本",
    "",
    "\t",
    "\r",
];

/// Each section of the main file with its keys.
const CONFIG_SECTIONS: &[(&str, &[&str])] = &[
    ("", &["include"]),
    ("[database]", &["url"]),
    (
        "[fetch]",
        &[
            "interval",
            "timeout",
            "concurrency",
            "per_host",
            "max_body",
            "user_agent",
            "max_redirects",
            "private_networks",
        ],
    ),
    (
        "[api]",
        &[
            "listen",
            "token",
            "max_connections",
            "header_timeout",
            "request_timeout",
            "idle_timeout",
        ],
    ),
    ("[alerts]", &["max_age", "give_up", "lease"]),
    ("[stories]", &["window", "threshold"]),
    ("[[feeds]]", &["url", "name", "interval", "tags"]),
    ("[sinks.slack]", &["type", "url", "secret"]),
    ("[rules.world]", &["query", "sinks", "tags"]),
];

/// Values of every type the keys take, right and wrong.
const CONFIG_VALUES: &[&str] = &[
    "\"5m\"",
    "\"0s\"",
    "\"1h 30m\"",
    "\"10MB\"",
    "\"512KiB\"",
    "\"127.0.0.1:8645\"",
    "\"https://news.example.com/rss\"",
    "\"sqlite://herald.db\"",
    "\"postgres://u:p@db/herald\"",
    "\"slack\"",
    "\"log\"",
    "\"${HOME}\"",
    "\"${\"",
    "\"$${x}\"",
    "\"iran -sport\"",
    "\"\"",
    "0",
    "1",
    "-1",
    "18446744073709551616",
    "0.5",
    "nan",
    "-inf",
    "true",
    "false",
    "[]",
    "[\"slack\"]",
    "[\"world\", 1]",
    "{ a = 1 }",
    "1979-05-27T07:32:00Z",
];

/// `text` as a TOML basic string: whatever it holds arrives in the value intact.
fn toml_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn config_value() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(CONFIG_VALUES).prop_map(str::to_owned),
        2 => arbitrary_feeds::text().prop_map(|text| toml_string(&text)),
        1 => "[ -~]{0,12}",
    ]
}

fn garbage_line() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => prop::sample::select(CONFIG_LINES).prop_map(str::to_owned),
        1 => "\\PC{0,30}",
        1 => any::<String>(),
    ]
}

/// A section with some of its keys, each once, and now and then a stray line.
fn config_section(
    header: &'static str,
    keys: &'static [&'static str],
) -> impl Strategy<Value = String> {
    (
        prop::sample::subsequence(keys, 0..=keys.len()),
        prop::collection::vec(config_value(), keys.len()),
        prop::option::weighted(0.15, garbage_line()),
    )
        .prop_map(move |(keys, values, garbage)| {
            let mut lines = vec![header.to_owned()];
            lines.extend(
                keys.iter()
                    .zip(values)
                    .map(|(key, value)| format!("{key} = {value}")),
            );
            lines.extend(garbage);
            lines.join("\n")
        })
}

/// Text that looks like a config file: sections with their own keys and any values.
fn config_text() -> impl Strategy<Value = String> {
    prop::sample::subsequence(CONFIG_SECTIONS, 0..=CONFIG_SECTIONS.len())
        .prop_flat_map(|sections| {
            sections
                .into_iter()
                .map(|(header, keys)| config_section(header, keys))
                .collect::<Vec<_>>()
        })
        .prop_map(|sections| sections.join("\n"))
}

/// Lines of config files in any order, known and arbitrary.
fn config_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(garbage_line(), 0..24).prop_map(|lines| lines.join("\n"))
}

proptest! {
    // A case costs a file write and a load: cheap enough for more of them.
    #![proptest_config(cases(256))]

    #[test]
    fn config_text_never_panics_and_errors_point_inside_the_file(text in config_text()) {
        check_config(text.as_bytes())?;
    }

    #[test]
    fn config_soup_never_panics_and_errors_point_inside_the_file(text in config_soup()) {
        check_config(text.as_bytes())?;
    }

    #[test]
    fn config_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check_config(&bytes)?;
    }
}
