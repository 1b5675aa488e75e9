//! Slack incoming-webhook payload: `{"text", "blocks"}`.
//!
//! Feed text is hostile. Slack's mrkdwn gives meaning to `<…>` (`<!channel>`,
//! `<@U123>`, `<https://evil|click>`) and decodes `&amp;`, `&lt;`, `&gt;`, so every
//! feed-derived string has exactly those three characters escaped
//! (<https://api.slack.com/reference/surfaces/formatting#escaping>); the only `<…>`
//! in a message is the article link herald builds itself.

use serde_json::{Value, json};
use url::Url;

use super::text::{fit, fit_escaped, one_line};
use super::{Digest, also_reported, article_link, display_title, feed_label, outlets};
use crate::domain::alert::AlertMessage;
use crate::domain::article::Article;

/// Block Kit allows 3000 characters in a section's text; herald keeps well below.
pub const MAX_SECTION_TEXT: usize = 3000;
/// Title shown as the link text; long enough for any real headline.
const MAX_TITLE: usize = 250;
/// A "short summary": a notification, not the article.
const MAX_SUMMARY: usize = 600;
/// Rule and feed names in the context line.
const MAX_NAME: usize = 100;
/// The notification fallback (`text`); Slack allows 40,000 but shows about a line.
pub const MAX_FALLBACK: usize = 300;
/// Slack truncates or rejects links longer than this; such a URL is left out.
const MAX_URL: usize = 2000;
/// Block Kit rejects a message with more blocks than this.
pub const MAX_BLOCKS: usize = 50;
/// Stories per digest message: each takes one section, after the heading's.
pub const DIGEST_CAPACITY: usize = MAX_BLOCKS - 1;
/// A digest's heading: the schedule is configured, but may still be long.
const MAX_HEADING: usize = 300;
/// A digest entry's outlet list; the count comes first, so a cut loses names only.
const MAX_OUTLETS: usize = 500;
/// A digest entry's fixed text: markup, separators and the publication time.
const DIGEST_ENTRY_OVERHEAD: usize = 64;
// Every part of a digest entry at its longest still fits one section.
const _: () = assert!(
    MAX_URL + MAX_TITLE + MAX_NAME + MAX_OUTLETS + DIGEST_ENTRY_OVERHEAD <= MAX_SECTION_TEXT
);

/// The JSON body posted to a Slack webhook.
pub fn payload(message: &AlertMessage) -> Value {
    let article = &message.article;
    let title = display_title(article);
    let mut blocks = vec![section(headline(article))];
    if let Some(summary) = article.summary.as_deref().map(one_line)
        && !summary.is_empty()
    {
        blocks.push(section(escaped(&summary, MAX_SUMMARY)));
    }
    let mut context = format!(
        "Rule *{}* · {} · {}",
        escaped(&message.rule.name, MAX_NAME),
        escaped(&feed_label(article), MAX_NAME),
        article.published_at.format("%Y-%m-%d %H:%M UTC"),
    );
    if let Some(spread) = also_reported(message) {
        context.push_str(" · ");
        context.push_str(&spread);
    }
    blocks.push(json!({
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": context}],
    }));
    let fallback = escaped(
        &format!("{}: {}", one_line(&message.rule.name), title),
        MAX_FALLBACK,
    );
    json!({"text": fallback, "blocks": blocks})
}

/// The JSON body posted to a Slack webhook for a digest: a heading section,
/// then one section per story. Stories past [`DIGEST_CAPACITY`] are left out
/// (the heading says how many are shown) rather than have Slack refuse the
/// whole message.
pub fn digest_payload(digest: &Digest) -> Value {
    let shown = &digest.items[..digest.items.len().min(DIGEST_CAPACITY)];
    let heading = digest.heading(shown.len());
    let mut blocks = Vec::with_capacity(shown.len() + 1);
    blocks.push(section(format!("*{}*", escaped(&heading, MAX_HEADING))));
    blocks.extend(shown.iter().map(|message| section(digest_entry(message))));
    let titles: Vec<String> = shown
        .iter()
        .map(|message| display_title(&message.article))
        .collect();
    // The notification shows about a line: the heading, then as many titles as fit.
    let fallback = escaped(&format!("{heading}: {}", titles.join("; ")), MAX_FALLBACK);
    json!({"text": fallback, "blocks": blocks})
}

/// One story of a digest: its linked title, then what fired and who ran it.
fn digest_entry(message: &AlertMessage) -> String {
    let article = &message.article;
    format!(
        "{}\nRule *{}* · {} · {}",
        headline(article),
        escaped(&message.rule.name, MAX_NAME),
        article.published_at.format("%Y-%m-%d %H:%M UTC"),
        escaped(&outlets(message), MAX_OUTLETS),
    )
}

