//! Wording of network errors for people: shared by the HTTP stages (`fetch`,
//! `sinks`) so that a feed failure and a delivery failure read alike.

/// A short phrase for the I/O failures a network peer causes.
pub fn describe_io(kind: std::io::ErrorKind) -> Option<&'static str> {
    use std::io::ErrorKind;
    Some(match kind {
        ErrorKind::ConnectionRefused => "connection refused",
        ErrorKind::ConnectionReset => "connection reset by peer",
        ErrorKind::ConnectionAborted => "connection aborted",
        ErrorKind::NotConnected => "not connected",
        ErrorKind::TimedOut => "connection timed out",
        ErrorKind::UnexpectedEof => "connection closed before the response was complete",
        ErrorKind::HostUnreachable => "host unreachable",
        ErrorKind::NetworkUnreachable => "network unreachable",
        _ => return None,
    })
}

/// Drops the OS error number and lower-cases a leading capital ("Connection reset").
pub fn humanize(message: &str) -> String {
    let message = match message.find(" (os error ") {
        Some(at) => &message[..at],
        None => message,
    };
    let mut chars = message.chars();
    match (chars.next(), chars.next()) {
        (Some(first), Some(second)) if first.is_uppercase() && !second.is_uppercase() => first
            .to_lowercase()
            .chain(message[first.len_utf8()..].chars())
            .collect(),
        _ => message.to_owned(),
    }
}
