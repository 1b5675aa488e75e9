//! Generic webhook: a JSON body for programs, optionally signed.
//!
//! The signature is `X-Herald-Signature: sha256=<lowercase hex HMAC-SHA256>` over the
//! exact body bytes, so a receiver verifies what it read before parsing it.

use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::domain::alert::AlertMessage;

/// The one event herald sends today; receivers switch on it.
pub const EVENT: &str = "rule.matched";
pub const EVENT_HEADER: &str = "x-herald-event";
pub const SIGNATURE_HEADER: &str = "x-herald-signature";

/// The JSON document posted to a generic webhook.
pub fn payload(message: &AlertMessage) -> Value {
    json!({
        "event": EVENT,
        "delivery_id": message.delivery_id,
        "alert_id": message.alert_id,
        "rule": {"name": message.rule.name, "query": message.rule.query},
        "article": message.article,
        "matched": message.matched,
    })
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
    use crate::sinks::tests::message;

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
}
