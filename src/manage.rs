//! Changing the configuration from the command line: `herald feeds add`, `remove`,
//! `disable`, `enable`, `import`, `export`, and trying a sink with `herald sinks
//! test`. Feeds are written to the managed file ([`config::managed`]) only; each
//! change is checked by loading the whole configuration again, and undone if that
//! fails. A running `herald run` is then told to reload ([`notify_daemon`]).

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, anyhow};
use url::Url;

use crate::app;
use crate::cli::Failure;
use crate::config::managed::{ManagedFile, NewFeed};
use crate::config::{self, FeedSettings, Settings};
use crate::discover::{self, Alternate};
use crate::domain::alert::{AlertMessage, FiredRule};
use crate::domain::article::{Article, ArticleSource};
use crate::fetch::{FetchOutcome, Fetcher, Validators};
use crate::opml;
use crate::parse::{self, ParseFeedError};
use crate::sinks::{Sender, Verdict};
use crate::store::Store;

/// What `herald feeds add` was asked.
#[derive(Debug, Clone)]
pub struct AddRequest {
    pub url: String,
    pub name: Option<String>,
    pub tags: Vec<String>,
    /// As typed (`30m`): written to the file as is, checked by loading it.
    pub interval: Option<String>,
    /// Take the first feed a page names instead of asking.
    pub yes: bool,
}

/// A feed found and read: where, and its own title.
struct Found {
    url: Url,
    title: Option<String>,
    entries: usize,
}

pub async fn add(
    settings: &Settings,
    request: AddRequest,
    pid_file: Option<&Path>,
) -> Result<ExitCode, Failure> {
    let redactor = &settings.fetch.redactor;
    let given = config::feed_url(&request.url, redactor).map_err(config_error)?;
    if let Some(name) = &request.name
        && name.trim().is_empty()
    {
        return Err(config_error("--name must not be empty"));
    }
    if request.tags.iter().any(|tag| tag.trim().is_empty()) {
        return Err(config_error("--tag must not be empty"));
    }
    let fetcher = Fetcher::new(app::fetch_settings(settings)).context("HTTP client")?;
    let found = find_feed(&fetcher, settings, &given, request.yes).await?;
    if let Some(existing) = configured(settings, &found.url) {
        return Err(config_error(format!(
            "{} is already configured at {}",
            redactor.show(found.url.as_str()),
            existing.location
        )));
    }
    let mut file = ManagedFile::open(&settings.path).map_err(config_error)?;
    // A stale entry would switch the feed off as soon as it is added.
    file.set_disabled(&found.url, false);
    file.add_feed(&NewFeed {
        url: found.url.clone(),
        name: request.name,
        tags: request.tags,
        interval: request.interval,
    });
    save_checked(&file, &settings.path)?;
    let title = found
        .title
        .map(|title| format!(" \"{title}\""))
        .unwrap_or_default();
    println!(
        "added{title} {} ({} items now) to {}",
        redactor.show(found.url.as_str()),
        found.entries,
        file.path().display()
    );
    notify_daemon(pid_file);
    Ok(ExitCode::SUCCESS)
}

