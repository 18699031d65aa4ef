//! Trace readers: one parser per format, all streamed (constant memory) and all yielding
//! [`Request`]s. Files ending in `.zst` are decompressed on the fly.
//!
//! Formats (see `../shared/traces/README.md`):
//!
//! | format | file names | a record | key | size |
//! |---|---|---|---|---|
//! | [`Format::Arc`] | `*.lis` | `start count ignored reqno` | `start..start+count`, one request each | none |
//! | [`Format::Lirs`] | `*.trace` (one field per line) | `key`; `*` lines are skipped | `key` | none |
//! | [`Format::Text`] | `*.trace`/`*.txt` (three fields) | `time id size` | `id` | `size` bytes |
//! | [`Format::Oracle`] | `*oracleGeneral*`, `*.bin` | 24 bytes LE: `u32 time, u64 id, u32 size, i64 next` | `id` | `size` bytes |
//!
//! LIRS and text traces share the `.trace` extension, so [`Format::detect`] tells them apart
//! by the number of fields on the first record.

mod arc;
mod lirs;
mod oracle;
mod text;

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// One request of a trace: an object id and, for sized traces, the object's size in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// The object id.
    pub key: u64,
    /// The object's size in bytes, if the trace records sizes.
    pub size: Option<u32>,
}

/// A trace format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// ARC `.lis`: `start count ignored reqno`, expanded to `count` block requests.
    Arc,
    /// LIRS `.trace`: one integer key per line; `*` lines skipped.
    Lirs,
    /// Text `time id size`, space separated, size in bytes.
    Text,
    /// libCacheSim oracleGeneral: 24-byte little-endian binary records.
    Oracle,
}

impl Format {
    /// Whether requests of this format carry object sizes.
    pub fn is_sized(self) -> bool {
        matches!(self, Self::Text | Self::Oracle)
    }

    /// The format of `path`, from its name (ignoring a `.zst` suffix) and, for `.trace` and
    /// other plain-text names, from the number of fields on its first record.
    ///
    /// # Errors
    ///
    /// [`TraceError::Io`] if the file cannot be read; [`TraceError::UnknownFormat`] if neither
    /// the name nor the first record tells.
    pub fn detect(path: &Path) -> Result<Self, TraceError> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let stem = Path::new(name.strip_suffix(".zst").unwrap_or(&name));
        let extension = stem
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase());
        match extension.as_deref() {
            Some("lis") => return Ok(Self::Arc),
            Some("bin") => return Ok(Self::Oracle),
            _ if name.contains("oracleGeneral") => return Ok(Self::Oracle),
            _ => {}
        }
        let mut reader = open_bytes(path)?;
        let mut line = String::new();
        loop {
            line.clear();
            let n = reader.read_line(&mut line).map_err(|e| io_error(path, e))?;
            let trimmed = line.trim();
            if n == 0 {
                break;
            }
            if trimmed.is_empty() || trimmed == "*" {
                continue;
            }
            return match trimmed.split_ascii_whitespace().count() {
                1 => Ok(Self::Lirs),
                3 => Ok(Self::Text),
                4 => Ok(Self::Arc),
                n => Err(TraceError::UnknownFormat {
                    path: path.to_owned(),
                    reason: format!("first record has {n} fields; use --format"),
                }),
            };
        }
        Err(TraceError::UnknownFormat {
            path: path.to_owned(),
            reason: "no record found; use --format".into(),
        })
    }
}

