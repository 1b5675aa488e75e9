//! Generic webhook: a JSON body for programs, optionally signed.
//!
//! The signature is `X-Herald-Signature: sha256=<lowercase hex HMAC-SHA256>` over the
//! exact body bytes, so a receiver verifies what it read before parsing it.

use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::Digest;
use crate::domain::alert::AlertMessage;

/// The event of a single alert; receivers switch on it.
pub const EVENT: &str = "rule.matched";
/// The event of a digest, so a receiver can tell a list of alerts from one.
pub const DIGEST_EVENT: &str = "digest";
pub const EVENT_HEADER: &str = "x-herald-event";
pub const SIGNATURE_HEADER: &str = "x-herald-signature";

/// The JSON document posted to a generic webhook.
pub fn payload(message: &AlertMessage) -> Value {
    json!({
        "event": EVENT,
        "delivery_id": message.delivery_id,
        "alert_id": message.alert_id,
        "rule": rule(message),
        "article": message.article,
        "matched": message.matched,
    })
}

/// The JSON document posted to a generic webhook for a digest. Each item is
/// what a single alert's payload says about it, plus the other outlets, so a
/// receiver ranking stories need not ask herald again.
pub fn digest_payload(digest: &Digest) -> Value {
    let items: Vec<Value> = digest
        .items
        .iter()
        .map(|message| {
            json!({
                "alert_id": message.alert_id,
                "rule": rule(message),
                "article": message.article,
                "matched": message.matched,
                "also_reported_by": message.also_reported_by,
            })
        })
        .collect();
    json!({
        "event": DIGEST_EVENT,
        "delivery_id": digest.delivery_id,
        "schedule": digest.schedule,
        "part": digest.part,
        "parts": digest.parts,
        "items": items,
    })
}

fn rule(message: &AlertMessage) -> Value {
    json!({"name": message.rule.name, "query": message.rule.query})
}

/// The `X-Herald-Signature` value for `body` signed with `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    // HMAC accepts keys of any length (RFC 2104 §2), so this cannot fail; the
    // fallback only keeps the signature of the type honest.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut value = String::with_capacity(7 + 2 * digest.len());
    value.push_str("sha256=");
    for byte in digest.iter() {
        value.push(hex_digit(byte >> 4));
        value.push(hex_digit(byte & 0x0f));
    }
    value
}

fn hex_digit(nibble: u8) -> char {
    char::from(b"0123456789abcdef"[usize::from(nibble & 0x0f)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::article::ArticleSource;
    use crate::sinks::GENEROUS_DIGEST_CAPACITY;
    use crate::sinks::tests::{HOSTILE, digest, long_digest, message};

    #[test]
    fn payload_shape() {
        let payload = payload(&message());
        let keys: Vec<&String> = payload.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "alert_id",
                "article",
                "delivery_id",
                "event",
                "matched",
                "rule"
            ]
        );
        assert_eq!(payload["event"], "rule.matched");
        assert_eq!(payload["delivery_id"], "d-0001");
        assert_eq!(payload["alert_id"], 42);
        assert_eq!(
            payload["rule"],
            json!({"name": "nk-iran", "query": "\"North Korea\" Iran"})
        );
        assert_eq!(payload["matched"], json!(["north korea", "iran"]));
        let article = payload["article"].as_object().unwrap();
        for key in [
            "id",
            "url",
            "title",
            "summary",
            "author",
            "published_at",
            "first_seen_at",
            "feeds",
            "story_id",
        ] {
            assert!(article.contains_key(key), "article lacks {key}");
        }
        assert_eq!(article["published_at"], "2026-03-01T12:30:00Z");
        assert_eq!(article["author"], Value::Null);
        assert_eq!(
            article["feeds"],
            json!([{"url": "https://www.miamiherald.com/rss", "name": "Miami Herald"}])
        );
    }

    #[test]
    fn signature_known_answers() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Checked independently: python3 -c 'import hmac,hashlib;
        // print(hmac.new(b"s3cret", b"{\"event\":\"rule.matched\"}", hashlib.sha256).hexdigest())'
        assert_eq!(
            signature("s3cret", br#"{"event":"rule.matched"}"#),
            "sha256=cb1891b7ad91dfee213e9bfefc5c9eecef87da6da4c692d7ac843b18937063f7"
        );
    }

    #[test]
    fn digest_payload_shape() {
        let mut digest = digest(3);
        digest.part = 2;
        digest.parts = 3;
        let wire = ArticleSource {
            url: "https://wire.example/rss".to_owned(),
            name: Some("Wire".to_owned()),
        };
        digest.items[0].also_reported_by = vec![wire];
        let payload = digest_payload(&digest);
        let keys: Vec<&String> = payload.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            ["delivery_id", "event", "items", "part", "parts", "schedule"]
        );
        assert_eq!(payload["event"], "digest");
        assert_eq!(payload["delivery_id"], "g-0001");
        assert_eq!(payload["schedule"], "every 1h");
        assert_eq!(
            (payload["part"].as_u64(), payload["parts"].as_u64()),
            (Some(2), Some(3))
        );
        let items = payload["items"].as_array().unwrap();
        assert_eq!(items.len(), 3);
        for (item, message) in items.iter().zip(&digest.items) {
            let keys: Vec<&String> = item.as_object().unwrap().keys().collect();
            assert_eq!(
                keys,
                ["alert_id", "also_reported_by", "article", "matched", "rule"]
            );
            // Each item says what the single alert's payload would.
            let single = super::payload(message);
            for key in ["alert_id", "rule", "article", "matched"] {
                assert_eq!(item[key], single[key], "{key}");
            }
        }
        assert_eq!(items[1]["article"]["title"], "Story 2");
        assert_eq!(
            items[0]["also_reported_by"],
            json!([{"url": "https://wire.example/rss", "name": "Wire"}])
        );
        assert_eq!(items[1]["also_reported_by"], json!([]));
    }

    #[test]
    fn digest_feed_text_arrives_verbatim_as_json_data() {
        let mut digest = digest(3);
        digest.items[0].article.title = HOSTILE.to_owned();
        let payload = digest_payload(&digest);
        let body = payload.to_string();
        let reparsed: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(reparsed["items"][0]["article"]["title"], HOSTILE);
    }

    #[test]
    fn full_digest_of_long_text_is_sent_whole() {
        // Programs get every item and every character: there is no service
        // limit to meet, and a cut title would be a corrupted record.
        let digest = long_digest(GENEROUS_DIGEST_CAPACITY);
        let payload = digest_payload(&digest);
        let items = payload["items"].as_array().unwrap();
        assert_eq!(items.len(), GENEROUS_DIGEST_CAPACITY);
        assert_eq!(
            items[99]["article"]["title"],
            digest.items[99].article.title.as_str()
        );
        assert_eq!(items[99]["also_reported_by"].as_array().unwrap().len(), 200);
    }
}
