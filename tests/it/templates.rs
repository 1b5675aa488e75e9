//! Message templates: a sink's `template` shapes its alerts, feed text
//! escaped for the target so that it cannot break out; an error in a
//! template is a `herald check` error at its own file, line and column.

use std::path::Path;
use std::process::Output;

use chrono::Utc;

use crate::both_backends;
use crate::support::db::Backend;
use crate::support::feed_server::{FeedServer, Item, Route};
use crate::support::herald::{TestHerald, feeds_toml};
use crate::support::process::herald;
use crate::support::receiver::Receiver;

both_backends!(templated_alerts_reach_slack_and_discord_with_feed_text_inert);

fn check(dir: &Path) -> Output {
    herald(dir, "sqlite://unused.db", &["check", "--offline"])
        .output()
        .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

async fn templated_alerts_reach_slack_and_discord_with_feed_text_inert(backend: Backend) {
    let server = FeedServer::start().await;
    let receiver = Receiver::start().await;
    server.set("/wire", Route::rss("Wire", &[]));
    let herald = TestHerald::start(
        backend,
        &format!(
            "[sinks.chat]\ntype = \"slack\"\nurl = \"{slack}\"\n\
             template = '''\n\
             {{{{ \"<!here>\" | safe }}}} *{{{{ rule.name }}}}*: <{{{{ article.url }}}}|{{{{ article.title }}}}>\n\
             matched {{{{ matched | join(\", \") }}}} ({{{{ story.outlets }}}} outlet{{{{ \"s\" if story.outlets > 1 }}}})'''\n\n\
             [sinks.ops]\ntype = \"discord\"\nurl = \"{discord}\"\n\
             template = \"**{{{{ article.title }}}}** {{{{ article.url }}}}\"\n\n\
             [rules.nk-iran]\nquery = '\"North Korea\" Iran'\nsinks = [\"chat\", \"ops\"]\n\n{feeds}",
            slack = receiver.url("/slack"),
            discord = receiver.url("/discord"),
            feeds = feeds_toml(&[server.url("/wire")])
        ),
    )
    .await;
    herald.poll_one().await;
    let mut item = Item::numbered(1);
    item.title =
        "North Korea and Iran <!channel> @everyone [click](http://evil.example) <@U1>".to_owned();
    item.pub_date = Some(Utc::now());
    server.set("/wire", Route::rss("Wire", &[item.clone()]));
    assert_eq!(herald.poll_one().await.new, 1);
    let report = herald.app.dispatch_once().await.unwrap();
    assert_eq!(report.delivered, 2, "{report:?}");

    let slack = receiver.requests("/slack")[0].json();
    let text = slack["text"].as_str().unwrap();
    assert_eq!(
        text,
        format!(
            "<!here> *nk-iran*: <{}|North Korea and Iran @everyone \
             [click](http://evil.example) &lt;@U1&gt;>\nmatched \"north korea\", iran (1 outlet)",
            item.link
        ),
        "the operator's own <!here> works; the feed's <@U1> does not"
    );
    assert!(slack.get("blocks").is_none(), "{slack}");

    let discord = receiver.requests("/discord")[0].json();
    let content = discord["content"].as_str().unwrap();
    assert!(content.starts_with("**North Korea and Iran"), "{content}");
    assert!(!content.contains("@everyone"), "{content}");
    assert!(!content.contains("[click](http"), "{content}");
    assert_eq!(discord["allowed_mentions"]["parse"], serde_json::json!([]));
}

#[test]
fn a_template_error_is_placed_at_its_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("herald.toml"),
        "[sinks.chat]\ntype = \"log\"\ntemplate = '''\nNews:\n  {{ artcle.title }}'''\n",
    )
    .unwrap();
    let output = check(dir.path());
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let err = stderr(&output);
    assert!(
        err.contains("herald.toml:5:6: sink chat: template: undefined value"),
        "{err}"
    );

    // On a one-line string, the column counts from the line's start.
    std::fs::write(
        dir.path().join("herald.toml"),
        "[sinks.chat]\ntype = \"log\"\ntemplate = \"{{ article.title | shout }}\"\n",
    )
    .unwrap();
    let err = stderr(&check(dir.path()));
    assert!(
        err.contains("herald.toml:3:32: sink chat: template: unknown filter"),
        "{err}"
    );

    // A template file's own lines.
    std::fs::create_dir(dir.path().join("templates")).unwrap();
    std::fs::write(
        dir.path().join("templates/chat.j2"),
        "{{ article.title }}\n{% for outlet in outlets %}{{ outlet.name }\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("herald.toml"),
        "[sinks.chat]\ntype = \"log\"\ntemplate_file = \"templates/chat.j2\"\n",
    )
    .unwrap();
    let err = stderr(&check(dir.path()));
    assert!(err.contains("templates/chat.j2:2:"), "{err}");
    assert!(err.contains("sink chat: template: syntax error"), "{err}");

    // Escaped strings cannot be mapped character for character: the
    // template's own line and column are given beside where it starts.
    std::fs::write(
        dir.path().join("herald.toml"),
        "[sinks.chat]\ntype = \"log\"\ntemplate = \"\\u0041 {{ nope }}\"\n",
    )
    .unwrap();
    let err = stderr(&check(dir.path()));
    assert!(
        err.contains(
            "herald.toml:3:13 (template line 1, column 6): sink chat: template: undefined value"
        ),
        "{err}"
    );

    std::fs::write(
        dir.path().join("herald.toml"),
        "[sinks.hook]\ntype = \"webhook\"\nurl = \"https://hooks.example/x\"\ntemplate = \"x\"\n",
    )
    .unwrap();
    let err = stderr(&check(dir.path()));
    assert!(
        err.contains("herald.toml:4:12: `template` is not allowed for a sink of type `webhook`"),
        "{err}"
    );

    std::fs::write(
        dir.path().join("herald.toml"),
        "[sinks.chat]\ntype = \"log\"\ntemplate = \"{{ article.title }}\"\n",
    )
    .unwrap();
    let ok = check(dir.path());
    assert_eq!(ok.status.code(), Some(0), "{ok:?}");
}
