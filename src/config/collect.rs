//! Feeds, sinks and rules gathered from the main file and its includes, with the checks
//! that span files: duplicates, include cycles, and rules naming undefined sinks.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use toml::Spanned;

use super::loader::{FileContext, MIN_INTERVAL};
use super::location::{Location, SourceFile, cannot_read};
use super::raw::{RawChatId, RawFeed, RawFragment, RawManaged, RawRule, RawSink, Text};
use super::values::{check_name, parse_duration, parse_feed_url};
use crate::domain::digest::DigestSchedule;
use crate::domain::quiet_hours::QuietHours;

use super::{
    ConfigError, FeedSettings, Redactor, RuleSettings, Secret, SecretUrl, SinkKind, SinkSettings,
    TemplateSource,
};

/// A rule before its sink references can be checked, which needs every file loaded.
struct PendingRule {
    settings: RuleSettings,
    name_location: Location,
    sink_references: Vec<Location>,
}

/// Feeds, sinks and rules gathered across the main file and its includes.
pub(super) struct Collected {
    pub(super) feeds: Vec<FeedSettings>,
    feed_locations: HashMap<String, Location>,
    pub(super) sinks: BTreeMap<String, SinkSettings>,
    rules: BTreeMap<String, PendingRule>,
    /// Files on the current include chain, to detect cycles.
    loading: Vec<PathBuf>,
    /// Files already read, so a file matched by two patterns counts once.
    loaded: HashSet<PathBuf>,
    /// Feed URLs may carry credentials: errors show them redacted.
    redactor: Redactor,
    /// The managed file, canonical, when it exists: read after every other file,
    /// never through an `include` (a `feeds.d/*.toml` glob matches it).
    managed: Option<PathBuf>,
    /// URLs the managed file's `disabled` list names, with where.
    pub(super) disabled: Vec<(String, Location)>,
}

impl Collected {
    pub(super) fn starting_at(main_given: &Path, redactor: Redactor) -> Self {
        let main = canonical_or_given(main_given);
        Self {
            feeds: Vec::new(),
            feed_locations: HashMap::new(),
            sinks: BTreeMap::new(),
            rules: BTreeMap::new(),
            loading: vec![main.clone()],
            loaded: HashSet::from([main]),
            redactor,
            managed: std::fs::canonicalize(super::managed_path(main_given)).ok(),
            disabled: Vec::new(),
        }
    }

    /// Reads the managed file, if there is one: its feeds join the others (a URL
    /// written in both is a duplicate like any other), its `disabled` list is kept
    /// for [`Collected::split_disabled`].
    pub(super) fn add_managed(&mut self, main: &FileContext) -> Result<(), ConfigError> {
        let Some(path) = self.managed.clone() else {
            return Ok(());
        };
        let shown = super::managed_path(main.source.path());
        let source = SourceFile::read(&shown).map_err(|message| ConfigError::Read {
            path: shown.clone(),
            message,
        })?;
        let raw: RawManaged = source.parse()?;
        let file = FileContext {
            source: &source,
            env: main.env,
        };
        self.loaded.insert(path);
        for feed in raw.feeds {
            self.add_feed(&file, feed)?;
        }
        for url in &raw.disabled {
            let parsed = file.parsed(url, |text| parse_feed_url(text, &self.redactor))?;
            self.disabled
                .push((parsed.as_str().to_owned(), file.locate(url)));
        }
        Ok(())
    }

    /// The configured feeds, split into those to poll and those the managed file
    /// disables.
    pub(super) fn split_disabled(&mut self) -> (Vec<FeedSettings>, Vec<FeedSettings>) {
        let feeds = std::mem::take(&mut self.feeds);
        feeds.into_iter().partition(|feed| {
            !self
                .disabled
                .iter()
                .any(|(url, _)| url == feed.url.as_str())
        })
    }

    pub(super) fn add(
        &mut self,
        file: &FileContext,
        fragment: RawFragment,
    ) -> Result<(), ConfigError> {
        for raw in fragment.feeds {
            self.add_feed(file, raw)?;
        }
        for (name, raw) in fragment.sinks {
            self.add_sink(file, &name, raw)?;
        }
        for (name, raw) in fragment.rules {
            self.add_rule(file, &name, raw)?;
        }
        for pattern in &fragment.include {
            for path in include_paths(file, pattern)? {
                self.add_included(file, pattern, &path)?;
            }
        }
        Ok(())
    }

