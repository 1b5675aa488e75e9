//! Scalar syntax of the config file: `${VAR}` substitution, durations, sizes and names.
//! Each function returns the error message only; the caller knows where the value sits.

use std::time::Duration;

use url::Url;

use super::secret::is_http;
use crate::domain::address::PrivateNetworks;
use crate::domain::redact::Redactor;

/// Replaces every `${NAME}` with the variable's value. `$${` stands for a literal `${`;
/// any other `$` is kept as written, so a password such as `pa$$word` needs no escaping.
pub(super) fn expand_vars(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let mut expanded = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        expanded.push_str(&rest[..dollar]);
        let after = &rest[dollar..];
        if let Some(literal) = after.strip_prefix("$${") {
            expanded.push_str("${");
            rest = literal;
        } else if let Some(reference) = after.strip_prefix("${") {
            let Some(close) = reference.find('}') else {
                return Err(
                    "unterminated `${`, expected `${NAME}` (write `$${` for a literal `${`)"
                        .to_owned(),
                );
            };
            let name = &reference[..close];
            expanded.push_str(&lookup_var(name, env)?);
            rest = &reference[close + 1..];
        } else {
            expanded.push('$');
            rest = &after[1..];
        }
    }
    expanded.push_str(rest);
    Ok(expanded)
}

fn lookup_var(name: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut chars = name.chars();
    let well_formed = chars
        .next()
        .is_some_and(|first| first == '_' || first.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric());
    if !well_formed {
        return Err(format!(
            "invalid environment variable name `{name}` in `${{{name}}}`, expected letters, digits and `_`"
        ));
    }
    env(name).ok_or_else(|| format!("environment variable `{name}` is not set"))
}

/// A humantime duration (`"90s"`, `"15m"`, `"1h 30m"`) of at least `minimum`.
pub(super) fn parse_duration(text: &str, minimum: Duration) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text.trim()).map_err(|_| {
        format!("invalid duration \"{text}\", expected a duration like \"90s\", \"15m\" or \"1h\"")
    })?;
    if duration < minimum {
        return Err(format!(
            "duration \"{text}\" is too short, expected at least {}",
            humantime::format_duration(minimum)
        ));
    }
    Ok(duration)
}

/// A byte size: a number with an optional unit. `KB`, `MB`, `GB` are decimal (1000ⁿ) as
/// in SI; `KiB`, `MiB`, `GiB` are binary (1024ⁿ); `B` or no unit is bytes. Units are
/// case-insensitive and may follow a space.
pub(super) fn parse_size(text: &str) -> Result<u64, String> {
    let invalid = || {
        format!(
            "invalid size \"{text}\", expected a size like \"10MB\", \"512KiB\" or a number of bytes"
        )
    };
    let trimmed = text.trim();
    let digits_end = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let number: u64 = trimmed[..digits_end].parse().map_err(|_| invalid())?;
    let multiplier = match trimmed[digits_end..]
        .trim_start()
        .to_ascii_lowercase()
        .as_str()
    {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        _ => return Err(invalid()),
    };
    number
        .checked_mul(multiplier)
        .ok_or_else(|| format!("size \"{text}\" is too large"))
}

/// Sink and rule names appear in CLI arguments, logs and the API, so they stay plain.
pub(super) fn check_name(kind: &str, name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "invalid {kind} name `{name}`, expected letters, digits, `-` and `_`"
        ))
    }
}

/// A feed URL: absolute, http or https. The error repeats it redacted: it may carry
/// credentials.
pub(super) fn parse_feed_url(text: &str, redactor: &Redactor) -> Result<Url, String> {
    match Url::parse(text) {
        Ok(url) if is_http(&url) => Ok(url),
        _ => Err(format!(
            "invalid feed url \"{}\", expected an absolute http or https URL",
            redactor.url(text)
        )),
    }
}

/// One of `[fetch] secret_params`: a query parameter name as it appears in URLs.
pub(super) fn parse_secret_param(text: &str) -> Result<String, String> {
    if text.is_empty() {
        Err("a secret parameter name must not be empty".to_owned())
    } else if text
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || "=&;#?".contains(c))
    {
        Err(format!(
            "invalid secret parameter name \"{text}\", expected a query parameter name without spaces, `=`, `&`, `;`, `#` or `?`"
        ))
    } else {
        Ok(text.to_owned())
    }
}

/// `[fetch] private_networks`: one of [`PrivateNetworks::NAMES`].
pub(super) fn parse_private_networks(text: &str) -> Result<PrivateNetworks, String> {
    PrivateNetworks::parse(text).ok_or_else(|| {
        format!(
            "invalid private_networks \"{text}\", expected \"configured\" (the default), \"allow\" or \"deny\""
        )
    })
}
