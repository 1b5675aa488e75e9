//! Turns the main file into [`Settings`]: the global sections with their defaults and
//! checks here, feeds, sinks, rules and includes in `collect`.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use toml::Spanned;

use super::collect::Collected;
use super::location::SourceFile;
use super::raw::{
    RawAlerts, RawApi, RawDatabase, RawFetch, RawListen, RawMainFile, RawRetention, RawSize,
    RawStories, Text,
};
use super::values::{
    expand_vars, parse_duration, parse_private_networks, parse_secret_param, parse_size,
};
use super::*;

/// Shortest feed interval: herald honours any interval down to one second.
pub(super) const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// Shortest timeout: zero would fail every fetch, so it can only be a mistake.
const MIN_TIMEOUT: Duration = Duration::from_millis(1);
/// Shortest alert and story window: zero would silently switch the feature off.
const MIN_WINDOW: Duration = Duration::from_secs(1);

pub(super) type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

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
    let log = LogSettings {
        format: match global.log.format {
            Some(format) => file.parsed(&format, LogFormat::parse)?,
            None => LogFormat::default(),
        },
    };
    let retention = retention(&file, global.retention, &alerts, &stories)?;

    let mut collected = Collected::starting_at(path, fetch.redactor.clone());
    collected.add(&file, fragment)?;
    collected.add_managed(&file)?;
    let rules = collected.resolve_rules()?;
    let (feeds, disabled) = collected.split_disabled();
    Ok(Settings {
        path: path.to_path_buf(),
        database,
        fetch,
        api,
        alerts,
        stories,
        log,
        retention,
        feeds,
        disabled_feeds: disabled,
        disabled_urls: collected.disabled.into_iter().map(|(url, _)| url).collect(),
        sinks: collected.sinks,
        rules,
    })
}

/// One file being validated, with the environment `${VAR}` reads from.
pub(super) struct FileContext<'a> {
    pub(super) source: &'a SourceFile,
    pub(super) env: Env<'a>,
}

