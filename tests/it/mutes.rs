//! `herald rules mute`: a muted rule's hits are held back (reason `muted`),
//! visible in `herald alerts`; once unmuted, the next copy of such a story
//! alerts. Real binary, real feed server and receiver, both backends.

use std::process::Output;

use chrono::Utc;

use crate::both_backends;
use crate::support::db::Backend;
use crate::support::feed_server::{FeedServer, Item, Route};
use crate::support::herald::{TestHerald, json_lines};
use crate::support::receiver::Receiver;

both_backends!(a_muted_rule_holds_its_hits_until_unmuted);

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn story(n: u32, link: &str) -> Item {
    Item {
        guid: format!("{link}-{n}"),
        link: format!("https://{link}.example/{n}"),
        title: "North Korea sends a delegation to Iran for talks".into(),
        description: "<p>A delegation from North Korea arrived in Tehran on Monday for talks \
                      with Iran's officials on trade and energy, state media said, in the \
                      first such visit in years.</p>"
            .into(),
        pub_date: Some(Utc::now()),
    }
}

async fn a_muted_rule_holds_its_hits_until_unmuted(backend: Backend) {
    let server = FeedServer::start().await;
    let receiver = Receiver::start().await;
    server.set("/wire", Route::rss("Wire", &[]));
    let config = format!(
        "[sinks.desk]\ntype = \"webhook\"\nurl = \"{}\"\n\n\
         [rules.nk-iran]\nquery = '\"North Korea\" Iran'\nsinks = [\"desk\"]\n\n\
         [[feeds]]\nurl = \"{}\"\n",
        receiver.url("/hook"),
        server.url("/wire"),
    );
    let test = TestHerald::start(backend, &config).await;
    // The back catalogue (empty) first, so what follows is news.
    assert_eq!(test.cli(&["poll"]).await.status.code(), Some(0));

    let unknown = test
        .cli(&["rules", "mute", "no-such-rule", "--for", "1h"])
        .await;
    assert_eq!(unknown.status.code(), Some(2), "{unknown:?}");
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("no rule named no-such-rule in "),
        "{unknown:?}"
    );

    let muted = test.cli(&["rules", "mute", "nk-iran", "--for", "2h"]).await;
    assert_eq!(muted.status.code(), Some(0), "{muted:?}");
    assert!(
        stdout(&muted).starts_with("nk-iran muted until "),
        "{muted:?}"
    );
    let listed = json_lines(&test.cli(&["rules", "muted", "--json"]).await);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["rule"], "nk-iran");
    let until = chrono::DateTime::parse_from_rfc3339(listed[0]["until"].as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc);
    let left = until - Utc::now();
    assert!(
        left > chrono::Duration::minutes(119) && left <= chrono::Duration::minutes(120),
        "{left:?}"
    );

    // News while muted: stored, held back with why, not sent.
    server.set("/wire", Route::rss("Wire", &[story(1, "wire")]));
    let poll = test.cli(&["poll"]).await;
    assert_eq!(poll.status.code(), Some(0), "{poll:?}");
    assert!(
        receiver.requests("/hook").is_empty(),
        "nothing sent while muted: {poll:?}"
    );
    let held = json_lines(&test.cli(&["alerts", "--status", "held", "--json"]).await);
    assert_eq!(held.len(), 1, "{held:?} {poll:?}");
    assert_eq!(
        (held[0]["rule"].as_str(), held[0]["reason"].as_str()),
        (Some("nk-iran"), Some("muted"))
    );

    let unmuted = test.cli(&["rules", "unmute", "nk-iran"]).await;
    assert_eq!(stdout(&unmuted).trim(), "nk-iran unmuted", "{unmuted:?}");
    let again = test.cli(&["rules", "unmute", "nk-iran"]).await;
    assert_eq!(stdout(&again).trim(), "nk-iran was not muted", "{again:?}");
    assert_eq!(
        stdout(&test.cli(&["rules", "muted"]).await).trim(),
        "no rule is muted"
    );

    // Another outlet's copy of the story after the mute: it alerts, once.
    server.set(
        "/wire",
        Route::rss("Wire", &[story(1, "wire"), story(2, "copy")]),
    );
    let poll = test.cli(&["poll"]).await;
    assert_eq!(poll.status.code(), Some(0), "{poll:?}");
    let requests = receiver.requests("/hook");
    assert_eq!(requests.len(), 1, "the story alerts once it is unmuted");
    let stories = json_lines(&test.cli(&["stories", "--json"]).await);
    assert_eq!(
        stories.len(),
        1,
        "the copy joined the muted story: {stories:?}"
    );
    assert_eq!(
        stdout(&test.cli(&["alerts", "--status", "held"]).await).trim(),
        "no held-back hits"
    );
}
