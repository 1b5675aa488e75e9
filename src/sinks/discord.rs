//! Discord webhook payload: `{"content", "embeds", "allowed_mentions"}`.
//!
//! `"allowed_mentions": {"parse": []}` is what makes feed text unable to ping anyone
//! (<https://discord.com/developers/docs/resources/message#allowed-mentions-object>).
//! As defence in depth, should a proxy or a future edit drop that field, the tokens
//! that would ping (`@everyone`, `@here`, `<@…>` users and roles) get a zero-width
//! space after the `@`: they read the same and mean nothing. Masked links
//! (`[text](url)`) render in content and embed descriptions, so there `[` and `]`
//! are backslash-escaped: the one link is the embed's `url`, built by herald.

use serde_json::{Map, Value, json};

use super::text::{fit, one_line};
use super::{also_reported, article_link, feed_label};
use crate::domain::alert::AlertMessage;

/// Discord's limits (<https://discord.com/developers/docs/resources/message#embed-object-embed-limits>).
pub const MAX_CONTENT: usize = 2000;
pub const MAX_EMBED_TITLE: usize = 256;
pub const MAX_EMBED_DESCRIPTION: usize = 4096;
pub const MAX_EMBED_FOOTER: usize = 2048;
/// Title, description, footer, author and fields together.
pub const MAX_EMBED_TOTAL: usize = 6000;
/// The message line above the embed: a notification, the embed carries the rest.
const MAX_CONTENT_USED: usize = 500;
/// A "short summary", well inside the description limit.
const MAX_SUMMARY: usize = 1000;
const MAX_NAME: usize = 100;
/// Discord rejects longer embed URLs; such a URL is left out rather than cut.
const MAX_URL: usize = 2000;

const ZERO_WIDTH_SPACE: &str = "\u{200B}";

/// The JSON body posted to a Discord webhook.
pub fn payload(message: &AlertMessage) -> Value {
    let article = &message.article;
    let rule = inert(&one_line(&message.rule.name));
    let title = match one_line(&article.title) {
        title if title.is_empty() => "(untitled)".to_owned(),
        title => title,
    };
    let mut embed = Map::new();
    embed.insert("title".into(), fit(&inert(&title), MAX_EMBED_TITLE).into());
    if let Some(url) = article_link(article).filter(|url| url.as_str().len() <= MAX_URL) {
        embed.insert("url".into(), url.as_str().into());
    }
    if let Some(summary) = article.summary.as_deref().map(one_line)
        && !summary.is_empty()
    {
        let description = fit(&without_masked_links(&inert(&summary)), MAX_SUMMARY);
        embed.insert("description".into(), description.into());
    }
    embed.insert("timestamp".into(), article.published_at.to_rfc3339().into());
    let mut footer = format!(
        "{} · rule {}",
        fit(&inert(&feed_label(article)), MAX_NAME),
        fit(&rule, MAX_NAME)
    );
    if let Some(spread) = also_reported(message) {
        footer.push_str(" · ");
        footer.push_str(&spread);
    }
    embed.insert(
        "footer".into(),
        json!({"text": fit(&footer, MAX_EMBED_FOOTER)}),
    );
    let content = format!(
        "Rule **{}** matched: {}",
        fit(&without_masked_links(&rule), MAX_NAME),
        without_masked_links(&inert(&title))
    );
    json!({
        "content": fit(&content, MAX_CONTENT_USED),
        "embeds": [embed],
        "allowed_mentions": {"parse": []},
    })
}

/// Mention tokens broken by a zero-width space after their `@`.
fn inert(text: &str) -> String {
    text.replace("@everyone", &format!("@{ZERO_WIDTH_SPACE}everyone"))
        .replace("@here", &format!("@{ZERO_WIDTH_SPACE}here"))
        .replace("<@", &format!("<@{ZERO_WIDTH_SPACE}"))
}

