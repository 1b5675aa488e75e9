use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::TempDir;

use super::values::{expand_vars, parse_size};
use super::*;

/// A config tree in a temporary directory; the first file written is the main one.
struct ConfigDir {
    dir: TempDir,
}

impl ConfigDir {
    fn new(files: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        Self { dir }
    }

    fn main(&self) -> PathBuf {
        self.dir.path().join("herald.toml")
    }

    fn load(&self, env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let lookup = |name: &str| {
            env.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        };
        load_with_env(&self.main(), &lookup)
    }

    /// The error as an operator sees it, with the temporary directory cut off.
    fn error(&self, env: &[(&str, &str)]) -> String {
        let error = self.load(env).expect_err("config should be rejected");
        let prefix = format!("{}/", self.dir.path().display());
        error.to_string().replace(&prefix, "")
    }
}

fn load_main(text: &str) -> Settings {
    ConfigDir::new(&[("herald.toml", text)]).load(&[]).unwrap()
}

fn check_rejected(files: &[(&str, &str)], expected: &str) {
    let error = ConfigDir::new(files).error(&[]);
    assert_eq!(error, expected, "config: {files:?}");
}

fn check_main_rejected(text: &str, expected: &str) {
    check_rejected(&[("herald.toml", text)], expected);
}

const LOG_SINK: &str = "[sinks.log]\ntype = \"log\"\n";

#[test]
fn unknown_keys_are_rejected_with_their_position_and_the_expected_keys() {
    check_main_rejected(
        "databse = 1\n",
        "herald.toml:1:1: unknown field `databse`, expected one of `include`, `database`, `fetch`, `api`, `alerts`, `stories`, `log`, `retention`, `feeds`, `sinks`, `rules`",
    );
    check_main_rejected(
        "[fetch]\ninterval = \"5m\"\n  intervall = \"5m\"\n",
        "herald.toml:3:3: unknown field `intervall`, expected one of `interval`, `timeout`, `concurrency`, `per_host`, `max_body`, `user_agent`, `max_redirects`, `private_networks`, `secret_params`",
    );
    check_main_rejected(
        "[[feeds]]\nurl = \"https://a.example/rss\"\ntag = [\"world\"]\n",
        "herald.toml:3:1: unknown field `tag`, expected one of `url`, `name`, `interval`, `tags`",
    );
}

#[test]
fn quoted_values_with_line_breaks_or_escapes_keep_the_error_on_one_line() {
    // Found by the property tests: values were quoted as written, newline and all.
    check_main_rejected(
        "[stories]\nwindow = \"\\u000a\"",
        "herald.toml:2:10: invalid duration \"\\n\", expected a duration like \"90s\", \"15m\" or \"1h\"",
    );
    check_main_rejected(
        "[api]\nlisten = \"a\\nb\"\n",
        "herald.toml:2:10: invalid listen address \"a\\nb\", expected an IP address and port like \"127.0.0.1:8645\", or false",
    );
    check_main_rejected(
        "[fetch]\ninterval = \"\\u001b[2J\"\n",
        "herald.toml:2:12: invalid duration \"\\u{1b}[2J\", expected a duration like \"90s\", \"15m\" or \"1h\"",
    );
}

#[test]
fn bad_values_are_rejected_at_the_value() {
    let cases = [
        (
            "[fetch]\ninterval = \"5 parsecs\"\n",
            "herald.toml:2:12: invalid duration \"5 parsecs\", expected a duration like \"90s\", \"15m\" or \"1h\"",
        ),
        (
            "[fetch]\ninterval = \"0s\"\n",
            "herald.toml:2:12: duration \"0s\" is too short, expected at least 1s",
        ),
        (
            "[[feeds]]\nurl = \"https://a.example/rss\"\ninterval = \"500ms\"\n",
            "herald.toml:3:12: duration \"500ms\" is too short, expected at least 1s",
        ),
        (
            "[alerts]\nlease = \"5s\"\n",
            "herald.toml:2:9: duration \"5s\" is too short, expected at least 15s",
        ),
        (
            "[fetch]\nmax_body = \"10 parsecs\"\n",
            "herald.toml:2:12: invalid size \"10 parsecs\", expected a size like \"10MB\", \"512KiB\" or a number of bytes",
        ),
        (
            "[fetch]\nmax_body = 0\n",
            "herald.toml:2:12: `max_body` must be more than 0 bytes",
        ),
        (
            "[fetch]\nconcurrency = 0\n",
            "herald.toml:2:15: `concurrency` must be at least 1, got 0",
        ),
        (
            "[fetch]\nper_host = -1\n",
            "herald.toml:2:12: invalid value: integer `-1`, expected usize",
        ),
        (
            "[fetch]\nconcurrency = \"lots\"\n",
            "herald.toml:2:15: invalid type: string \"lots\", expected usize",
        ),
        (
            "[stories]\nthreshold = 1.5\n",
            "herald.toml:2:13: `threshold` must be more than 0 and at most 1, got 1.5",
        ),
        (
            "[api]\nlisten = \"localhost\"\n",
            "herald.toml:2:10: invalid listen address \"localhost\", expected an IP address and port like \"127.0.0.1:8645\", or false",
        ),
        (
            "[api]\nmax_connections = 0\n",
            "herald.toml:2:19: `max_connections` must be from 1 to 1048576, got 0",
        ),
        (
            "[api]\nmax_connections = 2000000\n",
            "herald.toml:2:19: `max_connections` must be from 1 to 1048576, got 2000000",
        ),
        (
            "[api]\nheader_timeout = \"0s\"\n",
            "herald.toml:2:18: duration \"0s\" is too short, expected at least 1ms",
        ),
        (
            "[api]\nidle_timeout = \"forever\"\n",
            "herald.toml:2:16: invalid duration \"forever\", expected a duration like \"90s\", \"15m\" or \"1h\"",
        ),
        (
            "[database]\nurl = \"mysql://herald:hunter2@db/herald\"\n",
            "herald.toml:2:7: unsupported database url \"mysql://herald:***@db/herald\", expected one starting with `sqlite:`, `postgres:` or `postgresql:`",
        ),
        (
            "[[feeds]]\nurl = \"ftp://a.example/rss\"\n",
            "herald.toml:2:7: invalid feed url \"ftp://a.example/rss\", expected an absolute http or https URL",
        ),
        (
            "[[feeds]]\nurl = \"/news/rss\"\n",
            "herald.toml:2:7: invalid feed url \"/news/rss\", expected an absolute http or https URL",
        ),
        (
            "[[feeds]]\nurl = \"https://a.example/rss\"\ntags = [\"world\", \" \"]\n",
            "herald.toml:3:18: a tag must not be empty",
        ),
        (
            "[[feeds]]\nname = \"A\"\n",
            "herald.toml:1:1: missing field `url`",
        ),
        (
            "[fetch]\ninterval = \"${POLL_INTERVAL}\"\n",
            "herald.toml:2:12: environment variable `POLL_INTERVAL` is not set",
        ),
        (
            "[api]\ntoken = \"${TOKEN\"\n",
            "herald.toml:2:9: unterminated `${`, expected `${NAME}` (write `$${` for a literal `${`)",
        ),
        (
            "[fetch]\ninterval = \n",
            "herald.toml:2:12: string values must be quoted, expected literal string",
        ),
    ];
    for (text, expected) in cases {
        check_main_rejected(text, expected);
    }
}

