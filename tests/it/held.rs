//! Hits held back instead of alerting (the back catalogue of a feed's first
//! fetch, articles older than `alerts.max_age`) are visible in `herald alerts`
//! with why, and `herald alerts send` delivers one on purpose. Real binary,
//! real receiver, both backends.

use chrono::Utc;
use serde_json::Value;

use crate::both_backends;
use crate::support::db::Backend;
use crate::support::feed_server::{FeedServer, Item, Route};
use crate::support::herald::{TestHerald, json_lines};
use crate::support::receiver::Receiver;

both_backends!(
    held_hits_are_listed_with_their_reason_and_can_be_sent,
    an_empty_outbox_says_so,
    a_copy_of_a_story_that_alerted_is_not_held,
    many_held_stories_are_listed_newest_first_each_once,
);

fn nk_iran(n: u32, title: &str, days_old: i64) -> Item {
    Item {
        guid: format!("guid-{n}"),
        link: format!("https://news.example/{n}"),
        title: title.into(),
        description: format!(
            "<p>North Korea's delegation arrived in Iran for talks, number {n}, \
             {title}.</p>"
        ),
        pub_date: Some(Utc::now() - chrono::Duration::days(days_old)),
    }
}

async fn held_hits_are_listed_with_their_reason_and_can_be_sent(backend: Backend) {
    let server = FeedServer::start().await;
    let receiver = Receiver::start().await;
    server.set(
        "/world",
        Route::rss("World", &[nk_iran(1, "Delegation lands in Tehran", 0)]),
    );
    let config = format!(
        "[alerts]\nmax_age = \"2d\"\n\n\
         [sinks.desk]\ntype = \"webhook\"\nurl = \"{}\"\n\n\
         [rules.nk-iran]\nquery = '\"North Korea\" Iran'\nsinks = [\"desk\"]\n\n\
         [[feeds]]\nurl = \"{}\"\n",
        receiver.url("/hook"),
        server.url("/world"),
    );
    let test = TestHerald::start(backend, &config).await;
    // The first fetch is the feed's back catalogue: held back.
    test.poll().await;
    // Later, an article published a week ago: too old to alert.
    server.set(
        "/world",
        Route::rss(
            "World",
            &[
                nk_iran(1, "Delegation lands in Tehran", 0),
                nk_iran(2, "Archive: envoys met last week", 7),
            ],
        ),
    );
    test.poll().await;
    assert!(receiver.requests("/hook").is_empty(), "nothing was sent");

    let table = test.cli(&["alerts"]).await;
    assert_eq!(table.status.code(), Some(0), "{table:?}");
    let text = String::from_utf8_lossy(&table.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].contains("ID") && lines[0].contains("STATUS") && lines[0].contains("REASON"),
        "a header first: {text}"
    );
    let row = |title: &str| {
        lines
            .iter()
            .find(|line| line.contains(title))
            .unwrap_or_else(|| panic!("{title} in {text}"))
            .to_string()
    };
    let first = row("Delegation lands in Tehran");
    assert!(
        first.contains("held") && first.contains("back_catalogue"),
        "{first}"
    );
    let archive = row("Archive: envoys met last week");
    assert!(
        archive.contains("held") && archive.contains("too_old"),
        "{archive}"
    );

    let held = json_lines(&test.cli(&["alerts", "--status", "held", "--json"]).await);
    assert_eq!(held.len(), 2, "{held:?}");
    for entry in &held {
        assert_eq!(entry["status"], "held");
        assert_eq!(entry["rule"], "nk-iran");
        let id = entry["id"].as_str().unwrap();
        assert_eq!(id, format!("{}:nk-iran", entry["story_id"]));
    }
    let reasons: Vec<&str> = held.iter().map(|e| e["reason"].as_str().unwrap()).collect();
    assert_eq!(reasons, ["too_old", "back_catalogue"], "newest story first");
    let back_catalogue = held[1]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        held[1]["article"]["title"], "Delegation lands in Tehran",
        "{held:?}"
    );

    // Sent on purpose: delivered now, and no longer held.
    let sent = test.cli(&["alerts", "send", &back_catalogue]).await;
    assert_eq!(sent.status.code(), Some(0), "{sent:?}");
    let said = String::from_utf8_lossy(&sent.stdout);
    assert!(said.contains("1 deliveries queued; 1 delivered"), "{said}");
    let requests = receiver.requests("/hook");
    assert_eq!(requests.len(), 1);
    assert!(
        String::from_utf8_lossy(&requests[0].body).contains("Delegation lands in Tehran"),
        "{:?}",
        requests[0]
    );
    let all = json_lines(&test.cli(&["alerts", "--json"]).await);
    let statuses: Vec<(&str, &str)> = all
        .iter()
        .map(|e| (e["status"].as_str().unwrap(), e["rule"].as_str().unwrap()))
        .collect();
    assert_eq!(statuses.len(), 2, "{all:?}");
    assert!(statuses.contains(&("delivered", "nk-iran")), "{all:?}");
    assert!(statuses.contains(&("held", "nk-iran")), "{all:?}");
    let again = test.cli(&["alerts", "send", &back_catalogue]).await;
    assert_eq!(again.status.code(), Some(1), "{again:?}");

    // An id that names no held hit.
    let missing = test.cli(&["alerts", "send", "999999:nk-iran"]).await;
    assert_eq!(missing.status.code(), Some(1), "{missing:?}");
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains("no held alert 999999:nk-iran (see herald alerts --status held)"),
        "{stderr}"
    );
    assert_eq!(receiver.requests("/hook").len(), 1, "nothing more was sent");

    // A status filter lists only its own.
    let deliveries = json_lines(
        &test
            .cli(&["alerts", "--status", "delivered", "--json"])
            .await,
    );
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0]["status"], "delivered");

    // Retry tells a delivery that went out from one that does not exist.
    let delivered = deliveries[0]["id"].to_string();
    let retried = test.cli(&["alerts", "retry", &delivered]).await;
    assert_eq!(retried.status.code(), Some(1), "{retried:?}");
    assert_eq!(
        String::from_utf8_lossy(&retried.stderr).trim(),
        format!(
            "herald: delivery {delivered} is delivered: only failed or dead deliveries are \
             queued again"
        )
    );
    let missing = test.cli(&["alerts", "retry", "999999"]).await;
    assert_eq!(missing.status.code(), Some(1), "{missing:?}");
    assert_eq!(
        String::from_utf8_lossy(&missing.stderr).trim(),
        "herald: there is no delivery 999999 (see herald alerts)"
    );
    assert_eq!(receiver.requests("/hook").len(), 1, "nothing more was sent");

    // A story written before reasons were kept holds an array of rule names.
    test.db
        .execute_sql(&format!(
            "UPDATE stories SET held_rules = '[\"nk-iran\"]' WHERE id = {}",
            held[0]["story_id"]
        ))
        .await;
    let old = json_lines(&test.cli(&["alerts", "--status", "held", "--json"]).await);
    assert_eq!(old.len(), 1, "{old:?}");
    assert_eq!(
        (old[0]["id"].clone(), old[0]["reason"].clone()),
        (held[0]["id"].clone(), Value::from("unknown"))
    );
}

