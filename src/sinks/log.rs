//! The `log` sink: the alert as one structured log line (target `herald::alert`), so
//! a fresh install shows matches without any external service, and `RUST_LOG` or
//! `--log-format json` route them like any other log.

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

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::sinks::tests::message;

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

    #[test]
    fn alert_is_one_json_log_line_with_its_fields() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || emit("audit", &message()));
        let output = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = output.lines().collect();
        assert_eq!(lines.len(), 1, "{output}");
        let line: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
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
}