#[test]
fn bad_sinks_and_rules_are_rejected_where_they_are_written() {
    let cases = [
        (
            "[sinks.team]\ntype = \"msteams\"\nurl = \"https://teams.example/hook\"\n".to_owned(),
            "herald.toml:2:8: unknown sink type `msteams`, expected one of `slack`, `slack_app`, `discord`, `teams`, `telegram`, `ntfy`, `webhook`, `email`, `log`".to_owned(),
        ),
        (
            "[sinks.push]\ntype = \"ntfy\"\nurl = \"https://ntfy.sh/\"\n".to_owned(),
            "herald.toml:3:7: the ntfy url must name one topic, like https://ntfy.sh/newsdesk".to_owned(),
        ),
        (
            "[sinks.tg]\ntype = \"telegram\"\ntoken = \"123:ABC\"\n".to_owned(),
            "herald.toml:1:1: sink `tg` of type `telegram` needs `chat_id`".to_owned(),
        ),
        (
            "[sinks.chat]\ntype = \"discord\"\nurl = \"https://discord.example/x\"\nchat_id = 5\n".to_owned(),
            "herald.toml:4:11: `chat_id` is only allowed for a sink of type `telegram`".to_owned(),
        ),
        (
            "[sinks.intel-slack]\ntype = \"slack\"\n".to_owned(),
            "herald.toml:1:1: sink `intel-slack` of type `slack` needs a `url`".to_owned(),
        ),
        (
            "[sinks.log]\ntype = \"log\"\nurl = \"https://hooks.example/x\"\n".to_owned(),
            "herald.toml:3:7: `url` is not allowed for a sink of type `log`".to_owned(),
        ),
        (
            "[sinks.chat]\ntype = \"discord\"\nurl = \"https://discord.example/x\"\nsecret = \"s\"\n".to_owned(),
            "herald.toml:4:10: `secret` is only allowed for a sink of type `webhook`".to_owned(),
        ),
        (
            "[sinks.chat]\ntype = \"slack\"\nurl = \"https://hooks.example/x\"\nmax_in_flight = 4\n".to_owned(),
            "herald.toml:4:17: `max_in_flight` is only allowed for a sink of type `webhook`".to_owned(),
        ),
        (
            "[sinks.hook]\ntype = \"webhook\"\nurl = \"https://hooks.example/x\"\nmax_in_flight = 0\n".to_owned(),
            "herald.toml:4:17: `max_in_flight` must be at least 1, got 0".to_owned(),
        ),
        (
            "[sinks.hook]\ntype = \"webhook\"\nurl = \"https://hooks.example/x\"\nmax_in_flight = 65\n".to_owned(),
            "herald.toml:4:17: `max_in_flight` must be at most 64, got 65".to_owned(),
        ),
        (
            "[sinks.log]\ntype = \"log\"\ndigest = \"1h\"\ndigest_at = [\"08:00\"]\n".to_owned(),
            "herald.toml:4:13: `digest` and `digest_at` exclude each other: give one".to_owned(),
        ),
        (
            "[sinks.log]\ntype = \"log\"\ndigest = \"1h\"\ntimezone = \"UTC\"\n".to_owned(),
            "herald.toml:4:12: `timezone` only applies to `digest_at` and a sink's `quiet_hours`".to_owned(),
        ),
        (
            "[sinks.log]\ntype = \"log\"\ndigest_at = [\"08:00\"]\ntimezone = \"Europe/Berln\"\n".to_owned(),
            "herald.toml:4:12: unknown time zone \"Europe/Berln\" (an IANA name such as \"Europe/Berlin\")".to_owned(),
        ),
        (
            "[sinks.mail]\ntype = \"email\"\nurl = \"https://mail.example\"\nfrom = \"a@b.example\"\nto = [\"c@d.example\"]\n".to_owned(),
            "herald.toml:3:7: invalid url (not shown, it is a secret), expected smtp://user:password@host:587 or smtps://…".to_owned(),
        ),
        (
            "[sinks.mail]\ntype = \"email\"\nurl = \"smtp://u:p@mail.example?tls=maybe\"\nfrom = \"a@b.example\"\nto = [\"c@d.example\"]\n".to_owned(),
            "herald.toml:3:7: unsupported query `tls=maybe` in the SMTP url: the one option is `?tls=none` on smtp:// (STARTTLS is required otherwise)".to_owned(),
        ),
        (
            "[sinks.mail]\ntype = \"email\"\nurl = \"smtp://mail.example\"\nto = [\"c@d.example\"]\n".to_owned(),
            "herald.toml:1:1: sink `mail` of type `email` needs `from`".to_owned(),
        ),
        (
            "[sinks.mail]\ntype = \"email\"\nurl = \"smtp://mail.example\"\nfrom = \"a@b.example\"\nto = []\n".to_owned(),
            "herald.toml:5:6: `to` must name at least one address".to_owned(),
        ),
        (
            "[sinks.mail]\ntype = \"email\"\nurl = \"smtp://mail.example\"\nfrom = \"a@b.example\"\nto = [\"desk\"]\n".to_owned(),
            "herald.toml:5:7: invalid email address \"desk\", expected name@example.com".to_owned(),
        ),
        (
            "[sinks.chat]\ntype = \"slack\"\nurl = \"https://hooks.example/x\"\nfrom = \"a@b.example\"\n".to_owned(),
            "herald.toml:4:8: `from` is only allowed for a sink of type `email`".to_owned(),
        ),
        (
            "[sinks.mail]\ntype = \"email\"\nurl = \"smtp://mail.example?tls=none\"\nfrom = \"a@b.example\"\nto = [\"c@d.example\"]\ntls_ca = \"ca.pem\"\n".to_owned(),
            "herald.toml:6:10: `tls_ca` means nothing with `?tls=none`".to_owned(),
        ),
        (
            "[sinks.desk]\ntype = \"slack_app\"\nchannel = \"C0123\"\n".to_owned(),
            "herald.toml:1:1: sink `desk` of type `slack_app` needs `token`".to_owned(),
        ),
        (
            "[sinks.desk]\ntype = \"slack_app\"\ntoken = \"xoxb-1\"\nchannel = \"C1\"\nurl = \"https://hooks.example/x\"\n".to_owned(),
            "herald.toml:5:7: `url` is not allowed for a sink of type `slack_app`: give `token` and `channel` (and `api_url` for another Web API address)".to_owned(),
        ),
        (
            "[sinks.chat]\ntype = \"slack\"\nurl = \"https://hooks.example/x\"\nchannel = \"C1\"\n".to_owned(),
            "herald.toml:4:11: `channel` is only allowed for a sink of type `slack_app`".to_owned(),
        ),
        (
            "[sinks.log]\ntype = \"log\"\nquiet_hours = \"22:00\"\n".to_owned(),
            "herald.toml:3:15: invalid quiet hours \"22:00\": expected a range such as \"22:00-07:00\"".to_owned(),
        ),
        (
            "[sinks.log]\ntype = \"log\"\nquiet_hours = \"07:00-07:00\"\n".to_owned(),
            "herald.toml:3:15: quiet hours \"07:00-07:00\" start and end at the same time: give a stretch of the day".to_owned(),
        ),
        (
            "[sinks.log]\ntype = \"log\"\nquiet_hours = \"22:00-07:00\"\ntimezone = \"Mars/Base\"\n".to_owned(),
            "herald.toml:4:12: unknown time zone \"Mars/Base\" (an IANA name such as \"Europe/Berlin\")".to_owned(),
        ),
        (
            "[sinks.log]\ntype = \"log\"\nmax_per_hour = 0\n".to_owned(),
            "herald.toml:3:16: `max_per_hour` must be at least 1, got 0".to_owned(),
        ),
        (
            format!("{LOG_SINK}[rules.oil]\nquery = 'oil'\nsinks = [\"log\"]\nmax_per_hour = -3\n"),
            "herald.toml:6:16: invalid value: integer `-3`, expected usize".to_owned(),
        ),
        (
            format!("{LOG_SINK}[rules.oil]\nquery = 'oil'\nsinks = [\"log\"]\nquiet_hours = \"22:00-07:00\"\n"),
            "herald.toml:6:1: unknown field `quiet_hours`, expected one of `query`, `sinks`, `tags`, `digest`, `digest_at`, `timezone`, `max_per_hour`".to_owned(),
        ),
        (
            format!("{LOG_SINK}[rules.oil]\nquery = 'oil'\nsinks = [\"log\"]\ndigest = \"soon\"\n"),
            "herald.toml:6:10: invalid duration \"soon\", expected a duration like \"90s\", \"15m\" or \"1h\"".to_owned(),
        ),
        (
            "[sinks.chat]\ntype = \"discord\"\nurl = \"discord.example/api/webhooks/123/abc\"\n".to_owned(),
            "herald.toml:3:7: invalid url (not shown, it is a secret), expected an absolute http or https URL".to_owned(),
        ),
        (
            "[sinks.\"my sink\"]\ntype = \"log\"\n".to_owned(),
            "herald.toml:1:8: invalid sink name `my sink`, expected letters, digits, `-` and `_`".to_owned(),
        ),
        (
            format!("{LOG_SINK}[rules.nk-iran]\nquery = 'Iran'\nsinks = [\"log\", \"slack\"]\n"),
            "herald.toml:5:17: rule `nk-iran` sends to undefined sink `slack`, expected one of `log`".to_owned(),
        ),
        (
            "[rules.nk-iran]\nquery = 'Iran'\nsinks = [\"log\"]\n".to_owned(),
            "herald.toml:3:10: rule `nk-iran` sends to undefined sink `log`, and no sink is defined".to_owned(),
        ),
        (
            format!("{LOG_SINK}[rules.nk-iran]\nquery = ' '\nsinks = [\"log\"]\n"),
            "herald.toml:4:9: a rule query must not be empty".to_owned(),
        ),
        (
            format!("{LOG_SINK}[rules.nk-iran]\nquery = 'Iran'\n"),
            "herald.toml:3:1: missing field `sinks`".to_owned(),
        ),
    ];
    for (text, expected) in cases {
        check_main_rejected(&text, &expected);
    }
}

