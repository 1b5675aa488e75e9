//! Logging: text or JSON lines on stderr, filtered by `RUST_LOG`.
//!
//! stdout belongs to command output (tables, `--json` lines); logs never go there.
//!
//! Text lines are `TIME LEVEL target: message key=value…`. Under systemd, when
//! stderr is the journal's stream (`JOURNAL_STREAM`), they carry no time (the
//! journal stamps each line) and start with the line's syslog priority, `<3>`
//! error, `<4>` warning, `<6>` info, `<7>` debug and trace, which journald
//! reads as the entry's priority (`journalctl -p warning`).
//!
//! JSON lines are one object each with these fields, whose names are kept
//! stable for log shippers: `timestamp` (RFC 3339, UTC), `level` (`ERROR`,
//! `WARN`, `INFO`, `DEBUG`, `TRACE`), `target` (the module, `herald::ingest`),
//! `message`, then the event's own fields by name (`feed`, `error`, `status`,
//! `elapsed_ms`…).

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{DefaultFields, Format, Full, Writer};
use tracing_subscriber::fmt::time::SystemTime;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

pub use crate::config::LogFormat;

/// The filter when `RUST_LOG` is unset: herald's own progress, others' warnings.
pub const DEFAULT_FILTER: &str = "warn,herald=info";

/// Where stderr goes, as far as logging cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Destination {
    /// A person at a terminal who has not asked for `NO_COLOR`.
    colour: bool,
    /// systemd's journal, which reads `<N>` priority prefixes.
    journal: bool,
}

impl Destination {
    fn of_stderr() -> Destination {
        use std::io::IsTerminal;
        let journal_stream = std::env::var("JOURNAL_STREAM").ok();
        let journal = journal_stream.as_deref().is_some_and(stderr_is_stream);
        Destination {
            // Colour only for a person at a terminal: piped, redirected or in
            // the journal, escape codes would be stored in every line. Under
            // systemd (JOURNAL_STREAM set) a unit's stderr may be a TTY
            // (`StandardError=tty`), which still is no place for them, and
            // `NO_COLOR` (any value but empty, as no-color.org has it) turns
            // them off anywhere.
            colour: std::io::stderr().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty())
                && journal_stream.is_none(),
            journal,
        }
    }
}

/// Whether stderr is the journal's stream `DEVICE:INODE`: systemd sets
/// `JOURNAL_STREAM` for the service, and a child whose stderr was redirected
/// elsewhere inherits the variable, so the stream itself is compared.
fn stderr_is_stream(stream: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Some((device, inode)) = stream.split_once(':') else {
        return false;
    };
    let (Ok(device), Ok(inode)) = (device.parse::<u64>(), inode.parse::<u64>()) else {
        return false;
    };
    // The link resolves to fd 2 itself, a socket or pipe included.
    std::fs::metadata("/proc/self/fd/2")
        .is_ok_and(|stderr| stderr.dev() == device && stderr.ino() == inode)
}

/// Text lines, each behind its syslog priority for journald (sd-daemon(3)).
struct JournalFormat {
    inner: Format<Full, ()>,
}

impl<S, N> FormatEvent<S, N> for JournalFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        context: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write!(writer, "<{}>", priority(*event.metadata().level()))?;
        self.inner.format_event(context, writer.by_ref(), event)
    }
}

/// syslog's numbers: err, warning, info, debug.
fn priority(level: Level) -> u8 {
    match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    }
}

/// Installs the global subscriber. A malformed `RUST_LOG` falls back to the default
/// filter rather than silencing logs.
pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let destination = Destination::of_stderr();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(destination.colour && format == LogFormat::Text);
    let result = match (format, destination.journal) {
        (LogFormat::Json, _) => builder
            .json()
            .flatten_event(true)
            // Spans would add `span` and `spans` objects whose shape follows
            // the code; events carry what they need as fields.
            .with_current_span(false)
            .with_span_list(false)
            .with_timer(SystemTime)
            .try_init(),
        (LogFormat::Text, true) => builder
            .event_format(JournalFormat {
                inner: tracing_subscriber::fmt::format().without_time(),
            })
            .fmt_fields(DefaultFields::new())
            .try_init(),
        (LogFormat::Text, false) => builder.try_init(),
    };
    // Already installed (tests call init more than once): keep the first.
    drop(result);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_map_to_syslog_priorities() {
        assert_eq!(priority(Level::ERROR), 3);
        assert_eq!(priority(Level::WARN), 4);
        assert_eq!(priority(Level::INFO), 6);
        assert_eq!(priority(Level::DEBUG), 7);
        assert_eq!(priority(Level::TRACE), 7);
    }

    #[test]
    fn a_malformed_journal_stream_is_not_the_journal() {
        for stream in ["", "12", "a:b", "1:2:3", "-1:5"] {
            assert!(!stderr_is_stream(stream), "{stream:?}");
        }
    }
}
