//! Credentials that ride in URLs: the password (or lone user name) of the user info,
//! and query or fragment parameters whose names say they are secrets. Herald fetches
//! the full URL but shows it, everywhere, as [`Redactor::url`] rewrites it:
//! `http://reader:***@host/feed?apikey=***&page=2`.
//!
//! A parameter is secret when its name, ignoring case and after percent-decoding,
//! - is one of [`DEFAULT_SECRET_PARAMS`] or of `[fetch] secret_params`, or
//! - ends in `token`, `secret`, `password` or `signature` (`auth_token`,
//!   `accessToken`, `client_secret`, `X-Amz-Signature`), or
//! - ends in `key` after `_`, `-` or `.`, or as a camel-case `Key` (`private_key`,
//!   `api-key`, `apiKey`), but not `monkey` or `hotkey`.
//!
//! In the user info, a user name with a password is kept (it tells an operator which
//! account) and the password hidden; a user name without a password, or with an empty
//! one, is itself the credential (an API key sent as the basic-auth user), so it is
//! hidden. Works on the text rather than a parsed `Url`, so that a URL `Url` rejects
//! is still redacted and the rest of the text is kept exactly as written.

use std::borrow::Cow;
use std::fmt;

/// What replaces a hidden password, user name or parameter value.
pub const MARKER: &str = "***";

/// Parameter names always treated as secret; `[fetch] secret_params` adds more.
pub const DEFAULT_SECRET_PARAMS: [&str; 8] = [
    "key",
    "apikey",
    "api_key",
    "token",
    "access_token",
    "secret",
    "password",
    "sig",
];

/// Endings that make any parameter name secret, whatever comes before.
const SECRET_ENDINGS: [&str; 4] = ["token", "secret", "password", "signature"];

/// Which parameters are secret, and the rewriting that hides them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Redactor {
    /// Names beyond the defaults, lower-cased.
    extra: Vec<String>,
}

impl Redactor {
    /// Secret parameters are the defaults plus `extra` (compared ignoring case).
    pub fn new<S: AsRef<str>>(extra: impl IntoIterator<Item = S>) -> Redactor {
        Redactor {
            extra: extra
                .into_iter()
                .map(|name| name.as_ref().to_lowercase())
                .collect(),
        }
    }

    /// Whether a query parameter of this (decoded) name carries a secret.
    pub fn is_secret_param(&self, name: &str) -> bool {
        let lower = name.to_lowercase();
        if DEFAULT_SECRET_PARAMS.contains(&lower.as_str()) || self.extra.contains(&lower) {
            return true;
        }
        if SECRET_ENDINGS.iter().any(|ending| lower.ends_with(ending)) {
            return true;
        }
        let Some(before) = lower.strip_suffix("key") else {
            return false;
        };
        if before.ends_with(['_', '-', '.']) {
            return true;
        }
        // Camel case: `apiKey`, where the original has a capital K after a small letter.
        let original_k = name.len().checked_sub(3).and_then(|at| name.get(at..));
        original_k.is_some_and(|k| k.starts_with('K'))
            && name[..name.len() - 3]
                .chars()
                .next_back()
                .is_some_and(char::is_lowercase)
    }

