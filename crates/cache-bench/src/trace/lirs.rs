//! LIRS traces (Jiang & Zhang, SIGMETRICS 2002): one integer key per line; `*` lines are
//! checkpoints and are skipped.

use std::io::BufRead;
use std::path::PathBuf;

use super::{Lines, Request, TraceError, field};

pub(super) struct LirsReader {
    lines: Lines,
}

impl LirsReader {
    pub(super) fn new(reader: Box<dyn BufRead + Send>, origin: PathBuf) -> Self {
        Self {
            lines: Lines::new(reader, origin),
        }
    }
}

impl Iterator for LirsReader {
    type Item = Result<Request, TraceError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let parsed = match self.lines.next_line()? {
                Err(e) => return Some(Err(e)),
                Ok("*") => continue,
                Ok(line) => field::<u64>(Some(line), "key"),
            };
            return Some(
                parsed
                    .map(|key| Request { key, size: None })
                    .map_err(|reason| self.lines.parse_error(reason)),
            );
        }
    }
}