    fn add_feed(&mut self, file: &FileContext, raw: RawFeed) -> Result<(), ConfigError> {
        let feed = FeedSettings {
            url: file.parsed(&raw.url, |text| parse_feed_url(text, &self.redactor))?,
            name: raw
                .name
                .map(|name| file.non_empty(&name, "a feed name"))
                .transpose()?,
            interval: raw
                .interval
                .map(|interval| file.parsed(&interval, |text| parse_duration(text, MIN_INTERVAL)))
                .transpose()?,
            tags: file.tags(raw.tags)?,
            location: file.locate(&raw.url),
        };
        if let Some(first) = self.feed_locations.get(feed.url.as_str()) {
            return Err(file.fail(
                &raw.url,
                format!(
                    "duplicate feed url {}, first defined at {first}",
                    self.redactor.show(feed.url.as_str())
                ),
            ));
        }
        self.feed_locations
            .insert(feed.url.as_str().to_owned(), feed.location.clone());
        self.feeds.push(feed);
        Ok(())
    }

    fn add_sink(
        &mut self,
        file: &FileContext,
        name: &Text,
        raw: Spanned<RawSink>,
    ) -> Result<(), ConfigError> {
        check_name("sink", name.get_ref()).map_err(|message| file.fail(name, message))?;
        if let Some(first) = self.sinks.get(name.get_ref()) {
            return Err(file.fail(
                name,
                format!(
                    "duplicate sink `{}`, first defined at {}",
                    name.get_ref(),
                    first.location
                ),
            ));
        }
        let max_in_flight = raw.get_ref().max_in_flight.clone();
        let (digest, quiet_hours, max_per_hour) = {
            let raw = raw.get_ref();
            let quiet_hours = match &raw.quiet_hours {
                Some(text) => Some(quiet_hours(file, text, raw.timezone.as_ref())?),
                None => None,
            };
            let digest = digest(
                file,
                raw.digest.as_ref(),
                raw.digest_at.as_ref(),
                // Read by `quiet_hours` too: not an error there without `digest_at`.
                raw.timezone
                    .as_ref()
                    .filter(|_| raw.digest_at.is_some() || quiet_hours.is_none()),
            )?;
            (
                digest,
                quiet_hours,
                max_per_hour(file, raw.max_per_hour.clone())?,
            )
        };
        let template = template(file, raw.get_ref())?;
        let template_key = raw.get_ref().template.clone();
        let kind = sink_kind(file, name.get_ref(), raw)?;
        if template.is_some() && matches!(kind, SinkKind::Webhook { .. }) {
            let key = template_key.map_or_else(|| file.locate(name), |key| file.locate(&key));
            return Err(ConfigError::Invalid {
                location: key,
                message: "`template` is not allowed for a sink of type `webhook`: its body is \
                          JSON for a program; shape the message at the receiver"
                    .to_owned(),
            });
        }
        let sink = SinkSettings {
            max_in_flight: sink_in_flight(file, &kind, max_in_flight)?,
            template,
            digest,
            max_per_hour,
            quiet_hours,
            kind,
            location: file.locate(name),
        };
        self.sinks.insert(name.get_ref().clone(), sink);
        Ok(())
    }

    fn add_rule(
        &mut self,
        file: &FileContext,
        name: &Text,
        raw: RawRule,
    ) -> Result<(), ConfigError> {
        check_name("rule", name.get_ref()).map_err(|message| file.fail(name, message))?;
        if let Some(first) = self.rules.get(name.get_ref()) {
            return Err(file.fail(
                name,
                format!(
                    "duplicate rule `{}`, first defined at {}",
                    name.get_ref(),
                    first.name_location
                ),
            ));
        }
        // A sink named twice gets one delivery per alert, as if named once.
        let mut sinks = Vec::with_capacity(raw.sinks.len());
        let mut sink_references = Vec::with_capacity(raw.sinks.len());
        for sink in &raw.sinks {
            let text = file.text(sink)?;
            if !sinks.contains(&text) {
                sinks.push(text);
                sink_references.push(file.locate(sink));
            }
        }
        let rule = PendingRule {
            settings: RuleSettings {
                query: file.non_empty(&raw.query, "a rule query")?,
                query_location: file.locate(&raw.query),
                sinks,
                tags: file.tags(raw.tags)?,
                digest: digest(
                    file,
                    raw.digest.as_ref(),
                    raw.digest_at.as_ref(),
                    raw.timezone.as_ref(),
                )?,
                max_per_hour: max_per_hour(file, raw.max_per_hour)?,
            },
            name_location: file.locate(name),
            sink_references,
        };
        self.rules.insert(name.get_ref().clone(), rule);
        Ok(())
    }