async fn an_empty_outbox_says_so(backend: Backend) {
    let test = TestHerald::start(backend, "").await;
    let table = test.cli(&["alerts"]).await;
    assert_eq!(table.status.code(), Some(0), "{table:?}");
    assert_eq!(
        String::from_utf8_lossy(&table.stdout).trim(),
        "no alerts and no held-back hits"
    );
    let held = test.cli(&["alerts", "--status", "held"]).await;
    assert_eq!(
        String::from_utf8_lossy(&held.stdout).trim(),
        "no held-back hits"
    );
    let json = test.cli(&["alerts", "--json"]).await;
    assert_eq!(
        String::from_utf8_lossy(&json.stdout),
        "",
        "--json prints nothing"
    );
}

/// A new feed's back catalogue carries a copy of a story whose alert went out:
/// the rule already fired there, so nothing is held back.
async fn a_copy_of_a_story_that_alerted_is_not_held(backend: Backend) {
    let server = FeedServer::start().await;
    let receiver = Receiver::start().await;
    server.set("/wire", Route::rss("Wire", &[]));
    server.set("/late", Route::status(503));
    let config = format!(
        "[sinks.desk]\ntype = \"webhook\"\nurl = \"{}\"\n\n\
         [rules.nk-iran]\nquery = '\"North Korea\" Iran'\nsinks = [\"desk\"]\n\n\
         [[feeds]]\nurl = \"{}\"\n\n[[feeds]]\nurl = \"{}\"\n",
        receiver.url("/hook"),
        server.url("/wire"),
        server.url("/late"),
    );
    let test = TestHerald::start(backend, &config).await;
    test.poll().await;
    let story = nk_iran(1, "Delegation lands in Tehran", 0);
    server.set("/wire", Route::rss("Wire", std::slice::from_ref(&story)));
    test.poll().await;
    test.app.dispatch_once().await.unwrap();
    assert_eq!(receiver.requests("/hook").len(), 1, "the story alerted");

    // The other feed's first fetch: its back catalogue holds a copy.
    let copy = Item {
        guid: "late-1".into(),
        link: "https://late.example/1".into(),
        ..story
    };
    server.set("/late", Route::rss("Late", &[copy]));
    test.poll().await;
    test.app.dispatch_once().await.unwrap();
    let stories = json_lines(&test.cli(&["stories", "--json"]).await);
    assert_eq!(stories.len(), 1, "the copy joined the story: {stories:?}");

    let held = test.cli(&["alerts", "--status", "held"]).await;
    assert_eq!(
        String::from_utf8_lossy(&held.stdout).trim(),
        "no held-back hits",
        "{held:?}"
    );
    let all = json_lines(&test.cli(&["alerts", "--json"]).await);
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["status"], "delivered");
    assert_eq!(receiver.requests("/hook").len(), 1, "sent once");
}

