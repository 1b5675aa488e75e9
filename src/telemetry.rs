//! Logging: human or JSON lines on stderr, filtered by `RUST_LOG`.
//!
//! stdout belongs to command output (tables, `--json` lines); logs never go there.

use tracing_subscriber::EnvFilter;

/// The filter when `RUST_LOG` is unset: herald's own progress, others' warnings.
pub const DEFAULT_FILTER: &str = "warn,herald=info";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

/// Colour only for a person at a terminal: piped, redirected or under systemd
/// (the journal) escape codes would be stored in every line. `NO_COLOR` (any
/// value) turns it off on a terminal too.
fn colour_wanted() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// Installs the global subscriber. A malformed `RUST_LOG` falls back to the default
/// filter rather than silencing logs.
pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour_wanted());
    let result = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    // Already installed (tests call init more than once): keep the first.
    drop(result);
}
