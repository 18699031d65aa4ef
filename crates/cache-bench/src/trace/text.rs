//! Text traces: `time id size` per line, space separated, size in bytes.

use std::io::BufRead;
use std::path::PathBuf;

use super::{Lines, Request, TraceError, field};

pub(super) struct TextReader {
    lines: Lines,
}

impl TextReader {
    pub(super) fn new(reader: Box<dyn BufRead + Send>, origin: PathBuf) -> Self {
        Self {
            lines: Lines::new(reader, origin),
        }
    }
}

impl Iterator for TextReader {
    type Item = Result<Request, TraceError>;

    fn next(&mut self) -> Option<Self::Item> {
        let parsed = match self.lines.next_line()? {
            Err(e) => return Some(Err(e)),
            Ok(line) => {
                let mut fields = line.split_ascii_whitespace();
                field::<u64>(fields.next(), "time").and_then(|_| {
                    let key = field::<u64>(fields.next(), "id")?;
                    let size = field::<u32>(fields.next(), "size")?;
                    Ok(Request {
                        key,
                        size: Some(size),
                    })
                })
            }
        };
        Some(parsed.map_err(|reason| self.lines.parse_error(reason)))
    }
}