    /// `url` with its credentials replaced by [`MARKER`]; unchanged (borrowed) when
    /// it carries none, or is not a `scheme://` URL at all.
    pub fn url<'a>(&self, url: &'a str) -> Cow<'a, str> {
        match self.redact_url(url) {
            Some(redacted) => Cow::Owned(redacted),
            None => Cow::Borrowed(url),
        }
    }

    /// Every `scheme://` URL within free text (an error message, say) redacted as by
    /// [`Redactor::url`]. A URL ends at white space, a quote or an angle bracket;
    /// punctuation that ends a sentence, and a closing parenthesis without an opening
    /// one, are left outside it.
    pub fn text<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = String::new();
        let mut copied = 0;
        let mut search = 0;
        while let Some(found) = text[search..].find("://") {
            let separator = search + found;
            let start = scheme_start(text, separator);
            let end = url_end(text, separator + 3);
            search = end.max(separator + 3);
            let Some(start) = start else {
                continue;
            };
            if let Some(redacted) = self.redact_url(&text[start..end]) {
                out.push_str(&text[copied..start]);
                out.push_str(&redacted);
                copied = end;
            }
        }
        if copied == 0 {
            return Cow::Borrowed(text);
        }
        out.push_str(&text[copied..]);
        Cow::Owned(out)
    }

    /// `url` redacted when displayed: for log fields and `format!`.
    pub fn show<'a>(&'a self, url: &'a str) -> RedactedUrl<'a> {
        RedactedUrl {
            redactor: self,
            url,
        }
    }

    /// `None` when nothing needs hiding.
    fn redact_url(&self, url: &str) -> Option<String> {
        let separator = url.find("://")?;
        scheme_start(url, separator).filter(|start| *start == 0)?;
        let authority_start = separator + 3;
        let authority_end = url[authority_start..]
            .find(['/', '?', '#'])
            .map_or(url.len(), |at| authority_start + at);
        let mut out = String::with_capacity(url.len());
        out.push_str(&url[..authority_start]);
        let authority = &url[authority_start..authority_end];
        let mut changed = false;
        match authority.rfind('@') {
            Some(at) => {
                let (user_info, host) = authority.split_at(at);
                changed |= push_user_info(&mut out, user_info);
                out.push_str(host);
            }
            None => out.push_str(authority),
        }
        let rest = &url[authority_end..];
        let (before_fragment, fragment) = match rest.find('#') {
            Some(hash) => (&rest[..hash], Some(&rest[hash + 1..])),
            None => (rest, None),
        };
        match before_fragment.find('?') {
            Some(question) => {
                out.push_str(&before_fragment[..=question]);
                changed |= self.push_params(&mut out, &before_fragment[question + 1..]);
            }
            None => out.push_str(before_fragment),
        }
        if let Some(fragment) = fragment {
            out.push('#');
            changed |= self.push_params(&mut out, fragment);
        }
        changed.then_some(out)
    }

    /// `name=value` pairs separated by `&` or `;`, secret values replaced.
    fn push_params(&self, out: &mut String, params: &str) -> bool {
        let mut changed = false;
        let mut rest = params;
        loop {
            let end = rest.find(['&', ';']).unwrap_or(rest.len());
            let pair = &rest[..end];
            match pair.split_once('=') {
                Some((name, value)) if !value.is_empty() && self.is_secret_param(&decode(name)) => {
                    out.push_str(name);
                    out.push('=');
                    out.push_str(MARKER);
                    changed = true;
                }
                _ => out.push_str(pair),
            }
            let Some(separator) = rest[end..].chars().next() else {
                return changed;
            };
            out.push(separator);
            rest = &rest[end + separator.len_utf8()..];
        }
    }
}

/// A URL that displays redacted (see [`Redactor::show`]).
#[derive(Debug, Clone, Copy)]
pub struct RedactedUrl<'a> {
    redactor: &'a Redactor,
    url: &'a str,
}

impl fmt::Display for RedactedUrl<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redactor.url(self.url))
    }
}

/// [`Redactor::url`] with the default secret parameters only.
pub fn redact_url(url: &str) -> Cow<'_, str> {
    Redactor::default().url(url)
}

/// `user:password`, `user` or `:password` (before the last `@`), with the credential
/// hidden; true when something was.
fn push_user_info(out: &mut String, user_info: &str) -> bool {
    match user_info.split_once(':') {
        Some((user, password)) if !password.is_empty() => {
            out.push_str(user);
            out.push(':');
            out.push_str(MARKER);
            true
        }
        Some((user, _)) if !user.is_empty() => {
            out.push_str(MARKER);
            out.push(':');
            true
        }
        None if !user_info.is_empty() => {
            out.push_str(MARKER);
            true
        }
        _ => {
            out.push_str(user_info);
            false
        }
    }
}