/// Why a trace cannot be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TraceError {
    /// The file cannot be opened or read (or its zstd stream is broken).
    #[error("cannot read trace {path}")]
    Io {
        /// The trace file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A record does not parse.
    #[error("{path}: record {record}: {reason}")]
    Parse {
        /// The trace file.
        path: PathBuf,
        /// 1-based record number (line number for text formats).
        record: u64,
        /// What is wrong.
        reason: String,
    },
    /// The format cannot be told from the file.
    #[error("cannot tell the format of {path}: {reason}")]
    UnknownFormat {
        /// The trace file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

fn io_error(path: &Path, source: std::io::Error) -> TraceError {
    TraceError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Opens `path` for buffered reading, through a zstd decoder if its name ends in `.zst`.
fn open_bytes(path: &Path) -> Result<Box<dyn BufRead + Send>, TraceError> {
    let file = File::open(path).map_err(|e| io_error(path, e))?;
    let zst = path.extension().is_some_and(|e| e == "zst");
    let inner: Box<dyn Read + Send> = if zst {
        Box::new(zstd::Decoder::new(file).map_err(|e| io_error(path, e))?)
    } else {
        Box::new(file)
    };
    Ok(Box::new(BufReader::with_capacity(1 << 16, inner)))
}

/// A streaming reader of one trace file.
pub struct TraceReader {
    inner: Box<dyn Iterator<Item = Result<Request, TraceError>> + Send>,
    format: Format,
}

impl std::fmt::Debug for TraceReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceReader")
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl TraceReader {
    /// Opens `path` in `format`, or in the format [`Format::detect`] finds.
    ///
    /// # Errors
    ///
    /// As [`Format::detect`], and [`TraceError::Io`] if the file cannot be opened.
    pub fn open(path: &Path, format: Option<Format>) -> Result<Self, TraceError> {
        let format = match format {
            Some(f) => f,
            None => Format::detect(path)?,
        };
        let bytes = open_bytes(path)?;
        Ok(Self::from_reader(bytes, format, path.to_owned()))
    }

    /// Reads `format` records from `reader`; `origin` names the source in errors.
    pub fn from_reader(reader: Box<dyn BufRead + Send>, format: Format, origin: PathBuf) -> Self {
        let inner: Box<dyn Iterator<Item = Result<Request, TraceError>> + Send> = match format {
            Format::Arc => Box::new(arc::ArcReader::new(reader, origin)),
            Format::Lirs => Box::new(lirs::LirsReader::new(reader, origin)),
            Format::Text => Box::new(text::TextReader::new(reader, origin)),
            Format::Oracle => Box::new(oracle::OracleReader::new(reader, origin)),
        };
        Self { inner, format }
    }

    /// The format being read.
    pub fn format(&self) -> Format {
        self.format
    }
}

impl Iterator for TraceReader {
    type Item = Result<Request, TraceError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next()
    }
}

/// Reads text records line by line into a reused buffer, skipping blank lines, and numbering
/// lines from 1 for error messages.
struct Lines {
    reader: Box<dyn BufRead + Send>,
    line: String,
    number: u64,
    origin: PathBuf,
}

impl Lines {
    fn new(reader: Box<dyn BufRead + Send>, origin: PathBuf) -> Self {
        Self {
            reader,
            line: String::new(),
            number: 0,
            origin,
        }
    }

    /// The next non-blank line, trimmed, or `None` at the end.
    fn next_line(&mut self) -> Option<Result<&str, TraceError>> {
        loop {
            self.line.clear();
            match self.reader.read_line(&mut self.line) {
                Ok(0) => return None,
                Ok(_) => {
                    self.number += 1;
                    if !self.line.trim().is_empty() {
                        return Some(Ok(self.line.trim()));
                    }
                }
                Err(e) => return Some(Err(io_error(&self.origin, e))),
            }
        }
    }

    fn parse_error(&self, reason: impl Into<String>) -> TraceError {
        TraceError::Parse {
            path: self.origin.clone(),
            record: self.number,
            reason: reason.into(),
        }
    }
}

/// Parses a non-negative integer field, naming it in the error.
fn field<T: std::str::FromStr>(text: Option<&str>, name: &str) -> Result<T, String> {
    let text = text.ok_or_else(|| format!("missing field `{name}`"))?;
    text.parse()
        .map_err(|_| format!("field `{name}` is not a non-negative integer: {text:?}"))
}
