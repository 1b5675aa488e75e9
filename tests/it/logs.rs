//! Log lines as an operator's tools read them: JSON for shippers, `<N>`
//! priorities for journald, colour only for a person at a terminal.

use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::herald::feeds_toml;
use crate::support::process::herald;

/// A configuration whose one feed is refused at once (port 9, discard): every
/// poll logs a warning `fetch failed`. `extra` is more TOML.
fn failing_feed(extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "{extra}\n{}",
        feeds_toml(&["http://127.0.0.1:9/feed".to_owned()])
    );
    std::fs::write(dir.path().join("herald.toml"), config).unwrap();
    dir
}

/// `herald poll` in `dir` with `env`; its stderr as text.
fn poll_stderr(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut command = herald(dir, "sqlite://herald.db", &["poll"]);
    command.args(args).envs(env.iter().copied());
    scrub_log_env(&mut command);
    let output = command.output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    String::from_utf8(output.stderr).unwrap()
}

/// The test's own environment (a CI job under systemd, NO_COLOR in a shell)
/// must not decide what the child logs.
fn scrub_log_env(command: &mut Command) {
    for name in ["JOURNAL_STREAM", "NO_COLOR", "HERALD_LOG_FORMAT"] {
        if !command.get_envs().any(|(key, _)| key == name) {
            command.env_remove(name);
        }
    }
}

fn json_lines(stderr: &str) -> Vec<serde_json::Value> {
    stderr
        .lines()
        .filter(|line| !line.starts_with("herald: "))
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}")))
        .collect()
}

#[test]
fn json_logs_have_stable_field_names_from_flag_variable_or_config() {
    let plain = failing_feed("");
    let configured = failing_feed("[log]\nformat = \"json\"\n");
    for stderr in [
        poll_stderr(plain.path(), &["--log-format", "json"], &[]),
        poll_stderr(plain.path(), &[], &[("HERALD_LOG_FORMAT", "json")]),
        poll_stderr(configured.path(), &[], &[]),
    ] {
        let lines = json_lines(&stderr);
        let warning = lines
            .iter()
            .find(|line| line["message"] == "fetch failed")
            .unwrap_or_else(|| panic!("{stderr}"));
        assert_eq!(warning["level"], "WARN", "{warning}");
        assert!(
            warning["target"].as_str().unwrap().starts_with("herald"),
            "{warning}"
        );
        let timestamp = warning["timestamp"].as_str().unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(timestamp).is_ok(),
            "{timestamp}"
        );
        assert!(warning.get("spans").is_none() && warning.get("span").is_none());
    }
    // The flag wins over the variable, the variable over the file.
    let text = poll_stderr(
        configured.path(),
        &["--log-format", "text"],
        &[("HERALD_LOG_FORMAT", "json")],
    );
    assert!(text.contains(" WARN ") && !text.contains('{'), "{text}");
    let from_variable = poll_stderr(configured.path(), &[], &[("HERALD_LOG_FORMAT", "text")]);
    assert!(from_variable.contains(" WARN "), "{from_variable}");
}

#[test]
fn under_the_journal_lines_carry_syslog_priorities_and_no_time() {
    let dir = failing_feed("");
    // The journal's stream is stderr itself: a file here, named by its device
    // and inode as systemd names the socket it connects a service to.
    let log_path = dir.path().join("stderr.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let stream = {
        let meta = log.metadata().unwrap();
        format!("{}:{}", meta.dev(), meta.ino())
    };
    let mut command = herald(dir.path(), "sqlite://herald.db", &["poll"]);
    command
        .env("JOURNAL_STREAM", &stream)
        .env_remove("NO_COLOR")
        .env_remove("HERALD_LOG_FORMAT")
        .stdout(Stdio::null())
        .stderr(log);
    let status = command.status().unwrap();
    assert_eq!(status.code(), Some(1));
    let stderr = std::fs::read_to_string(&log_path).unwrap();
    let warning = stderr
        .lines()
        .find(|line| line.contains("fetch failed"))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(warning.starts_with("<4> WARN herald"), "{warning:?}");
    assert!(!stderr.contains('\u{1b}'), "{stderr:?}");

    // A child that inherited JOURNAL_STREAM but writes elsewhere (a pipe)
    // writes plain lines.
    let piped = poll_stderr(dir.path(), &[], &[("JOURNAL_STREAM", &stream)]);
    assert!(!piped.contains("<4>"), "{piped}");
    assert!(piped.contains(" WARN "), "{piped}");
}

/// Runs `herald poll` with stderr on a new pseudo-terminal, as in an
/// operator's shell, and returns what it printed there.
fn poll_on_a_terminal(dir: &Path, env: &[(&str, &str)]) -> Option<String> {
    let (mut master, slave) = {
        let (mut master, mut slave) = (-1, -1);
        // SAFETY: openpty writes two descriptors it opened into the locals;
        // the null name, termios and winsize pointers are allowed.
        let opened = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        if opened != 0 {
            return None;
        }
        // SAFETY: both descriptors are open and owned by nothing else.
        unsafe {
            (
                std::fs::File::from(OwnedFd::from_raw_fd(master)),
                OwnedFd::from_raw_fd(slave),
            )
        }
    };
    let mut command = herald(dir, "sqlite://herald.db", &["poll"]);
    command.envs(env.iter().copied());
    scrub_log_env(&mut command);
    command.stdout(Stdio::null()).stderr(Stdio::from(slave));
    let status = command.status().unwrap();
    // The command holds the terminal's other end until dropped; once the
    // child has exited too, reading ends (EIO).
    drop(command);
    assert_eq!(status.code(), Some(1));
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    while let Ok(read) = master.read(&mut chunk) {
        if read == 0 {
            break;
        }
        bytes.extend_from_slice(&chunk[..read]);
    }
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

#[test]
fn colour_only_on_a_terminal_without_no_color_or_the_journal() {
    let dir = failing_feed("");
    let Some(coloured) = poll_on_a_terminal(dir.path(), &[]) else {
        crate::support::skipped(
            "logs::colour_only_on_a_terminal_without_no_color_or_the_journal",
            "no pseudo-terminal could be opened",
        );
        return;
    };
    assert!(coloured.contains("fetch failed"), "{coloured:?}");
    assert!(
        coloured.contains('\u{1b}'),
        "colour on a terminal: {coloured:?}"
    );
    // An empty NO_COLOR is unset, as no-color.org defines it.
    let empty = poll_on_a_terminal(dir.path(), &[("NO_COLOR", "")]).unwrap();
    assert!(empty.contains('\u{1b}'), "{empty:?}");
    for env in [
        &[("NO_COLOR", "1")][..],
        &[("JOURNAL_STREAM", "8:12345")][..],
    ] {
        let plain = poll_on_a_terminal(dir.path(), env).unwrap();
        assert!(plain.contains("fetch failed"), "{env:?}: {plain:?}");
        assert!(!plain.contains('\u{1b}'), "{env:?}: {plain:?}");
    }
}