#[test]
fn an_unset_variable_is_named_at_its_string() {
    let config = ConfigDir::new(&[(
        "herald.toml",
        "[sinks.intel-slack]\ntype = \"slack\"\nurl = \"${SLACK_WEBHOOK_URL}\"\n",
    )]);
    assert_eq!(
        config.error(&[]),
        "herald.toml:3:7: environment variable `SLACK_WEBHOOK_URL` is not set"
    );
    let settings = config
        .load(&[(
            "SLACK_WEBHOOK_URL",
            "https://hooks.slack.com/services/T0/B0/XYZ",
        )])
        .unwrap();
    let SinkKind::Slack { url } = &settings.sinks["intel-slack"].kind else {
        panic!("expected a slack sink");
    };
    assert_eq!(
        url.expose().as_str(),
        "https://hooks.slack.com/services/T0/B0/XYZ"
    );
}

#[test]
fn variables_are_substituted_in_every_string_and_dollar_dollar_brace_is_literal() {
    let config = ConfigDir::new(&[(
        "herald.toml",
        r#"
[fetch]
interval = "${MINUTES}m"
user_agent = "herald $${NOT_A_VAR} pa$$word ${SUFFIX}"
[[feeds]]
url = "https://${HOST}/rss"
"#,
    )]);
    let settings = config
        .load(&[("MINUTES", "7"), ("HOST", "news.example"), ("SUFFIX", "x")])
        .unwrap();
    assert_eq!(settings.fetch.interval, Duration::from_secs(7 * 60));
    assert_eq!(settings.fetch.user_agent, "herald ${NOT_A_VAR} pa$$word x");
    assert_eq!(settings.feeds[0].url.as_str(), "https://news.example/rss");
}

