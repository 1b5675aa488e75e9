//! `herald run` as a service: the feed scheduler and the alert
//! dispatcher running side by side, signals (SIGTERM/SIGINT stop, SIGHUP reloads
//! the configuration), and systemd's notification protocol.
//!
//! systemd sees READY=1 once the database is migrated and feeds are being
//! scheduled, RELOADING=1 … READY=1 around a reload, STOPPING=1 on shutdown, and
//! WATCHDOG=1 at half of `WatchdogSec` while the runtime is responsive. Without
//! `NOTIFY_SOCKET` the notifications are no-ops.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use sd_notify::NotifyState;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::api;
use crate::app::App;
use crate::config::{self, Settings};
use crate::manage::PidFile;
use crate::scheduler;
use crate::store::Store;

/// How long `herald run` waits for fetches and sends in flight after SIGTERM/SIGINT.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// How often an idle dispatcher looks at the outbox anyway: other instances (or a
/// `herald alerts retry`) may have queued work this process was not told about.
const IDLE_OUTBOX_CHECK: Duration = Duration::from_secs(5);

/// Shortest pause between two looks at work that was due but could not be taken.
pub const MIN_RECHECK: Duration = Duration::from_millis(100);

/// How often `herald run` checks that the database answers. Polls and sends only
/// report a lost server once the pool gives up on it (30 s later, as a timeout);
/// this says so at once, with the cause, and says when it is back.
const DATABASE_CHECK: Duration = Duration::from_secs(2);

/// Runs herald until SIGTERM or SIGINT, reloading the configuration on SIGHUP.
/// With `pid_file`, its process id is written there once it owns the database
/// (and removed when it stops), for `herald feeds` commands to signal it.
pub async fn run(settings: Settings, pid_file: Option<&Path>) -> anyhow::Result<()> {
    let mut stop_signal = signal(SignalKind::terminate())?;
    let mut reload_signal = signal(SignalKind::hangup())?;
    let database = settings.database.url.clone();
    let app = Arc::new(App::open(settings).await?);
    let _only_instance = app.store.lock_single_instance()?;
    let _pid_file = pid_file.map(PidFile::write).transpose()?;
    app.store
        .check_integrity_at_start()
        .await
        .with_context(|| format!("database {database}"))?;
    let (feeds, api_feeds) = watch::channel(Arc::new(app.settings.feeds.clone()));
    let (redactor, api_redactor) = watch::channel(app.redactor().clone());
    let (rules, api_rules) = watch::channel(app.rule_names());
    let (sinks, api_sinks) = watch::channel(app.sink_kinds());
    let (stories, api_stories) = watch::channel(app.watch.stories);
    let api = app
        .bind_api(api_feeds, api_redactor, api_rules, api_sinks, api_stories)
        .await?;
    let (apps, current) = watch::channel(Arc::clone(&app));
    let (stop, shutdown) = watch::channel(false);
    let api = api.map(|(listener, state, limits)| {
        let mut stop = shutdown.clone();
        let stopped = async move {
            let _ = stop.wait_for(|stop| *stop).await;
        };
        tokio::spawn(api::serve(listener, state, limits, stopped))
    });
    let work = tokio::spawn(work(current, shutdown));
    notify(&[NotifyState::Ready]);
    let watchdog = sd_notify::watchdog_enabled().map(|period| tokio::spawn(watchdog(period)));
    let database = tokio::spawn(watch_database(app.store.clone()));
    tracing::info!(instance = %app.instance, "herald running");

    loop {
        tokio::select! {
            _ = stop_signal.recv() => {
                tracing::info!("SIGTERM received");
                break;
            }
            _ = tokio::signal::ctrl_c() => {
                tracing::info!("SIGINT received");
                break;
            }
            _ = reload_signal.recv() => {
                notify_reloading();
                let running = Arc::clone(&apps.borrow());
                match reload(&running).await {
                    Ok(next) => {
                        tracing::info!(
                            feeds = next.settings.feeds.len(),
                            rules = next.settings.rules.len(),
                            sinks = next.settings.sinks.len(),
                            "configuration reloaded"
                        );
                        feeds.send_replace(Arc::new(next.settings.feeds.clone()));
                        redactor.send_replace(next.redactor().clone());
                        rules.send_replace(next.rule_names());
                        stories.send_replace(next.watch.stories);
                        sinks.send_replace(next.sink_kinds());
                        apps.send_replace(next);
                        notify(&[NotifyState::Ready, NotifyState::Status("configuration reloaded")]);
                    }
                    Err(error) => {
                        tracing::error!(
                            error = format!("{error:#}"),
                            "configuration reload failed; the running configuration stays"
                        );
                        notify(&[NotifyState::Ready, NotifyState::Status("reload failed; see the log")]);
                    }
                }
            }
        }
    }

    notify(&[NotifyState::Stopping]);
    let _ = stop.send(true);
    tracing::info!("shutting down: finishing fetches and sends in flight");
    let work_abort = work.abort_handle();
    if tokio::time::timeout(SHUTDOWN_GRACE, work).await.is_err() {
        tracing::warn!(
            grace = ?SHUTDOWN_GRACE,
            "work still running after the grace period; abandoning it"
        );
        work_abort.abort();
    }
    if let Some(api) = api {
        // Requests in flight finish; the listener closed with the stop signal.
        let _ = tokio::time::timeout(Duration::from_secs(5), api).await;
    }
    if let Some(watchdog) = watchdog {
        watchdog.abort();
    }
    database.abort();
    Ok(())
}