/// Where the scheme ending at `separator` (the `://`) starts, if there is one: a
/// letter, then letters, digits, `+`, `-` or `.` (RFC 3986 §3.1).
fn scheme_start(text: &str, separator: usize) -> Option<usize> {
    let before = &text.as_bytes()[..separator];
    let length = before
        .iter()
        .rev()
        .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        .count();
    // Leading digits and signs belong to the text before, not to the scheme.
    let scheme = &before[separator - length..];
    let skip = scheme
        .iter()
        .take_while(|b| !b.is_ascii_alphabetic())
        .count();
    (skip < length).then_some(separator - length + skip)
}

/// Where a URL found in text, whose authority starts at `from`, ends.
fn url_end(text: &str, from: usize) -> usize {
    let end = text[from..]
        .find(|c: char| c.is_whitespace() || c.is_control() || "\"'<>`".contains(c))
        .map_or(text.len(), |at| from + at);
    let mut candidate = &text[from..end];
    loop {
        let trimmed = candidate.trim_end_matches(['.', ',', ';', ':', '!', '?']);
        let unbalanced =
            trimmed.ends_with(')') && trimmed.matches('(').count() < trimmed.matches(')').count();
        let trimmed = if unbalanced {
            &trimmed[..trimmed.len() - 1]
        } else {
            trimmed
        };
        if trimmed.len() == candidate.len() {
            return from + candidate.len();
        }
        candidate = trimmed;
    }
}