#[test]
fn private_networks_takes_one_of_three_values() {
    for (value, expected) in [
        ("configured", PrivateNetworks::Configured),
        ("allow", PrivateNetworks::Allow),
        ("deny", PrivateNetworks::Deny),
    ] {
        let settings = load_main(&format!("[fetch]\nprivate_networks = \"{value}\"\n"));
        assert_eq!(settings.fetch.private_networks, expected);
    }
    assert_eq!(
        load_main("[fetch]\n").fetch.private_networks,
        PrivateNetworks::Configured
    );
    check_main_rejected(
        "[fetch]\nmax_redirects = 3\nprivate_networks = \"none\"\n",
        "herald.toml:3:20: invalid private_networks \"none\", expected \"configured\" (the default), \"allow\" or \"deny\"",
    );
}

#[test]
fn secret_params_add_to_the_default_names() {
    let settings = load_main("[fetch]\nsecret_params = [\"Session\"]\n");
    let redactor = &settings.fetch.redactor;
    assert_eq!(
        redactor.url("https://h/f?session=s&apikey=k&page=2"),
        "https://h/f?session=***&apikey=***&page=2"
    );
    assert_eq!(load_main("[fetch]\n").fetch.redactor, Redactor::default());
    check_main_rejected(
        "[fetch]\nsecret_params = [\"session\", \"a=b\"]\n",
        "herald.toml:2:29: invalid secret parameter name \"a=b\", expected a query parameter name without spaces, `=`, `&`, `;`, `#` or `?`",
    );
    check_main_rejected(
        "[fetch]\nsecret_params = [\"\"]\n",
        "herald.toml:2:18: a secret parameter name must not be empty",
    );
}

#[test]
fn feed_url_errors_hide_credentials() {
    check_main_rejected(
        "[[feeds]]\nurl = \"ftp://reader:s3cret@a.example/rss?apikey=TOPSECRET\"\n",
        "herald.toml:2:7: invalid feed url \"ftp://reader:***@a.example/rss?apikey=***\", expected an absolute http or https URL",
    );
    check_main_rejected(
        "[fetch]\nsecret_params = [\"session\"]\n\n\
         [[feeds]]\nurl = \"https://reader:s3cret@a.example/rss?session=S\"\n\n\
         [[feeds]]\nurl = \"https://reader:s3cret@a.example/rss?session=S\"\n",
        "herald.toml:8:7: duplicate feed url https://reader:***@a.example/rss?session=***, first defined at herald.toml:5:7",
    );
}

#[test]
fn a_missing_file_says_it_cannot_be_read() {
    let config = ConfigDir::new(&[]);
    assert_eq!(
        config.error(&[]),
        "cannot read herald.toml: No such file or directory"
    );
}

#[test]
fn an_empty_file_gives_the_defaults_and_no_api() {
    let settings = load_main("");
    assert_eq!(settings.database.url.expose(), "sqlite://herald.db");
    assert_eq!(settings.database.url.backend(), DatabaseBackend::Sqlite);
    assert_eq!(settings.fetch, FetchSettings::default());
    assert_eq!(settings.fetch.interval, Duration::from_secs(900));
    assert_eq!(settings.fetch.max_body, 10_000_000);
    assert!(settings.fetch.user_agent.starts_with("herald/0."));
    assert_eq!(settings.api, None);
    assert_eq!(settings.alerts, AlertSettings::default());
    assert_eq!(settings.stories, StorySettings::default());
    assert_eq!(settings.database.connect_timeout, Duration::from_secs(5));
    assert_eq!(settings.log.format, LogFormat::Text);
    assert_eq!(settings.retention, RetentionSettings::default());
    assert_eq!(settings.retention.articles, None);
    assert_eq!(
        settings.retention.deliveries,
        Some(Duration::from_secs(90 * 24 * 3600))
    );
    assert!(settings.feeds.is_empty() && settings.sinks.is_empty() && settings.rules.is_empty());
}

#[test]
fn connect_timeout_and_log_format_are_read_and_checked() {
    let settings = load_main("[database]\nconnect_timeout = \"2s\"\n\n[log]\nformat = \"json\"\n");
    assert_eq!(settings.database.connect_timeout, Duration::from_secs(2));
    assert_eq!(settings.log.format, LogFormat::Json);
    check_rejected(
        &[("herald.toml", "[log]\nformat = \"xml\"\n")],
        "herald.toml:2:10: invalid log format \"xml\", expected \"text\" or \"json\"",
    );
    check_rejected(
        &[("herald.toml", "[database]\nconnect_timeout = \"0s\"\n")],
        "herald.toml:2:19: duration \"0s\" is too short, expected at least 1ms",
    );
}

const FULL_CONFIG: &str = r#"[database]
url = "postgres://herald:${DB_PASSWORD}@db.internal/herald"

[fetch]
interval = "10m"
timeout = "20s"
concurrency = 32
per_host = 4
max_body = "5MiB"
user_agent = "herald-test/1"
max_redirects = 3

[api]
listen = "0.0.0.0:9000"
token = "${HERALD_API_TOKEN}"

[alerts]
max_age = "12h"
give_up = "1h 30m"

[stories]
window = "24h"
threshold = 0.8

[[feeds]]
url = "https://feeds.bbci.co.uk/news/world/rss.xml"
name = "BBC World"
interval = "90s"
tags = ["world", "uk"]

[[feeds]]
url = "https://www.aljazeera.com/xml/rss/all.xml"

[sinks.intel-slack]
type = "slack"
url = "${SLACK_WEBHOOK_URL}"

[sinks.audit]
type = "webhook"
url = "https://hooks.example.org/herald"
secret = "${HERALD_WEBHOOK_SECRET}"

[sinks.chat]
type = "discord"
url = "https://discord.com/api/webhooks/1/token-discord"

[sinks.log]
type = "log"

[rules.nk-iran]
query = '"North Korea" Iran'
sinks = ["intel-slack", "audit"]
tags = ["world"]
"#;

const FULL_ENV: &[(&str, &str)] = &[
    ("DB_PASSWORD", "pg-password"),
    ("HERALD_API_TOKEN", "api-token"),
    (
        "SLACK_WEBHOOK_URL",
        "https://hooks.slack.com/services/T0/B0/slack-token",
    ),
    ("HERALD_WEBHOOK_SECRET", "hmac-secret"),
];

