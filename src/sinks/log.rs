//! The `log` sink: the alert as one structured log line (target `herald::alert`), so
//! a fresh install shows matches without any external service, and `RUST_LOG` or
//! `--log-format json` route them like any other log.

use super::Digest;
use super::text::one_line;
use crate::domain::alert::AlertMessage;

/// Where alert lines go; filter with `RUST_LOG=herald::alert=info`.
pub const TARGET: &str = "herald::alert";

/// Writes the alert; cannot fail, so the delivery is done once this returns.
pub fn emit(sink_name: &str, message: &AlertMessage) {
    let article = &message.article;
    tracing::info!(
        target: TARGET,
        sink = sink_name,
        rule = %message.rule.name,
        article_id = article.id,
        title = %article.title,
        url = article.url.as_deref().unwrap_or(""),
        matched = %message.matched.join(", "),
        delivery_id = %message.delivery_id,
        "rule matched"
    );
}

/// Writes an alert as its sink's template rendered it; cannot fail, like [`emit`].
pub fn emit_text(sink_name: &str, message: &AlertMessage, text: &str) {
    tracing::info!(
        target: TARGET,
        sink = sink_name,
        rule = %message.rule.name,
        article_id = message.article.id,
        delivery_id = %message.delivery_id,
        text = %text,
        "rule matched"
    );
}

/// Writes the digest as one line, so a period's alerts read as the one message
/// a chat sink would have got; cannot fail, like [`emit`].
pub fn emit_digest(sink_name: &str, digest: &Digest) {
    // One line each: a title's own line breaks would split the log line.
    let titles: Vec<String> = digest
        .items
        .iter()
        .map(|message| one_line(&message.article.title))
        .collect();
    tracing::info!(
        target: TARGET,
        sink = sink_name,
        schedule = %digest.schedule,
        part = digest.part,
        parts = digest.parts,
        count = digest.items.len(),
        titles = %titles.join(" | "),
        delivery_id = %digest.delivery_id,
        "digest"
    );
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::sinks::tests::{digest, message};

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The JSON log lines `write` produces.
    fn log_lines(write: impl FnOnce()) -> Vec<serde_json::Value> {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, write);
        let output = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        output
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    #[test]
    fn alert_is_one_json_log_line_with_its_fields() {
        let lines = log_lines(|| emit("audit", &message()));
        assert_eq!(lines.len(), 1, "{lines:?}");
        let line = &lines[0];
        assert_eq!(line["target"], TARGET);
        assert_eq!(line["level"], "INFO");
        let fields = &line["fields"];
        assert_eq!(fields["message"], "rule matched");
        assert_eq!(fields["sink"], "audit");
        assert_eq!(fields["rule"], "nk-iran");
        assert_eq!(fields["article_id"], 7);
        assert_eq!(fields["title"], "North Korean delegation visits Tehran");
        assert_eq!(
            fields["url"],
            "https://www.miamiherald.com/news/article1.html?a=1&b=2"
        );
        assert_eq!(fields["delivery_id"], "d-0001");
    }

    #[test]
    fn digest_is_one_json_log_line_with_its_fields() {
        let mut digest = digest(3);
        digest.part = 2;
        digest.parts = 3;
        digest.items[1].article.title = "Story\n 2".to_owned();
        let lines = log_lines(|| emit_digest("audit", &digest));
        assert_eq!(lines.len(), 1, "{lines:?}");
        let line = &lines[0];
        assert_eq!(line["target"], TARGET);
        assert_eq!(line["level"], "INFO");
        let fields = &line["fields"];
        assert_eq!(fields["message"], "digest");
        assert_eq!(fields["sink"], "audit");
        assert_eq!(fields["schedule"], "every 1h");
        assert_eq!(fields["part"], 2);
        assert_eq!(fields["parts"], 3);
        assert_eq!(fields["count"], 3);
        assert_eq!(fields["titles"], "Story 1 | Story 2 | Story 3");
        assert_eq!(fields["delivery_id"], "g-0001");
    }
}
