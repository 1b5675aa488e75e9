//! A herald instance for tests: a config file written to a temporary directory, loaded
//! the way `herald` loads it, on a fresh database of either backend.

use std::path::PathBuf;
use std::process::{Command, Output};

use herald::app::{App, ConfiguredFeed};
use herald::config;
use herald::ingest::PollReport;

use super::db::{Backend, TestDb};

pub struct TestHerald {
    pub app: App,
    pub db: TestDb,
    pub config_path: PathBuf,
    _dir: tempfile::TempDir,
}

/// `[[feeds]]` entries for the given URLs.
pub fn feeds_toml(urls: &[String]) -> String {
    urls.iter()
        .map(|url| format!("[[feeds]]\nurl = \"{url}\"\n\n"))
        .collect()
}

impl TestHerald {
    /// herald with `config` (TOML without `[database]`: the test database is given
    /// through HERALD_DATABASE_URL, as an operator would).
    pub async fn start(backend: Backend, config: &str) -> TestHerald {
        TestHerald::start_with_fetch(backend, "", config).await
    }

    /// [`TestHerald::start`] with more `[fetch]` keys (`fetch`, lines of TOML).
    pub async fn start_with_fetch(backend: Backend, fetch: &str, config: &str) -> TestHerald {
        let db = TestDb::new(backend).await;
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("herald.toml");
        let text = format!("[fetch]\ntimeout = \"5s\"\n{fetch}\n{config}");
        std::fs::write(&config_path, text).unwrap();
        let db_url = db.url.clone();
        let env = move |name: &str| (name == config::ENV_DATABASE_URL).then(|| db_url.clone());
        let settings = config::load_with_env(&config_path, &env).unwrap();
        let app = App::open(settings).await.unwrap();
        TestHerald {
            app,
            db,
            config_path,
            _dir: dir,
        }
    }

    pub async fn feeds(&self) -> Vec<ConfiguredFeed> {
        self.app.configured_feeds().await.unwrap()
    }

    /// One `herald poll` pass over every configured feed.
    pub async fn poll(&self) -> Vec<PollReport> {
        let feeds = self.feeds().await;
        self.app.poll_once(&feeds).await
    }

    /// One pass, for a single configured feed.
    pub async fn poll_one(&self) -> PollReport {
        let mut reports = self.poll().await;
        assert_eq!(
            reports.len(),
            1,
            "poll_one needs exactly one configured feed"
        );
        reports.remove(0)
    }
}

impl TestHerald {
    /// The `herald` binary run on this configuration and database, as an
    /// operator would: plain logs, no colour.
    pub async fn cli(&self, args: &[&str]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_herald"));
        command
            .arg("--config")
            .arg(&self.config_path)
            .args(args)
            .env("HERALD_DATABASE_URL", &self.db.url)
            .env("RUST_LOG", "warn")
            .env("NO_COLOR", "1");
        tokio::task::spawn_blocking(move || command.output().unwrap())
            .await
            .unwrap()
    }
}

/// A command's stdout, one JSON value per line.
pub fn json_lines(output: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}
