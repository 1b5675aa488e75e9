//! Email sinks against a real SMTP server on 127.0.0.1: an alert arrives as
//! one message to every recipient, plain text and HTML with the feed's text
//! escaped; a 4xx is retried; a refused recipient marks the sink broken and
//! its alerts wait; STARTTLS is required unless the URL says `?tls=none`, and
//! the login never shows in an error. Both backends.

use chrono::{TimeDelta, Utc};
use herald::domain::delivery::DeliveryStatus;

use crate::both_backends;
use crate::support::db::Backend;
use crate::support::feed_server::{FeedServer, Item, Route};
use crate::support::herald::{TestHerald, feeds_toml};
use crate::support::smtp::SmtpServer;

both_backends!(
    an_alert_arrives_by_email_to_every_recipient_with_feed_text_escaped,
    a_refused_recipient_breaks_the_sink_until_enabled_and_4xx_is_retried,
    starttls_is_required_unless_the_url_says_otherwise,
    starttls_to_a_private_authority_logs_in_and_delivers,
);

async fn watching(backend: Backend, server: &FeedServer, url: &str) -> TestHerald {
    watching_with(backend, server, url, "").await
}

async fn watching_with(backend: Backend, server: &FeedServer, url: &str, more: &str) -> TestHerald {
    server.set("/wire", Route::rss("Wire", &[]));
    let herald = TestHerald::start(
        backend,
        &format!(
            "[sinks.desk]\ntype = \"email\"\nurl = \"{url}\"\n{more}\
             from = \"herald <alerts@herald.test>\"\n\
             to = [\"analyst@newsroom.test\", \"Night Desk <desk@newsroom.test>\"]\n\n\
             [rules.nk-iran]\nquery = '\"North Korea\" Iran'\nsinks = [\"desk\"]\n\n{}",
            feeds_toml(&[server.url("/wire")])
        ),
    )
    .await;
    herald.poll_one().await;
    herald
}

async fn an_alert_arrives_by_email_to_every_recipient_with_feed_text_escaped(backend: Backend) {
    let smtp = SmtpServer::start();
    let server = FeedServer::start().await;
    let herald = watching(backend, &server, &smtp.url("?tls=none")).await;
    server.set(
        "/wire",
        Route::rss("Wire", &[Item::titled(1, "North Korea & Iran \"talks\"")]),
    );
    assert_eq!(herald.poll_one().await.new, 1);
    let report = herald.app.dispatch_once().await.unwrap();
    assert_eq!(report.delivered, 1, "{report:?}");

    let mails = smtp.mails();
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(mail.from, "alerts@herald.test");
    let mut to = mail.to.clone();
    to.sort();
    assert_eq!(to, ["analyst@newsroom.test", "desk@newsroom.test"]);
    assert!(
        mail.raw.contains("Subject: [herald] nk-iran: North Korea"),
        "{}",
        mail.raw
    );
    assert!(mail.raw.contains("multipart/alternative"), "{}", mail.raw);
    assert!(mail.raw.contains("text/plain"), "{}", mail.raw);
    assert!(mail.raw.contains("text/html"), "{}", mail.raw);
    let delivery = &herald.db.store.deliveries(None, 1).await.unwrap()[0];
    assert!(
        mail.raw
            .contains(&format!("Message-ID: <{}@herald>", delivery.delivery_id)),
        "{}",
        mail.raw
    );
    // The HTML part (quoted-printable) holds the title escaped: feed text is
    // never markup.
    let decoded = mail
        .raw
        .replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=");
    assert!(
        decoded.contains(">North Korea &amp; Iran &quot;talks&quot;</a>"),
        "{decoded}"
    );
}