#[test]
fn every_section_is_read() {
    let config = ConfigDir::new(&[("herald.toml", FULL_CONFIG)]);
    let settings = config.load(FULL_ENV).unwrap();

    assert_eq!(settings.path, config.main());
    assert_eq!(
        settings.database.url.expose(),
        "postgres://herald:pg-password@db.internal/herald"
    );
    assert_eq!(settings.database.url.backend(), DatabaseBackend::Postgres);
    assert_eq!(
        settings.fetch,
        FetchSettings {
            interval: Duration::from_secs(600),
            timeout: Duration::from_secs(20),
            concurrency: 32,
            per_host: 4,
            max_body: 5 * 1024 * 1024,
            user_agent: "herald-test/1".to_owned(),
            max_redirects: 3,
            private_networks: PrivateNetworks::Configured,
            redactor: Redactor::default(),
        }
    );
    let api = settings.api.as_ref().unwrap();
    assert_eq!(api.listen, "0.0.0.0:9000".parse().unwrap());
    assert_eq!(api.token.as_ref().unwrap().expose(), "api-token");
    assert_eq!(
        settings.alerts,
        AlertSettings {
            max_age: Duration::from_secs(12 * 3600),
            give_up: Duration::from_secs(90 * 60),
            lease: DEFAULT_ALERT_LEASE,
        }
    );
    assert_eq!(settings.stories.window, Duration::from_secs(24 * 3600));
    assert_eq!(settings.stories.threshold, 0.8);

    let bbc = &settings.feeds[0];
    assert_eq!(
        bbc.url.as_str(),
        "https://feeds.bbci.co.uk/news/world/rss.xml"
    );
    assert_eq!(bbc.name.as_deref(), Some("BBC World"));
    assert_eq!(
        bbc.effective_interval(&settings.fetch),
        Duration::from_secs(90)
    );
    assert_eq!(bbc.tags, ["world", "uk"]);
    assert_eq!((bbc.location.line, bbc.location.column), (26, 7));
    let aljazeera = &settings.feeds[1];
    assert_eq!(aljazeera.name, None);
    assert_eq!(
        aljazeera.effective_interval(&settings.fetch),
        Duration::from_secs(600)
    );
    assert!(aljazeera.tags.is_empty());

    assert_eq!(
        settings.sinks.keys().collect::<Vec<_>>(),
        ["audit", "chat", "intel-slack", "log"]
    );
    let SinkKind::Webhook { url, secret } = &settings.sinks["audit"].kind else {
        panic!("expected a webhook sink");
    };
    assert_eq!(url.expose().as_str(), "https://hooks.example.org/herald");
    assert_eq!(secret.as_ref().unwrap().expose(), "hmac-secret");
    assert_eq!(settings.sinks["chat"].kind.type_name(), "discord");
    assert_eq!(settings.sinks["log"].kind, SinkKind::Log);

    let rule = &settings.rules["nk-iran"];
    assert_eq!(rule.query, "\"North Korea\" Iran");
    assert_eq!(
        rule.query_location.to_string(),
        format!("{}:51:9", config.main().display())
    );
    assert_eq!(rule.sinks, ["intel-slack", "audit"]);
    assert_eq!(rule.tags, ["world"]);
}

#[test]
fn debug_output_never_shows_a_secret() {
    let settings = ConfigDir::new(&[("herald.toml", FULL_CONFIG)])
        .load(FULL_ENV)
        .unwrap();
    let debug = format!("{settings:?}");
    for secret in [
        "pg-password",
        "api-token",
        "slack-token",
        "/services/",
        "hmac-secret",
        "hooks.example.org/herald",
        "token-discord",
    ] {
        assert!(!debug.contains(secret), "{secret} leaked into {debug}");
    }
    assert!(debug.contains("postgres://herald:***@db.internal/herald"));
    assert!(debug.contains("SecretUrl(\"https://hooks.slack.com/…\")"));
    assert!(debug.contains("SecretUrl(\"https://hooks.example.org/…\")"));
    let SinkKind::Slack { url } = &settings.sinks["intel-slack"].kind else {
        panic!("expected a slack sink");
    };
    assert_eq!(url.to_string(), "https://hooks.slack.com/…");
    assert_eq!(
        settings.database.url.to_string(),
        "postgres://herald:***@db.internal/herald"
    );
}

#[test]
fn database_passwords_are_redacted_wherever_they_are_written() {
    let cases = [
        ("sqlite://herald.db", "sqlite://herald.db"),
        ("sqlite::memory:", "sqlite::memory:"),
        (
            "postgres://herald@localhost/herald",
            "postgres://herald@localhost/herald",
        ),
        (
            "postgres://herald:s3cr:t@host/db",
            "postgres://herald:***@host/db",
        ),
        ("postgresql://u:p@h:5432", "postgresql://u:***@h:5432"),
        (
            "postgres://h/db?sslmode=require&password=s3cret",
            "postgres://h/db?sslmode=require&password=***",
        ),
    ];
    for (url, shown) in cases {
        let parsed = DatabaseUrl::parse(url).unwrap();
        assert_eq!(parsed.to_string(), shown, "{url}");
        assert_eq!(format!("{parsed:?}"), format!("DatabaseUrl(\"{shown}\")"));
        assert_eq!(parsed.expose(), url);
    }
}

#[test]
fn herald_database_url_overrides_the_file() {
    let config = ConfigDir::new(&[(
        "herald.toml",
        "[database]\nurl = \"postgres://herald:${DB_PASSWORD}@db/herald\"\n",
    )]);
    let settings = config
        .load(&[(ENV_DATABASE_URL, "sqlite:///var/lib/herald/herald.db")])
        .unwrap();
    assert_eq!(
        settings.database.url.expose(),
        "sqlite:///var/lib/herald/herald.db"
    );
    assert_eq!(
        config.error(&[(ENV_DATABASE_URL, "mysql://root:pw@db/herald")]),
        "environment variable HERALD_DATABASE_URL: unsupported database url \"mysql://root:***@db/herald\", expected one starting with `sqlite:`, `postgres:` or `postgresql:`"
    );
}

#[test]
fn api_is_off_without_its_section_or_with_listen_false() {
    assert_eq!(load_main("").api, None);
    assert_eq!(load_main("[api]\nlisten = false\n").api, None);
    let default = load_main("[api]\n").api.unwrap();
    assert_eq!(default.listen, DEFAULT_API_LISTEN);
    assert_eq!(default.listen.to_string(), "127.0.0.1:8645");
    assert_eq!(default.token, None);
    assert_eq!(
        default.limits,
        ApiLimits {
            max_connections: 256,
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
        }
    );
    assert_eq!(
        load_main("[api]\nlisten = true\n").api.unwrap().listen,
        DEFAULT_API_LISTEN
    );
    assert_eq!(
        load_main("[api]\nlisten = \"[::1]:8000\"\n")
            .api
            .unwrap()
            .listen,
        "[::1]:8000".parse().unwrap()
    );
}

