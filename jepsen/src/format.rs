//! History file formats: which one a file is in, and reading it into a [`History`].
//!
//! - `jsonl` ([`jsonl`]): the plain interchange format of issue 6, also what cairn writes.
//! - `porcupine-etcd` ([`porcupine_etcd`]): Jepsen console lines as kept in porcupine's test
//!   data (`INFO  jepsen.util - 3 :invoke :read nil`).
//! - `knossos-edn` ([`knossos_edn`]): Knossos' EDN histories.
//!
//! Every parse error names the file and line and says what was expected ([`ParseError`]); an
//! impossible history (see [`crate::history::HistoryBuilder`]) is a parse error too.

mod edn;
pub mod jsonl;
pub mod knossos_edn;
pub mod porcupine_etcd;

use std::fmt;
use std::path::Path;

use crate::history::{History, HistoryError};

/// A history file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// One JSON object per line.
    Jsonl,
    /// Porcupine's copy of Jepsen's etcd logs.
    PorcupineEtcd,
    /// Knossos' EDN.
    KnossosEdn,
}

impl Format {
    /// All formats, in the order the CLI lists them.
    pub const ALL: [Format; 3] = [Format::Jsonl, Format::PorcupineEtcd, Format::KnossosEdn];

    /// `jsonl`, `porcupine-etcd` or `knossos-edn`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Jsonl => "jsonl",
            Format::PorcupineEtcd => "porcupine-etcd",
            Format::KnossosEdn => "knossos-edn",
        }
    }

    /// The format with this name, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Format::ALL.into_iter().find(|f| f.name() == name)
    }

    /// Guesses the format: extension `.edn` is Knossos; a first non-blank line starting with
    /// `{` is JSONL; anything else is porcupine's etcd log.
    pub fn detect(path: &Path, text: &str) -> Self {
        if path.extension().is_some_and(|ext| ext == "edn") {
            return Format::KnossosEdn;
        }
        let first = text
            .lines()
            .map(str::trim_start)
            .find(|line| !line.is_empty());
        if first.is_some_and(|line| line.starts_with('{')) {
            return Format::Jsonl;
        }
        Format::PorcupineEtcd
    }

    /// Parses `text`, the contents of `file`, in this format.
    pub fn parse(self, file: &str, text: &str) -> Result<History, ParseError> {
        match self {
            Format::Jsonl => jsonl::parse(file, text),
            Format::PorcupineEtcd => porcupine_etcd::parse(file, text),
            Format::KnossosEdn => knossos_edn::parse(file, text),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A history file that is not well formed, or describes an impossible history.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct ParseError {
    /// The file.
    pub file: String,
    /// The 1-based line (0: the file as a whole).
    pub line: usize,
    /// What was wrong, and what was expected.
    pub message: String,
}

impl ParseError {
    pub(crate) fn new(file: &str, line: usize, message: impl Into<String>) -> Self {
        ParseError {
            file: file.to_owned(),
            line,
            message: message.into(),
        }
    }

    pub(crate) fn from_history(file: &str, error: HistoryError) -> Self {
        ParseError::new(file, error.line.unwrap_or(0), error.message)
    }
}

/// Why a history file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("{file}: {source}")]
    Io {
        /// The file.
        file: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is malformed.
    #[error(transparent)]
    Parse(#[from] ParseError),
}

/// Reads and parses `path`, in `format` or else the detected one.
pub fn load(path: &Path, format: Option<Format>) -> Result<History, LoadError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
        file: file.clone(),
        source,
    })?;
    let format = format.unwrap_or_else(|| Format::detect(path, &text));
    Ok(format.parse(&file, &text)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_format_by_extension_then_first_line() {
        assert_eq!(
            Format::detect(Path::new("a.edn"), "{:x 1}"),
            Format::KnossosEdn
        );
        assert_eq!(
            Format::detect(Path::new("a.log"), "\n  {\"process\":1}"),
            Format::Jsonl
        );
        assert_eq!(
            Format::detect(Path::new("a.log"), "INFO  jepsen"),
            Format::PorcupineEtcd
        );
    }
}