impl FileContext<'_> {
    pub(super) fn fail(
        &self,
        value: &Spanned<impl Sized>,
        message: impl Into<String>,
    ) -> ConfigError {
        self.source.error_at(value.span(), message)
    }

    pub(super) fn locate(&self, value: &Spanned<impl Sized>) -> Location {
        self.source.locate(&value.span())
    }

    /// A string value with `${VAR}` substituted.
    pub(super) fn text(&self, value: &Text) -> Result<String, ConfigError> {
        expand_vars(value.get_ref(), self.env).map_err(|message| self.fail(value, message))
    }

    /// A substituted string, parsed; a parse error is placed at the value.
    pub(super) fn parsed<T>(
        &self,
        value: &Text,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        let text = self.text(value)?;
        parse(&text).map_err(|message| self.fail(value, message))
    }

    pub(super) fn non_empty(&self, value: &Text, what: &str) -> Result<String, ConfigError> {
        self.parsed(value, |text| {
            if text.trim().is_empty() {
                Err(format!("{what} must not be empty"))
            } else {
                Ok(text.to_owned())
            }
        })
    }

    pub(super) fn duration(
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

    pub(super) fn at_least_one(
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

    pub(super) fn tags(&self, tags: Option<Vec<Text>>) -> Result<Vec<String>, ConfigError> {
        tags.unwrap_or_default()
            .iter()
            .map(|tag| self.non_empty(tag, "a tag"))
            .collect()
    }

    pub(super) fn forbid(&self, value: Option<&Text>, message: &str) -> Result<(), ConfigError> {
        match value {
            Some(value) => Err(self.fail(value, message)),
            None => Ok(()),
        }
    }
}

fn database(file: &FileContext, raw: RawDatabase) -> Result<DatabaseSettings, ConfigError> {
    let busy_timeout =
        file.duration(raw.busy_timeout.as_ref(), DEFAULT_BUSY_TIMEOUT, MIN_TIMEOUT)?;
    let connect_timeout = file.duration(
        raw.connect_timeout.as_ref(),
        DEFAULT_CONNECT_TIMEOUT,
        MIN_TIMEOUT,
    )?;
    // The override wins outright: a file value it replaces is not even substituted, so
    // an unset `${VAR}` there cannot fail a deployment that sets the override.
    if let Some(url) = (file.env)(ENV_DATABASE_URL).filter(|url| !url.is_empty()) {
        let url = DatabaseUrl::parse(&url).map_err(|message| ConfigError::Environment {
            var: ENV_DATABASE_URL,
            message,
        })?;
        return Ok(DatabaseSettings {
            url,
            busy_timeout,
            connect_timeout,
        });
    }
    let url = match raw.url {
        Some(url) => file.parsed(&url, DatabaseUrl::parse)?,
        None => DatabaseUrl::default(),
    };
    Ok(DatabaseSettings {
        url,
        busy_timeout,
        connect_timeout,
    })
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
        private_networks: match raw.private_networks {
            Some(value) => file.parsed(&value, parse_private_networks)?,
            None => PrivateNetworks::default(),
        },
        redactor: match raw.secret_params {
            Some(names) => Redactor::new(
                names
                    .iter()
                    .map(|name| file.parsed(name, parse_secret_param))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            None => Redactor::default(),
        },
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
    let max_connections = match raw.max_connections {
        Some(value) if !(1..=MAX_API_CONNECTIONS).contains(value.get_ref()) => {
            return Err(file.fail(
                &value,
                format!(
                    "`max_connections` must be from 1 to {MAX_API_CONNECTIONS}, got {}",
                    value.get_ref()
                ),
            ));
        }
        Some(value) => value.into_inner(),
        None => DEFAULT_API_MAX_CONNECTIONS,
    };
    let limits = ApiLimits {
        max_connections,
        header_timeout: file.duration(
            raw.header_timeout.as_ref(),
            DEFAULT_API_HEADER_TIMEOUT,
            MIN_TIMEOUT,
        )?,
        request_timeout: file.duration(
            raw.request_timeout.as_ref(),
            DEFAULT_API_REQUEST_TIMEOUT,
            MIN_TIMEOUT,
        )?,
        idle_timeout: file.duration(
            raw.idle_timeout.as_ref(),
            DEFAULT_API_IDLE_TIMEOUT,
            MIN_TIMEOUT,
        )?,
    };
    Ok(Some(ApiSettings {
        listen,
        token,
        limits,
    }))
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
        lease: file.duration(raw.lease.as_ref(), DEFAULT_ALERT_LEASE, MIN_ALERT_LEASE)?,
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

/// `"forever"`, or a duration: how long rows are kept.
fn kept_for(
    file: &FileContext,
    value: Option<&Text>,
    default: Option<Duration>,
) -> Result<Option<Duration>, ConfigError> {
    let Some(value) = value else {
        return Ok(default);
    };
    file.parsed(value, |text| {
        if text.trim() == "forever" {
            return Ok(None);
        }
        parse_duration(text, MIN_WINDOW)
            .map(Some)
            .map_err(|message| format!("{message}, or \"forever\""))
    })
}

fn retention(
    file: &FileContext,
    raw: RawRetention,
    alerts: &AlertSettings,
    stories: &StorySettings,
) -> Result<RetentionSettings, ConfigError> {
    let articles = kept_for(file, raw.articles.as_ref(), None)?;
    // A reprint that may still alert (published within `alerts.max_age`) looks
    // for its story `stories.window` further back: an article removed sooner
    // would let the reprint start a story of its own and fire its rules again.
    let needed = alerts.max_age.saturating_add(stories.window);
    if let (Some(kept), Some(value)) = (articles, raw.articles.as_ref())
        && kept < needed
    {
        return Err(file.fail(
            value,
            format!(
                "`articles` must be at least alerts.max_age + stories.window ({}), \
                 or a late reprint could alert again",
                humantime::format_duration(needed)
            ),
        ));
    }
    let deliveries = kept_for(
        file,
        raw.deliveries.as_ref(),
        Some(DEFAULT_DELIVERY_RETENTION),
    )?;
    Ok(RetentionSettings {
        articles,
        deliveries,
    })
}