/// The feed scheduler and the alert dispatcher, each always using the latest App
/// from `apps`, until `shutdown` turns true and the work in flight is done.
pub async fn work(apps: watch::Receiver<Arc<App>>, shutdown: watch::Receiver<bool>) {
    let mut tasks = JoinSet::new();
    tasks.spawn(scheduler::run(apps.clone(), shutdown.clone()));
    tasks.spawn(crate::retention::run(apps.clone(), shutdown.clone()));
    // A reload keeps the database: the first App's store serves every App.
    let store = apps.borrow().store.clone();
    tasks.spawn(crate::search::index_continuously(store, shutdown.clone()));
    tasks.spawn(dispatch_forever(apps, shutdown));
    while tasks.join_next().await.is_some() {}
}

/// Reads the configuration file again and builds the next App on the same
/// database. Nothing changes unless the whole new configuration is valid.
async fn reload(running: &App) -> anyhow::Result<Arc<App>> {
    let path = running.settings.path.clone();
    let settings = tokio::task::spawn_blocking(move || config::load(&path)).await??;
    let next = running.reconfigure(settings)?;
    // New feeds get their rows now, so a storage problem fails the reload.
    next.configured_feeds().await?;
    Ok(Arc::new(next))
}

/// Delivers alerts until `shutdown` turns true: at once when new ones are
/// recorded, else when the next retry is due.
async fn dispatch_forever(
    mut apps: watch::Receiver<Arc<App>>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        if *shutdown.borrow() {
            return;
        }
        let app = Arc::clone(&apps.borrow_and_update());
        let attempts = match app.dispatch_once().await {
            Ok(report) => report.attempts(),
            Err(error) => {
                tracing::warn!(%error, "cannot read the outbox");
                0
            }
        };
        let mut wait = match app.store.next_delivery_at().await {
            Ok(Some(due)) => (due - Utc::now()).to_std().unwrap_or(Duration::ZERO),
            Ok(None) => IDLE_OUTBOX_CHECK,
            Err(_) => IDLE_OUTBOX_CHECK,
        }
        .min(IDLE_OUTBOX_CHECK);
        if attempts == 0 {
            // Something is due that this pass could not take (another dispatcher
            // is committing its claim): look again soon, not in a busy loop.
            wait = wait.max(MIN_RECHECK);
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = app.new_alerts.notified() => {}
            _ = scheduler::app_changed(&mut apps) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Logs once when the database stops answering, with why, and once when it
/// answers again; polls and deliveries wait for it meanwhile and resume by
/// themselves.
async fn watch_database(store: Store) {
    let mut ticks = tokio::time::interval(DATABASE_CHECK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut down_since: Option<Instant> = None;
    loop {
        ticks.tick().await;
        match (store.reachable().await, down_since) {
            (Err(error), None) => {
                tracing::error!(
                    %error,
                    "database unreachable; polls and deliveries wait until it answers"
                );
                down_since = Some(Instant::now());
            }
            (Ok(()), Some(since)) => {
                tracing::info!(after = ?since.elapsed(), "database reachable again");
                down_since = None;
            }
            _ => {}
        }
    }
}

async fn watchdog(period: Duration) {
    let mut ticks = tokio::time::interval(period / 2);
    loop {
        ticks.tick().await;
        notify(&[NotifyState::Watchdog]);
    }
}

fn notify_reloading() {
    // MONOTONIC_USEC lets systemd (Type=notify-reload) tell this reload from an
    // earlier one; plain Type=notify ignores it.
    match NotifyState::monotonic_usec_now() {
        Ok(now) => notify(&[NotifyState::Reloading, now]),
        Err(_) => notify(&[NotifyState::Reloading]),
    }
}

fn notify(states: &[NotifyState<'_>]) {
    if let Err(error) = sd_notify::notify(states) {
        tracing::warn!(%error, "cannot notify systemd");
    }
}
