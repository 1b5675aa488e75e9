//! Slack through a bot token and the Web API's `chat.postMessage`, so that a
//! story is one message in the channel and its spread a thread under it.
//!
//! The first alert of a story posts to the channel; Slack answers with the
//! message's `ts`, which the outbox keeps for the story. Later alerts on the
//! story (another rule) and "also reported by …" notes, as more outlets carry
//! it, are replies in that thread (`thread_ts`). Message bodies are the
//! incoming-webhook ones (`slack::payload`), feed text escaped alike, within
//! Block Kit's limits. The Web API answers HTTP 200 with `{"ok": false,
//! "error": …}` for most refusals, so the answer's body decides: a missing
//! channel or a revoked token breaks the sink, `ratelimited` (HTTP 429 with
//! `Retry-After`) waits, anything else refuses the one message.

use std::time::Duration;

use serde_json::{Value, json};
use url::Url;

use super::Verdict;
use super::slack;
use super::text::{fit, one_line};
use crate::domain::article::ArticleSource;

/// A bot's token and the channel it posts to.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SlackAppTarget {
    pub api_url: Url,
    pub token: String,
    pub channel: String,
}

impl SlackAppTarget {
    /// `{api_url}/chat.postMessage`.
    pub fn post_message_url(&self) -> Url {
        let mut url = self.api_url.clone();
        let path = format!("{}/chat.postMessage", url.path().trim_end_matches('/'));
        url.set_path(&path);
        url
    }
}

/// The request body: a webhook payload posted to the channel, in `thread_ts`'s
/// thread when given.
pub fn post_body(target: &SlackAppTarget, mut payload: Value, thread_ts: Option<&str>) -> Value {
    if let Some(body) = payload.as_object_mut() {
        body.insert("channel".into(), target.channel.clone().into());
        // Links are herald's own; previews of them would bury the thread.
        body.insert("unfurl_links".into(), false.into());
        body.insert("unfurl_media".into(), false.into());
        if let Some(ts) = thread_ts {
            body.insert("thread_ts".into(), ts.into());
        }
    }
    payload
}

/// Outlet names listed in one note at most; the rest are counted.
const MAX_NAMED_OUTLETS: usize = 20;

/// The thread note for outlets that carried the story since it was posted.
pub fn spread_note(target: &SlackAppTarget, thread_ts: &str, outlets: &[ArticleSource]) -> Value {
    let mut names: Vec<String> = outlets
        .iter()
        .take(MAX_NAMED_OUTLETS)
        .map(|outlet| {
            fit(
                &one_line(outlet.name.as_deref().unwrap_or(&outlet.url)),
                100,
            )
        })
        .collect();
    if outlets.len() > MAX_NAMED_OUTLETS {
        names.push(format!("{} more", outlets.len() - MAX_NAMED_OUTLETS));
    }
    // Escaped once, whole: the names are feed text.
    let text = format!("also reported by {}", names.join(", "));
    post_body(
        target,
        json!({"text": slack::escaped(&text, slack::MAX_TEXT)}),
        Some(thread_ts),
    )
}

/// What Slack's answer to `chat.postMessage` means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub verdict: Verdict,
    /// The posted message's `ts`, when it was posted.
    pub ts: Option<String>,
    /// Slack's error code, when it refused.
    pub error: Option<String>,
}