#[test]
fn api_limits_are_read() {
    let api = load_main(
        "[api]\nmax_connections = 8\nheader_timeout = \"1s\"\n\
         request_timeout = \"500ms\"\nidle_timeout = \"2m\"\n",
    )
    .api
    .unwrap();
    assert_eq!(
        api.limits,
        ApiLimits {
            max_connections: 8,
            header_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_millis(500),
            idle_timeout: Duration::from_secs(120),
        }
    );
}

#[test]
fn sizes_accept_decimal_and_binary_units() {
    let cases = [
        ("100B", Some(100)),
        ("100", Some(100)),
        ("512KB", Some(512_000)),
        ("512 KiB", Some(512 * 1024)),
        ("10MB", Some(10_000_000)),
        ("10mb", Some(10_000_000)),
        ("1GiB", Some(1 << 30)),
        ("2GB", Some(2_000_000_000)),
        ("1.5MB", None),
        ("MB", None),
        ("10 parsecs", None),
        ("-1", None),
        ("99999999999GiB", None),
    ];
    for (text, expected) in cases {
        assert_eq!(parse_size(text).ok(), expected, "{text}");
    }
    assert_eq!(load_main("[fetch]\nmax_body = 4096\n").fetch.max_body, 4096);
}

#[test]
fn variable_syntax() {
    let env = |name: &str| (name == "A").then(|| "x".to_owned());
    let cases = [
        ("${A}", Ok("x")),
        ("a${A}b${A}", Ok("axbx")),
        ("$A $ {A} $", Ok("$A $ {A} $")),
        ("$${A}", Ok("${A}")),
        ("$$${A}", Ok("$${A}")),
        ("${B}", Err("environment variable `B` is not set")),
        (
            "${}",
            Err("invalid environment variable name `` in `${}`, expected letters, digits and `_`"),
        ),
        (
            "${1A}",
            Err(
                "invalid environment variable name `1A` in `${1A}`, expected letters, digits and `_`",
            ),
        ),
    ];
    for (text, expected) in cases {
        let expected = expected.map(str::to_owned).map_err(str::to_owned);
        assert_eq!(expand_vars(text, &env), expected, "{text}");
    }
}

#[test]
fn includes_merge_feeds_sinks_and_rules_in_sorted_order() {
    let config = ConfigDir::new(&[
        (
            "herald.toml",
            "include = [\"feeds.d/*.toml\", \"rules.toml\", \"empty.d/*.toml\"]\n[[feeds]]\nurl = \"https://main.example/rss\"\n",
        ),
        (
            "feeds.d/b.toml",
            "[[feeds]]\nurl = \"https://b.example/rss\"\n",
        ),
        (
            "feeds.d/a.toml",
            "include = [\"../sinks.toml\"]\n[[feeds]]\nurl = \"https://a.example/rss\"\n",
        ),
        ("feeds.d/notes.txt", "not toml"),
        ("sinks.toml", LOG_SINK),
        (
            "rules.toml",
            "include = [\"feeds.d/b.toml\"]\n[rules.any]\nquery = 'Iran'\nsinks = [\"log\"]\n",
        ),
    ]);
    let settings = config.load(&[]).unwrap();
    let urls: Vec<&str> = settings
        .feeds
        .iter()
        .map(|feed| feed.url.as_str())
        .collect();
    assert_eq!(
        urls,
        [
            "https://main.example/rss",
            "https://a.example/rss",
            "https://b.example/rss"
        ]
    );
    assert!(settings.feeds[2].location.file.ends_with("feeds.d/b.toml"));
    assert_eq!(settings.sinks.keys().collect::<Vec<_>>(), ["log"]);
    assert_eq!(settings.rules["any"].sinks, ["log"]);
}

#[test]
fn include_errors_name_both_files() {
    check_rejected(
        &[
            (
                "herald.toml",
                "include = [\"feeds.d/*.toml\"]\n\n[[feeds]]\nurl = \"https://a.example/rss\"\n",
            ),
            (
                "feeds.d/a.toml",
                "[[feeds]]\nurl = \"https://A.example/rss\"\n",
            ),
        ],
        "feeds.d/a.toml:2:7: duplicate feed url https://a.example/rss, first defined at herald.toml:4:7",
    );
    check_rejected(
        &[
            (
                "herald.toml",
                &format!("include = [\"more.toml\"]\n{LOG_SINK}"),
            ),
            ("more.toml", LOG_SINK),
        ],
        "more.toml:1:8: duplicate sink `log`, first defined at herald.toml:2:8",
    );
    check_rejected(
        &[("herald.toml", "include = [\"feeds.d/missing.toml\"]\n")],
        "herald.toml:1:12: cannot read feeds.d/missing.toml: No such file or directory",
    );
    check_rejected(
        &[
            ("herald.toml", "include = [\"more.toml\"]\n"),
            ("more.toml", "include = [\"herald.toml\"]\n"),
        ],
        "more.toml:1:12: include cycle: herald.toml is already being loaded",
    );
    check_rejected(
        &[
            ("herald.toml", "include = [\"more.toml\"]\n"),
            ("more.toml", "[fetch]\ninterval = \"1s\"\n"),
        ],
        "more.toml:1:2: unknown field `fetch`, expected one of `include`, `feeds`, `sinks`, `rules`",
    );
}

#[test]
fn the_config_path_is_explicit_then_env_then_local_then_system() {
    let config = ConfigDir::new(&[("herald.toml", ""), ("system.toml", "")]);
    let local = config.main();
    let system = config.dir.path().join("system.toml");
    let missing = config.dir.path().join("missing.toml");
    let no_env = |_: &str| None;
    let env_set = |name: &str| (name == ENV_CONFIG).then(|| "/from/env.toml".to_owned());
    let both = [local.clone(), system.clone()];

    let explicit = Path::new("/explicit.toml");
    assert_eq!(
        resolve_path_from(Some(explicit), &env_set, &both).unwrap(),
        explicit
    );
    assert_eq!(
        resolve_path_from(None, &env_set, &both).unwrap(),
        Path::new("/from/env.toml")
    );
    assert_eq!(resolve_path_from(None, &no_env, &both).unwrap(), local);
    assert_eq!(
        resolve_path_from(None, &no_env, &[missing.clone(), system.clone()]).unwrap(),
        system
    );
    let error = resolve_path_from(None, &no_env, std::slice::from_ref(&missing)).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "no config file found (tried {}), expected --config PATH or HERALD_CONFIG",
            missing.display()
        )
    );
}