/// A parameter name as the server reads it: `%5F` is `_`, `+` a space.
fn decode(name: &str) -> Cow<'_, str> {
    if !name.contains(['%', '+']) {
        return Cow::Borrowed(name);
    }
    url::form_urlencoded::parse(name.as_bytes())
        .next()
        .map_or(Cow::Borrowed(name), |(decoded, _)| {
            Cow::Owned(decoded.into_owned())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let cases = [
            // The example.
            (
                "http://user:s3cret@127.0.0.1:8080/feed?apikey=TOPSECRET&page=2",
                "http://user:***@127.0.0.1:8080/feed?apikey=***&page=2",
            ),
            // Nothing to hide: unchanged.
            (
                "https://news.example/rss?page=2&lang=en",
                "https://news.example/rss?page=2&lang=en",
            ),
            ("https://news.example/", "https://news.example/"),
            // User info: a user with a password keeps the name.
            ("https://u:p@h/", "https://u:***@h/"),
            // A lone user name, or one with an empty password, is the credential.
            ("https://APIKEY@h/f", "https://***@h/f"),
            ("https://APIKEY:@h/f", "https://***:@h/f"),
            ("https://:pw@h/f", "https://:***@h/f"),
            // An `@` in the password: the host starts after the last one.
            ("http://u:p@ss@h/f", "http://u:***@h/f"),
            // IPv6 hosts, with and without user info.
            (
                "http://u:pw@[2001:db8::1]:8080/f?token=t",
                "http://u:***@[2001:db8::1]:8080/f?token=***",
            ),
            ("http://[::1]:80/f?q=1", "http://[::1]:80/f?q=1"),
            // Parameter names in any case, percent-encoded, repeated.
            (
                "https://h/f?APIKEY=a&Token=b&api%5Fkey=c&key=d&key=e",
                "https://h/f?APIKEY=***&Token=***&api%5Fkey=***&key=***&key=***",
            ),
            // Endings that name secrets.
            (
                "https://h/f?auth_token=a&accessToken=b&client_secret=c&X-Amz-Signature=d&private_key=e&apiKey=f",
                "https://h/f?auth_token=***&accessToken=***&client_secret=***&X-Amz-Signature=***&private_key=***&apiKey=***",
            ),
            // Names that merely end in "key" as a word part are not secret.
            (
                "https://h/f?monkey=1&hotkey=2&keyword=3",
                "https://h/f?monkey=1&hotkey=2&keyword=3",
            ),
            // Empty values and names without a value reveal nothing.
            ("https://h/f?token=&key", "https://h/f?token=&key"),
            // `;` separates parameters too.
            ("https://h/f?a=1;sig=x", "https://h/f?a=1;sig=***"),
            // Fragments: the query stops at `#`, and OAuth puts tokens after it.
            (
                "https://h/f?page=2#access_token=abc&state=s",
                "https://h/f?page=2#access_token=***&state=s",
            ),
            ("https://h/f#section-2", "https://h/f#section-2"),
            ("https://h/f?token=t#top", "https://h/f?token=***#top"),
            // A `?` or `@` after the authority is no user info.
            ("https://h/a@b?x=1", "https://h/a@b?x=1"),
            // Invalid URLs are still redacted as far as their shape goes.
            (
                "http://u:pw@/no-host?key=k",
                "http://u:***@/no-host?key=***",
            ),
            (
                "http://u:p w@h/%zz?token=a b",
                "http://u:***@h/%zz?token=***",
            ),
            ("http://[::1/f?token=t", "http://[::1/f?token=***"),
            // Not URLs: unchanged.
            ("", ""),
            ("not a url", "not a url"),
            ("user:pass@host/feed?token=t", "user:pass@host/feed?token=t"),
            ("://u:p@h/", "://u:p@h/"),
            ("mailto:someone@example.com", "mailto:someone@example.com"),
        ];
        let redactor = Redactor::default();
        for (url, expected) in cases {
            assert_eq!(redactor.url(url), expected, "{url}");
            // Redacting twice changes nothing more.
            assert_eq!(redactor.url(expected), expected, "{expected}");
        }
    }

    #[test]
    fn unchanged_urls_are_borrowed() {
        assert!(matches!(
            redact_url("https://news.example/rss?page=2"),
            Cow::Borrowed(_)
        ));
        assert!(matches!(redact_url("https://u:p@h/"), Cow::Owned(_)));
    }

    #[test]
    fn configured_names_add_to_the_defaults() {
        let redactor = Redactor::new(["Session", "x-auth"]);
        assert_eq!(
            redactor.url("https://h/f?session=s&X-Auth=a&apikey=k&page=2"),
            "https://h/f?session=***&X-Auth=***&apikey=***&page=2"
        );
        assert_eq!(
            Redactor::default().url("https://h/f?session=s"),
            "https://h/f?session=s"
        );
    }

    #[test]
    fn urls_within_text() {
        let redactor = Redactor::default();
        let cases = [
            (
                "bad redirect from http://u:pw@h/f?token=t: no Location header",
                "bad redirect from http://u:***@h/f?token=***: no Location header",
            ),
            (
                "error sending request for url (http://u:pw@h/f?key=k)",
                "error sending request for url (http://u:***@h/f?key=***)",
            ),
            (
                "invalid Location \"https://x:y@evil/?sig=s\": oops",
                "invalid Location \"https://x:***@evil/?sig=***\": oops",
            ),
            (
                "see https://h/f?token=t. Then https://a:b@c/ and <ftp://k@d/>",
                "see https://h/f?token=***. Then https://a:***@c/ and <ftp://***@d/>",
            ),
            (
                "a link (https://en.example/Foo_(bar)?token=t) here",
                "a link (https://en.example/Foo_(bar)?token=***) here",
            ),
            (
                "HTTP 503 Service Unavailable",
                "HTTP 503 Service Unavailable",
            ),
            ("odd :// text 1://x@y", "odd :// text 1://x@y"),
        ];
        for (text, expected) in cases {
            assert_eq!(redactor.text(text), expected, "{text}");
        }
    }

    #[test]
    fn display_wrapper() {
        let redactor = Redactor::default();
        assert_eq!(
            format!("feed {}", redactor.show("http://u:p@h/?token=t")),
            "feed http://u:***@h/?token=***"
        );
    }

    #[test]
    fn secret_names() {
        let redactor = Redactor::default();
        for name in DEFAULT_SECRET_PARAMS {
            assert!(redactor.is_secret_param(name), "{name}");
            assert!(redactor.is_secret_param(&name.to_uppercase()), "{name}");
        }
        for name in [
            "page", "q", "lang", "id", "format", "keys", "Key2", "tokens",
        ] {
            assert!(!redactor.is_secret_param(name), "{name}");
        }
    }
}
