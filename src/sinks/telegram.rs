//! Telegram through the Bot API's `sendMessage`, in HTML parse mode: feed
//! text has `&`, `<` and `>` escaped, so the only tags are herald's own `<b>`,
//! `<i>` and `<a href>` (its href escaped too). Link previews are off: the
//! message is the alert, not the page.
//!
//! The bot token is part of the method's URL path; it is never shown (errors
//! name the host only). Telegram answers a flood with 429 and
//! `parameters.retry_after` in the body, often without a `Retry-After`
//! header; that wait is honoured.

use std::time::Duration;

use serde_json::{Value, json};
use url::Url;

use super::template::Markup;
use super::text::{fit, one_line};
use super::{Digest, article_link, display_title, outlets};
use crate::domain::alert::AlertMessage;

/// A message's text may be at most 4,096 characters after entity parsing;
/// herald keeps what it sends, tags included, under that.
pub const MAX_TEXT: usize = 4096;
const MAX_TITLE: usize = 300;
const MAX_SUMMARY: usize = 1500;
const MAX_CONTEXT: usize = 600;
/// Stories per digest message (each at most ~MAX_DIGEST_ENTRY characters).
pub const DIGEST_CAPACITY: usize = 15;
const MAX_DIGEST_TITLE: usize = 150;

/// A bot's token and the chat it writes to.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TelegramTarget {
    pub api_url: Url,
    pub token: String,
    /// A chat id (`-100…`) or a channel's `@name`.
    pub chat_id: String,
}

impl TelegramTarget {
    /// `{api_url}/bot{token}/sendMessage`: a credential, never shown.
    pub fn send_message_url(&self) -> Url {
        let mut url = self.api_url.clone();
        let path = format!(
            "{}/bot{}/sendMessage",
            url.path().trim_end_matches('/'),
            self.token
        );
        url.set_path(&path);
        url
    }
}

fn escape(text: &str) -> String {
    Markup::Html.escape(text)
}

fn body(target: &TelegramTarget, text: String) -> Value {
    json!({
        "chat_id": target.chat_id,
        "text": text,
        "parse_mode": "HTML",
        "link_preview_options": {"is_disabled": true},
    })
}

/// The message for one alert.
pub fn payload(target: &TelegramTarget, message: &AlertMessage) -> Value {
    let article = &message.article;
    let title = escape(&fit(&display_title(article), MAX_TITLE));
    let mut text = match article_link(article) {
        Some(url) => format!("<b><a href=\"{}\">{title}</a></b>", escape(url.as_str())),
        None => format!("<b>{title}</b>"),
    };
    if let Some(summary) = article.summary.as_deref().map(one_line)
        && !summary.is_empty()
    {
        text.push_str(&format!("\n{}", escape(&fit(&summary, MAX_SUMMARY))));
    }
    let context = format!(
        "{} · rule {}",
        outlets(message),
        one_line(&message.rule.name)
    );
    text.push_str(&format!("\n<i>{}</i>", escape(&fit(&context, MAX_CONTEXT))));
    body(target, text)
}

/// A message whose text an operator's template wrote (values HTML-escaped).
pub fn text_payload(target: &TelegramTarget, text: &str) -> Value {
    body(target, fit(text, MAX_TEXT))
}

/// The message for a digest: its heading, then a linked title per line.
pub fn digest_payload(target: &TelegramTarget, digest: &Digest) -> Value {
    let shown = &digest.items[..digest.items.len().min(DIGEST_CAPACITY)];
    let mut text = format!("<b>{}</b>", escape(&digest.heading(shown.len())));
    for message in shown {
        let title = escape(&fit(&display_title(&message.article), MAX_DIGEST_TITLE));
        match article_link(&message.article) {
            Some(url) => text.push_str(&format!(
                "\n• <a href=\"{}\">{title}</a>",
                escape(url.as_str())
            )),
            None => text.push_str(&format!("\n• {title}")),
        }
    }
    body(target, text)
}

/// The wait Telegram asks for in a 429's body (`parameters.retry_after`).
pub fn retry_after(body: &str) -> Option<Duration> {
    let parsed: Value = serde_json::from_str(body).ok()?;
    parsed["parameters"]["retry_after"]
        .as_u64()
        .map(Duration::from_secs)
}

/// A 400 that says the chat is not there: every message would fail alike.
pub fn chat_is_gone(body: &str) -> bool {
    let description = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|parsed| parsed["description"].as_str().map(str::to_lowercase))
        .unwrap_or_default();
    description.contains("chat not found") || description.contains("group chat was upgraded")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::tests::{digest, long_digest, message};

    fn target() -> TelegramTarget {
        TelegramTarget {
            api_url: Url::parse("https://api.telegram.org").unwrap(),
            token: "123:ABC".to_owned(),
            chat_id: "-1001".to_owned(),
        }
    }

    #[test]
    fn the_method_url_holds_the_token() {
        assert_eq!(
            target().send_message_url().as_str(),
            "https://api.telegram.org/bot123:ABC/sendMessage"
        );
    }

    #[test]
    fn feed_text_cannot_add_tags_or_links() {
        let mut hostile = message();
        hostile.article.title = "</a><a href=\"https://evil.example\">x</a> <b>".to_owned();
        hostile.article.summary = Some("<script>1</script> & more".to_owned());
        let body = payload(&target(), &hostile);
        let text = body["text"].as_str().unwrap();
        assert_eq!(text.matches("<a ").count(), 1, "{text}");
        assert!(!text.contains("evil.example\">"), "{text}");
        assert!(
            text.contains("&lt;script&gt;1&lt;/script&gt; &amp; more"),
            "{text}"
        );
        assert_eq!(body["parse_mode"], "HTML");
        assert_eq!(body["chat_id"], "-1001");
    }

    /// The text as Telegram counts it: after its entities are parsed.
    fn visible(html: &str) -> usize {
        let mut count = 0;
        let mut in_tag = false;
        let mut in_entity = false;
        for c in html.chars() {
            match c {
                '<' => in_tag = true,
                '>' if in_tag => in_tag = false,
                '&' if !in_tag => {
                    in_entity = true;
                    count += 1;
                }
                ';' if in_entity => in_entity = false,
                _ if in_tag || in_entity => {}
                _ => count += 1,
            }
        }
        count
    }

    #[test]
    fn long_text_and_full_digests_fit_the_limit() {
        let mut big = message();
        big.article.summary = Some("&".repeat(50_000));
        big.article.title = "<".repeat(5_000);
        let text = payload(&target(), &big)["text"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(visible(&text) <= MAX_TEXT, "{}", visible(&text));
        let full = digest_payload(&target(), &long_digest(DIGEST_CAPACITY + 3));
        let text = full["text"].as_str().unwrap();
        assert!(visible(text) <= MAX_TEXT, "{}", visible(text));
        assert_eq!(text.lines().count(), 1 + DIGEST_CAPACITY);
        let small = digest_payload(&target(), &digest(2));
        assert_eq!(small["text"].as_str().unwrap().lines().count(), 3);
    }

    #[test]
    fn answers_say_how_long_to_wait_and_when_the_chat_is_gone() {
        assert_eq!(
            retry_after(r#"{"ok":false,"error_code":429,"parameters":{"retry_after":12}}"#),
            Some(Duration::from_secs(12))
        );
        assert_eq!(retry_after("not json"), None);
        assert!(chat_is_gone(
            r#"{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}"#
        ));
        assert!(!chat_is_gone(
            r#"{"ok":false,"error_code":400,"description":"Bad Request: message is too long"}"#
        ));
    }
}
