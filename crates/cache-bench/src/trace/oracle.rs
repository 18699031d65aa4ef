//! libCacheSim `oracleGeneral` traces: 24-byte little-endian records
//! `u32 time, u64 obj_id, u32 obj_size, i64 next_access_vtime`, no header.

use std::io::{BufRead, ErrorKind, Read};
use std::path::PathBuf;

use super::{Request, TraceError, io_error};

const RECORD_LEN: usize = 24;

pub(super) struct OracleReader {
    reader: Box<dyn BufRead + Send>,
    record: u64,
    origin: PathBuf,
    done: bool,
}

impl OracleReader {
    pub(super) fn new(reader: Box<dyn BufRead + Send>, origin: PathBuf) -> Self {
        Self {
            reader,
            record: 0,
            origin,
            done: false,
        }
    }
}

impl Iterator for OracleReader {
    type Item = Result<Request, TraceError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let mut buf = [0u8; RECORD_LEN];
        let mut filled = 0;
        while filled < RECORD_LEN {
            match self.reader.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    self.done = true;
                    return Some(Err(io_error(&self.origin, e)));
                }
            }
        }
        self.record += 1;
        match filled {
            0 => {
                self.done = true;
                None
            }
            RECORD_LEN => {
                let mut id = [0u8; 8];
                id.copy_from_slice(&buf[4..12]);
                let mut size = [0u8; 4];
                size.copy_from_slice(&buf[12..16]);
                Some(Ok(Request {
                    key: u64::from_le_bytes(id),
                    size: Some(u32::from_le_bytes(size)),
                }))
            }
            partial => {
                self.done = true;
                Some(Err(TraceError::Parse {
                    path: self.origin.clone(),
                    record: self.record,
                    reason: format!("truncated record: {partial} of {RECORD_LEN} bytes"),
                }))
            }
        }
    }
}