/// The feed at `url`, or, when `url` is a web page, the one of its feeds the
/// user picks.
async fn find_feed(
    fetcher: &Fetcher,
    settings: &Settings,
    url: &Url,
    yes: bool,
) -> Result<Found, Failure> {
    let redactor = &settings.fetch.redactor;
    let shown = redactor.show(url.as_str()).to_string();
    let document = fetch(fetcher, url, url)
        .await
        .map_err(|error| anyhow!("{shown}: {error}"))?;
    let error = match parse::parse_feed(&document.body, document.content_type.as_deref()) {
        Ok(feed) => {
            return Ok(Found {
                url: url.clone(),
                title: feed.title,
                entries: feed.entries.len(),
            });
        }
        Err(error) => error,
    };
    let is_page = matches!(&error, ParseFeedError::NotAFeed { found } if found.contains("HTML"))
        || document
            .content_type
            .as_deref()
            .is_some_and(|mime| mime.to_ascii_lowercase().contains("html"));
    if !is_page {
        return Err(Failure::Runtime(anyhow!("{shown}: {error}")));
    }
    let alternates = discover::alternates(&document.body, &document.final_url);
    let chosen = choose(&alternates, &shown, yes, redactor)?;
    let chosen_shown = redactor.show(chosen.url.as_str()).to_string();
    eprintln!(
        "{shown} is a web page; its {} feed: {chosen_shown}",
        chosen.kind.as_str()
    );
    // The page, not the operator, named this address: the private-network policy
    // treats it as a redirect from the page.
    let document = fetch(fetcher, url, &chosen.url)
        .await
        .map_err(|error| anyhow!("{chosen_shown}: {error}"))?;
    let feed = parse::parse_feed(&document.body, document.content_type.as_deref())
        .map_err(|error| anyhow!("{chosen_shown}: {error}"))?;
    Ok(Found {
        url: chosen.url.clone(),
        title: feed.title.or_else(|| chosen.title.clone()),
        entries: feed.entries.len(),
    })
}

struct Document {
    body: bytes::Bytes,
    content_type: Option<String>,
    final_url: Url,
}

async fn fetch(fetcher: &Fetcher, configured: &Url, url: &Url) -> anyhow::Result<Document> {
    match fetcher
        .fetch_moved(configured, url, &Validators::default())
        .await?
    {
        FetchOutcome::Fetched(document) => Ok(Document {
            body: document.body,
            content_type: document.content_type,
            final_url: document.final_url,
        }),
        FetchOutcome::NotModified => Err(anyhow!("HTTP 304 Not Modified to a plain request")),
    }
}

