//! Email alerts over SMTP (lettre): the message, plain text and HTML, and one
//! attempt to hand it to the configured server, classified like a webhook's.
//!
//! `smtps://` connects with TLS at once; `smtp://` upgrades with STARTTLS and
//! refuses to send (no credentials, no message) where the server does not
//! offer it, unless the URL says `?tls=none`. The URL's user and password
//! log in; they never appear in an error. Feed text is HTML-escaped in the
//! HTML part and cannot add a header: lettre encodes the subject and
//! addresses, and the subject is one line.

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart, SinglePart, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::{
    Error as SmtpError,
    client::{Certificate, Tls, TlsParameters},
};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio::time::Instant;
use url::Url;

use super::template::Markup;
use super::text::{fit, one_line};
use super::{AttemptOutcome, Digest, Verdict, also_reported, display_title};
use crate::domain::alert::AlertMessage;

/// Stories per digest email: a long read is fine, an endless one is not.
pub const DIGEST_CAPACITY: usize = 100;
/// Subjects past this are cut: mail clients show about 60 characters anyway.
const MAX_SUBJECT: usize = 150;
const MAX_SUMMARY: usize = 2000;

/// Where and as whom an email sink sends, checked when the file was loaded.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct EmailTarget {
    /// `smtp://` or `smtps://`, with the login and `?tls=none` if any.
    pub url: Url,
    pub from: String,
    pub to: Vec<String>,
    /// PEM certificates trusted for the server besides the system's.
    pub tls_ca: Option<String>,
}

/// What an email carries: a subject and both parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The email for one alert; `html` replaces the default HTML part (a template's).
pub fn alert(message: &AlertMessage, html: Option<&str>) -> Email {
    let article = &message.article;
    let title = one_line(&display_title(article));
    let subject = fit(
        &format!("[herald] {}: {title}", one_line(&message.rule.name)),
        MAX_SUBJECT,
    );
    let summary = article
        .summary
        .as_deref()
        .map(|summary| fit(&one_line(summary), MAX_SUMMARY))
        .unwrap_or_default();
    let link = article.url.as_deref().unwrap_or_default();
    let also = also_reported(message);
    let mut text = format!("{title}\n{link}\n");
    if !summary.is_empty() {
        text.push_str(&format!("\n{summary}\n"));
    }
    if let Some(also) = &also {
        text.push_str(&format!("\n{also}\n"));
    }
    text.push_str(&format!("\nRule: {}\n", message.rule.name));
    let html = match html {
        Some(html) => html.to_owned(),
        None => alert_html(&title, link, &summary, also.as_deref(), &message.rule.name),
    };
    Email {
        subject,
        text,
        html,
    }
}

fn alert_html(title: &str, link: &str, summary: &str, also: Option<&str>, rule: &str) -> String {
    let escape = |text: &str| Markup::Html.escape(text);
    let mut html = if link.is_empty() {
        format!("<h2>{}</h2>\n", escape(title))
    } else {
        format!(
            "<h2><a href=\"{}\">{}</a></h2>\n",
            escape(link),
            escape(title)
        )
    };
    if !summary.is_empty() {
        html.push_str(&format!("<p>{}</p>\n", escape(summary)));
    }
    if let Some(also) = also {
        html.push_str(&format!("<p><em>{}</em></p>\n", escape(also)));
    }
    html.push_str(&format!("<p>Rule: <code>{}</code></p>\n", escape(rule)));
    html
}

