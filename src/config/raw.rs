//! The file's shape as serde sees it: every value keeps its span so that validation,
//! which happens after deserialisation, can still point at `file:line:col`.
//! `deny_unknown_fields` everywhere: a misspelt key must fail, not be ignored.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use toml::Spanned;

pub(super) type Text = Spanned<String>;

/// The main config file: global sections plus the parts that includes may also carry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMainFile {
    #[serde(default)]
    pub include: Vec<Text>,
    pub database: Option<RawDatabase>,
    pub fetch: Option<RawFetch>,
    pub api: Option<RawApi>,
    pub alerts: Option<RawAlerts>,
    pub stories: Option<RawStories>,
    pub log: Option<RawLog>,
    pub retention: Option<RawRetention>,
    #[serde(default)]
    pub feeds: Vec<RawFeed>,
    #[serde(default)]
    pub sinks: BTreeMap<Text, Spanned<RawSink>>,
    #[serde(default)]
    pub rules: BTreeMap<Text, RawRule>,
}

/// An included file: only feeds, sinks, rules and further includes, so a dropped-in file
/// cannot silently change the database or the fetch limits.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFragment {
    #[serde(default)]
    pub include: Vec<Text>,
    #[serde(default)]
    pub feeds: Vec<RawFeed>,
    #[serde(default)]
    pub sinks: BTreeMap<Text, Spanned<RawSink>>,
    #[serde(default)]
    pub rules: BTreeMap<Text, RawRule>,
}

/// The file `herald feeds` writes (see [`super::managed`]): feeds, and the URLs of
/// feeds that are switched off wherever they are written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawManaged {
    #[serde(default)]
    pub disabled: Vec<Text>,
    #[serde(default)]
    pub feeds: Vec<RawFeed>,
}

/// The global sections of the main file, split from its fragment.
#[derive(Debug, Default)]
pub(super) struct RawGlobal {
    pub database: RawDatabase,
    pub fetch: RawFetch,
    pub api: Option<RawApi>,
    pub alerts: RawAlerts,
    pub stories: RawStories,
    pub log: RawLog,
    pub retention: RawRetention,
}

impl RawMainFile {
    pub(super) fn split(self) -> (RawGlobal, RawFragment) {
        let global = RawGlobal {
            database: self.database.unwrap_or_default(),
            fetch: self.fetch.unwrap_or_default(),
            api: self.api,
            alerts: self.alerts.unwrap_or_default(),
            stories: self.stories.unwrap_or_default(),
            log: self.log.unwrap_or_default(),
            retention: self.retention.unwrap_or_default(),
        };
        let fragment = RawFragment {
            include: self.include,
            feeds: self.feeds,
            sinks: self.sinks,
            rules: self.rules,
        };
        (global, fragment)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDatabase {
    pub url: Option<Text>,
    pub busy_timeout: Option<Text>,
    pub connect_timeout: Option<Text>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFetch {
    pub interval: Option<Text>,
    pub timeout: Option<Text>,
    pub concurrency: Option<Spanned<usize>>,
    pub per_host: Option<Spanned<usize>>,
    pub max_body: Option<Spanned<RawSize>>,
    pub user_agent: Option<Text>,
    pub max_redirects: Option<usize>,
    pub private_networks: Option<Text>,
    pub secret_params: Option<Vec<Text>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApi {
    pub listen: Option<Spanned<RawListen>>,
    pub token: Option<Text>,
    pub max_connections: Option<Spanned<usize>>,
    pub header_timeout: Option<Text>,
    pub request_timeout: Option<Text>,
    pub idle_timeout: Option<Text>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAlerts {
    pub max_age: Option<Text>,
    pub give_up: Option<Text>,
    pub lease: Option<Text>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStories {
    pub window: Option<Text>,
    pub threshold: Option<Spanned<f64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLog {
    pub format: Option<Text>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRetention {
    pub articles: Option<Text>,
    pub deliveries: Option<Text>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFeed {
    pub url: Text,
    pub name: Option<Text>,
    pub interval: Option<Text>,
    pub tags: Option<Vec<Text>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSink {
    #[serde(rename = "type")]
    pub kind: Text,
    pub url: Option<Text>,
    pub secret: Option<Text>,
    pub max_in_flight: Option<Spanned<usize>>,
    pub digest: Option<Text>,
    pub digest_at: Option<Spanned<Vec<Text>>>,
    pub timezone: Option<Text>,
    pub max_per_hour: Option<Spanned<usize>>,
    pub quiet_hours: Option<Text>,
    pub template: Option<Text>,
    pub template_file: Option<Text>,
    pub from: Option<Text>,
    pub to: Option<Spanned<Vec<Text>>>,
    pub tls_ca: Option<Text>,
    pub token: Option<Text>,
    pub channel: Option<Text>,
    pub api_url: Option<Text>,
    pub chat_id: Option<Spanned<RawChatId>>,
}

/// A Telegram `chat_id`: a number (`-1001234567890`) or a channel's `"@name"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum RawChatId {
    Number(i64),
    Text(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    pub query: Text,
    pub sinks: Vec<Text>,
    pub tags: Option<Vec<Text>>,
    pub digest: Option<Text>,
    pub digest_at: Option<Spanned<Vec<Text>>>,
    pub timezone: Option<Text>,
    pub max_per_hour: Option<Spanned<usize>>,
}

/// `max_body`: a string such as `"10MB"` or a plain number of bytes.
#[derive(Debug)]
pub(super) enum RawSize {
    Text(String),
    Bytes(u64),
}

impl<'de> Deserialize<'de> for RawSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SizeVisitor;
        impl Visitor<'_> for SizeVisitor {
            type Value = RawSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size like \"10MB\" or a number of bytes")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<RawSize, E> {
                Ok(RawSize::Text(text.to_owned()))
            }
            fn visit_u64<E: de::Error>(self, bytes: u64) -> Result<RawSize, E> {
                Ok(RawSize::Bytes(bytes))
            }
            fn visit_i64<E: de::Error>(self, bytes: i64) -> Result<RawSize, E> {
                u64::try_from(bytes)
                    .map(RawSize::Bytes)
                    .map_err(|_| E::invalid_value(de::Unexpected::Signed(bytes), &self))
            }
        }
        deserializer.deserialize_any(SizeVisitor)
    }
}

/// `api.listen`: an address, or `false` to disable the API (`true` means the default).
#[derive(Debug)]
pub(super) enum RawListen {
    Address(String),
    Enabled(bool),
}

impl<'de> Deserialize<'de> for RawListen {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ListenVisitor;
        impl Visitor<'_> for ListenVisitor {
            type Value = RawListen;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an address like \"127.0.0.1:8645\", or false")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<RawListen, E> {
                Ok(RawListen::Address(text.to_owned()))
            }
            fn visit_bool<E: de::Error>(self, enabled: bool) -> Result<RawListen, E> {
                Ok(RawListen::Enabled(enabled))
            }
        }
        deserializer.deserialize_any(ListenVisitor)
    }
}
