//! The `herald` binary as a child process, and a systemd notification socket the
//! test owns, as systemd would hold it.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use tokio::net::UnixDatagram;

/// `herald --config herald.toml ARGS` in `dir`, on the database `db_url`.
pub fn herald(dir: &Path, db_url: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_herald"));
    command
        .current_dir(dir)
        .args(["--config", "herald.toml"])
        .args(args)
        .env("HERALD_DATABASE_URL", db_url)
        .env_remove("HERALD_CONFIG")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env("RUST_LOG", "warn");
    command
}

/// A running `herald run`.
pub struct Daemon {
    child: Option<Child>,
}

impl Daemon {
    /// `herald run` in `dir`; its systemd notifications go to `notify` when given.
    pub fn start(dir: &Path, db_url: &str, notify: Option<&NotifySocket>) -> Daemon {
        Daemon::start_with_env(dir, db_url, notify, &[])
    }

    /// Like [`Daemon::start`], with more environment variables.
    pub fn start_with_env(
        dir: &Path,
        db_url: &str,
        notify: Option<&NotifySocket>,
        env: &[(&str, &str)],
    ) -> Daemon {
        let mut command = herald(dir, db_url, &["run"]);
        command.envs(env.iter().copied());
        if let Some(socket) = notify {
            command.env("NOTIFY_SOCKET", &socket.path);
        }
        Daemon::spawn(command)
    }

    /// `herald run` in `dir` that may have at most `open_files` files open, as
    /// `ulimit -n` or systemd's `LimitNOFILE=` would set.
    pub fn start_with_open_file_limit(dir: &Path, db_url: &str, open_files: u64) -> Daemon {
        let mut command = herald(dir, db_url, &["run"]);
        let limit = libc::rlimit {
            rlim_cur: open_files,
            rlim_max: open_files,
        };
        // SAFETY: runs in the forked child before exec; setrlimit is async-signal-safe
        // and only reads `limit`, a copy the closure owns.
        unsafe {
            command.pre_exec(move || {
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
        Daemon::spawn(command)
    }

    fn spawn(mut command: Command) -> Daemon {
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Daemon { child: Some(child) }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Sends `signal` (`TERM`, `HUP`, `KILL`…).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal}");
    }

    /// Waits for the process to end (at most 60 s) and returns what it left.
    pub async fn wait(mut self) -> Output {
        let child = self.child.take().unwrap();
        let waited = tokio::time::timeout(
            Duration::from_secs(60),
            tokio::task::spawn_blocking(move || child.wait_with_output()),
        )
        .await
        .expect("herald did not exit within 60 s");
        waited.unwrap().unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A datagram socket in a temporary directory, like systemd's `NOTIFY_SOCKET`.
pub struct NotifySocket {
    socket: UnixDatagram,
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl NotifySocket {
    pub fn bind() -> NotifySocket {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        NotifySocket {
            socket,
            path,
            _dir: dir,
        }
    }

    /// The next notification, one `KEY=VALUE` per line.
    pub async fn next(&self, timeout: Duration) -> Option<Vec<String>> {
        let mut buf = vec![0u8; 4096];
        let read = tokio::time::timeout(timeout, self.socket.recv(&mut buf)).await;
        let len = read.ok()?.unwrap();
        let text = String::from_utf8_lossy(&buf[..len]).into_owned();
        Some(text.lines().map(str::to_owned).collect())
    }

    /// Notifications until one carries `line` (`READY=1`); panics after `timeout`.
    /// Returns every line seen, in order.
    pub async fn until(&self, line: &str, timeout: Duration) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let Some(message) = self.next(left).await else {
                panic!("no {line} within {timeout:?}; saw {seen:?}");
            };
            let found = message.iter().any(|l| l == line);
            seen.extend(message);
            if found {
                return seen;
            }
        }
    }
}
