//! Microsoft Teams through a Workflows ("When a Teams webhook request is
//! received") URL: an Adaptive Card in a `message` envelope. The retired
//! Office 365 connector's MessageCard is not sent.
//!
//! Adaptive Cards render a markdown subset in `TextBlock`s, so every
//! feed-derived string goes in a `TextRun` of a `RichTextBlock`, which is
//! shown as written: a headline holding `[click](https://evil)` stays text.
//! The one link is the card's action, built by herald.

use serde_json::{Value, json};

use super::text::{fit, one_line};
use super::{Digest, article_link, display_title, outlets};
use crate::domain::alert::AlertMessage;

/// Teams refuses a message over about 28 KB; each card stays far below it.
pub const MAX_MESSAGE_BYTES: usize = 28 * 1024;
const MAX_TITLE: usize = 300;
const MAX_SUMMARY: usize = 1500;
const MAX_CONTEXT: usize = 600;
/// A template's text: at four UTF-8 bytes a character, under the size limit.
const MAX_TEMPLATE_TEXT: usize = 5000;
/// Stories per digest card: each at most ~MAX_DIGEST_ENTRY characters.
pub const DIGEST_CAPACITY: usize = 20;
/// Characters of a digest entry: at four UTF-8 bytes each, a full card stays
/// under the size limit.
const MAX_DIGEST_ENTRY: usize = 240;
const MAX_DIGEST_URL: usize = 300;

fn run(text: &str) -> Value {
    json!({"type": "TextRun", "text": text})
}

fn block(inlines: Vec<Value>) -> Value {
    json!({"type": "RichTextBlock", "inlines": inlines})
}

fn card(body: Vec<Value>, actions: Vec<Value>) -> Value {
    let mut content = json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    });
    if !actions.is_empty() {
        content["actions"] = Value::Array(actions);
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": content,
        }],
    })
}

/// The card for one alert.
pub fn payload(message: &AlertMessage) -> Value {
    let article = &message.article;
    let mut title = run(&fit(&display_title(article), MAX_TITLE));
    title["weight"] = "bolder".into();
    title["size"] = "medium".into();
    let mut body = vec![block(vec![title])];
    if let Some(summary) = article.summary.as_deref().map(one_line)
        && !summary.is_empty()
    {
        body.push(block(vec![run(&fit(&summary, MAX_SUMMARY))]));
    }
    let mut context = run(&fit(
        &format!(
            "{} · rule {}",
            outlets(message),
            one_line(&message.rule.name)
        ),
        MAX_CONTEXT,
    ));
    context["isSubtle"] = true.into();
    body.push(block(vec![context]));
    let actions = article_link(article)
        .map(|url| {
            vec![json!({"type": "Action.OpenUrl", "title": "Open article", "url": url.as_str()})]
        })
        .unwrap_or_default();
    card(body, actions)
}

/// A card whose text an operator's template wrote (plain text: shown as is).
pub fn text_payload(text: &str) -> Value {
    card(
        vec![block(vec![run(&fit(text, MAX_TEMPLATE_TEXT))])],
        Vec::new(),
    )
}

/// The card for a digest: its heading, then each story's title (linked) and outlets.
pub fn digest_payload(digest: &Digest) -> Value {
    let shown = &digest.items[..digest.items.len().min(DIGEST_CAPACITY)];
    let mut heading = run(&digest.heading(shown.len()));
    heading["weight"] = "bolder".into();
    let mut body = vec![block(vec![heading])];
    for message in shown {
        let mut title = run(&fit(&display_title(&message.article), MAX_DIGEST_ENTRY / 2));
        // A link too long to fit the card's share is left out, never cut.
        if let Some(url) = article_link(&message.article)
            && url.as_str().len() <= MAX_DIGEST_URL
        {
            title["selectAction"] = json!({"type": "Action.OpenUrl", "url": url.as_str()});
        }
        let mut context = run(&fit(
            &format!(
                " — {} · rule {}",
                outlets(message),
                one_line(&message.rule.name)
            ),
            MAX_DIGEST_ENTRY / 2,
        ));
        context["isSubtle"] = true.into();
        body.push(block(vec![title, context]));
    }
    card(body, Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::tests::{HOSTILE, digest, long_digest, message};

    fn content(payload: &Value) -> &Value {
        &payload["attachments"][0]["content"]
    }

    #[test]
    fn an_alert_is_an_adaptive_card_in_a_message() {
        let payload = payload(&message());
        assert_eq!(payload["type"], "message");
        assert_eq!(
            payload["attachments"][0]["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        let card = content(&payload);
        assert_eq!(card["type"], "AdaptiveCard");
        assert_eq!(card["actions"][0]["type"], "Action.OpenUrl");
        assert_eq!(
            card["actions"][0]["url"],
            message().article.url.unwrap().as_str()
        );
    }

    #[test]
    fn feed_text_only_ever_sits_in_text_runs() {
        let mut hostile = message();
        hostile.article.title = format!("[click](https://evil.example) **bold** {HOSTILE}");
        hostile.article.summary = Some(HOSTILE.to_owned());
        let payload = payload(&hostile);
        for block in content(&payload)["body"].as_array().unwrap() {
            assert_eq!(block["type"], "RichTextBlock", "{block}");
            for inline in block["inlines"].as_array().unwrap() {
                assert_eq!(inline["type"], "TextRun", "{inline}");
            }
        }
        let actions = content(&payload)["actions"].as_array().unwrap();
        assert_eq!(actions.len(), 1);
        assert!(!actions[0]["url"].as_str().unwrap().contains("evil"));
    }

    #[test]
    fn a_huge_summary_and_a_full_digest_stay_under_the_size_limit() {
        let mut big = message();
        big.article.summary = Some("é".repeat(100_000));
        assert!(payload(&big).to_string().len() < MAX_MESSAGE_BYTES);
        let full = digest_payload(&long_digest(DIGEST_CAPACITY + 5));
        assert!(
            full.to_string().len() < MAX_MESSAGE_BYTES,
            "{}",
            full.to_string().len()
        );
        let body = content(&full)["body"].as_array().unwrap();
        assert_eq!(body.len(), 1 + DIGEST_CAPACITY);
        let small = digest_payload(&digest(2));
        assert_eq!(content(&small)["body"].as_array().unwrap().len(), 3);
    }
}