fn without_masked_links(text: &str) -> String {
    text.replace('[', "\\[").replace(']', "\\]")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::article::ArticleSource;
    use crate::sinks::tests::message;
    use crate::sinks::text::length;

    fn embed(payload: &Value) -> &Map<String, Value> {
        payload["embeds"][0].as_object().unwrap()
    }

    fn embed_length(payload: &Value) -> usize {
        let embed = embed(payload);
        ["title", "description"]
            .iter()
            .filter_map(|key| embed.get(*key)?.as_str())
            .chain(embed["footer"]["text"].as_str())
            .map(length)
            .sum()
    }

    #[test]
    fn payload_shape() {
        let payload = payload(&message());
        let keys: Vec<&String> = payload.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["allowed_mentions", "content", "embeds"]);
        assert_eq!(payload["allowed_mentions"], json!({"parse": []}));
        assert_eq!(
            payload["content"],
            "Rule **nk-iran** matched: North Korean delegation visits Tehran"
        );
        assert_eq!(
            payload["embeds"],
            json!([{
                "title": "North Korean delegation visits Tehran",
                "url": "https://www.miamiherald.com/news/article1.html?a=1&b=2",
                "description": "A rare visit by officials from Pyongyang.",
                "timestamp": "2026-03-01T12:30:00+00:00",
                "footer": {"text": "Miami Herald · rule nk-iran"},
            }])
        );
    }

    #[test]
    fn a_story_carried_elsewhere_says_so_in_the_footer() {
        let mut message = message();
        message.also_reported_by = vec![ArticleSource {
            url: "https://wire.example/rss".to_owned(),
            name: Some("Wire".to_owned()),
        }];
        let payload = payload(&message);
        assert_eq!(
            embed(&payload)["footer"]["text"],
            "Miami Herald · rule nk-iran · also reported by 1 other outlet"
        );
    }

    #[test]
    fn mentions_in_feed_text_are_inert() {
        let mut message = message();
        message.article.title = "@everyone look".to_owned();
        message.article.summary = Some("@here <@123> <@&456> <@!789>".to_owned());
        message.article.feeds[0].name = Some("@everyone news".to_owned());
        let payload = payload(&message);
        assert_eq!(payload["allowed_mentions"]["parse"], json!([]));
        let text = payload.to_string();
        for token in ["@everyone", "@here", "<@1", "<@&", "<@!"] {
            assert!(!text.contains(token), "{token} survived in {text}");
        }
        assert_eq!(embed(&payload)["title"], "@\u{200B}everyone look");
    }

    #[test]
    fn masked_links_in_feed_text_do_not_render() {
        let mut message = message();
        message.article.summary = Some("[click](https://evil.example)".to_owned());
        let payload = payload(&message);
        assert_eq!(
            embed(&payload)["description"],
            "\\[click\\](https://evil.example)"
        );
    }

    #[test]
    fn unusable_urls_are_left_out() {
        for url in ["javascript:alert(1)", "not a url", "ftp://example.com/"] {
            let mut message = message();
            message.article.url = Some(url.to_owned());
            message.article.canonical_url = None;
            assert!(!embed(&payload(&message)).contains_key("url"), "{url}");
        }
    }

    #[test]
    fn long_multibyte_text_stays_within_discord_limits() {
        let mut message = message();
        message.article.title = "Тегеран 😀 @everyone ".repeat(500);
        message.article.summary = Some("é[]".repeat(5000));
        message.article.feeds[0].name = Some("ü".repeat(10_000));
        message.rule.name = "r".repeat(5000);
        let payload = payload(&message);
        let reparsed: Value = serde_json::from_str(&payload.to_string()).unwrap();
        assert_eq!(reparsed, payload);
        assert!(length(payload["content"].as_str().unwrap()) <= MAX_CONTENT);
        let embed = embed(&payload);
        assert!(length(embed["title"].as_str().unwrap()) <= MAX_EMBED_TITLE);
        assert!(length(embed["description"].as_str().unwrap()) <= MAX_EMBED_DESCRIPTION);
        assert!(length(embed["footer"]["text"].as_str().unwrap()) <= MAX_EMBED_FOOTER);
        assert!(embed_length(&payload) <= MAX_EMBED_TOTAL);
        assert!(embed["title"].as_str().unwrap().ends_with('…'));
    }
}
