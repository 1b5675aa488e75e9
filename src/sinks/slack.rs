//! Slack incoming-webhook payload: `{"text", "blocks"}`.
//!
//! Feed text is hostile. Slack's mrkdwn gives meaning to `<…>` (`<!channel>`,
//! `<@U123>`, `<https://evil|click>`) and decodes `&amp;`, `&lt;`, `&gt;`, so every
//! feed-derived string has exactly those three characters escaped
//! (<https://api.slack.com/reference/surfaces/formatting#escaping>); the only `<…>`
//! in a message is the article link herald builds itself.

use serde_json::{Value, json};
use url::Url;

use super::text::{fit_escaped, one_line};
use super::{also_reported, article_link, feed_label};
use crate::domain::alert::AlertMessage;

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

/// The JSON body posted to a Slack webhook.
pub fn payload(message: &AlertMessage) -> Value {
    let article = &message.article;
    let title = if article.title.trim().is_empty() {
        "(untitled)".to_owned()
    } else {
        one_line(&article.title)
    };
    let title_text = escaped(&title, MAX_TITLE);
    let headline = match article_link(article).and_then(|url| link_target(&url)) {
        Some(target) => format!("*<{target}|{title_text}>*"),
        None => format!("*{title_text}*"),
    };
    let mut blocks = vec![section(headline)];
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
    use crate::sinks::tests::message;

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
        message.also_reported_by = vec![
            ArticleSource {
                url: "https://wire.example/rss".to_owned(),
                name: Some("Wire".to_owned()),
            },
            ArticleSource {
                url: "https://paper.example/rss".to_owned(),
                name: None,
            },
        ];
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
}