/// One feed of those a page names: the only one, the first with `--yes`, the one
/// picked at a numbered prompt on a terminal.
fn choose<'a>(
    alternates: &'a [Alternate],
    page: &str,
    yes: bool,
    redactor: &config::Redactor,
) -> Result<&'a Alternate, Failure> {
    let listing = || {
        alternates
            .iter()
            .enumerate()
            .map(|(index, alternate)| {
                format!(
                    "  {}) {} ({}{})",
                    index + 1,
                    redactor.show(alternate.url.as_str()),
                    alternate.kind.as_str(),
                    alternate
                        .title
                        .as_deref()
                        .map(|title| format!(", \"{title}\""))
                        .unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    match alternates {
        [] => Err(Failure::Runtime(anyhow!(
            "{page} is a web page that names no feed (no <link rel=\"alternate\"> of type RSS, Atom or JSON Feed)"
        ))),
        [only] => Ok(only),
        [first, ..] if yes => Ok(first),
        _ if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() => {
            eprintln!("{page} names {} feeds:\n{}", alternates.len(), listing());
            loop {
                eprint!("add which one? [1-{}, empty to cancel] ", alternates.len());
                let _ = std::io::stderr().flush();
                let mut answer = String::new();
                let read = std::io::stdin()
                    .lock()
                    .read_line(&mut answer)
                    .context("reading the answer")?;
                let answer = answer.trim();
                if read == 0 || answer.is_empty() {
                    return Err(Failure::Runtime(anyhow!("cancelled: no feed added")));
                }
                match answer.parse::<usize>() {
                    Ok(number) if (1..=alternates.len()).contains(&number) => {
                        return Ok(&alternates[number - 1]);
                    }
                    _ => eprintln!("{answer:?} is not one of the numbers shown"),
                }
            }
        }
        _ => Err(Failure::Config(anyhow!(
            "{page} names {} feeds; add one of them by its URL, or pass --yes to take the first:\n{}",
            alternates.len(),
            listing()
        ))),
    }
}

/// Where the feed with this URL is configured, enabled or not.
fn configured<'a>(settings: &'a Settings, url: &Url) -> Option<&'a FeedSettings> {
    settings
        .feeds
        .iter()
        .chain(&settings.disabled_feeds)
        .find(|feed| feed.url == *url)
}

/// Saves the managed file and loads the whole configuration again; when that
/// fails, the file is put back as it was and the error is the configuration's.
fn save_checked(file: &ManagedFile, main: &Path) -> Result<(), Failure> {
    file.save()
        .map_err(|message| Failure::Runtime(anyhow!(message)))?;
    if let Err(error) = config::load(main) {
        let undone = match file.restore() {
            Ok(()) => "; the file is unchanged".to_owned(),
            Err(message) => format!("; and it could not be put back: {message}"),
        };
        return Err(Failure::Config(anyhow!(
            "the change would make the configuration invalid: {error}{undone}"
        )));
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Remove,
    Disable,
    Enable,
}

pub fn change(
    settings: &Settings,
    url: &str,
    change: Change,
    pid_file: Option<&Path>,
) -> Result<ExitCode, Failure> {
    let redactor = &settings.fetch.redactor;
    let url = config::feed_url(url, redactor).map_err(config_error)?;
    let shown = redactor.show(url.as_str()).to_string();
    let mut file = ManagedFile::open(&settings.path).map_err(config_error)?;
    let managed = file.path().to_path_buf();
    let message = match change {
        Change::Remove => {
            if !file.remove_feed(&url) {
                // A stale entry: the feed is gone from every file.
                if configured(settings, &url).is_none() && file.set_disabled(&url, false) {
                    save_checked(&file, &settings.path)?;
                    println!(
                        "{shown} taken off the disabled list in {}",
                        managed.display()
                    );
                    notify_daemon(pid_file);
                    return Ok(ExitCode::SUCCESS);
                }
                return Err(Failure::Config(match configured(settings, &url) {
                    Some(feed) => anyhow!(
                        "{shown} is written in {}, which herald does not edit: remove it there, or `herald feeds disable {shown}`",
                        feed.location
                    ),
                    None => anyhow!("no configured feed has the URL {shown}"),
                }));
            }
            format!("removed {shown} from {}", managed.display())
        }
        Change::Disable => {
            if configured(settings, &url).is_none() {
                return Err(config_error(format!(
                    "no configured feed has the URL {shown}"
                )));
            }
            if !file.set_disabled(&url, true) {
                println!("{shown} is already disabled");
                return Ok(ExitCode::SUCCESS);
            }
            format!(
                "disabled {shown} (listed in {}); its articles are kept",
                managed.display()
            )
        }
        Change::Enable => {
            if !file.set_disabled(&url, false) {
                if configured(settings, &url).is_none() {
                    return Err(config_error(format!(
                        "no configured feed has the URL {shown}"
                    )));
                }
                println!("{shown} is not disabled");
                return Ok(ExitCode::SUCCESS);
            }
            format!("enabled {shown}")
        }
    };
    save_checked(&file, &settings.path)?;
    println!("{message}");
    notify_daemon(pid_file);
    Ok(ExitCode::SUCCESS)
}

pub fn import(
    settings: &Settings,
    path: &Path,
    pid_file: Option<&Path>,
) -> Result<ExitCode, Failure> {
    let redactor = &settings.fetch.redactor;
    let document = std::fs::read(path)
        .map_err(|error| config_error(format!("cannot read {}: {error}", path.display())))?;
    let listed = opml::read(&document)
        .map_err(|error| config_error(format!("{}: {error}", path.display())))?;
    let mut file = ManagedFile::open(&settings.path).map_err(config_error)?;
    let mut added: Vec<Url> = Vec::new();
    let mut skipped: Vec<String> = Vec::new();
    for feed in listed {
        let url = match config::feed_url(&feed.url, redactor) {
            Ok(url) => url,
            Err(error) => {
                skipped.push(error);
                continue;
            }
        };
        let shown = redactor.show(url.as_str()).to_string();
        if let Some(existing) = configured(settings, &url) {
            skipped.push(format!(
                "{shown}: already configured at {}",
                existing.location
            ));
            continue;
        }
        if added.contains(&url) {
            skipped.push(format!("{shown}: listed twice"));
            continue;
        }
        file.set_disabled(&url, false);
        file.add_feed(&NewFeed {
            url: url.clone(),
            name: feed.title.filter(|title| *title != feed.url),
            tags: feed.tags,
            interval: None,
        });
        added.push(url);
    }
    if !added.is_empty() {
        save_checked(&file, &settings.path)?;
    }
    for url in &added {
        println!("added {}", redactor.show(url.as_str()));
    }
    for reason in &skipped {
        println!("skipped {reason}");
    }
    println!(
        "{} feeds imported into {}, {} skipped",
        added.len(),
        file.path().display(),
        skipped.len()
    );
    if !added.is_empty() {
        notify_daemon(pid_file);
    }
    Ok(ExitCode::SUCCESS)
}

/// OPML 2.0 of every configured feed, disabled ones included. Feeds without a
/// configured name take the title herald last read from them, when the
/// database can say.
pub async fn export(settings: &Settings) -> Result<ExitCode, Failure> {
    let mut titles = std::collections::HashMap::new();
    let database = &settings.database;
    // Titles are a nicety: a database that does not answer at once is not waited for.
    let stored = async {
        let store = Store::connect(database.url.expose()).await.ok()?;
        store.feeds().await.ok()
    };
    if let Ok(Some(records)) = tokio::time::timeout(std::time::Duration::from_secs(3), stored).await
    {
        for record in records {
            if let Some(title) = record.title {
                titles.insert(record.url, title);
            }
        }
    }
    let feeds: Vec<opml::ExportFeed> = settings
        .feeds
        .iter()
        .chain(&settings.disabled_feeds)
        .map(|feed| opml::ExportFeed {
            url: feed.url.to_string(),
            title: feed
                .name
                .clone()
                .or_else(|| titles.get(feed.url.as_str()).cloned()),
            tags: feed.tags.clone(),
        })
        .collect();
    let now = chrono::Utc::now().to_rfc2822();
    let text = opml::write("herald feeds", &now, &feeds);
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .context("stdout")?;
    Ok(ExitCode::SUCCESS)
}

/// Sends a sample alert, clearly marked, through one sink and says how it went.
pub async fn test_sink(settings: &Settings, name: &str) -> Result<ExitCode, Failure> {
    let Some(configured) = settings.sinks.get(name) else {
        let names: Vec<&str> = settings.sinks.keys().map(String::as_str).collect();
        return Err(config_error(if names.is_empty() {
            format!(
                "no sink named {name:?}: {} defines none",
                settings.path.display()
            )
        } else {
            format!(
                "no sink named {name:?}, expected one of {}",
                names.join(", ")
            )
        }));
    };
    let sink =
        app::sink_of(name, configured).map_err(|error| Failure::Config(anyhow::anyhow!(error)))?;
    let sender = Sender::new(
        crate::sinks::DEFAULT_TIMEOUT,
        &settings.fetch.user_agent,
        settings.fetch.private_networks,
    )
    .context("HTTP client for alerts")?;
    let outcome = sender.send(&sink, &sample_alert(name)).await;
    let target = match &configured.kind {
        config::SinkKind::Slack { url }
        | config::SinkKind::Discord { url }
        | config::SinkKind::Webhook { url, .. }
        | config::SinkKind::Email { url, .. }
        | config::SinkKind::Teams { url }
        | config::SinkKind::Ntfy { url, .. } => {
            format!("{} {url}", configured.kind.type_name())
        }
        config::SinkKind::SlackApp { channel, .. } => format!("slack_app {channel}"),
        config::SinkKind::Telegram { chat_id, .. } => format!("telegram chat {chat_id}"),
        config::SinkKind::Log => "log".to_owned(),
    };
    let latency = format!("{} ms", outcome.latency.as_millis());
    let status = outcome
        .http_status
        .map(|code| format!("HTTP {code}, "))
        .unwrap_or_default();
    if outcome.verdict == Verdict::Delivered {
        println!("sink {name} ({target}): test alert delivered: {status}{latency}");
        return Ok(ExitCode::SUCCESS);
    }
    let error = outcome.error.unwrap_or_else(|| "not delivered".to_owned());
    let excerpt = outcome
        .response_excerpt
        .map(|text| format!("; the receiver said: {}", text.replace('\n', " ")))
        .unwrap_or_default();
    Err(Failure::Runtime(anyhow!(
        "sink {name} ({target}): test alert not delivered after {latency}: {error}{excerpt}"
    )))
}

/// Plainly a test in every field a receiver shows, so nobody acts on it.
fn sample_alert(sink: &str) -> AlertMessage {
    let now = chrono::Utc::now();
    AlertMessage {
        delivery_id: format!("herald-test-{:016x}", rand::random::<u64>()),
        alert_id: 0,
        rule: FiredRule {
            name: "herald-sinks-test".to_owned(),
            query: "(test alert: no rule fired)".to_owned(),
        },
        article: Article {
            id: 0,
            url: None,
            canonical_url: None,
            title: format!("[TEST] herald test alert for sink {sink}: not a news article"),
            summary: Some(
                "Sent by `herald sinks test` to check that this sink receives herald's alerts. \
                 No rule fired; nothing happened."
                    .to_owned(),
            ),
            author: None,
            language: None,
            published_at: now,
            updated_at: None,
            first_seen_at: now,
            feeds: vec![ArticleSource {
                url: "https://herald.invalid/sinks-test".to_owned(),
                name: Some("herald sinks test".to_owned()),
            }],
            story_id: None,
        },
        matched: Vec::new(),
        also_reported_by: Vec::new(),
    }
}

/// How `herald feeds` commands tell a running `herald run` to read its
/// configuration again: SIGHUP to the process the PID file names, else a hint.
pub fn notify_daemon(pid_file: Option<&Path>) {
    const HINT: &str = "reload herald to apply it: systemctl reload herald (or kill -HUP its process; \
                        with --pid-file herald does it itself)";
    let Some(path) = pid_file else {
        println!("{HINT}");
        return;
    };
    match signal_daemon(path) {
        Ok(pid) => println!("herald (pid {pid}) is reloading its configuration"),
        Err(why) => println!("{why}; {HINT}"),
    }
}

fn signal_daemon(path: &Path) -> Result<i32, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!("no herald running ({} is absent)", path.display()));
        }
        Err(error) => return Err(format!("cannot read {}: {error}", path.display())),
    };
    let pid: i32 = text
        .trim()
        .parse()
        .ok()
        .filter(|pid| *pid > 0)
        .ok_or_else(|| format!("{} holds no process id", path.display()))?;
    // A PID file left by a crash may name a process that is not herald now.
    let command = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    if command.trim() != "herald" {
        return Err(format!(
            "{} names process {pid}, which is not a running herald",
            path.display()
        ));
    }
    // SAFETY: kill(2) with a positive pid and a valid signal number touches no memory.
    let status = unsafe { libc::kill(pid, libc::SIGHUP) };
    if status != 0 {
        return Err(format!(
            "cannot signal herald (pid {pid}): {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(pid)
}

/// `herald run --pid-file`: the process id, written when the daemon starts and
/// removed when it stops.
pub struct PidFile {
    path: PathBuf,
}

impl PidFile {
    pub fn write(path: &Path) -> anyhow::Result<PidFile> {
        let mut temporary = path.as_os_str().to_owned();
        temporary.push(".tmp");
        let temporary = PathBuf::from(temporary);
        std::fs::write(&temporary, format!("{}\n", std::process::id()))
            .and_then(|()| std::fs::rename(&temporary, path))
            .with_context(|| format!("cannot write the PID file {}", path.display()))?;
        Ok(PidFile {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn config_error(message: impl std::fmt::Display) -> Failure {
    Failure::Config(anyhow!("{message}"))
}