/// The email for a digest: a list of its stories.
pub fn digest(digest: &Digest) -> Email {
    let shown = digest.items.len().min(DIGEST_CAPACITY);
    let heading = one_line(&digest.heading(shown));
    let subject = fit(&format!("[herald] {heading}"), MAX_SUBJECT);
    let mut text = format!("{heading}\n");
    let mut html = format!("<h2>{}</h2>\n<ul>\n", Markup::Html.escape(&heading));
    for message in digest.items.iter().take(shown) {
        let title = one_line(&display_title(&message.article));
        let link = message.article.url.as_deref().unwrap_or_default();
        text.push_str(&format!(
            "\n- {title}\n  {link}\n  rule {}\n",
            message.rule.name
        ));
        let escape = |text: &str| Markup::Html.escape(text);
        let title_html = if link.is_empty() {
            escape(&title)
        } else {
            format!("<a href=\"{}\">{}</a>", escape(link), escape(&title))
        };
        html.push_str(&format!(
            "<li>{title_html} <small>({})</small></li>\n",
            escape(&message.rule.name)
        ));
    }
    html.push_str("</ul>\n");
    Email {
        subject,
        text,
        html,
    }
}

/// One attempt to send `email` through `target`'s server.
pub async fn send(
    target: &EmailTarget,
    email: &Email,
    delivery_id: &str,
    timeout: Duration,
) -> AttemptOutcome {
    let started = Instant::now();
    let message = match build(target, email, delivery_id) {
        Ok(message) => message,
        Err(error) => return AttemptOutcome::failed(Verdict::Broken, error, started.elapsed()),
    };
    let transport = match transport(target, timeout) {
        Ok(transport) => transport,
        Err(error) => return AttemptOutcome::failed(Verdict::Broken, error, started.elapsed()),
    };
    // lettre bounds each command; the whole exchange is bounded here too, so
    // that an attempt never outlives the dispatcher's lease.
    let Ok(sent) = tokio::time::timeout(timeout, transport.send(message)).await else {
        return AttemptOutcome::failed(
            Verdict::Retry { retry_after: None },
            format!(
                "SMTP: timed out after {}",
                humantime::format_duration(timeout)
            ),
            started.elapsed(),
        );
    };
    match sent {
        Ok(_) => AttemptOutcome::delivered(started.elapsed()),
        Err(error) => AttemptOutcome::failed(
            classify(&error),
            describe(&error, &target.url),
            started.elapsed(),
        ),
    }
}

fn build(target: &EmailTarget, email: &Email, delivery_id: &str) -> Result<Message, String> {
    let from: Mailbox = target
        .from
        .parse()
        .map_err(|_| format!("invalid from address {:?}", target.from))?;
    let mut builder = Message::builder()
        .from(from)
        .subject(one_line(&email.subject))
        // Stable across retries: a mail client can drop a repeat by it.
        .message_id(Some(format!("<{delivery_id}@herald>")));
    for to in &target.to {
        let to: Mailbox = to
            .parse()
            .map_err(|_| format!("invalid recipient address {to:?}"))?;
        builder = builder.to(to);
    }
    builder
        .multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(email.text.clone()),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(email.html.clone()),
                ),
        )
        .map_err(|error| format!("cannot build the email: {error}"))
}

