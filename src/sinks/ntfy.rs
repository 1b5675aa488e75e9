//! ntfy (<https://ntfy.sh>, or a self-hosted server): a notification
//! published as JSON to the server's root, naming the topic, so that titles
//! in any script arrive intact (HTTP headers would need encoding). Plain
//! text only, no `markdown`: feed text cannot format or link anything; the
//! one link is the notification's `click`, built by herald.

use serde_json::{Value, json};
use url::Url;

use super::text::one_line;
use super::{Digest, article_link, display_title, outlets};
use crate::domain::alert::AlertMessage;

/// ntfy's default `message-size-limit`, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 4096;
const MAX_TITLE_BYTES: usize = 250;
/// Titles listed in one digest notification.
pub const DIGEST_CAPACITY: usize = 30;

/// A topic URL split into the server's root (where JSON is published) and
/// the topic; `None` unless the path is exactly one non-empty segment.
pub fn split_topic_url(url: &Url) -> Option<(Url, String)> {
    let mut segments = url.path_segments()?;
    let topic = segments.next().filter(|topic| !topic.is_empty())?;
    if segments.next().is_some_and(|rest| !rest.is_empty()) || segments.next().is_some() {
        return None;
    }
    let mut root = url.clone();
    root.set_path("/");
    root.set_query(None);
    root.set_fragment(None);
    Some((root, topic.to_owned()))
}

/// `text` cut to at most `max` bytes, on a character boundary, ending in
/// `…` when cut.
fn fit_bytes(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

fn publish(topic: &str, title: &str, message: &str, click: Option<Url>) -> Value {
    let mut body = json!({
        "topic": topic,
        "title": fit_bytes(&one_line(title), MAX_TITLE_BYTES),
        "message": fit_bytes(message, MAX_MESSAGE_BYTES),
        "tags": ["newspaper"],
    });
    if let Some(click) = click {
        body["click"] = click.as_str().into();
    }
    body
}

/// The notification for one alert.
pub fn payload(topic: &str, message: &AlertMessage) -> Value {
    let article = &message.article;
    let mut text = String::new();
    if let Some(summary) = article.summary.as_deref().map(one_line)
        && !summary.is_empty()
    {
        text.push_str(&fit_bytes(&summary, MAX_MESSAGE_BYTES / 2));
        text.push_str("\n\n");
    }
    text.push_str(&format!(
        "{} · rule {}",
        outlets(message),
        one_line(&message.rule.name)
    ));
    publish(topic, &display_title(article), &text, article_link(article))
}

/// A notification whose text an operator's template wrote.
pub fn text_payload(topic: &str, message: &AlertMessage, text: &str) -> Value {
    publish(
        topic,
        &display_title(&message.article),
        text,
        article_link(&message.article),
    )
}

/// The notification for a digest: its heading, then a title per line.
pub fn digest_payload(topic: &str, digest: &Digest) -> Value {
    let shown = &digest.items[..digest.items.len().min(DIGEST_CAPACITY)];
    let lines: Vec<String> = shown
        .iter()
        .map(|message| format!("• {}", fit_bytes(&display_title(&message.article), 120)))
        .collect();
    publish(topic, &digest.heading(shown.len()), &lines.join("\n"), None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::tests::{HOSTILE, digest, message};

    #[test]
    fn a_topic_url_is_a_server_and_one_topic() {
        let url = Url::parse("https://ntfy.example:8443/newsdesk").unwrap();
        let (root, topic) = split_topic_url(&url).unwrap();
        assert_eq!(root.as_str(), "https://ntfy.example:8443/");
        assert_eq!(topic, "newsdesk");
        for bad in ["https://ntfy.sh/", "https://ntfy.sh", "https://ntfy.sh/a/b"] {
            assert!(
                split_topic_url(&Url::parse(bad).unwrap()).is_none(),
                "{bad}"
            );
        }
    }

    #[test]
    fn an_alert_is_plain_text_with_herald_s_own_link() {
        let mut hostile = message();
        hostile.article.summary = Some(HOSTILE.to_owned());
        let body = payload("newsdesk", &hostile);
        assert_eq!(body["topic"], "newsdesk");
        assert!(body.get("markdown").is_none());
        assert_eq!(body["click"], hostile.article.url.clone().unwrap().as_str());
        assert!(body["message"].as_str().unwrap().starts_with(HOSTILE));
    }

    #[test]
    fn a_huge_summary_is_cut_within_the_byte_limit() {
        let mut big = message();
        big.article.summary = Some("é".repeat(10_000));
        big.article.title = "ü".repeat(1000);
        let body = payload("t", &big);
        assert!(body["message"].as_str().unwrap().len() <= MAX_MESSAGE_BYTES);
        assert!(body["title"].as_str().unwrap().len() <= MAX_TITLE_BYTES);
        let digest = digest_payload("t", &digest(3));
        assert_eq!(digest["message"].as_str().unwrap().lines().count(), 3);
    }
}