#[test]
fn the_example_config_loads_without_any_environment() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/herald.toml");
    let settings = load_with_env(&path, &|_| None).unwrap();
    assert_eq!(settings.database.url.expose(), "sqlite://herald.db");
    assert_eq!(settings.feeds.len(), 5);
    assert!(settings.feeds.iter().all(|feed| feed.tags == ["world"]));
    assert_eq!(settings.sinks.len(), 1);
    assert_eq!(settings.sinks["log"].kind, SinkKind::Log);
    assert_eq!(settings.rules.len(), 1);
    let rule = &settings.rules["nk-iran"];
    assert_eq!(rule.query, "\"North Korea\" Iran");
    assert_eq!(rule.sinks, ["log"]);
    assert_eq!(settings.fetch, FetchSettings::default());
    assert_eq!(settings.alerts, AlertSettings::default());
    assert_eq!(settings.stories, StorySettings::default());
}

#[test]
fn the_managed_file_is_read_without_an_include_and_once_through_a_glob() {
    let config = ConfigDir::new(&[
        (
            "herald.toml",
            "include = [\"feeds.d/*.toml\"]\n[[feeds]]\nurl = \"https://main.example/rss\"\n",
        ),
        (
            "feeds.d/a.toml",
            "[[feeds]]\nurl = \"https://a.example/rss\"\n",
        ),
        (
            "feeds.d/managed.toml",
            "disabled = [\"https://a.example/rss\", \"https://gone.example/rss\"]\n\
             [[feeds]]\nurl = \"https://managed.example/rss\"\nname = \"Managed\"\ntags = [\"world\"]\n",
        ),
    ]);
    let settings = config.load(&[]).unwrap();
    let urls: Vec<&str> = settings.feeds.iter().map(|f| f.url.as_str()).collect();
    assert_eq!(
        urls,
        ["https://main.example/rss", "https://managed.example/rss"]
    );
    assert_eq!(settings.feeds[1].name.as_deref(), Some("Managed"));
    assert_eq!(settings.feeds[1].tags, ["world"]);
    assert!(
        settings.feeds[1]
            .location
            .file
            .ends_with("feeds.d/managed.toml")
    );
    let disabled: Vec<&str> = settings
        .disabled_feeds
        .iter()
        .map(|f| f.url.as_str())
        .collect();
    assert_eq!(disabled, ["https://a.example/rss"]);
    assert_eq!(
        settings.disabled_urls,
        ["https://a.example/rss", "https://gone.example/rss"]
    );
}

#[test]
fn retention_takes_durations_or_forever() {
    let settings = load_main("[retention]\narticles = \"365d\"\ndeliveries = \"forever\"\n");
    assert_eq!(
        settings.retention,
        RetentionSettings {
            articles: Some(Duration::from_secs(365 * 24 * 3600)),
            deliveries: None,
        }
    );
    let settings = load_main("[retention]\narticles = \"forever\"\ndeliveries = \"12h\"\n");
    assert_eq!(settings.retention.articles, None);
    assert_eq!(
        settings.retention.deliveries,
        Some(Duration::from_secs(12 * 3600))
    );
}

#[test]
fn the_managed_file_is_checked_like_any_other() {
    check_rejected(
        &[
            (
                "herald.toml",
                "[[feeds]]\nurl = \"https://a.example/rss\"\n",
            ),
            (
                "feeds.d/managed.toml",
                "[[feeds]]\nurl = \"https://a.example/rss\"\n",
            ),
        ],
        "feeds.d/managed.toml:2:7: duplicate feed url https://a.example/rss, first defined at herald.toml:2:7",
    );
    check_rejected(
        &[
            ("herald.toml", ""),
            ("feeds.d/managed.toml", "[fetch]\ninterval = \"1m\"\n"),
        ],
        "feeds.d/managed.toml:1:2: unknown field `fetch`, expected `disabled` or `feeds`",
    );
    check_rejected(
        &[
            ("herald.toml", ""),
            ("feeds.d/managed.toml", "disabled = [\"news.example\"]\n"),
        ],
        "feeds.d/managed.toml:1:13: invalid feed url \"news.example\", expected an absolute http or https URL",
    );
}

#[test]
fn managed_file_edits_keep_what_was_written_by_hand() {
    let config = ConfigDir::new(&[
        ("herald.toml", ""),
        (
            "feeds.d/managed.toml",
            "# my notes\n[[feeds]]\nurl = \"https://a.example/rss\" # the wire\n",
        ),
    ]);
    let mut file = managed::ManagedFile::open(&config.main()).unwrap();
    let a = Url::parse("https://A.example/rss").unwrap();
    assert!(file.has_feed(&a));
    file.add_feed(&managed::NewFeed {
        url: Url::parse("https://b.example/feed").unwrap(),
        name: Some("B \"news\"".to_owned()),
        tags: vec!["world".to_owned(), "tech".to_owned()],
        interval: Some("30m".to_owned()),
    });
    assert!(file.set_disabled(&a, true));
    assert!(!file.set_disabled(&a, true));
    file.save().unwrap();
    let text = std::fs::read_to_string(file.path()).unwrap();
    assert!(text.contains("# my notes\n[[feeds]]"), "{text}");
    assert!(text.contains("# the wire"), "{text}");
    let settings = config.load(&[]).unwrap();
    assert_eq!(settings.feeds.len(), 1);
    assert_eq!(settings.feeds[0].name.as_deref(), Some("B \"news\""));
    assert_eq!(settings.feeds[0].tags, ["world", "tech"]);
    assert_eq!(settings.feeds[0].interval, Some(Duration::from_secs(1800)));
    assert_eq!(settings.disabled_feeds.len(), 1);

    let mut file = managed::ManagedFile::open(&config.main()).unwrap();
    assert!(file.remove_feed(&a));
    assert!(!file.is_disabled(&a));
    file.save().unwrap();
    let settings = config.load(&[]).unwrap();
    assert_eq!(settings.feeds.len(), 1);
    assert!(settings.disabled_feeds.is_empty() && settings.disabled_urls.is_empty());
    file.restore().unwrap();
    assert_eq!(config.load(&[]).unwrap().disabled_feeds.len(), 1);
}

