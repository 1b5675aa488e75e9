//! Turns the raw, spanned file contents into [`Settings`]: substitution, defaults,
//! validation, includes and the cross-file checks (duplicates, rule → sink references).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use super::location::{SourceFile, cannot_read};
use super::raw::{
    RawAlerts, RawApi, RawDatabase, RawFeed, RawFetch, RawFragment, RawListen, RawMainFile,
    RawRule, RawSink, RawSize, RawStories, Text,
};
use super::values::{check_name, expand_vars, parse_duration, parse_feed_url, parse_size};
use super::*;

/// Shortest feed interval: SPEC §7 honours any interval down to one second.
const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// Shortest timeout: zero would fail every fetch, so it can only be a mistake.
const MIN_TIMEOUT: Duration = Duration::from_millis(1);
/// Shortest alert and story window: zero would silently switch the feature off.
const MIN_WINDOW: Duration = Duration::from_secs(1);

type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

pub(super) fn load(path: &Path, env: Env<'_>) -> Result<Settings, ConfigError> {
    let source = SourceFile::read(path).map_err(|message| ConfigError::Read {
        path: path.to_path_buf(),
        message,
    })?;
    let file = FileContext {
        source: &source,
        env,
    };
    let (global, fragment) = source.parse::<RawMainFile>()?.split();
    let database = database(&file, global.database)?;
    let fetch = fetch(&file, global.fetch)?;
    let api = api(&file, global.api)?;
    let alerts = alerts(&file, global.alerts)?;
    let stories = stories(&file, global.stories)?;

    let mut collected = Collected::starting_at(path);
    collected.add(&file, fragment)?;
    let rules = collected.resolve_rules()?;
    Ok(Settings {
        path: path.to_path_buf(),
        database,
        fetch,
        api,
        alerts,
        stories,
        feeds: collected.feeds,
        sinks: collected.sinks,
        rules,
    })
}

/// One file being validated, with the environment `${VAR}` reads from.
struct FileContext<'a> {
    source: &'a SourceFile,
    env: Env<'a>,
}

impl FileContext<'_> {
    fn fail(&self, value: &Spanned<impl Sized>, message: impl Into<String>) -> ConfigError {
        self.source.error_at(value.span(), message)
    }

    fn locate(&self, value: &Spanned<impl Sized>) -> Location {
        self.source.locate(&value.span())
    }

    /// A string value with `${VAR}` substituted.
    fn text(&self, value: &Text) -> Result<String, ConfigError> {
        expand_vars(value.get_ref(), self.env).map_err(|message| self.fail(value, message))
    }

    /// A substituted string, parsed; a parse error is placed at the value.
    fn parsed<T>(
        &self,
        value: &Text,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        let text = self.text(value)?;
        parse(&text).map_err(|message| self.fail(value, message))
    }

    fn non_empty(&self, value: &Text, what: &str) -> Result<String, ConfigError> {
        self.parsed(value, |text| {
            if text.trim().is_empty() {
                Err(format!("{what} must not be empty"))
            } else {
                Ok(text.to_owned())
            }
        })
    }

    fn duration(
        &self,
        value: Option<&Text>,
        default: Duration,
        minimum: Duration,
    ) -> Result<Duration, ConfigError> {
        match value {
            Some(value) => self.parsed(value, |text| parse_duration(text, minimum)),
            None => Ok(default),
        }
    }

    fn at_least_one(
        &self,
        value: Option<Spanned<usize>>,
        key: &str,
        default: usize,
    ) -> Result<usize, ConfigError> {
        match value {
            Some(value) if *value.get_ref() == 0 => {
                Err(self.fail(&value, format!("`{key}` must be at least 1, got 0")))
            }
            Some(value) => Ok(value.into_inner()),
            None => Ok(default),
        }
    }

    fn tags(&self, tags: Option<Vec<Text>>) -> Result<Vec<String>, ConfigError> {
        tags.unwrap_or_default()
            .iter()
            .map(|tag| self.non_empty(tag, "a tag"))
            .collect()
    }

    fn forbid(&self, value: Option<&Text>, message: &str) -> Result<(), ConfigError> {
        match value {
            Some(value) => Err(self.fail(value, message)),
            None => Ok(()),
        }
    }
}

fn database(file: &FileContext, raw: RawDatabase) -> Result<DatabaseSettings, ConfigError> {
    // The override wins outright: a file value it replaces is not even substituted, so
    // an unset `${VAR}` there cannot fail a deployment that sets the override.
    if let Some(url) = (file.env)(ENV_DATABASE_URL).filter(|url| !url.is_empty()) {
        let url = DatabaseUrl::parse(&url).map_err(|message| ConfigError::Environment {
            var: ENV_DATABASE_URL,
            message,
        })?;
        return Ok(DatabaseSettings { url });
    }
    let url = match raw.url {
        Some(url) => file.parsed(&url, DatabaseUrl::parse)?,
        None => DatabaseUrl::default(),
    };
    Ok(DatabaseSettings { url })
}

fn fetch(file: &FileContext, raw: RawFetch) -> Result<FetchSettings, ConfigError> {
    let interval = file.duration(raw.interval.as_ref(), DEFAULT_FETCH_INTERVAL, MIN_INTERVAL)?;
    let timeout = file.duration(raw.timeout.as_ref(), DEFAULT_FETCH_TIMEOUT, MIN_TIMEOUT)?;
    let concurrency =
        file.at_least_one(raw.concurrency, "concurrency", DEFAULT_FETCH_CONCURRENCY)?;
    let per_host = file.at_least_one(raw.per_host, "per_host", DEFAULT_FETCH_PER_HOST)?;
    let max_body = match raw.max_body {
        Some(size) => max_body(file, size)?,
        None => DEFAULT_MAX_BODY,
    };
    let user_agent = match raw.user_agent {
        Some(agent) => file.parsed(&agent, check_user_agent)?,
        None => default_user_agent(),
    };
    Ok(FetchSettings {
        interval,
        timeout,
        concurrency,
        per_host,
        max_body,
        user_agent,
        max_redirects: raw.max_redirects.unwrap_or(DEFAULT_MAX_REDIRECTS),
    })
}