    fn add_included(
        &mut self,
        parent: &FileContext,
        pattern: &Text,
        path: &Path,
    ) -> Result<(), ConfigError> {
        let canonical = std::fs::canonicalize(path)
            .map_err(|error| parent.fail(pattern, cannot_read(path, &error)))?;
        if self.managed.as_ref() == Some(&canonical) {
            return Ok(());
        }
        if self.loading.contains(&canonical) {
            return Err(parent.fail(
                pattern,
                format!("include cycle: {} is already being loaded", path.display()),
            ));
        }
        if !self.loaded.insert(canonical.clone()) {
            return Ok(());
        }
        let source = SourceFile::read(path).map_err(|message| parent.fail(pattern, message))?;
        let fragment: RawFragment = source.parse()?;
        let file = FileContext {
            source: &source,
            env: parent.env,
        };
        self.loading.push(canonical);
        self.add(&file, fragment)?;
        self.loading.pop();
        Ok(())
    }

    /// Checks every rule's sinks now that all files are in, so a rule may name a sink
    /// defined in a later include.
    pub(super) fn resolve_rules(&mut self) -> Result<BTreeMap<String, RuleSettings>, ConfigError> {
        let rules = std::mem::take(&mut self.rules);
        for (name, rule) in &rules {
            let references = rule.settings.sinks.iter().zip(&rule.sink_references);
            for (sink, location) in references {
                if !self.sinks.contains_key(sink) {
                    return Err(ConfigError::Invalid {
                        location: location.clone(),
                        message: format!(
                            "rule `{name}` sends to undefined sink `{sink}`, {}",
                            self.expected_sinks()
                        ),
                    });
                }
            }
        }
        Ok(rules
            .into_iter()
            .map(|(name, rule)| (name, rule.settings))
            .collect())
    }

    fn expected_sinks(&self) -> String {
        if self.sinks.is_empty() {
            return "and no sink is defined".to_owned();
        }
        let names: Vec<String> = self.sinks.keys().map(|name| format!("`{name}`")).collect();
        format!("expected one of {}", names.join(", "))
    }
}

/// The most deliveries one sink may have in flight.
const MAX_IN_FLIGHT: usize = 64;

/// `max_in_flight`: webhooks only (Slack and Discord pace each webhook to
/// about one message a second), 1 to [`MAX_IN_FLIGHT`], default 1.
fn sink_in_flight(
    file: &FileContext,
    kind: &SinkKind,
    value: Option<Spanned<usize>>,
) -> Result<usize, ConfigError> {
    let Some(value) = value else { return Ok(1) };
    if !matches!(kind, SinkKind::Webhook { .. }) {
        return Err(file.fail(
            &value,
            "`max_in_flight` is only allowed for a sink of type `webhook`",
        ));
    }
    if *value.get_ref() > MAX_IN_FLIGHT {
        return Err(file.fail(
            &value,
            format!(
                "`max_in_flight` must be at most {MAX_IN_FLIGHT}, got {}",
                value.get_ref()
            ),
        ));
    }
    file.at_least_one(Some(value), "max_in_flight", 1)
}

