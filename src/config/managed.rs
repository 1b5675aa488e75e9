//! The managed file, `feeds.d/managed.toml` beside the main file: the one config
//! file herald writes. `herald feeds add`, `import`, `remove`, `disable` and
//! `enable` change it; hand-written files are never rewritten.
//!
//! It is read with the main file without an `include` line (an include that
//! reaches it is skipped, so it is never read twice) and holds:
//!
//! ```toml
//! disabled = ["https://news.example/rss"]   # not polled, wherever configured
//!
//! [[feeds]]
//! url = "https://other.example/feed"
//! name = "Other"
//! tags = ["world"]
//! interval = "30m"
//! ```
//!
//! Edited with `toml_edit`, so comments and entries added by hand survive.

use std::path::{Path, PathBuf};

use toml_edit::{Array, ArrayOfTables, DocumentMut, Item, Table, value};
use url::Url;

use super::location::cannot_read;

/// Written at the top of a managed file herald creates.
const HEADER: &str = "# Feeds managed by `herald feeds` (add, import, remove, disable, enable).\n\
# herald reads this file with the main configuration file, without an include line.\n\
# Edits by hand are kept; `disabled` lists feeds not polled, wherever they are written.\n";

/// A feed to write into the managed file; its values are checked by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFeed {
    pub url: Url,
    pub name: Option<String>,
    pub tags: Vec<String>,
    /// As written, e.g. `30m`.
    pub interval: Option<String>,
}

/// The managed file in memory, and what it held when read, so that a change the
/// whole configuration rejects can be undone.
#[derive(Debug)]
pub struct ManagedFile {
    path: PathBuf,
    document: DocumentMut,
    /// `None` when the file did not exist.
    original: Option<String>,
}

impl ManagedFile {
    /// The managed file of the main config file `main`; empty when it does not exist.
    pub fn open(main: &Path) -> Result<ManagedFile, String> {
        let path = super::managed_path(main);
        let original = match std::fs::read_to_string(&path) {
            Ok(text) => Some(text),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
            Err(error) => return Err(cannot_read(&path, &error)),
        };
        let document = match &original {
            Some(text) => text
                .parse::<DocumentMut>()
                .map_err(|error| format!("{}: {}", path.display(), one_line(&error)))?,
            None => HEADER
                .parse::<DocumentMut>()
                .map_err(|error| format!("{}: {}", path.display(), one_line(&error)))?,
        };
        Ok(ManagedFile {
            path,
            document,
            original,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file lists a feed with this URL.
    pub fn has_feed(&self, url: &Url) -> bool {
        self.feed_index(url).is_some()
    }

    /// Appends a feed entry.
    pub fn add_feed(&mut self, feed: &NewFeed) {
        let mut table = Table::new();
        table.insert("url", value(feed.url.as_str()));
        if let Some(name) = &feed.name {
            table.insert("name", value(name.as_str()));
        }
        if !feed.tags.is_empty() {
            let tags: Array = feed.tags.iter().map(String::as_str).collect();
            table.insert("tags", value(tags));
        }
        if let Some(interval) = &feed.interval {
            table.insert("interval", value(interval.as_str()));
        }
        match self.feeds_mut() {
            Some(feeds) => feeds.push(table),
            None => {
                let mut feeds = ArrayOfTables::new();
                feeds.push(table);
                self.document.insert("feeds", Item::ArrayOfTables(feeds));
            }
        }
    }

    /// Removes the feed entry with this URL, and the URL from `disabled`; false
    /// when the file lists no such feed.
    pub fn remove_feed(&mut self, url: &Url) -> bool {
        let Some(index) = self.feed_index(url) else {
            return false;
        };
        if let Some(feeds) = self.feeds_mut() {
            feeds.remove(index);
            if feeds.is_empty() {
                self.document.remove("feeds");
            }
        }
        self.set_disabled(url, false);
        true
    }

    /// Whether `disabled` lists this URL.
    pub fn is_disabled(&self, url: &Url) -> bool {
        self.document
            .get("disabled")
            .and_then(Item::as_array)
            .is_some_and(|list| list.iter().any(|entry| same_url(entry.as_str(), url)))
    }

    /// Adds the URL to `disabled` or takes it out; false when it was already so.
    pub fn set_disabled(&mut self, url: &Url, disabled: bool) -> bool {
        if self.is_disabled(url) == disabled {
            return false;
        }
        if disabled {
            match self
                .document
                .get_mut("disabled")
                .and_then(Item::as_array_mut)
            {
                Some(list) => list.push(url.as_str()),
                None => {
                    // A top-level value: written above the feed tables.
                    let list: Array = std::iter::once(url.as_str()).collect();
                    self.document.insert("disabled", value(list));
                }
            }
        } else if let Some(list) = self
            .document
            .get_mut("disabled")
            .and_then(Item::as_array_mut)
        {
            list.retain(|entry| !same_url(entry.as_str(), url));
            if list.is_empty() {
                self.document.remove("disabled");
            }
        }
        true
    }

    /// Writes the file: the directory is created if need be, and the text
    /// replaces the old in one rename, so a reader never sees half a file.
    pub fn save(&self) -> Result<(), String> {
        write_atomically(&self.path, &self.document.to_string())
    }

    /// Puts back what the file held when it was opened (or removes it).
    pub fn restore(&self) -> Result<(), String> {
        match &self.original {
            Some(text) => write_atomically(&self.path, text),
            None => match std::fs::remove_file(&self.path) {
                Ok(()) => Ok(()),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(error) => Err(format!("cannot remove {}: {error}", self.path.display())),
            },
        }
    }

    fn feeds_mut(&mut self) -> Option<&mut ArrayOfTables> {
        self.document
            .get_mut("feeds")
            .and_then(Item::as_array_of_tables_mut)
    }

    fn feed_index(&self, url: &Url) -> Option<usize> {
        self.document
            .get("feeds")
            .and_then(Item::as_array_of_tables)?
            .iter()
            .position(|feed| same_url(feed.get("url").and_then(Item::as_str), url))
    }
}

/// Compares as the loader does: both parsed, so `HTTPS://Example.com` is
/// `https://example.com/`.
fn same_url(written: Option<&str>, url: &Url) -> bool {
    written.and_then(|text| Url::parse(text).ok()).as_ref() == Some(url)
}

fn write_atomically(path: &Path, text: &str) -> Result<(), String> {
    let directory = path.parent().unwrap_or(Path::new(""));
    if !directory.as_os_str().is_empty() {
        std::fs::create_dir_all(directory)
            .map_err(|error| format!("cannot create {}: {error}", directory.display()))?;
    }
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    std::fs::write(&temporary, text)
        .map_err(|error| format!("cannot write {}: {error}", temporary.display()))?;
    std::fs::rename(&temporary, path).map_err(|error| {
        let _ = std::fs::remove_file(&temporary);
        format!("cannot write {}: {error}", path.display())
    })
}

fn one_line(error: &impl std::fmt::Display) -> String {
    error
        .to_string()
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}
