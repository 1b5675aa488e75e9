//! Commands: clap definitions, calls into the library, human and `--json`
//! output. Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::{CommandFactory, Parser, Subcommand};
use serde::Serialize;

use crate::app::{self, App};
use crate::config::{self, Settings};
use crate::daemon;
use crate::domain::alert::parse_held_id;
use crate::domain::article::Article;
use crate::domain::delivery::Deferral;
use crate::domain::text::for_terminal as shown;
use crate::ingest::{PollReport, PollStatus};
use crate::manage;
use crate::rules::{Rule, RuleQuery};
use crate::search::{self, Scan};
use crate::store::Store;
use crate::telemetry::{self, LogFormat};
use crate::views::{self, AlertFilter, FeedView, OutboxEntry};

#[derive(Debug, Parser)]
#[command(
    name = "herald",
    version,
    about = "News-feed ingestion daemon with alerting"
)]
pub struct Cli {
    /// Configuration file [default: $HERALD_CONFIG, ./herald.toml, /etc/herald/herald.toml]
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Log format on stderr: text or json [default: $HERALD_LOG_FORMAT, else [log] format, else text]
    #[arg(
        long,
        global = true,
        value_name = "FORMAT",
        value_parser = LogFormat::parse,
        env = config::ENV_LOG_FORMAT,
        hide_env = true
    )]
    pub log_format: Option<LogFormat>,
    /// PID file: `herald run` writes its process id there; `herald feeds add`,
    /// `remove`, `disable`, `enable` and `import` send that process SIGHUP to reload
    #[arg(long, global = true, value_name = "PATH", env = "HERALD_PID_FILE")]
    pub pid_file: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: poll every feed at its interval until SIGTERM or SIGINT
    Run,
    /// Fetch every configured feed once (or one), store, print a summary; exit 1 if any failed
    Poll {
        /// Only this feed (its configured URL)
        #[arg(long, value_name = "URL")]
        feed: Option<String>,
        /// One JSON object per feed per line
        #[arg(long)]
        json: bool,
    },
    /// Validate the configuration and every rule, and connect to the database; exit 2 on any error
    Check {
        /// Skip the database: check only the files
        #[arg(long)]
        offline: bool,
    },
    /// Apply database migrations and exit
    Migrate,
    /// Feed health: last fetch, status, error, articles, next fetch; or add, remove,
    /// disable, enable, import and export feeds
    Feeds {
        #[command(subcommand)]
        command: Option<FeedsCommand>,
        /// One JSON object per line instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Alert sinks: each one's health (ok, or broken with why) and queue; or test or enable one
    Sinks {
        #[command(subcommand)]
        command: Option<SinksCommand>,
        /// One JSON object per line instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Stored articles matching a rule query, newest first
    Search {
        /// A query in the rule language, e.g. '"North Korea" Iran'
        query: String,
        /// How far back to look (by publication time)
        #[arg(long, default_value = "7d", value_parser = parse_duration)]
        since: std::time::Duration,
        /// At most this many articles
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// One JSON object per line instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Recent stories (an article and its reprints) with the outlets that carried them
    Stories {
        /// Stories first seen this far back
        #[arg(long, default_value = "1d", value_parser = parse_duration)]
        since: std::time::Duration,
        /// Only stories carried by at least this many feeds (2: reprinted stories)
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i64).range(1..))]
        min_outlets: i64,
        /// At most this many, newest first
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// Why story ID holds its articles: for each, the earlier one it joined, with the score and evidence
        #[arg(long, value_name = "ID")]
        explain: Option<i64>,
        /// With --explain: also the nearest articles of other stories, and why each stayed out
        #[arg(long, requires = "explain")]
        candidates: bool,
        /// One JSON object per line instead of a table
        #[arg(long)]
        json: bool,
    },
    /// The alert outbox: deliveries and their state, and rule hits held back (status held, with the reason)
    Alerts {
        #[command(subcommand)]
        command: Option<AlertsCommand>,
        /// Only deliveries in this state, or only the hits held back (held)
        #[arg(long, value_parser = ["pending", "delivered", "failed", "dead", "held"])]
        status: Option<String>,
        /// At most this many, newest first
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// One JSON object per line instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Remove what [retention] no longer keeps (old articles, finished deliveries, story fingerprints) and say what went, per table
    Prune {
        /// Count what would be removed; remove nothing
        #[arg(long)]
        dry_run: bool,
        /// One JSON object instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Watch rules
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// Print a shell completion script, e.g. into /usr/share/bash-completion/completions/herald
    Completions {
        /// The shell to complete for
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), e.g. `herald man | man -l -`
    Man,
}

#[derive(Debug, Subcommand)]
pub enum FeedsCommand {
    /// Add a feed to feeds.d/managed.toml; a web page's URL finds the feeds it links to
    Add {
        /// A feed's URL, or a web page's
        url: String,
        /// The feed's name in herald's output and alerts (else the feed's own title)
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// A tag for rules' `tags` (repeat for several)
        #[arg(long = "tag", value_name = "TAG")]
        tags: Vec<String>,
        /// How often to poll it, e.g. 30m (else `[fetch] interval`)
        #[arg(long, value_name = "DURATION", value_parser = interval_text)]
        interval: Option<String>,
        /// When a page names several feeds, take the first instead of asking
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Remove a feed that `herald feeds add` or `import` added
    Remove {
        /// The feed's URL, as `herald feeds` shows it
        url: String,
    },
    /// Stop polling a feed, wherever it is configured; its articles are kept
    Disable {
        /// The feed's URL, as `herald feeds` shows it
        url: String,
    },
    /// Poll a disabled feed again
    Enable {
        /// The feed's URL, as `herald feeds` shows it
        url: String,
    },
    /// Add every feed of an OPML file (from Miniflux, FreshRSS, …) to feeds.d/managed.toml
    Import {
        /// The OPML file
        file: PathBuf,
    },
    /// Print every configured feed as OPML 2.0, for other feed readers to import
    Export,
}

#[derive(Debug, Subcommand)]
pub enum SinksCommand {
    /// Send a sample alert, clearly marked as a test, through a sink; exit 1 if it failed
    Test {
        /// The sink's name, as in `[sinks.NAME]`
        name: String,
    },
    /// Clear a broken sink's mark: its waiting alerts are sent again, in order
    Enable {
        /// The sink's name, as in `[sinks.NAME]`
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// Queue a failed or dead delivery again (or every dead one)
    Retry {
        /// The delivery's id, as `herald alerts` shows it
        #[arg(required_unless_present = "dead", conflicts_with = "dead")]
        id: Option<i64>,
        /// Every dead delivery instead of one
        #[arg(long)]
        dead: bool,
    },
    /// Deliver a held-back hit after all: an alert to each of its rule's sinks, sent now
    Send {
        /// The held hit's id, STORY:RULE, as `herald alerts --status held` shows it
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Backtest: which stored articles a rule would have fired on
    Test {
        /// A query to try (or use --rule for a configured rule)
        #[arg(required_unless_present = "rule", conflicts_with = "rule")]
        query: Option<String>,
        /// A configured rule, with its tag scope
        #[arg(long, value_name = "NAME")]
        rule: Option<String>,
        /// How far back to look (by publication time)
        #[arg(long, default_value = "30d", value_parser = parse_duration)]
        since: std::time::Duration,
        /// One JSON object per line instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Hold back a rule's alerts for a while (every instance on the database)
    Mute {
        /// A configured rule
        name: String,
        /// How long, e.g. 2h or 30m
        #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration)]
        duration: std::time::Duration,
    },
    /// End a rule's mute
    Unmute {
        /// A configured rule
        name: String,
    },
    /// The rules muted now, and until when
    Muted {
        /// One JSON object per line instead of a table
        #[arg(long)]
        json: bool,
    },
}

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e} (expected e.g. 90s, 15m, 7d)"))
}

/// A feed interval as the config file will hold it: checked, kept as typed.
fn interval_text(text: &str) -> Result<String, String> {
    if parse_duration(text)? < std::time::Duration::from_secs(1) {
        return Err("an interval must be at least 1s".to_owned());
    }
    Ok(text.to_owned())
}

/// A command's failure, and the exit code it maps to.
#[derive(Debug)]
pub enum Failure {
    /// Bad usage or configuration: exit 2.
    Config(anyhow::Error),
    /// Anything else: exit 1.
    Runtime(anyhow::Error),
}

impl Failure {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Failure::Config(_) => ExitCode::from(2),
            Failure::Runtime(_) => ExitCode::from(1),
        }
    }

    pub fn error(&self) -> &anyhow::Error {
        match self {
            Failure::Config(e) | Failure::Runtime(e) => e,
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Failure {
        Failure::Runtime(error)
    }
}

/// An error and its causes on one line, each said once: sqlx's errors (and
/// those wrapping them) repeat their cause in their own text, which printed
/// the same database message three times.
pub fn describe(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let cause = cause.to_string();
        if text.contains(&cause) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause);
    }
    text
}

fn load_settings(cli: &Cli) -> Result<Settings, Failure> {
    let path =
        config::resolve_path(cli.config.as_deref()).map_err(|e| Failure::Config(e.into()))?;
    config::load(&path).map_err(|e| Failure::Config(e.into()))
}

/// Runs the command; `Ok` carries the exit code of a command that ran to completion.
pub async fn run(cli: Cli) -> Result<ExitCode, Failure> {
    // Generated from the definitions alone: packagers run these with no configuration.
    match cli.command {
        Command::Completions { shell } => {
            return print_generated(&crate::manual::completions(shell, Cli::command()));
        }
        Command::Man => {
            let page = crate::manual::man_page(Cli::command()).context("rendering the man page")?;
            return print_generated(&page);
        }
        _ => {}
    }
    let settings = match load_settings(&cli) {
        Ok(settings) => settings,
        Err(failure) => {
            telemetry::init(cli.log_format.unwrap_or_default());
            return Err(failure);
        }
    };
    // The flag (or its variable) wins over the file; a reload keeps the format.
    telemetry::init(cli.log_format.unwrap_or(settings.log.format));
    if !matches!(cli.command, Command::Check { .. }) {
        ensure_rules_parse(&settings)?;
    }
    let pid_file = cli.pid_file.as_deref();
    match cli.command {
        Command::Check { offline } => check(&settings, offline).await,
        Command::Migrate => {
            let database = settings.database.url.clone();
            let app = App::open(settings).await?;
            app.store
                .check_integrity_at_start()
                .await
                .with_context(|| format!("database {database}"))?;
            println!("migrations applied");
            Ok(ExitCode::SUCCESS)
        }
        Command::Poll { feed, json } => poll(settings, feed.as_deref(), json).await,
        Command::Feeds {
            command: None,
            json,
        } => feeds(settings, json).await,
        Command::Feeds {
            command: Some(command),
            ..
        } => manage_feeds(&settings, command, pid_file).await,
        Command::Sinks {
            command: Some(SinksCommand::Test { name }),
            ..
        } => manage::test_sink(&settings, &name).await,
        Command::Sinks {
            command: Some(SinksCommand::Enable { name }),
            ..
        } => enable_sink(settings, &name).await,
        Command::Sinks {
            command: None,
            json,
        } => sinks(settings, json).await,
        Command::Run => run_daemon(settings, pid_file).await,
        Command::Search {
            query,
            since,
            limit,
            json,
        } => {
            let rule = ad_hoc_rule(&query)?;
            // The whole window is searched, so that the summary tells how many
            // match in all; `--limit` bounds what is printed.
            let scan = Scan {
                since: since_time(since)?,
                limit: None,
                after: None,
            };
            backtest(settings, rule, scan, json, Some(limit)).await
        }
        Command::Stories {
            explain: Some(id),
            candidates,
            json,
            ..
        } => explain_story(settings, id, candidates, json).await,
        Command::Stories {
            since,
            min_outlets,
            limit,
            json,
            ..
        } => stories(settings, since_time(since)?, min_outlets, limit, json).await,
        Command::Alerts {
            command: Some(AlertsCommand::Send { id }),
            ..
        } => send_held(settings, &id).await,
        Command::Alerts {
            command: Some(AlertsCommand::Retry { id, dead: _ }),
            ..
        } => {
            let app = App::open(settings).await?;
            let queued = app
                .store
                .retry_deliveries(id, Utc::now())
                .await
                .context("queueing deliveries")?;
            if let (Some(id), 0) = (id, queued) {
                let status = app
                    .store
                    .delivery_status(id)
                    .await
                    .context("reading the delivery")?;
                return Err(Failure::Runtime(match status {
                    None => anyhow::anyhow!("there is no delivery {id} (see herald alerts)"),
                    Some(status) => anyhow::anyhow!(
                        "delivery {id} is {}: only failed or dead deliveries are queued again",
                        status.as_str()
                    ),
                }));
            }
            println!("{queued} deliveries queued");
            Ok(ExitCode::SUCCESS)
        }
        Command::Alerts {
            command: None,
            status,
            limit,
            json,
        } => {
            let filter = status
                .as_deref()
                .and_then(AlertFilter::parse)
                .unwrap_or(AlertFilter::All);
            alerts(settings, filter, limit, json).await
        }
        Command::Prune { dry_run, json } => prune(settings, dry_run, json).await,
        Command::Rules {
            command:
                RulesCommand::Test {
                    query,
                    rule,
                    since,
                    json,
                },
        } => {
            let rule = match (query, rule) {
                (_, Some(name)) => configured_rule(&settings, &name)?,
                (Some(query), None) => ad_hoc_rule(&query)?,
                (None, None) => {
                    return Err(Failure::Config(anyhow::anyhow!(
                        "give a QUERY or --rule NAME"
                    )));
                }
            };
            let scan = Scan {
                since: since_time(since)?,
                limit: None,
                after: None,
            };
            backtest(settings, rule, scan, json, None).await
        }
        Command::Rules {
            command: RulesCommand::Mute { name, duration },
        } => mute(settings, &name, duration).await,
        Command::Rules {
            command: RulesCommand::Unmute { name },
        } => unmute(settings, &name).await,
        Command::Rules {
            command: RulesCommand::Muted { json },
        } => muted(settings, json).await,
        Command::Completions { .. } | Command::Man => Ok(ExitCode::SUCCESS), // printed above
    }
}

fn print_generated(text: &[u8]) -> Result<ExitCode, Failure> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text).and_then(|()| out.flush()) {
        // `herald man | head` read what it wanted.
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        written => {
            written.context("writing to stdout")?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn check(settings: &Settings, offline: bool) -> Result<ExitCode, Failure> {
    let (watch, warnings) = app::compile_rules(settings);
    for warning in warnings {
        eprintln!("warning: {}", shown(&warning.to_string()));
    }
    watch.map_err(|e| Failure::Config(e.into()))?;
    app::configured_sinks(settings).map_err(|e| Failure::Config(e.into()))?;
    let disabled = match settings.disabled_feeds.len() {
        0 => String::new(),
        count => format!(" ({count} more disabled)"),
    };
    println!(
        "{}: ok: {} feeds{disabled}, {} rules, {} sinks",
        settings.path.display(),
        settings.feeds.len(),
        settings.rules.len(),
        settings.sinks.len()
    );
    if offline {
        return Ok(ExitCode::SUCCESS);
    }
    // Read-only: reachable, herald's or empty, every page readable. A database
    // herald cannot use is a configuration error like any other: exit 2.
    let database = &settings.database.url;
    let store = Store::connect_within(
        database.expose(),
        settings.database.busy_timeout,
        settings.database.connect_timeout,
    )
    .await
    .with_context(|| format!("database {database}"))
    .map_err(Failure::Config)?;
    store
        .verify()
        .await
        .with_context(|| format!("database {database}"))
        .map_err(Failure::Config)?;
    println!("database {database}: ok");
    Ok(ExitCode::SUCCESS)
}

/// Rules are part of the configuration: a rule that does not parse is a
/// configuration error (exit 2) for every command that would run it.
fn ensure_rules_parse(settings: &Settings) -> Result<(), Failure> {
    app::compile_rules(settings)
        .0
        .map(drop)
        .map_err(|e| Failure::Config(e.into()))
}

async fn alerts(
    settings: Settings,
    filter: AlertFilter,
    limit: i64,
    json: bool,
) -> Result<ExitCode, Failure> {
    let app = App::open(settings).await?;
    let entries = views::alerts(&app.store, filter, limit, app.redactor())
        .await
        .context("reading the outbox")?;
    let mut out = std::io::stdout().lock();
    if json {
        for entry in &entries {
            print_json(&mut out, entry)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    if entries.is_empty() {
        let none = match filter {
            AlertFilter::All => "no alerts and no held-back hits".to_owned(),
            AlertFilter::Held => "no held-back hits".to_owned(),
            AlertFilter::Delivery(status) => format!("no {} deliveries", status.as_str()),
        };
        writeln!(out, "{none}").context("stdout")?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "{:>6} {:<9} {:>8}  {:<16} {:<16} ARTICLE",
        "ID", "STATUS", "TRIES", "RULE", "SINK / REASON"
    )
    .context("stdout")?;
    for entry in &entries {
        let (article, error, waiting) = match entry {
            OutboxEntry::Delivery(alert) => {
                write!(
                    out,
                    "{:>6} {:<9} {:>2} tries  {:<16} {:<16} ",
                    alert.id, alert.status, alert.attempts, alert.rule, alert.sink,
                )
                .context("stdout")?;
                let error = alert.error.as_ref().map(|error| {
                    let http = alert
                        .last_http_status
                        .map(|code| format!("HTTP {code}: "))
                        .unwrap_or_default();
                    format!("{http}{error}")
                });
                let waiting = match (&alert.digest, alert.deferred) {
                    (Some(digest), deferred) if alert.next_attempt_at.is_some() => {
                        let why = match deferred {
                            Some(Deferral::QuietHours) => " (quiet hours)",
                            Some(Deferral::Throttled) => " (over max_per_hour)",
                            None => "",
                        };
                        Some(format!("digest {digest}{why}"))
                    }
                    _ => None,
                };
                (&alert.article, error, waiting)
            }
            OutboxEntry::Held(held) => {
                write!(
                    out,
                    "{:>6} {:<9} {:>8}  {:<16} {:<16} ",
                    held.id, held.status, "-", held.rule, held.reason,
                )
                .context("stdout")?;
                (&held.article, None, None)
            }
        };
        let title = article
            .as_ref()
            .map_or("(article deleted)", |a| a.title.as_str());
        writeln!(out, "{}", shown(title)).context("stdout")?;
        if let Some(waiting) = waiting {
            writeln!(out, "{:>6} waits for: {}", "", shown(&waiting)).context("stdout")?;
        }
        if let Some(error) = error {
            writeln!(out, "{:>6} error: {}", "", shown(&error)).context("stdout")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `herald alerts send STORY:RULE`: the held hit becomes an alert with a
/// delivery to each of the rule's sinks, delivered now.
async fn send_held(settings: Settings, id: &str) -> Result<ExitCode, Failure> {
    let not_held = || {
        Failure::Runtime(anyhow::anyhow!(
            "no held alert {} (see herald alerts --status held)",
            shown(id)
        ))
    };
    let (story, rule) = parse_held_id(id).ok_or_else(not_held)?;
    let sinks = settings
        .rules
        .get(rule)
        .map(|configured| configured.sinks.clone())
        .ok_or_else(|| {
            Failure::Config(anyhow::anyhow!(
                "rule {} is not configured in {}: its sinks are unknown",
                shown(rule),
                settings.path.display()
            ))
        })?;
    let app = App::open(settings).await?;
    let queued = app
        .store
        .release_held(story, rule, &sinks, Utc::now())
        .await
        .context("queueing the alert")?
        .ok_or_else(not_held)?;
    let dispatched = app.dispatch_once().await.context("delivering alerts")?;
    println!(
        "{id}: {} deliveries queued; {} delivered, {} failed, {} dead",
        queued.len(),
        dispatched.delivered,
        dispatched.failed,
        dispatched.dead
    );
    Ok(if dispatched.failed + dispatched.dead > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

async fn explain_story(
    settings: Settings,
    id: i64,
    candidates: bool,
    json: bool,
) -> Result<ExitCode, Failure> {
    let app = App::open(settings).await?;
    let explanation = views::story_explanation(
        &app.store,
        &app.watch.stories,
        id,
        candidates,
        app.redactor(),
    )
    .await
    .context("reading the story's fingerprints")?
    .ok_or_else(|| {
        Failure::Runtime(anyhow::anyhow!(
            "story {id}: no such story, or its articles have no text to compare"
        ))
    })?;
    let mut out = std::io::stdout().lock();
    if json {
        print_json(&mut out, &explanation)?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "story {}: {} articles (window {}, threshold {})",
        explanation.story,
        explanation.members.len(),
        humantime::format_duration(std::time::Duration::from_secs(explanation.window_seconds)),
        explanation.threshold
    )
    .context("stdout")?;
    for member in &explanation.members {
        write_explained(&mut out, &member.article)?;
        let line = match &member.joined {
            None => "started the story".to_owned(),
            Some(comparison) => describe_comparison(comparison),
        };
        writeln!(out, "{:>8}  {line}", "").context("stdout")?;
    }
    if let Some(candidates) = &explanation.candidates {
        writeln!(out, "nearest articles of other stories:").context("stdout")?;
        if candidates.is_empty() {
            writeln!(out, "  none shares a band key with a member").context("stdout")?;
        }
        for candidate in candidates {
            write_explained(&mut out, &candidate.article)?;
            writeln!(
                out,
                "{:>8}  story {}: {}",
                "",
                candidate.story,
                describe_comparison(&candidate.comparison)
            )
            .context("stdout")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn write_explained(out: &mut impl Write, article: &views::ExplainedArticle) -> anyhow::Result<()> {
    writeln!(
        out,
        "{:>8}  {}  {}  {}",
        article.article,
        short_time(Some(article.seen_at)),
        shown(&article.outlet),
        shown(&article.title)
    )
    .context("stdout")
}

fn describe_comparison(comparison: &views::Comparison) -> String {
    let mut evidence = Vec::new();
    if let Some(containment) = comparison.containment {
        evidence.push(format!("shingles {containment:.2}"));
    }
    if let Some(words) = comparison.word_overlap {
        evidence.push(format!("content words {words:.2}"));
    }
    evidence.push(format!("headline words {:.2}", comparison.title_overlap));
    evidence.push(format!("{:.1} h apart", comparison.hours_apart));
    format!(
        "vs {}: {} [{}]",
        comparison.with,
        comparison.reason,
        evidence.join(", ")
    )
}

async fn stories(
    settings: Settings,
    since: DateTime<Utc>,
    min_outlets: i64,
    limit: i64,
    json: bool,
) -> Result<ExitCode, Failure> {
    let app = App::open(settings).await?;
    let stories = app
        .store
        .stories(since, min_outlets, limit)
        .await
        .context("reading stories")?;
    let mut out = std::io::stdout().lock();
    for story in stories {
        let story = &views::story(story, app.redactor());
        if json {
            print_json(&mut out, story)?;
            continue;
        }
        writeln!(
            out,
            "{:>6}  {}  {:>3} articles  {:>3} outlets  {}",
            story.id,
            short_time(Some(story.first_seen_at)),
            story.articles,
            story.outlets.len(),
            shown(&story.title)
        )
        .context("stdout")?;
        let names: Vec<&str> = story
            .outlets
            .iter()
            .map(|outlet| outlet.name.as_deref().unwrap_or(&outlet.url))
            .collect();
        writeln!(out, "{:>6}  {}", "", shown(&names.join(", "))).context("stdout")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `herald prune --json`: what was removed, per table.
#[derive(Debug, Serialize)]
struct PruneJson<'a> {
    dry_run: bool,
    #[serde(flatten)]
    removed: &'a crate::domain::retention::PruneReport,
}

async fn prune(settings: Settings, dry_run: bool, json: bool) -> Result<ExitCode, Failure> {
    let app = App::open(settings).await?;
    let report = if dry_run {
        let policy = crate::retention::policy(&app.settings, Utc::now(), Default::default());
        app.store
            .prunable(&policy)
            .await
            .context("counting what retention removes")?
    } else {
        crate::retention::prune_once(&app, crate::retention::COMMAND_PAUSE)
            .await
            .context("removing what retention does not keep")?
    };
    let mut out = std::io::stdout().lock();
    if json {
        print_json(
            &mut out,
            &PruneJson {
                dry_run,
                removed: &report,
            },
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let rows = [
        ("articles", report.articles),
        ("article_sources", report.article_sources),
        ("stories", report.stories),
        ("alerts", report.alerts),
        ("deliveries", report.deliveries),
        ("delivery_attempts", report.delivery_attempts),
        ("story_fingerprints", report.story_fingerprints),
    ];
    for (table, count) in rows {
        writeln!(out, "{table:<20} {count:>10}").context("stdout")?;
    }
    let done = if dry_run {
        "would be removed"
    } else {
        "removed"
    };
    writeln!(out, "{} rows {done}", report.total()).context("stdout")?;
    if report.articles_waiting > 0 {
        writeln!(
            out,
            "{} old articles kept until their pending or failed deliveries finish",
            report.articles_waiting
        )
        .context("stdout")?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn poll(settings: Settings, only: Option<&str>, json: bool) -> Result<ExitCode, Failure> {
    let app = App::open(settings).await?;
    let mut feeds = app.configured_feeds().await?;
    if let Some(url) = only {
        feeds.retain(|feed| feed.settings.url.as_str() == url || feed.record.url == url);
        if feeds.is_empty() {
            return Err(Failure::Config(anyhow::anyhow!(
                "no configured feed has the URL {}",
                app.redactor().show(url)
            )));
        }
    }
    let reports = app.poll_once(&feeds).await;
    // In the order of `feeds`: the configured name labels each line.
    let names: Vec<Option<&str>> = feeds
        .iter()
        .map(|feed| feed.settings.name.as_deref())
        .collect();
    // One attempt at each due delivery; retries wait for the next poll or the daemon.
    let dispatched = app.dispatch_once().await.context("delivering alerts")?;
    let mut out = std::io::stdout().lock();
    for (index, report) in reports.iter().enumerate() {
        if json {
            print_json(&mut out, report)?;
        } else {
            let name = names.get(index).copied().flatten();
            print_poll_line(&mut out, report, name)?;
        }
    }
    let failed = reports
        .iter()
        .filter(|r| r.status == PollStatus::Error)
        .count();
    if !json {
        let new: usize = reports.iter().map(|r| r.new).sum();
        writeln!(
            out,
            "{} feeds polled, {} failed, {} new articles; alerts: {} delivered, {} failed, {} dead",
            reports.len(),
            failed,
            new,
            dispatched.delivered,
            dispatched.failed,
            dispatched.dead
        )
        .context("stdout")?;
    }
    // For cron: a run whose alerts did not get out failed as much as a feed.
    let undelivered = dispatched.failed + dispatched.dead;
    Ok(if failed > 0 || undelivered > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// One feed's line; `name` is its configured name, shown instead of its URL.
fn print_poll_line(
    out: &mut impl Write,
    report: &PollReport,
    name: Option<&str>,
) -> anyhow::Result<()> {
    let status = report.status.as_str();
    write!(
        out,
        "{status:<12} {:>4} new {:>4} updated {:>4} unchanged {:>3} alerts  {}",
        report.new,
        report.updated,
        report.unchanged,
        report.alerts,
        shown(name.unwrap_or(&report.url))
    )?;
    if report.merged > 0 {
        write!(out, "  ({} already stored from other feeds)", report.merged)?;
    }
    if report.reprints > 0 {
        write!(out, "  ({} reprints of stored stories)", report.reprints)?;
    }
    if let Some(error) = &report.error {
        write!(out, "  error: {}", shown(error))?;
    }
    writeln!(out)?;
    Ok(())
}

async fn feeds(settings: Settings, json: bool) -> Result<ExitCode, Failure> {
    let app = App::open(settings).await?;
    let feeds = app.configured_feeds().await?;
    let mut out = std::io::stdout().lock();
    if !json {
        writeln!(
            out,
            "{:<12} {:>8} {:>8}  {:<20} {:<20} feed",
            "status", "articles", "failures", "last fetch", "next fetch"
        )
        .context("stdout")?;
    }
    for feed in feeds {
        let name = feed.settings.name.clone();
        let view = FeedView::new(feed.record, app.redactor());
        if json {
            print_json(&mut out, &view)?;
            continue;
        }
        writeln!(
            out,
            "{:<12} {:>8} {:>8}  {:<20} {:<20} {}",
            view.status,
            view.articles,
            view.failures,
            short_time(view.last_fetch_at),
            short_time(view.next_fetch_at),
            shown(name.as_deref().unwrap_or(&view.url))
        )
        .context("stdout")?;
        if let Some(error) = &view.error {
            writeln!(out, "{:>12} error: {}", "", shown(error)).context("stdout")?;
        }
    }
    if app.settings.disabled_feeds.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    let records = app.store.feeds().await.context("reading feeds")?;
    for feed in &app.settings.disabled_feeds {
        let view = disabled_view(feed, &records, app.redactor());
        if json {
            print_json(&mut out, &view)?;
            continue;
        }
        writeln!(
            out,
            "{:<12} {:>8} {:>8}  {:<20} {:<20} {}",
            view.status,
            view.articles,
            view.failures,
            short_time(view.last_fetch_at),
            "-",
            view.url
        )
        .context("stdout")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// A feed `herald feeds disable` switched off: what the store last knew of it,
/// never due.
fn disabled_view(
    feed: &config::FeedSettings,
    records: &[crate::domain::feed::FeedRecord],
    redactor: &config::Redactor,
) -> FeedView {
    let url = redactor.url(feed.url.as_str()).into_owned();
    let record = records
        .iter()
        .find(|record| record.url == feed.url.as_str());
    let mut view = match record {
        Some(record) => FeedView::new(record.clone(), redactor),
        None => FeedView {
            url: url.clone(),
            name: feed.name.clone(),
            status: "disabled",
            last_fetch_at: None,
            next_fetch_at: None,
            error: None,
            failures: 0,
            articles: 0,
            fetch_url: url,
        },
    };
    view.status = "disabled";
    view.next_fetch_at = None;
    view
}

fn ad_hoc_rule(query: &str) -> Result<Rule, Failure> {
    let query =
        RuleQuery::parse(query).map_err(|e| Failure::Config(anyhow::anyhow!("query: {e}")))?;
    warn_about(&query, "query");
    Ok(Rule {
        name: "query".to_owned(),
        query,
        tags: Vec::new(),
    })
}

/// A rule name the configuration defines, or a configuration error.
fn known_rule(settings: &Settings, name: &str) -> Result<(), Failure> {
    if settings.rules.contains_key(name) {
        return Ok(());
    }
    Err(Failure::Config(anyhow::anyhow!(
        "no rule named {} in {}",
        shown(name),
        settings.path.display()
    )))
}

/// `herald rules mute NAME --for DURATION`.
async fn mute(
    settings: Settings,
    name: &str,
    duration: std::time::Duration,
) -> Result<ExitCode, Failure> {
    known_rule(&settings, name)?;
    let now = Utc::now();
    let until = crate::domain::alert::RuleMute::end(now, duration)
        .ok_or_else(|| Failure::Config(anyhow::anyhow!("--for {duration:?} is too long")))?;
    let app = App::open(settings).await?;
    app.store
        .mute_rule(name, until, now)
        .await
        .context("muting the rule")?;
    println!(
        "{name} muted until {}; its hits are held back (herald alerts --status held)",
        until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    Ok(ExitCode::SUCCESS)
}

/// `herald rules unmute NAME`.
async fn unmute(settings: Settings, name: &str) -> Result<ExitCode, Failure> {
    known_rule(&settings, name)?;
    let app = App::open(settings).await?;
    let was_muted = app
        .store
        .unmute_rule(name)
        .await
        .context("unmuting the rule")?;
    if was_muted {
        println!("{name} unmuted");
    } else {
        println!("{name} was not muted");
    }
    Ok(ExitCode::SUCCESS)
}

/// `herald sinks`: each configured sink's health and queue.
async fn sinks(settings: Settings, json: bool) -> Result<ExitCode, Failure> {
    let app = App::open(settings).await?;
    let sinks = views::sinks(&app.store, &app.sink_kinds())
        .await
        .context("reading sink health")?;
    let mut out = std::io::stdout().lock();
    if json {
        for sink in &sinks {
            print_json(&mut out, sink)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    if sinks.is_empty() {
        writeln!(out, "no sinks are configured").context("stdout")?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(out, "{:<8} {:>7}  {:<9} SINK", "STATUS", "QUEUED", "TYPE").context("stdout")?;
    for sink in &sinks {
        writeln!(
            out,
            "{:<8} {:>7}  {:<9} {}",
            sink.status, sink.queued, sink.kind, sink.name
        )
        .context("stdout")?;
        if let (Some(reason), Some(since)) = (&sink.reason, sink.broken_since) {
            writeln!(
                out,
                "{:>8} broken since {}: {} (fix its configuration and reload, or `herald sinks enable {}`)",
                "",
                short_time(Some(since)),
                shown(reason),
                sink.name
            )
            .context("stdout")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `herald sinks enable NAME`.
async fn enable_sink(settings: Settings, name: &str) -> Result<ExitCode, Failure> {
    if !settings.sinks.contains_key(name) {
        return Err(Failure::Config(anyhow::anyhow!(
            "no sink named {} in {}",
            shown(name),
            settings.path.display()
        )));
    }
    let app = App::open(settings).await?;
    let was_broken = app
        .store
        .enable_sink(name, Utc::now())
        .await
        .context("enabling the sink")?;
    if was_broken {
        println!("{name} enabled: its waiting alerts are sent again");
    } else {
        println!("{name} was not broken");
    }
    Ok(ExitCode::SUCCESS)
}

/// `herald rules muted`.
async fn muted(settings: Settings, json: bool) -> Result<ExitCode, Failure> {
    let app = App::open(settings).await?;
    let mutes = app
        .store
        .rule_mutes(Utc::now())
        .await
        .context("reading rule mutes")?;
    let mut out = std::io::stdout().lock();
    if mutes.is_empty() && !json {
        writeln!(out, "no rule is muted").context("stdout")?;
    }
    for mute in &mutes {
        if json {
            print_json(&mut out, mute)?;
        } else {
            writeln!(
                out,
                "{}  until {}",
                shown(&mute.rule),
                mute.until
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            )
            .context("stdout")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn configured_rule(settings: &Settings, name: &str) -> Result<Rule, Failure> {
    let rule = settings.rules.get(name).ok_or_else(|| {
        Failure::Config(anyhow::anyhow!(
            "no rule named {name:?} in {}",
            settings.path.display()
        ))
    })?;
    let query = RuleQuery::parse(&rule.query).map_err(|e| {
        Failure::Config(anyhow::anyhow!("{}: rule {name}: {e}", rule.query_location))
    })?;
    warn_about(&query, &format!("{}: rule {name}", rule.query_location));
    Ok(Rule {
        name: name.to_owned(),
        query,
        tags: rule.tags.clone(),
    })
}

/// What `herald check` would warn about a query, on stderr before the matches:
/// a query that runs but may not mean what was written.
fn warn_about(query: &RuleQuery, what: &str) {
    for warning in query.warnings() {
        eprintln!("warning: {}: {}", what, shown(&warning.to_string()));
    }
}

fn since_time(since: std::time::Duration) -> Result<DateTime<Utc>, Failure> {
    chrono::Duration::from_std(since)
        .ok()
        .and_then(|since| Utc::now().checked_sub_signed(since))
        .ok_or_else(|| Failure::Config(anyhow::anyhow!("--since is too far back")))
}

/// A backtest line in `--json`: the article and the terms that matched.
#[derive(Debug, Serialize)]
struct MatchJson<'a> {
    rule: &'a str,
    matched: &'a [String],
    article: &'a Article,
}

async fn backtest(
    settings: Settings,
    rule: Rule,
    scan: Scan,
    json: bool,
    shown: Option<usize>,
) -> Result<ExitCode, Failure> {
    // `herald search` prints the newest `--limit` articles; `rules test`
    // prints every match with the terms that made it.
    let with_terms = shown.is_none();
    let app = App::open(settings).await?;
    let feeds = app.feed_infos().await?;
    // What `herald run` has not indexed yet (all of it, without a daemon)
    // would be read article by article; indexed, it is read once. A database
    // this command may only read is searched as it is.
    if let Err(error) = search::catch_up(&app.store).await {
        tracing::debug!(%error, "cannot index the articles waiting for search");
    }
    let searched = app
        .store
        .count_articles_since(scan.since)
        .await
        .context("counting articles")?;
    let progress = progress_bar(&rule, searched);
    let rule_name = rule.name.clone();
    let indexed = search::uses_index(&rule);
    let matches = search::matching_articles(&app.store, rule, &feeds, scan, || progress.inc(1))
        .await
        .context("reading articles")?;
    progress.finish_and_clear();
    let mut out = std::io::stdout().lock();
    let printed = &matches[..shown.map_or(matches.len(), |limit| limit.min(matches.len()))];
    for found in printed {
        let article = app.store.article(found.article_id).await;
        let Some(article) = article.context("reading articles")? else {
            continue;
        };
        let article = article.redacted(app.redactor());
        if json && with_terms {
            let line = MatchJson {
                rule: &rule_name,
                matched: &found.matched,
                article: &article,
            };
            print_json(&mut out, &line)?;
        } else if json {
            print_json(&mut out, &article)?;
        } else {
            print_article_line(&mut out, &article, with_terms.then_some(&found.matched[..]))?;
        }
    }
    if !json {
        if printed.len() < matches.len() {
            write!(
                out,
                "{} of {} matching articles shown (newest first; --limit), {searched} searched",
                printed.len(),
                matches.len()
            )
        } else {
            write!(out, "{} of {searched} articles matched", matches.len())
        }
        .context("stdout")?;
        if !indexed {
            write!(
                out,
                " (each read: no word of the query is in the search index)"
            )
            .context("stdout")?;
        }
        writeln!(out).context("stdout")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// A progress bar on stderr when it is a terminal and every article is read
/// (the index leaves few to read); hidden in pipes and under systemd.
fn progress_bar(rule: &Rule, total: i64) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() || search::uses_index(rule) {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(u64::try_from(total).unwrap_or(0));
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} articles {elapsed}")
    {
        bar.set_style(style);
    }
    bar
}

fn print_article_line(
    out: &mut impl Write,
    article: &Article,
    terms: Option<&[String]>,
) -> anyhow::Result<()> {
    let feed = article
        .feeds
        .first()
        .map(|f| f.name.as_deref().unwrap_or(&f.url))
        .unwrap_or("-");
    writeln!(
        out,
        "{}  {}  ({})",
        article.published_at.format("%Y-%m-%d %H:%M"),
        shown(&article.title),
        shown(feed)
    )?;
    if let Some(url) = &article.url {
        writeln!(out, "    {}", shown(url))?;
    }
    if let Some(terms) = terms {
        writeln!(out, "    matched: {}", shown(&terms.join(", ")))?;
    }
    Ok(())
}

fn short_time(time: Option<DateTime<Utc>>) -> String {
    time.map_or_else(
        || "-".to_owned(),
        |t| t.format("%Y-%m-%d %H:%M:%S").to_string(),
    )
}

fn print_json(out: &mut impl Write, value: &impl Serialize) -> anyhow::Result<()> {
    serde_json::to_writer(&mut *out, value).context("stdout")?;
    writeln!(out).context("stdout")?;
    Ok(())
}

async fn manage_feeds(
    settings: &Settings,
    command: FeedsCommand,
    pid_file: Option<&std::path::Path>,
) -> Result<ExitCode, Failure> {
    match command {
        FeedsCommand::Add {
            url,
            name,
            tags,
            interval,
            yes,
        } => {
            let request = manage::AddRequest {
                url,
                name,
                tags,
                interval,
                yes,
            };
            manage::add(settings, request, pid_file).await
        }
        FeedsCommand::Remove { url } => {
            manage::change(settings, &url, manage::Change::Remove, pid_file)
        }
        FeedsCommand::Disable { url } => {
            manage::change(settings, &url, manage::Change::Disable, pid_file)
        }
        FeedsCommand::Enable { url } => {
            manage::change(settings, &url, manage::Change::Enable, pid_file)
        }
        FeedsCommand::Import { file } => manage::import(settings, &file, pid_file),
        FeedsCommand::Export => manage::export(settings).await,
    }
}

async fn run_daemon(
    settings: Settings,
    pid_file: Option<&std::path::Path>,
) -> Result<ExitCode, Failure> {
    daemon::run(settings, pid_file).await?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}
