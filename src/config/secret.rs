//! Values that must never reach a log, the API or an error message in full: webhook
//! URLs, tokens and database passwords. Each redacts itself in `Debug` and `Display`;
//! the one way to the real value is an `expose` call, easy to find in review.

use std::fmt;

use url::Url;

const REDACTED: &str = "***";

/// A secret string (API token, webhook signing secret).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({REDACTED})")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// An http(s) URL whose path and query are a credential (Slack and Discord webhooks).
/// Shown as `https://hooks.slack.com/…`: the host helps an operator, the rest is the key.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl(Url);

impl SecretUrl {
    /// Parses an absolute http or https URL. The error never repeats the input.
    pub fn parse(text: &str) -> Result<Self, String> {
        match Url::parse(text) {
            Ok(url) if is_http(&url) => Ok(Self(url)),
            _ => Err(
                "invalid url (not shown, it is a secret), expected an absolute http or https URL"
                    .to_owned(),
            ),
        }
    }

    /// Parses an `smtp://` or `smtps://` URL with a host, whose login is the
    /// secret; `?tls=none` is the one query it takes. The error never repeats the input.
    pub fn parse_smtp(text: &str) -> Result<Self, String> {
        let url = Url::parse(text).map_err(|_| {
            "invalid url (not shown, it is a secret), expected smtp://user:password@host:587 \
             or smtps://…"
                .to_owned()
        })?;
        if !matches!(url.scheme(), "smtp" | "smtps") || url.host_str().is_none() {
            return Err(
                "invalid url (not shown, it is a secret), expected smtp://user:password@host:587 \
                 or smtps://…"
                    .to_owned(),
            );
        }
        for (key, value) in url.query_pairs() {
            if key != "tls" || value != "none" || url.scheme() == "smtps" {
                return Err(format!(
                    "unsupported query `{key}={value}` in the SMTP url: the one option is \
                     `?tls=none` on smtp:// (STARTTLS is required otherwise)"
                ));
            }
        }
        Ok(Self(url))
    }

    pub fn expose(&self) -> &Url {
        &self.0
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}",
            self.0.scheme(),
            self.0.host_str().unwrap_or_default()
        )?;
        if let Some(port) = self.0.port() {
            write!(f, ":{port}")?;
        }
        f.write_str("/…")
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretUrl(\"{self}\")")
    }
}

pub(super) fn is_http(url: &Url) -> bool {
    matches!(url.scheme(), "http" | "https") && url.host_str().is_some_and(|host| !host.is_empty())
}

/// Which storage backend a [`DatabaseUrl`] selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseBackend {
    Sqlite,
    Postgres,
}

/// A `sqlite:` or `postgres:`/`postgresql:` connection string, kept verbatim for sqlx.
/// `Debug` and `Display` replace the password (in the user info or a `password=` query
/// parameter) with `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    url: String,
    backend: DatabaseBackend,
}

impl DatabaseUrl {
    /// The error shows the URL redacted, since it may carry a password.
    pub fn parse(text: &str) -> Result<Self, String> {
        let backend = if text.starts_with("sqlite:") {
            DatabaseBackend::Sqlite
        } else if text.starts_with("postgres:") || text.starts_with("postgresql:") {
            DatabaseBackend::Postgres
        } else {
            return Err(format!(
                "unsupported database url \"{}\", expected one starting with `sqlite:`, `postgres:` or `postgresql:`",
                redact_database_url(text)
            ));
        };
        Ok(Self {
            url: text.to_owned(),
            backend,
        })
    }

    pub fn backend(&self) -> DatabaseBackend {
        self.backend
    }

    pub fn expose(&self) -> &str {
        &self.url
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_database_url(&self.url))
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl(\"{self}\")")
    }
}

/// Done by hand rather than with `Url` because sqlx accepts strings `Url` rejects, and a
/// password must be hidden even in a string that is otherwise invalid.
fn redact_database_url(text: &str) -> String {
    let (before_query, query) = match text.split_once('?') {
        Some((before, query)) => (before, Some(query)),
        None => (text, None),
    };
    let mut redacted = redact_user_info(before_query);
    if let Some(query) = query {
        redacted.push('?');
        redacted.push_str(&redact_password_parameter(query));
    }
    redacted
}

fn redact_user_info(text: &str) -> String {
    let Some(authority_start) = text.find("://").map(|index| index + 3) else {
        return text.to_owned();
    };
    let authority_end = text[authority_start..]
        .find('/')
        .map_or(text.len(), |index| authority_start + index);
    let authority = &text[authority_start..authority_end];
    let Some(at) = authority.rfind('@') else {
        return text.to_owned();
    };
    let Some(colon) = authority[..at].find(':') else {
        return text.to_owned();
    };
    let password_start = authority_start + colon + 1;
    let password_end = authority_start + at;
    format!(
        "{}{REDACTED}{}",
        &text[..password_start],
        &text[password_end..]
    )
}

fn redact_password_parameter(query: &str) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}={REDACTED}"),
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

impl Default for DatabaseUrl {
    fn default() -> Self {
        Self {
            url: super::DEFAULT_DATABASE_URL.to_owned(),
            backend: DatabaseBackend::Sqlite,
        }
    }
}