fn sink_kind(
    file: &FileContext,
    name: &str,
    raw: Spanned<RawSink>,
) -> Result<SinkKind, ConfigError> {
    let table = raw.span();
    let raw = raw.into_inner();
    let type_name = file.text(&raw.kind)?;
    let url = || match &raw.url {
        Some(url) => file.parsed(url, SecretUrl::parse),
        None => Err(file.source.error_at(
            table.clone(),
            format!("sink `{name}` of type `{type_name}` needs a `url`"),
        )),
    };
    if type_name != "slack_app" {
        file.forbid(
            raw.channel.as_ref(),
            "`channel` is only allowed for a sink of type `slack_app`",
        )?;
    }
    if !matches!(type_name.as_str(), "slack_app" | "telegram") {
        file.forbid(
            raw.api_url.as_ref(),
            "`api_url` is only allowed for a sink of type `slack_app` or `telegram`",
        )?;
    }
    if !matches!(type_name.as_str(), "slack_app" | "telegram" | "ntfy") {
        file.forbid(
            raw.token.as_ref(),
            "`token` is only allowed for a sink of type `slack_app`, `telegram` or `ntfy`",
        )?;
    }
    if type_name != "telegram"
        && let Some(chat_id) = &raw.chat_id
    {
        return Err(file.fail(
            chat_id,
            "`chat_id` is only allowed for a sink of type `telegram`",
        ));
    }
    if type_name != "email" {
        file.forbid(
            raw.tls_ca.as_ref(),
            "`tls_ca` is only allowed for a sink of type `email`",
        )?;
        file.forbid(
            raw.from.as_ref(),
            "`from` is only allowed for a sink of type `email`",
        )?;
        if let Some(to) = &raw.to {
            return Err(file.fail(to, "`to` is only allowed for a sink of type `email`"));
        }
    }
    let only_webhook_secret = || {
        file.forbid(
            raw.secret.as_ref(),
            "`secret` is only allowed for a sink of type `webhook`",
        )
    };
    match type_name.as_str() {
        "slack" => {
            only_webhook_secret()?;
            Ok(SinkKind::Slack { url: url()? })
        }
        "discord" => {
            only_webhook_secret()?;
            Ok(SinkKind::Discord { url: url()? })
        }
        "webhook" => Ok(SinkKind::Webhook {
            url: url()?,
            secret: match &raw.secret {
                Some(secret) => Some(Secret::new(file.non_empty(secret, "`secret`")?)),
                None => None,
            },
        }),
        "teams" => {
            only_webhook_secret()?;
            Ok(SinkKind::Teams { url: url()? })
        }
        "ntfy" => {
            only_webhook_secret()?;
            let url = url()?;
            if !has_one_path_segment(url.expose()) {
                let key = raw.url.as_ref().map_or(table.clone(), |url| url.span());
                return Err(file.source.error_at(
                    key,
                    "the ntfy url must name one topic, like https://ntfy.sh/newsdesk",
                ));
            }
            let token = match &raw.token {
                Some(token) => Some(Secret::new(file.non_empty(token, "`token`")?)),
                None => None,
            };
            Ok(SinkKind::Ntfy { url, token })
        }
        "telegram" => {
            only_webhook_secret()?;
            file.forbid(
                raw.url.as_ref(),
                "`url` is not allowed for a sink of type `telegram`: give `token` and `chat_id` \
                 (and `api_url` for another Bot API server)",
            )?;
            let needs = |key: &str| {
                file.source.error_at(
                    table.clone(),
                    format!("sink `{name}` of type `telegram` needs `{key}`"),
                )
            };
            let token = match &raw.token {
                Some(token) => Secret::new(file.non_empty(token, "`token`")?),
                None => return Err(needs("token")),
            };
            let chat_id = match &raw.chat_id {
                Some(chat_id) => match chat_id.get_ref() {
                    RawChatId::Number(number) => number.to_string(),
                    RawChatId::Text(text) if !text.trim().is_empty() => text.trim().to_owned(),
                    RawChatId::Text(_) => {
                        return Err(file.fail(chat_id, "`chat_id` must not be empty"));
                    }
                },
                None => return Err(needs("chat_id")),
            };
            let api_url = api_url(file, raw.api_url.as_ref(), super::TELEGRAM_API, &raw.kind)?;
            Ok(SinkKind::Telegram {
                token,
                chat_id,
                api_url,
            })
        }
        "slack_app" => {
            only_webhook_secret()?;
            file.forbid(
                raw.url.as_ref(),
                "`url` is not allowed for a sink of type `slack_app`: give `token` and `channel` \
                 (and `api_url` for another Web API address)",
            )?;
            let needs = |key: &str| {
                file.source.error_at(
                    table.clone(),
                    format!("sink `{name}` of type `slack_app` needs `{key}`"),
                )
            };
            let token = match &raw.token {
                Some(token) => Secret::new(file.non_empty(token, "`token`")?),
                None => return Err(needs("token")),
            };
            let channel = match &raw.channel {
                Some(channel) => file.non_empty(channel, "`channel`")?,
                None => return Err(needs("channel")),
            };
            let api_url = api_url(file, raw.api_url.as_ref(), super::SLACK_API, &raw.kind)?;
            Ok(SinkKind::SlackApp {
                token,
                channel,
                api_url,
            })
        }
        "email" => {
            only_webhook_secret()?;
            let url = match &raw.url {
                Some(url) => file.parsed(url, SecretUrl::parse_smtp)?,
                None => {
                    return Err(file.source.error_at(
                        table.clone(),
                        format!("sink `{name}` of type `email` needs a `url` (smtp://… or smtps://…)"),
                    ));
                }
            };
            let from = match &raw.from {
                Some(from) => file.parsed(from, email_address)?,
                None => {
                    return Err(file.source.error_at(
                        table.clone(),
                        format!("sink `{name}` of type `email` needs `from`"),
                    ));
                }
            };
            let to = match &raw.to {
                Some(to) if !to.get_ref().is_empty() => to
                    .get_ref()
                    .iter()
                    .map(|address| file.parsed(address, email_address))
                    .collect::<Result<Vec<_>, _>>()?,
                Some(to) => return Err(file.fail(to, "`to` must name at least one address")),
                None => {
                    return Err(file.source.error_at(
                        table.clone(),
                        format!("sink `{name}` of type `email` needs `to`"),
                    ));
                }
            };
            let tls_ca = match &raw.tls_ca {
                Some(path) => {
                    let plain = url
                        .expose()
                        .query_pairs()
                        .any(|(key, value)| key == "tls" && value == "none");
                    if plain {
                        return Err(file.fail(path, "`tls_ca` means nothing with `?tls=none`"));
                    }
                    let relative = file.text(path)?;
                    let directory = file.source.path().parent().unwrap_or(Path::new(""));
                    let path_buf = directory.join(&relative);
                    let pem = std::fs::read_to_string(&path_buf)
                        .map_err(|error| file.fail(path, cannot_read(&path_buf, &error)))?;
                    if !pem.contains("-----BEGIN CERTIFICATE-----") {
                        return Err(file.fail(
                            path,
                            format!("{} holds no PEM certificate", path_buf.display()),
                        ));
                    }
                    Some(pem)
                }
                None => None,
            };
            Ok(SinkKind::Email {
                url,
                from,
                to,
                tls_ca,
            })
        }
        "log" => {
            file.forbid(
                raw.url.as_ref(),
                "`url` is not allowed for a sink of type `log`",
            )?;
            only_webhook_secret()?;
            Ok(SinkKind::Log)
        }
        other => Err(file.fail(
            &raw.kind,
            format!(
                "unknown sink type `{other}`, expected one of `slack`, `slack_app`, `discord`, `teams`, `telegram`, `ntfy`, `webhook`, `email`, `log`"
            ),
        )),
    }
}