#[test]
fn a_new_managed_file_is_created_with_its_directory() {
    let config = ConfigDir::new(&[("herald.toml", "")]);
    let mut file = managed::ManagedFile::open(&config.main()).unwrap();
    file.add_feed(&managed::NewFeed {
        url: Url::parse("https://b.example/feed").unwrap(),
        name: None,
        tags: Vec::new(),
        interval: None,
    });
    file.save().unwrap();
    assert_eq!(config.load(&[]).unwrap().feeds.len(), 1);
    file.restore().unwrap();
    assert!(!managed_path(&config.main()).exists());
}

#[test]
fn bad_retention_values_are_rejected_at_the_value() {
    check_main_rejected(
        "[retention]\narticles = \"a year\"\n",
        "herald.toml:2:12: invalid duration \"a year\", expected a duration like \"90s\", \"15m\" or \"1h\", or \"forever\"",
    );
    check_main_rejected(
        "[retention]\ndeliveries = \"0s\"\n",
        "herald.toml:2:14: duration \"0s\" is too short, expected at least 1s, or \"forever\"",
    );
    check_main_rejected(
        "[retention]\nkeep = \"1d\"\n",
        "herald.toml:2:1: unknown field `keep`, expected `articles` or `deliveries`",
    );
    // Shorter than a reprint may still arrive and alert: 48h + 72h by default.
    check_main_rejected(
        "[retention]\narticles = \"4d\"\n",
        "herald.toml:2:12: `articles` must be at least alerts.max_age + stories.window (5days), or a late reprint could alert again",
    );
    let settings = load_main(
        "[alerts]\nmax_age = \"1h\"\n[stories]\nwindow = \"1h\"\n[retention]\narticles = \"2h\"\n",
    );
    assert_eq!(
        settings.retention.articles,
        Some(Duration::from_secs(2 * 3600))
    );
}

#[test]
fn a_sink_named_twice_in_a_rule_is_delivered_to_once() {
    let settings = load_main(
        "[sinks.desk]\ntype = \"log\"\n\n[sinks.ops]\ntype = \"log\"\n\n\
         [rules.nk]\nquery = \"Iran\"\nsinks = [\"desk\", \"ops\", \"desk\"]\n",
    );
    assert_eq!(settings.rules["nk"].sinks, ["desk", "ops"]);
}

#[test]
fn a_rule_digest_wins_over_its_sink_digest_and_times_have_a_zone() {
    let settings = load_main(
        "[sinks.mail]\ntype = \"log\"\ndigest_at = [\"17:00\", \"08:00\"]\ntimezone = \"Europe/Berlin\"\n\n\
         [sinks.chat]\ntype = \"log\"\n\n\
         [rules.nk-iran]\nquery = 'Iran'\nsinks = [\"mail\", \"chat\"]\n\n\
         [rules.oil]\nquery = 'oil'\nsinks = [\"mail\"]\ndigest = \"1h\"\n",
    );
    let mail = settings.sinks.get("mail");
    let chat = settings.sinks.get("chat");
    let nk = &settings.rules["nk-iran"];
    let oil = &settings.rules["oil"];
    let at = nk.digest_for(mail).unwrap();
    assert_eq!(at.key(), "at 08:00,17:00 Europe/Berlin");
    assert!(
        nk.digest_for(chat).is_none(),
        "an instant sink stays instant"
    );
    assert_eq!(oil.digest_for(mail).unwrap().key(), "every 3600s");
}

#[test]
fn quiet_hours_share_the_sinks_zone_and_throttles_are_per_sink_and_rule() {
    let settings = load_main(
        "[sinks.mail]\ntype = \"log\"\ndigest_at = [\"08:00\"]\nquiet_hours = \"22:00-07:00\"\n\
         timezone = \"Europe/Berlin\"\nmax_per_hour = 20\n\n\
         [sinks.chat]\ntype = \"log\"\nquiet_hours = \"23:30-06:00\"\n\n\
         [rules.oil]\nquery = 'oil'\nsinks = [\"mail\", \"chat\"]\nmax_per_hour = 5\n",
    );
    let mail = &settings.sinks["mail"];
    assert_eq!(
        mail.quiet_hours
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        Some("22:00-07:00 (Europe/Berlin)")
    );
    assert_eq!(
        mail.digest.as_ref().map(|d| d.key()).as_deref(),
        Some("at 08:00 Europe/Berlin")
    );
    assert_eq!(mail.max_per_hour, Some(20));
    let chat = &settings.sinks["chat"];
    assert_eq!(
        chat.quiet_hours
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        Some("23:30-06:00 (UTC)")
    );
    assert_eq!(chat.max_per_hour, None);
    assert_eq!(settings.rules["oil"].max_per_hour, Some(5));
}

#[test]
fn an_email_sink_keeps_its_login_secret() {
    let settings = load_main(
        "[sinks.mail]\ntype = \"email\"\nurl = \"smtps://alerts:hunter2@mail.example:465\"\n\
         from = \"herald <alerts@newsroom.example>\"\nto = [\"desk@newsroom.example\"]\n",
    );
    let SinkKind::Email {
        url,
        from,
        to,
        tls_ca,
    } = &settings.sinks["mail"].kind
    else {
        panic!("{:?}", settings.sinks["mail"]);
    };
    assert_eq!(from, "herald <alerts@newsroom.example>");
    assert_eq!(to, &["desk@newsroom.example"]);
    assert_eq!(url.to_string(), "smtps://mail.example:465/…");
    assert_eq!(tls_ca, &None);
    assert!(!format!("{settings:?}").contains("hunter2"));
}

#[test]
fn a_slack_app_sink_keeps_its_token_secret_and_defaults_to_slacks_api() {
    let settings = load_main(
        "[sinks.desk]\ntype = \"slack_app\"\ntoken = \"xoxb-hunter2\"\nchannel = \"C0123\"\n",
    );
    let SinkKind::SlackApp {
        token,
        channel,
        api_url,
    } = &settings.sinks["desk"].kind
    else {
        panic!("{:?}", settings.sinks["desk"]);
    };
    assert_eq!(token.expose(), "xoxb-hunter2");
    assert_eq!(channel, "C0123");
    assert_eq!(api_url.as_str(), "https://slack.com/api");
    assert!(!format!("{settings:?}").contains("hunter2"));
}