/// The SMTP connection a sink's URL describes.
fn transport(
    target: &EmailTarget,
    timeout: Duration,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let url = &target.url;
    let host = url
        .host_str()
        .ok_or_else(|| "the SMTP URL has no host".to_owned())?;
    let plain = url
        .query_pairs()
        .any(|(key, value)| key == "tls" && value == "none");
    let implicit = url.scheme() == "smtps";
    let default_port = match (implicit, plain) {
        (true, _) => 465,
        (false, true) => 25,
        (false, false) => 587,
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(url.port().unwrap_or(default_port))
        .timeout(Some(timeout));
    if !plain {
        let mut parameters = TlsParameters::builder(host.to_owned());
        if let Some(pem) = &target.tls_ca {
            let certificate = Certificate::from_pem(pem.as_bytes())
                .map_err(|error| format!("cannot read tls_ca: {error}"))?;
            parameters = parameters.add_root_certificate(certificate);
        }
        let parameters = parameters
            .build()
            .map_err(|error| format!("cannot set up TLS for the SMTP server: {error}"))?;
        // STARTTLS is required: no login, no message in the clear.
        builder = builder.tls(if implicit {
            Tls::Wrapper(parameters)
        } else {
            Tls::Required(parameters)
        });
    }
    if !url.username().is_empty() {
        let decode = |text: &str| {
            percent_encoding::percent_decode_str(text)
                .decode_utf8_lossy()
                .into_owned()
        };
        builder = builder.credentials(Credentials::new(
            decode(url.username()),
            decode(url.password().unwrap_or_default()),
        ));
    }
    Ok(builder.build())
}

/// 4xx and connection trouble are retried; a refused recipient (550, 551,
/// 553), a refused login (530, 535), an untrusted certificate or a failed
/// TLS set-up say the sink is
/// broken (every email would fail alike); other 5xx refuse this one email.
fn classify(error: &SmtpError) -> Verdict {
    if error.is_permanent() {
        let code = error.status().map(u16::from);
        return match code {
            Some(530 | 535 | 550 | 551 | 553) => Verdict::Broken,
            _ => Verdict::Permanent,
        };
    }
    // lettre reports a certificate the server's name or authority does not
    // vouch for as a connection error; no retry will change it.
    if error.is_tls() || error.is_client() || error.to_string().contains("invalid peer certificate")
    {
        return Verdict::Broken;
    }
    Verdict::Retry { retry_after: None }
}

/// The error for a person: the SMTP code and text, the host but never the login.
fn describe(error: &SmtpError, url: &Url) -> String {
    let mut text = match error.status() {
        Some(code) => format!("SMTP {code}: {error}"),
        None => format!("SMTP: {error}"),
    };
    for secret in [url.password(), Some(url.username())].into_iter().flatten() {
        if !secret.is_empty() {
            text = text.replace(secret, "***");
        }
    }
    one_line(&text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::tests::{HOSTILE, digest as sample_digest, message};

    #[test]
    fn an_alert_has_a_one_line_subject_and_both_parts() {
        let mut hostile = message();
        hostile.article.title = format!("Line one\r\nBcc: victim@example.com {HOSTILE}");
        let email = alert(&hostile, None);
        assert!(!email.subject.contains('\n') && !email.subject.contains('\r'));
        assert!(
            email
                .subject
                .starts_with(&format!("[herald] {}: Line one Bcc:", hostile.rule.name)),
            "{}",
            email.subject
        );
        assert!(email.text.contains(hostile.article.url.as_deref().unwrap()));
        assert!(!email.html.contains("<@here>"), "{}", email.html);
        assert!(email.html.contains("&lt;@here&gt;"), "{}", email.html);
    }

    #[test]
    fn a_template_replaces_the_html_part_only() {
        let email = alert(&message(), Some("<p>custom</p>"));
        assert_eq!(email.html, "<p>custom</p>");
        assert!(email.text.contains("Rule: "));
    }

    #[test]
    fn a_digest_lists_its_stories() {
        let digest = sample_digest(3);
        let email = super::digest(&digest);
        assert!(
            email.subject.starts_with("[herald] 3 stories"),
            "{}",
            email.subject
        );
        assert_eq!(email.html.matches("<li>").count(), 3);
        assert_eq!(email.text.matches("\n- ").count(), 3);
    }

    #[test]
    fn a_message_carries_the_delivery_id_and_every_recipient() {
        let target = EmailTarget {
            url: Url::parse("smtp://127.0.0.1?tls=none").unwrap(),
            from: "herald <alerts@example.com>".to_owned(),
            to: vec!["a@example.com".to_owned(), "b@example.com".to_owned()],
            tls_ca: None,
        };
        let built = build(&target, &alert(&message(), None), "d-1").unwrap();
        let raw = String::from_utf8(built.formatted()).unwrap();
        assert!(raw.contains("Message-ID: <d-1@herald>"), "{raw}");
        assert!(raw.contains("To: a@example.com, b@example.com"), "{raw}");
        assert!(raw.contains("multipart/alternative"), "{raw}");
        let bad = EmailTarget {
            from: "not an address".to_owned(),
            ..target
        };
        assert_eq!(
            build(&bad, &alert(&message(), None), "d-1").unwrap_err(),
            "invalid from address \"not an address\""
        );
    }
}
