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
use url::Url;

use super::text::{fit, one_line};
use super::{Digest, also_reported, article_link, display_title, feed_label, outlets};
use crate::domain::alert::AlertMessage;
use crate::domain::article::Article;

/// Discord's limits (<https://discord.com/developers/docs/resources/message#embed-object-embed-limits>).
pub const MAX_CONTENT: usize = 2000;
pub const MAX_EMBED_TITLE: usize = 256;
pub const MAX_EMBED_DESCRIPTION: usize = 4096;
pub const MAX_EMBED_FOOTER: usize = 2048;
/// Title, description, footer, author and fields together, across all of a
/// message's embeds.
pub const MAX_EMBED_TOTAL: usize = 6000;
pub const MAX_EMBEDS: usize = 10;
/// Stories per digest message: one embed each.
pub const DIGEST_CAPACITY: usize = MAX_EMBEDS;
/// A full digest's embeds share [`MAX_EMBED_TOTAL`] equally, so no story's text
/// can crowd out another's and the sum never exceeds it.
const DIGEST_EMBED_SHARE: usize = MAX_EMBED_TOTAL / DIGEST_CAPACITY;
/// What is left of an embed's share once its title took all it may.
const DIGEST_DESCRIPTION: usize = DIGEST_EMBED_SHARE - MAX_EMBED_TITLE;
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
    let title = display_title(article);
    let mut embed = Map::new();
    embed.insert("title".into(), fit(&inert(&title), MAX_EMBED_TITLE).into());
    if let Some(url) = embed_url(article) {
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

/// The JSON body posted to a Discord webhook for a digest: the heading as the
/// message, one embed per story. Stories past [`DIGEST_CAPACITY`] are left out
/// (the heading says how many are shown) rather than have Discord refuse the
/// whole message.
pub fn digest_payload(digest: &Digest) -> Value {
    let shown = &digest.items[..digest.items.len().min(DIGEST_CAPACITY)];
    let heading = without_masked_links(&inert(&digest.heading(shown.len())));
    let embeds: Vec<Value> = shown.iter().map(digest_embed).collect();
    json!({
        "content": format!("**{}**", fit(&heading, MAX_CONTENT_USED - 4)),
        "embeds": embeds,
        "allowed_mentions": {"parse": []},
    })
}

/// One story of a digest, held to its share of the message's embed text.
fn digest_embed(message: &AlertMessage) -> Value {
    let article = &message.article;
    let mut embed = Map::new();
    let title = fit(&inert(&display_title(article)), MAX_EMBED_TITLE);
    embed.insert("title".into(), title.into());
    if let Some(url) = embed_url(article) {
        embed.insert("url".into(), url.as_str().into());
    }
    let rule = without_masked_links(&inert(&one_line(&message.rule.name)));
    let description = format!(
        "Rule **{}** · {}",
        fit(&rule, MAX_NAME),
        without_masked_links(&inert(&outlets(message)))
    );
    embed.insert(
        "description".into(),
        fit(&description, DIGEST_DESCRIPTION).into(),
    );
    embed.insert("timestamp".into(), article.published_at.to_rfc3339().into());
    Value::Object(embed)
}

/// The article's link if Discord will take it; a cut URL would point elsewhere.
/// A message whose text an operator's template wrote (feed text already
/// escaped); mentions stay off, whatever the text says.
pub fn text_payload(text: &str) -> Value {
    json!({"content": fit(text, MAX_CONTENT), "allowed_mentions": {"parse": []}})
}

fn embed_url(article: &Article) -> Option<Url> {
    article_link(article).filter(|url| url.as_str().len() <= MAX_URL)
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
    use crate::sinks::tests::{HOSTILE, digest, long_digest, message};
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

    fn embeds(payload: &Value) -> &Vec<Value> {
        payload["embeds"].as_array().unwrap()
    }

    /// Whether every `[` and `]` is backslash-escaped, so no masked link renders.
    fn brackets_escaped(text: &str) -> bool {
        let mut previous = None;
        for c in text.chars() {
            if matches!(c, '[' | ']') && previous != Some('\\') {
                return false;
            }
            previous = Some(c);
        }
        true
    }

    #[test]
    fn digest_shape() {
        let mut digest = digest(3);
        digest.items[1].also_reported_by = vec![ArticleSource {
            url: "https://wire.example/rss".to_owned(),
            name: Some("Wire".to_owned()),
        }];
        digest.items[2].article.url = Some("javascript:alert(1)".to_owned());
        digest.items[2].article.canonical_url = None;
        let payload = digest_payload(&digest);
        let keys: Vec<&String> = payload.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["allowed_mentions", "content", "embeds"]);
        assert_eq!(payload["allowed_mentions"], json!({"parse": []}));
        assert_eq!(payload["content"], "**3 stories — every 1h**");
        assert_eq!(
            payload["embeds"],
            json!([
                {
                    "title": "Story 1",
                    "url": "https://www.miamiherald.com/news/article1.html?a=1&b=2",
                    "description": "Rule **nk-iran** · Miami Herald",
                    "timestamp": "2026-03-01T12:30:00+00:00",
                },
                {
                    "title": "Story 2",
                    "url": "https://www.miamiherald.com/news/article1.html?a=1&b=2",
                    "description": "Rule **nk-iran** · Miami Herald · also reported by 1 other outlet: Wire",
                    "timestamp": "2026-03-01T12:30:00+00:00",
                },
                {
                    "title": "Story 3",
                    "description": "Rule **nk-iran** · Miami Herald",
                    "timestamp": "2026-03-01T12:30:00+00:00",
                },
            ])
        );
    }

    #[test]
    fn digest_heading_numbers_its_part() {
        let mut digest = digest(1);
        digest.part = 2;
        digest.parts = 3;
        assert_eq!(
            digest_payload(&digest)["content"],
            "**1 story — every 1h (part 2 of 3)**"
        );
    }

    #[test]
    fn digest_feed_text_cannot_ping_or_link() {
        let mut digest = digest(3);
        for item in &mut digest.items {
            item.article.title = format!("{HOSTILE} @everyone");
            item.article.feeds[0].name = Some(HOSTILE.to_owned());
            item.also_reported_by = vec![ArticleSource {
                url: "https://wire.example/rss".to_owned(),
                name: Some(format!("{HOSTILE} <@123> @everyone")),
            }];
            item.rule.name = "[r](http://evil)".to_owned();
        }
        digest.schedule = HOSTILE.to_owned();
        let payload = digest_payload(&digest);
        assert_eq!(payload["allowed_mentions"], json!({"parse": []}));
        let text = payload.to_string();
        for token in ["@everyone", "@here", "<@1", "<@h"] {
            assert!(!text.contains(token), "{token} survived in {text}");
        }
        let content = payload["content"].as_str().unwrap();
        assert!(brackets_escaped(content), "{content}");
        for embed in embeds(&payload) {
            // The title is not rendered as markdown links; the link is `url`.
            assert_eq!(
                embed["title"],
                "<@\u{200B}\u{200B}here> *bold* [x](http://evil) & co @\u{200B}everyone"
            );
            let description = embed["description"].as_str().unwrap();
            assert!(brackets_escaped(description), "{description}");
            assert_eq!(
                description,
                "Rule **\\[r\\](http://evil)** · \
                 <@\u{200B}\u{200B}here> *bold* \\[x\\](http://evil) & co · \
                 also reported by 1 other outlet: \
                 <@\u{200B}\u{200B}here> *bold* \\[x\\](http://evil) & co <@\u{200B}123> @\u{200B}everyone"
            );
        }
    }

    #[test]
    fn full_digest_of_long_text_stays_within_discord_limits() {
        let payload = digest_payload(&long_digest(DIGEST_CAPACITY));
        let reparsed: Value = serde_json::from_str(&payload.to_string()).unwrap();
        assert_eq!(reparsed, payload);
        let content = payload["content"].as_str().unwrap();
        assert!(length(content) <= MAX_CONTENT);
        assert!(content.ends_with("… (part 3 of 9)**"), "{content}");
        let embeds = embeds(&payload);
        assert_eq!(embeds.len(), MAX_EMBEDS);
        let mut total = 0;
        for embed in embeds {
            let title = embed["title"].as_str().unwrap();
            let description = embed["description"].as_str().unwrap();
            assert!(length(title) <= MAX_EMBED_TITLE);
            assert!(length(description) <= MAX_EMBED_DESCRIPTION);
            assert!(title.ends_with('…') && description.ends_with('…'));
            assert!(description.contains("also reported by 200 other outlets: "));
            assert!(brackets_escaped(description), "{description}");
            assert!(
                embed["url"]
                    .as_str()
                    .unwrap()
                    .starts_with("https://example.com/")
            );
            total += length(title) + length(description);
        }
        assert!(total <= MAX_EMBED_TOTAL, "{total}");
        assert!(!payload.to_string().contains("@everyone"));
    }

    #[test]
    fn digest_past_capacity_shows_what_fits_and_says_so() {
        let payload = digest_payload(&digest(25));
        assert_eq!(embeds(&payload).len(), MAX_EMBEDS);
        assert_eq!(payload["content"], "**25 stories — every 1h (10 shown)**");
    }
}