async fn a_refused_recipient_breaks_the_sink_until_enabled_and_4xx_is_retried(backend: Backend) {
    let smtp = SmtpServer::start();
    let server = FeedServer::start().await;
    let herald = watching(backend, &server, &smtp.url("?tls=none")).await;

    // A 451 is a "later": retried, then delivered.
    smtp.refuse_next(451, "greylisted, try again later");
    server.set(
        "/wire",
        Route::rss(
            "Wire",
            &[Item::titled(1, "North Korea sends envoys to Iran")],
        ),
    );
    herald.poll_one().await;
    let dispatcher = &herald.app.dispatcher;
    let report = dispatcher.run_once(Utc::now()).await.unwrap();
    assert_eq!(report.failed, 1, "{report:?}");
    let failed = &herald.db.store.deliveries(None, 1).await.unwrap()[0];
    assert_eq!(failed.status, DeliveryStatus::Failed);
    let error = failed.error.as_deref().unwrap_or_default();
    assert!(error.starts_with("SMTP 451"), "{error}");
    let later = Utc::now() + TimeDelta::minutes(10);
    let report = dispatcher.run_once(later).await.unwrap();
    assert_eq!(report.delivered, 1, "{report:?}");
    assert_eq!(smtp.mails().len(), 1);

    // A recipient the server does not know: the sink is broken, the alert waits.
    smtp.refuse_recipient("desk@newsroom.test");
    server.set(
        "/wire",
        Route::rss(
            "Wire",
            &[
                Item::titled(1, "North Korea sends envoys to Iran"),
                Item::titled(2, "Iran and North Korea sign a trade pact"),
            ],
        ),
    );
    assert_eq!(herald.poll_one().await.new, 1);
    let report = dispatcher.run_once(later).await.unwrap();
    assert_eq!(report.failed, 1, "{report:?}");
    let broken = herald.db.store.broken_sinks().await.unwrap();
    assert_eq!(broken.len(), 1, "{broken:?}");
    assert!(broken[0].reason.starts_with("SMTP 550"), "{broken:?}");
    let again = dispatcher.run_once(later).await.unwrap();
    assert_eq!(again.attempts(), 0, "{again:?}");

    smtp.accept_every_recipient();
    let enabled = herald.cli(&["sinks", "enable", "desk"]).await;
    assert_eq!(enabled.status.code(), Some(0), "{enabled:?}");
    let report = dispatcher.run_once(later).await.unwrap();
    assert_eq!(report.delivered, 1, "{report:?}");
    assert_eq!(smtp.mails().len(), 2);
}

async fn starttls_is_required_unless_the_url_says_otherwise(backend: Backend) {
    let smtp = SmtpServer::start();
    let server = FeedServer::start().await;
    let url = smtp.url("").replace("smtp://", "smtp://alerts:hunter2@");
    let herald = watching(backend, &server, &url).await;
    server.set(
        "/wire",
        Route::rss(
            "Wire",
            &[Item::titled(1, "North Korea sends envoys to Iran")],
        ),
    );
    herald.poll_one().await;
    let report = herald.app.dispatch_once().await.unwrap();
    assert_eq!(report.delivered, 0, "{report:?}");
    assert!(smtp.mails().is_empty(), "nothing sent in the clear");
    let broken = herald.db.store.broken_sinks().await.unwrap();
    assert_eq!(broken.len(), 1, "{broken:?}");
    assert!(broken[0].reason.contains("STARTTLS"), "{broken:?}");
    let delivery = &herald.db.store.deliveries(None, 1).await.unwrap()[0];
    let shown = format!("{broken:?} {delivery:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    let listed = herald.cli(&["sinks"]).await;
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(
        text.contains("email") && !text.contains("hunter2"),
        "{text}"
    );
}

async fn starttls_to_a_private_authority_logs_in_and_delivers(backend: Backend) {
    let smtp = SmtpServer::start_tls("alerts", "hunter2");
    let server = FeedServer::start().await;
    let ca = format!("tls_ca = \"{}\"\n", SmtpServer::ca_path().display());
    let url = smtp.url("").replace("smtp://", "smtp://alerts:hunter2@");
    let herald = watching_with(backend, &server, &url, &ca).await;
    server.set(
        "/wire",
        Route::rss(
            "Wire",
            &[Item::titled(1, "North Korea sends envoys to Iran")],
        ),
    );
    herald.poll_one().await;
    let report = herald.app.dispatch_once().await.unwrap();
    assert_eq!(
        report.delivered,
        1,
        "{report:?} {:?}",
        herald.db.store.deliveries(None, 1).await
    );
    assert_eq!(smtp.logins(), ["alerts"]);
    assert_eq!(smtp.mails().len(), 1);

    // Without the authority, the server's certificate is not trusted: the
    // sink is broken and nothing (not the login) was sent.
    let untrusted = SmtpServer::start_tls("alerts", "hunter2");
    let other = FeedServer::start().await;
    let url = untrusted
        .url("")
        .replace("smtp://", "smtp://alerts:hunter2@");
    let herald = watching(backend, &other, &url).await;
    other.set(
        "/wire",
        Route::rss(
            "Wire",
            &[Item::titled(1, "North Korea sends envoys to Iran")],
        ),
    );
    herald.poll_one().await;
    let report = herald.app.dispatch_once().await.unwrap();
    assert_eq!(report.delivered, 0, "{report:?}");
    assert!(untrusted.logins().is_empty());
    let broken = herald.db.store.broken_sinks().await.unwrap();
    assert_eq!(
        broken.len(),
        1,
        "{broken:?} {:?}",
        herald.db.store.deliveries(None, 1).await
    );
    assert!(!format!("{broken:?}").contains("hunter2"));
}