/// More held stories than one read of the listing takes.
async fn many_held_stories_are_listed_newest_first_each_once(backend: Backend) {
    let server = FeedServer::start().await;
    let items: Vec<Item> = (0..450)
        .map(|n| Item {
            guid: format!("guid-{n}"),
            link: format!("https://news.example/{n}"),
            title: format!("q{n}a q{n}b q{n}c q{n}d"),
            description: format!("<p>North Korea and Iran, item q{n}e.</p>"),
            pub_date: Some(Utc::now()),
        })
        .collect();
    server.set("/world", Route::rss("World", &items));
    let config = format!(
        "[sinks.log]\ntype = \"log\"\n\n\
         [rules.nk-iran]\nquery = '\"North Korea\" Iran'\nsinks = [\"log\"]\n\n\
         [[feeds]]\nurl = \"{}\"\n",
        server.url("/world"),
    );
    let test = TestHerald::start(backend, &config).await;
    test.poll().await;

    let all = test.db.store.held_hits(1000).await.unwrap();
    assert_eq!(all.len(), 450, "one held hit per story");
    let stories: std::collections::BTreeSet<i64> = all.iter().map(|hit| hit.story_id).collect();
    assert_eq!(stories.len(), 450, "each story once");
    assert!(
        all.windows(2)
            .all(|pair| (pair[0].at, pair[0].story_id) > (pair[1].at, pair[1].story_id)),
        "newest story first"
    );
    assert!(all.iter().all(|hit| hit.reason == "back_catalogue"));
    let first = test.db.store.held_hits(230).await.unwrap();
    assert_eq!(first, all[..230]);
}
