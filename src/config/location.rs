//! Positions in config files: toml's byte spans become 1-based `file:line:col`.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use super::ConfigError;

/// Where a value sits in a config file. Line and column are 1-based; the column counts
/// characters, not bytes, because that is what an editor shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// One config file's text, kept while the file is validated so that every span found
/// in it can be reported as a [`Location`].
pub(super) struct SourceFile {
    path: PathBuf,
    text: String,
    /// Byte offset where each line starts: a file listing 10,000 feeds is located
    /// 10,000 times, so a position must not cost a scan from the top.
    line_starts: Vec<usize>,
}

impl SourceFile {
    /// Reads a file; the error is the plain "cannot read" one, for the caller to place.
    pub(super) fn read(path: &Path) -> Result<Self, String> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(Self {
                path: path.to_path_buf(),
                line_starts: line_starts(&text),
                text,
            }),
            Err(error) => Err(cannot_read(path, &error)),
        }
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Deserialises the whole file, turning toml's error into a located one.
    pub(super) fn parse<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        toml::from_str(&self.text).map_err(|error| {
            let span = error.span().unwrap_or(0..0);
            self.error_at(span, one_line(error.message()))
        })
    }

    pub(super) fn locate(&self, span: &Range<usize>) -> Location {
        let mut offset = span.start.min(self.text.len());
        // toml spans fall on character boundaries; this guards the slice below anyway.
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line_index = self
            .line_starts
            .partition_point(|&start| start <= offset)
            .saturating_sub(1);
        let line_start = self.line_starts[line_index];
        Location {
            file: self.path.clone(),
            line: line_index + 1,
            column: self.text[line_start..offset].chars().count() + 1,
        }
    }

    /// Where the text of the string value at `span` starts, and whether the
    /// file holds `value` there verbatim (a literal string, or a basic one
    /// without escapes): then an offset in the value is one in the file.
    pub(super) fn string_content(&self, span: &Range<usize>, value: &str) -> (Location, bool) {
        let raw = self.text.get(span.clone()).unwrap_or_default();
        let opening = ["'''", "\"\"\"", "'", "\""]
            .into_iter()
            .find(|quote| raw.starts_with(quote))
            .unwrap_or_default();
        let mut start = span.start + opening.len();
        // A newline right after a multi-line string's opening is not part of it.
        if opening.len() == 3 {
            let rest = self.text.get(start..).unwrap_or_default();
            if rest.starts_with("\r\n") {
                start += 2;
            } else if rest.starts_with('\n') {
                start += 1;
            }
        }
        let verbatim = self.text.get(start..start + value.len()) == Some(value);
        (self.locate(&(start..start)), verbatim)
    }

    pub(super) fn error_at(&self, span: Range<usize>, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            location: self.locate(&span),
            message: message.into(),
        }
    }
}

/// Always starts with 0, so every offset has a line.
fn line_starts(text: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(text.match_indices('\n').map(|(newline, _)| newline + 1))
        .collect()
}

/// `cannot read PATH: REASON`, without the `(os error 2)` suffix that means nothing to an
/// operator.
pub(super) fn cannot_read(path: &Path, error: &std::io::Error) -> String {
    let reason = error.to_string();
    let reason = match reason.rfind(" (os error ") {
        Some(suffix) => &reason[..suffix],
        None => &reason,
    };
    format!("cannot read {}: {reason}", path.display())
}

/// toml's messages can span several lines; an error line in a log must not.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}