/// The files an `include` entry names, relative to the including file's directory. A
/// glob may match nothing (an empty drop-in directory is normal); a plain path must
/// exist, which the caller finds out when it reads it.
fn include_paths(file: &FileContext, pattern: &Text) -> Result<Vec<PathBuf>, ConfigError> {
    let text = file.text(pattern)?;
    let directory = file.source.path().parent().unwrap_or(Path::new(""));
    if !text.contains(['*', '?', '[']) {
        return Ok(vec![directory.join(text)]);
    }
    // The directory is literal even if its name holds glob characters.
    let directory = glob::Pattern::escape(&directory.to_string_lossy());
    let full_pattern = Path::new(&directory).join(&text);
    let matches = glob::glob(&full_pattern.to_string_lossy())
        .map_err(|error| file.fail(pattern, format!("invalid glob pattern \"{text}\": {error}")))?;
    let mut paths = matches
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| file.fail(pattern, cannot_read(error.path(), error.error())))?;
    paths.sort();
    Ok(paths)
}

fn canonical_or_given(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// A sink's or rule's digest: `digest = "1h"` (every hour, on the hour), or
/// `digest_at = ["08:00", "17:00"]` with an optional `timezone` (UTC).
fn digest(
    file: &FileContext,
    interval: Option<&Text>,
    times: Option<&Spanned<Vec<Text>>>,
    timezone: Option<&Text>,
) -> Result<Option<DigestSchedule>, ConfigError> {
    match (interval, times) {
        (Some(_), Some(times)) => Err(file.fail(
            times,
            "`digest` and `digest_at` exclude each other: give one",
        )),
        (Some(interval), None) => {
            file.forbid(
                timezone,
                "`timezone` only applies to `digest_at` and a sink's `quiet_hours`",
            )?;
            let schedule = file.parsed(interval, |text| {
                let interval = parse_duration(text, MIN_DIGEST_INTERVAL)?;
                DigestSchedule::every(interval).map_err(|error| error.to_string())
            })?;
            Ok(Some(schedule))
        }
        (None, Some(times)) => {
            let texts: Vec<String> = times
                .get_ref()
                .iter()
                .map(|time| file.text(time))
                .collect::<Result<_, _>>()?;
            let zone = time_zone(file, timezone)?;
            let schedule = DigestSchedule::at(&texts, zone.as_deref())
                .map_err(|error| file.fail(times, error.to_string()))?;
            Ok(Some(schedule))
        }
        (None, None) => {
            file.forbid(
                timezone,
                "`timezone` only applies to `digest_at` and a sink's `quiet_hours`",
            )?;
            Ok(None)
        }
    }
}

/// `quiet_hours = "22:00-07:00"` in the sink's `timezone` (UTC without one);
/// with `digest_at` too, both are read in that zone.
fn quiet_hours(
    file: &FileContext,
    text: &Text,
    timezone: Option<&Text>,
) -> Result<QuietHours, ConfigError> {
    let zone = time_zone(file, timezone)?;
    file.parsed(text, |range| {
        QuietHours::parse(range, zone.as_deref()).map_err(|error| error.to_string())
    })
}

/// A sink's `template` (inline, taken as written: no `${VAR}`) or
/// `template_file` (relative to this file's directory).
fn template(file: &FileContext, raw: &RawSink) -> Result<Option<TemplateSource>, ConfigError> {
    match (&raw.template, &raw.template_file) {
        (Some(_), Some(path)) => Err(file.fail(
            path,
            "`template` and `template_file` exclude each other: give one",
        )),
        (Some(text), None) => {
            let (start, verbatim) = file.source.string_content(&text.span(), text.get_ref());
            Ok(Some(TemplateSource {
                text: text.get_ref().clone(),
                start,
                verbatim,
            }))
        }
        (None, Some(path)) => {
            let relative = file.text(path)?;
            let directory = file.source.path().parent().unwrap_or(Path::new(""));
            let path_buf = directory.join(&relative);
            let text = std::fs::read_to_string(&path_buf)
                .map_err(|error| file.fail(path, cannot_read(&path_buf, &error)))?;
            Ok(Some(TemplateSource {
                text,
                start: Location {
                    file: path_buf,
                    line: 1,
                    column: 1,
                },
                verbatim: true,
            }))
        }
        (None, None) => Ok(None),
    }
}

/// A service's API address: `api_url` when given (an http or https URL),
/// else the service's own.
fn api_url(
    file: &FileContext,
    given: Option<&Text>,
    default: &str,
    kind: &Text,
) -> Result<url::Url, ConfigError> {
    match given {
        Some(api_url) => file.parsed(api_url, |text| {
            url::Url::parse(text)
                .ok()
                .filter(super::secret::is_http)
                .ok_or_else(|| format!("invalid api_url {text:?}, expected an http or https URL"))
        }),
        None => url::Url::parse(default).map_err(|error| file.fail(kind, error.to_string())),
    }
}

/// Whether a URL's path is one non-empty segment (an ntfy topic).
fn has_one_path_segment(url: &url::Url) -> bool {
    let segments: Vec<&str> = url
        .path_segments()
        .map(|segments| segments.collect())
        .unwrap_or_default();
    matches!(segments.as_slice(), [topic] if !topic.is_empty())
}

/// An email address as `from` and `to` take it: `name@host`, or
/// `Name <name@host>`; the mailer checks the rest when it sends.
fn email_address(text: &str) -> Result<String, String> {
    let address = match (text.rfind('<'), text.ends_with('>')) {
        (Some(open), true) => &text[open + 1..text.len() - 1],
        _ => text,
    };
    let valid = address.split_once('@').is_some_and(|(local, host)| {
        !local.is_empty() && (host.contains('.') || host == "localhost")
    }) && !text.contains(['\r', '\n']);
    if valid {
        Ok(text.trim().to_owned())
    } else {
        Err(format!(
            "invalid email address {text:?}, expected name@example.com"
        ))
    }
}

/// A `timezone`, checked where it is written.
fn time_zone(file: &FileContext, timezone: Option<&Text>) -> Result<Option<String>, ConfigError> {
    let Some(zone) = timezone else {
        return Ok(None);
    };
    file.parsed(zone, |name| {
        name.parse::<chrono_tz::Tz>()
            .map(|_| name.to_owned())
            .map_err(|_| {
                format!("unknown time zone \"{name}\" (an IANA name such as \"Europe/Berlin\")")
            })
    })
    .map(Some)
}

/// `max_per_hour = N`: at least one (mute a rule to send none).
fn max_per_hour(
    file: &FileContext,
    value: Option<Spanned<usize>>,
) -> Result<Option<usize>, ConfigError> {
    match value {
        Some(value) => file.at_least_one(Some(value), "max_per_hour", 1).map(Some),
        None => Ok(None),
    }
}

/// Shortest `digest` interval: the dispatcher looks for due digests about
/// this often.
const MIN_DIGEST_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);