/// Reads the HTTP status and body of a `chat.postMessage` call.
pub fn read_answer(status: u16, body: &str, retry_after: Option<Duration>) -> Answer {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let ok = parsed.as_ref().and_then(|v| v["ok"].as_bool());
    let error = parsed
        .as_ref()
        .and_then(|v| v["error"].as_str())
        .map(str::to_owned);
    if status == 200 && ok == Some(true) {
        return Answer {
            verdict: Verdict::Delivered,
            ts: parsed.and_then(|v| v["ts"].as_str().map(str::to_owned)),
            error: None,
        };
    }
    let verdict = match (status, error.as_deref()) {
        (429, _) | (_, Some("ratelimited")) => Verdict::Retry { retry_after },
        (500..=599, _)
        | (_, Some("internal_error" | "fatal_error" | "service_unavailable" | "request_timeout")) => {
            Verdict::Retry { retry_after }
        }
        (
            _,
            Some(
                "channel_not_found"
                | "not_in_channel"
                | "is_archived"
                | "invalid_auth"
                | "not_authed"
                | "account_inactive"
                | "token_revoked"
                | "token_expired"
                | "no_permission"
                | "missing_scope"
                | "team_access_not_granted"
                | "restricted_action"
                | "ekm_access_denied",
            ),
        ) => Verdict::Broken,
        (401 | 403 | 404 | 410, _) => Verdict::Broken,
        (200, None) => Verdict::Retry { retry_after },
        _ => Verdict::Permanent,
    };
    Answer {
        verdict,
        ts: None,
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::tests::message;

    fn target() -> SlackAppTarget {
        SlackAppTarget {
            api_url: Url::parse("https://slack.com/api").unwrap(),
            token: "xoxb-1".to_owned(),
            channel: "C0123".to_owned(),
        }
    }

    #[test]
    fn the_method_url_keeps_the_api_path() {
        assert_eq!(
            target().post_message_url().as_str(),
            "https://slack.com/api/chat.postMessage"
        );
        let local = SlackAppTarget {
            api_url: Url::parse("http://127.0.0.1:9/api/").unwrap(),
            ..target()
        };
        assert_eq!(
            local.post_message_url().as_str(),
            "http://127.0.0.1:9/api/chat.postMessage"
        );
    }

    #[test]
    fn a_post_names_the_channel_and_a_reply_its_thread() {
        let body = post_body(&target(), slack::payload(&message()), None);
        assert_eq!(body["channel"], "C0123");
        assert!(body.get("thread_ts").is_none());
        assert!(body["blocks"].as_array().unwrap().len() <= slack::MAX_BLOCKS);
        let reply = post_body(&target(), slack::payload(&message()), Some("1700.1"));
        assert_eq!(reply["thread_ts"], "1700.1");
    }

    #[test]
    fn a_spread_note_escapes_outlet_names() {
        let outlets = vec![ArticleSource {
            url: "https://evil.example/rss".to_owned(),
            name: Some("<!channel> Evil & Co".to_owned()),
        }];
        let note = spread_note(&target(), "1700.1", &outlets);
        assert_eq!(
            note["text"],
            "also reported by &lt;!channel&gt; Evil &amp; Co"
        );
        assert_eq!(note["thread_ts"], "1700.1");
    }

    #[test]
    fn answers_are_read_from_the_body() {
        let posted = read_answer(200, r#"{"ok":true,"channel":"C0123","ts":"1700.1"}"#, None);
        assert_eq!(
            (posted.verdict, posted.ts.as_deref()),
            (Verdict::Delivered, Some("1700.1"))
        );
        for (status, body, verdict) in [
            (
                200,
                r#"{"ok":false,"error":"channel_not_found"}"#,
                Verdict::Broken,
            ),
            (
                200,
                r#"{"ok":false,"error":"token_revoked"}"#,
                Verdict::Broken,
            ),
            (
                200,
                r#"{"ok":false,"error":"msg_too_long"}"#,
                Verdict::Permanent,
            ),
            (
                429,
                r#"{"ok":false,"error":"ratelimited"}"#,
                Verdict::Retry {
                    retry_after: Some(Duration::from_secs(3)),
                },
            ),
            (
                503,
                "",
                Verdict::Retry {
                    retry_after: Some(Duration::from_secs(3)),
                },
            ),
        ] {
            let answer = read_answer(status, body, Some(Duration::from_secs(3)));
            assert_eq!(answer.verdict, verdict, "{status} {body}");
        }
    }
}