fn max_body(file: &FileContext, size: Spanned<RawSize>) -> Result<u64, ConfigError> {
    let span = size.span();
    let bytes = match size.into_inner() {
        RawSize::Bytes(bytes) => bytes,
        RawSize::Text(text) => file.parsed(&Spanned::new(span.clone(), text), parse_size)?,
    };
    if bytes == 0 {
        return Err(file
            .source
            .error_at(span, "`max_body` must be more than 0 bytes"));
    }
    Ok(bytes)
}

/// A header value must not carry control characters; reqwest would reject it on every
/// fetch, so it is rejected here, once, with a position.
fn check_user_agent(agent: &str) -> Result<String, String> {
    if agent.trim().is_empty() {
        Err("`user_agent` must not be empty".to_owned())
    } else if agent.chars().any(char::is_control) {
        Err("`user_agent` must not contain control characters".to_owned())
    } else {
        Ok(agent.to_owned())
    }
}

fn api(file: &FileContext, raw: Option<RawApi>) -> Result<Option<ApiSettings>, ConfigError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let listen = match raw.listen {
        None => DEFAULT_API_LISTEN,
        Some(listen) => {
            let span = listen.span();
            match listen.into_inner() {
                RawListen::Enabled(false) => return Ok(None),
                RawListen::Enabled(true) => DEFAULT_API_LISTEN,
                RawListen::Address(address) => {
                    file.parsed(&Spanned::new(span, address), parse_listen_address)?
                }
            }
        }
    };
    // An empty token (say, `${HERALD_API_TOKEN}` set to "") would let anyone in while
    // the operator believes the API is protected.
    let token = match raw.token {
        Some(token) => Some(Secret::new(file.non_empty(&token, "`token`")?)),
        None => None,
    };
    Ok(Some(ApiSettings { listen, token }))
}

fn parse_listen_address(text: &str) -> Result<SocketAddr, String> {
    text.parse().map_err(|_| {
        format!("invalid listen address \"{text}\", expected an IP address and port like \"127.0.0.1:8645\", or false")
    })
}

fn alerts(file: &FileContext, raw: RawAlerts) -> Result<AlertSettings, ConfigError> {
    Ok(AlertSettings {
        max_age: file.duration(raw.max_age.as_ref(), DEFAULT_ALERT_MAX_AGE, MIN_WINDOW)?,
        give_up: file.duration(raw.give_up.as_ref(), DEFAULT_ALERT_GIVE_UP, MIN_WINDOW)?,
    })
}

fn stories(file: &FileContext, raw: RawStories) -> Result<StorySettings, ConfigError> {
    let window = file.duration(raw.window.as_ref(), DEFAULT_STORY_WINDOW, MIN_WINDOW)?;
    let threshold = match raw.threshold {
        Some(threshold) => {
            let value = *threshold.get_ref();
            if !(value > 0.0 && value <= 1.0) {
                return Err(file.fail(
                    &threshold,
                    format!("`threshold` must be more than 0 and at most 1, got {value}"),
                ));
            }
            value
        }
        None => DEFAULT_STORY_THRESHOLD,
    };
    Ok(StorySettings { window, threshold })
}

/// A rule before its sink references can be checked, which needs every file loaded.
struct PendingRule {
    settings: RuleSettings,
    name_location: Location,
    sink_references: Vec<Location>,
}

/// Feeds, sinks and rules gathered across the main file and its includes.
struct Collected {
    feeds: Vec<FeedSettings>,
    feed_locations: HashMap<String, Location>,
    sinks: BTreeMap<String, SinkSettings>,
    rules: BTreeMap<String, PendingRule>,
    /// Files on the current include chain, to detect cycles.
    loading: Vec<PathBuf>,
    /// Files already read, so a file matched by two patterns counts once.
    loaded: HashSet<PathBuf>,
}

impl Collected {
    fn starting_at(main: &Path) -> Self {
        let main = canonical_or_given(main);
        Self {
            feeds: Vec::new(),
            feed_locations: HashMap::new(),
            sinks: BTreeMap::new(),
            rules: BTreeMap::new(),
            loading: vec![main.clone()],
            loaded: HashSet::from([main]),
        }
    }

    fn add(&mut self, file: &FileContext, fragment: RawFragment) -> Result<(), ConfigError> {
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
            url: file.parsed(&raw.url, parse_feed_url)?,
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
                format!("duplicate feed url {}, first defined at {first}", feed.url),
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
        let sink = SinkSettings {
            kind: sink_kind(file, name.get_ref(), raw)?,
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
        let sinks = raw
            .sinks
            .iter()
            .map(|sink| file.text(sink))
            .collect::<Result<Vec<_>, _>>()?;
        let rule = PendingRule {
            settings: RuleSettings {
                query: file.non_empty(&raw.query, "a rule query")?,
                query_location: file.locate(&raw.query),
                sinks,
                tags: file.tags(raw.tags)?,
            },
            name_location: file.locate(name),
            sink_references: raw.sinks.iter().map(|sink| file.locate(sink)).collect(),
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
    fn resolve_rules(&mut self) -> Result<BTreeMap<String, RuleSettings>, ConfigError> {
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
                "unknown sink type `{other}`, expected one of `slack`, `discord`, `webhook`, `log`"
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