/// The title in bold, linked to the article when it has a link Slack can carry.
fn headline(article: &Article) -> String {
    let title_text = escaped(&display_title(article), MAX_TITLE);
    match article_link(article).and_then(|url| link_target(&url)) {
        Some(target) => format!("*<{target}|{title_text}>*"),
        None => format!("*{title_text}*"),
    }
}

/// Slack cuts a message's `text` beyond this many characters
/// (<https://api.slack.com/methods/chat.postMessage#truncating>).
pub const MAX_TEXT: usize = 40_000;

/// A message whose text an operator's template wrote (already escaped for mrkdwn).
pub fn text_payload(text: &str) -> Value {
    json!({"text": fit(text, MAX_TEXT)})
}

fn section(text: String) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": text}})
}

/// Feed text made inert for mrkdwn and cut to `max` (escapes counted, never split).
pub fn escaped(text: &str, max: usize) -> String {
    fit_escaped(text, max, escape_into)
}

fn escape_into(grapheme: &str, out: &mut String) {
    for c in grapheme.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            _ => out.push(c),
        }
    }
}

/// The URL as it may appear inside `<…|…>`: `|`, `<` and `>` would end the link
/// early, so they are percent-encoded (same resource, RFC 3986 §2.1); `&` is escaped
/// like all message text. Too long a URL is dropped rather than cut, since a cut
/// URL points elsewhere.
fn link_target(url: &Url) -> Option<String> {
    let mut target = String::with_capacity(url.as_str().len());
    for c in url.as_str().chars() {
        match c {
            '|' => target.push_str("%7C"),
            '<' => target.push_str("%3C"),
            '>' => target.push_str("%3E"),
            '&' => target.push_str("&amp;"),
            _ => target.push(c),
        }
    }
    (target.len() <= MAX_URL).then_some(target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::article::ArticleSource;
    use crate::sinks::tests::{HOSTILE, digest, long_digest, message, two_other_outlets};
    use crate::sinks::text::length;

    fn headline(payload: &Value) -> &str {
        payload["blocks"][0]["text"]["text"].as_str().unwrap()
    }

    /// Every mrkdwn string of the payload, where Slack would parse `<…>`.
    fn mrkdwn_texts(payload: &Value) -> Vec<String> {
        let mut texts = vec![payload["text"].as_str().unwrap().to_owned()];
        for block in payload["blocks"].as_array().unwrap() {
            if let Some(text) = block["text"]["text"].as_str() {
                texts.push(text.to_owned());
            }
            for element in block["elements"].as_array().into_iter().flatten() {
                texts.push(element["text"].as_str().unwrap().to_owned());
            }
        }
        texts
    }

    /// The `<…>` spans of a mrkdwn string, as Slack would read them.
    fn angle_spans(text: &str) -> Vec<&str> {
        text.split('<')
            .skip(1)
            .filter_map(|rest| rest.split_once('>').map(|(span, _)| span))
            .collect()
    }

    #[test]
    fn payload_has_text_and_blocks() {
        let payload = payload(&message());
        let keys: Vec<&String> = payload.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["blocks", "text"]);
        assert_eq!(
            payload["text"],
            "nk-iran: North Korean delegation visits Tehran"
        );
        assert_eq!(
            headline(&payload),
            "*<https://www.miamiherald.com/news/article1.html?a=1&amp;b=2|North Korean delegation visits Tehran>*"
        );
        assert_eq!(payload["blocks"][1]["type"], "section");
        assert_eq!(
            payload["blocks"][1]["text"]["text"],
            "A rare visit by officials from Pyongyang."
        );
        assert_eq!(
            payload["blocks"][2],
            json!({"type": "context", "elements": [{"type": "mrkdwn",
                "text": "Rule *nk-iran* · Miami Herald · 2026-03-01 12:30 UTC"}]})
        );
    }

    #[test]
    fn a_story_carried_elsewhere_says_how_widely() {
        let mut message = message();
        message.also_reported_by = two_other_outlets();
        let payload = payload(&message);
        assert_eq!(
            payload["blocks"][2]["elements"][0]["text"],
            "Rule *nk-iran* · Miami Herald · 2026-03-01 12:30 UTC · also reported by 2 other outlets"
        );
    }

    #[test]
    fn feed_text_cannot_mention_or_link() {
        fn check(title: &str, expected_link_text: &str) {
            let mut message = message();
            message.article.title = title.to_owned();
            message.article.summary = Some(title.to_owned());
            message.article.feeds[0].name = Some(title.to_owned());
            let payload = payload(&message);
            assert!(headline(&payload).ends_with(&format!("|{expected_link_text}>*")));
            for text in mrkdwn_texts(&payload) {
                let spans = angle_spans(&text);
                assert!(
                    spans
                        .iter()
                        .all(|span| span.starts_with("https://www.miamiherald.com/")),
                    "{title:?} produced {spans:?} in {text:?}"
                );
            }
        }
        check(
            "<!channel> URGENT <https://evil.example|click>",
            "&lt;!channel&gt; URGENT &lt;https://evil.example|click&gt;",
        );
        check("<!here> now", "&lt;!here&gt; now");
        check("ping <@U123>", "ping &lt;@U123&gt;");
        check("AT&T &amp; co", "AT&amp;T &amp;amp; co");
        check("a > b < c", "a &gt; b &lt; c");
    }

    #[test]
    fn article_url_is_made_safe_or_dropped() {
        fn check(url: &str, expected_headline: &str) {
            let mut message = message();
            message.article.url = Some(url.to_owned());
            message.article.canonical_url = None;
            message.article.title = "T".to_owned();
            assert_eq!(headline(&payload(&message)), expected_headline, "{url}");
        }
        check(
            "https://example.com/a|b?q=<x>",
            "*<https://example.com/a%7Cb?q=%3Cx%3E|T>*",
        );
        check("https://evil.example|click", "*T*");
        check("javascript:alert(1)", "*T*");
        check("ftp://example.com/file", "*T*");
        check("not a url", "*T*");
        check(&format!("https://example.com/{}", "a".repeat(3000)), "*T*");
    }

    #[test]
    fn canonical_url_stands_in_for_an_unusable_link() {
        let mut message = message();
        message.article.url = Some("javascript:alert(1)".to_owned());
        message.article.title = "T".to_owned();
        assert_eq!(
            headline(&payload(&message)),
            "*<https://www.miamiherald.com/news/article1.html|T>*"
        );
    }

    #[test]
    fn long_multibyte_text_stays_within_block_kit_limits() {
        let mut message = message();
        message.article.title = "Пхеньян и Тегеран 😀 & <".repeat(500);
        message.article.summary = Some("é&<>".repeat(5000));
        message.article.feeds[0].name = Some("ü".repeat(10_000));
        message.rule.name = "r&".repeat(1000);
        let payload = payload(&message);
        let body = payload.to_string();
        let reparsed: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(reparsed, payload);
        assert!(super::super::text::length(payload["text"].as_str().unwrap()) <= MAX_FALLBACK);
        let blocks = payload["blocks"].as_array().unwrap();
        assert!(blocks.len() <= 50);
        for text in mrkdwn_texts(&payload) {
            assert!(super::super::text::length(&text) <= MAX_SECTION_TEXT);
            // A cut never leaves half an escape behind.
            let stray = text
                .replace("&amp;", "")
                .replace("&lt;", "")
                .replace("&gt;", "");
            assert!(!stray.contains('&'), "{text}");
        }
        assert!(headline(&payload).ends_with("…>*"));
    }

    #[test]
    fn untitled_article_without_summary() {
        let mut message = message();
        message.article.title = "  ".to_owned();
        message.article.summary = None;
        message.article.url = None;
        message.article.canonical_url = None;
        let payload = payload(&message);
        assert_eq!(headline(&payload), "*(untitled)*");
        assert_eq!(payload["blocks"].as_array().unwrap().len(), 2);
    }

    fn section_text(payload: &Value, index: usize) -> &str {
        payload["blocks"][index]["text"]["text"].as_str().unwrap()
    }

    /// Text left after the three escapes: any `&` in it is raw or a half escape.
    fn unescaped_ampersands(text: &str) -> bool {
        text.replace("&amp;", "")
            .replace("&lt;", "")
            .replace("&gt;", "")
            .contains('&')
    }

    #[test]
    fn digest_lists_each_story_with_its_rule_and_outlets() {
        let mut digest = digest(3);
        digest.items[1].also_reported_by = two_other_outlets();
        digest.items[2].article.url = None;
        digest.items[2].article.canonical_url = None;
        let payload = digest_payload(&digest);
        let keys: Vec<&String> = payload.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["blocks", "text"]);
        assert_eq!(
            payload["text"],
            "3 stories — every 1h: Story 1; Story 2; Story 3"
        );
        let blocks = payload["blocks"].as_array().unwrap();
        assert_eq!(blocks.len(), 4);
        assert!(blocks.iter().all(|block| block["type"] == "section"));
        assert_eq!(section_text(&payload, 0), "*3 stories — every 1h*");
        assert_eq!(
            section_text(&payload, 1),
            "*<https://www.miamiherald.com/news/article1.html?a=1&amp;b=2|Story 1>*\n\
             Rule *nk-iran* · 2026-03-01 12:30 UTC · Miami Herald"
        );
        assert_eq!(
            section_text(&payload, 2),
            "*<https://www.miamiherald.com/news/article1.html?a=1&amp;b=2|Story 2>*\n\
             Rule *nk-iran* · 2026-03-01 12:30 UTC · Miami Herald · \
             also reported by 2 other outlets: Wire, paper.example"
        );
        assert_eq!(
            section_text(&payload, 3),
            "*Story 3*\nRule *nk-iran* · 2026-03-01 12:30 UTC · Miami Herald"
        );
    }

    #[test]
    fn digest_heading_numbers_its_part() {
        let mut digest = digest(1);
        digest.part = 2;
        digest.parts = 3;
        let payload = digest_payload(&digest);
        assert_eq!(
            section_text(&payload, 0),
            "*1 story — every 1h (part 2 of 3)*"
        );
        assert_eq!(payload["text"], "1 story — every 1h (part 2 of 3): Story 1");
    }

    #[test]
    fn digest_feed_text_cannot_mention_or_link() {
        let mut digest = digest(3);
        for item in &mut digest.items {
            item.article.title = HOSTILE.to_owned();
            item.article.feeds[0].name = Some(HOSTILE.to_owned());
            item.also_reported_by = vec![ArticleSource {
                url: "https://wire.example/rss".to_owned(),
                name: Some(HOSTILE.to_owned()),
            }];
        }
        digest.schedule = HOSTILE.to_owned();
        let payload = digest_payload(&digest);
        let inert = "&lt;@here&gt; *bold* [x](http://evil) &amp; co";
        assert_eq!(
            section_text(&payload, 1),
            format!(
                "*<https://www.miamiherald.com/news/article1.html?a=1&amp;b=2|{inert}>*\n\
                 Rule *nk-iran* · 2026-03-01 12:30 UTC · {inert} · \
                 also reported by 1 other outlet: {inert}"
            )
        );
        assert!(section_text(&payload, 0).contains(inert));
        for text in mrkdwn_texts(&payload) {
            let spans = angle_spans(&text);
            assert!(
                spans
                    .iter()
                    .all(|span| span.starts_with("https://www.miamiherald.com/")),
                "{spans:?} in {text:?}"
            );
            assert!(!unescaped_ampersands(&text), "{text}");
        }
        assert!(!payload.to_string().contains("<@here>"));
    }

    #[test]
    fn full_digest_of_long_text_stays_within_block_kit_limits() {
        let digest = long_digest(DIGEST_CAPACITY);
        let payload = digest_payload(&digest);
        let reparsed: Value = serde_json::from_str(&payload.to_string()).unwrap();
        assert_eq!(reparsed, payload);
        let blocks = payload["blocks"].as_array().unwrap();
        assert_eq!(blocks.len(), MAX_BLOCKS);
        assert!(length(payload["text"].as_str().unwrap()) <= MAX_FALLBACK);
        for text in mrkdwn_texts(&payload) {
            assert!(length(&text) <= MAX_SECTION_TEXT, "{}", length(&text));
            assert!(!unescaped_ampersands(&text), "{text}");
            for span in angle_spans(&text) {
                assert!(span.starts_with("https://example.com/"), "{span}");
            }
        }
        assert!(section_text(&payload, 0).ends_with("… (part 3 of 9)*"));
        for index in 1..blocks.len() {
            let entry = section_text(&payload, index);
            // The link survives (it is never cut), and so does the outlet count.
            assert!(entry.starts_with("*<https://example.com/"), "{entry}");
            assert!(entry.contains("…>*\nRule *"), "{entry}");
            assert!(
                entry.contains("also reported by 200 other outlets: "),
                "{entry}"
            );
            assert!(entry.ends_with('…'), "{entry}");
        }
    }

    #[test]
    fn digest_past_capacity_shows_what_fits_and_says_so() {
        let payload = digest_payload(&digest(DIGEST_CAPACITY + 11));
        assert_eq!(payload["blocks"].as_array().unwrap().len(), MAX_BLOCKS);
        assert_eq!(
            section_text(&payload, 0),
            "*60 stories — every 1h (49 shown)*"
        );
    }
}
