//! ARC `.lis` traces (Megiddo & Modha, FAST 2003): `start count ignored reqno` per line, one
//! request per 512-byte block in `start..start + count`.

use std::io::BufRead;
use std::path::PathBuf;

use super::{Lines, Request, TraceError, field};

pub(super) struct ArcReader {
    lines: Lines,
    /// The next block of the current line, and how many blocks of it are left.
    next_block: u64,
    remaining: u64,
}

impl ArcReader {
    pub(super) fn new(reader: Box<dyn BufRead + Send>, origin: PathBuf) -> Self {
        Self {
            lines: Lines::new(reader, origin),
            next_block: 0,
            remaining: 0,
        }
    }
}

impl Iterator for ArcReader {
    type Item = Result<Request, TraceError>;

    fn next(&mut self) -> Option<Self::Item> {
        while self.remaining == 0 {
            let parsed = match self.lines.next_line()? {
                Err(e) => return Some(Err(e)),
                Ok(line) => {
                    let mut fields = line.split_ascii_whitespace();
                    field::<u64>(fields.next(), "start")
                        .and_then(|s| Ok((s, field::<u64>(fields.next(), "count")?)))
                }
            };
            match parsed {
                Ok((start, count)) => {
                    self.next_block = start;
                    self.remaining = count;
                }
                Err(reason) => return Some(Err(self.lines.parse_error(reason))),
            }
        }
        let key = self.next_block;
        self.next_block = self.next_block.wrapping_add(1);
        self.remaining -= 1;
        Some(Ok(Request { key, size: None }))
    }
}
