//! The oracle of the kill cycles: from the child threads' logs, what each key may hold after the
//! crash, and the check of a reopened store against it.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::path::Path;

use cache_l2::Store;

use super::{Evidence, KEYS, NS, Op, THREADS, decode, key_bytes, log_path, show};

/// Counts over a run, printed at its end (`--nocapture`) to show what the cycles exercised.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    acked_puts: u64,
    acked_deletes: u64,
    in_flight: u64,
    checks: u32,
    /// Keys found holding their last acknowledged version.
    last_acked: u64,
    /// Keys found holding the version of a put in flight at the kill.
    in_flight_landed: u64,
    misses: u64,
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "acknowledged {} puts and {} deletes, {} in flight at the kills; {} checks of {KEYS} \
             keys found {} last-acknowledged values, {} in-flight puts landed, {} misses",
            self.acked_puts,
            self.acked_deletes,
            self.in_flight,
            self.checks,
            self.last_acked,
            self.in_flight_landed,
            self.misses
        )
    }
}

/// Per key, what a get may return after the next crash besides a miss.
#[derive(Debug, Default)]
pub(crate) struct Oracle {
    keys: HashMap<u16, Allowed>,
}

#[derive(Debug, Default)]
struct Allowed {
    /// The last acknowledged put's version (unless a delete was acknowledged after it), and
    /// versions of puts in flight at a kill since.
    versions: BTreeSet<u64>,
    /// Versions of puts in flight at a kill (a subset of `versions`), for the tally.
    in_flight: BTreeSet<u64>,
    /// The key's latest log lines, for failure messages.
    history: VecDeque<String>,
}

impl Allowed {
    fn note(&mut self, line: String) {
        if self.history.len() == 6 {
            self.history.pop_front();
        }
        self.history.push_back(line);
    }
}

impl Oracle {
    /// Applies the logs of cycle `cycle`. A line without its newline was cut by the kill: a cut
    /// `begin` means the store was not called yet, a cut `ack` leaves its operation in flight.
    pub(crate) fn replay(&mut self, dir: &Path, cycle: u32, tally: &mut Tally) {
        for thread in 0..THREADS {
            let path = log_path(dir, cycle, thread);
            // Missing if the child was killed before its threads started.
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let mut in_flight: Option<(Op, u16, u64)> = None;
            for line in text.split_inclusive('\n').filter(|l| l.ends_with('\n')) {
                let line = line.trim_end();
                let parsed = parse_log_line(line);
                let bad = || format!("{}: line {line:?} breaks the log's order", path.display());
                let key = match parsed {
                    Some(LogLine::Begin(op, key, version)) if in_flight.is_none() => {
                        in_flight = Some((op, key, version));
                        key
                    }
                    Some(LogLine::Ack(key, version)) => {
                        let (op, k, v) = in_flight.take().unwrap_or_else(|| panic!("{}", bad()));
                        assert_eq!((k, v), (key, version), "{}", bad());
                        let allowed = self.keys.entry(key).or_default();
                        allowed.versions.clear();
                        allowed.in_flight.clear();
                        if op == Op::Put {
                            allowed.versions.insert(version);
                            tally.acked_puts += 1;
                        } else {
                            tally.acked_deletes += 1;
                        }
                        key
                    }
                    _ => panic!("{}", bad()),
                };
                let shown = match parsed {
                    Some(LogLine::Begin(Op::Put, _, v)) => format!("begin put {}", show(v)),
                    Some(LogLine::Begin(Op::Delete, _, v)) => format!("begin delete {}", show(v)),
                    Some(LogLine::Ack(_, v)) => format!("ack {}", show(v)),
                    None => unreachable!("a malformed line panicked above"),
                };
                self.keys.entry(key).or_default().note(shown);
            }
            // TODO(labels): when `Store` gains label invalidation, a label invalidation in
            // flight here acts as a delete in flight of every key carrying the label (nothing
            // to add: a miss is always allowed), and an acknowledged one clears `versions` of
            // every such key, as an acknowledged delete does above. See `pick_op`.
            if let Some((op, key, version)) = in_flight {
                tally.in_flight += 1;
                if op == Op::Put {
                    let allowed = self.keys.entry(key).or_default();
                    allowed.versions.insert(version);
                    allowed.in_flight.insert(version);
                }
            }
        }
    }

    /// Checks every key of the reopened `store`; what it holds is then the state the next cycle
    /// starts from (the store is closed cleanly after the check, so it is durable).
    pub(crate) fn check(&mut self, store: &Store, cx: &Evidence, tally: &mut Tally) {
        tally.checks += 1;
        for key in 0..KEYS {
            let allowed = self.keys.entry(key).or_default();
            let got = store.get(NS, &key_bytes(key)).unwrap();
            let Some(got) = got else {
                tally.misses += 1;
                allowed.versions.clear();
                allowed.in_flight.clear();
                continue;
            };
            let found = match decode(&got) {
                Some((k, v)) if k == key && allowed.versions.contains(&v) => {
                    if allowed.in_flight.contains(&v) {
                        tally.in_flight_landed += 1;
                    } else {
                        tally.last_acked += 1;
                    }
                    allowed.versions = BTreeSet::from([v]);
                    allowed.in_flight.clear();
                    continue;
                }
                Some((k, v)) if k == key => format!(
                    "version {}, neither the last acknowledged nor in flight (replaced or deleted)",
                    show(v)
                ),
                Some((k, v)) => format!("key {k}'s value of version {} (another key's)", show(v)),
                None => format!("{} bytes this test never wrote", got.len()),
            };
            let versions: Vec<String> = allowed.versions.iter().map(|&v| show(v)).collect();
            panic!(
                "seed {}, cycle {}, key {key}: found {found}; allowed: a miss or version(s) \
                 {versions:?} (versions read cycle.operation); the key's last log lines: {:#?}; \
                 store and logs kept in {}",
                cx.seed,
                cx.cycle,
                allowed.history,
                cx.path().display()
            );
        }
        let corrupt = store.stats().corrupt_records;
        assert_eq!(
            corrupt,
            0,
            "seed {}, cycle {}: {corrupt} records failed verification after a kill; store and \
             logs kept in {}",
            cx.seed,
            cx.cycle,
            cx.path().display()
        );
    }
}

/// A whole line of a child thread's log.
#[derive(Debug, Clone, Copy)]
enum LogLine {
    /// `begin put|del <key> <version>`: the thread is about to call the store.
    Begin(Op, u16, u64),
    /// `ack <key> <version>`: the call returned.
    Ack(u16, u64),
}

fn parse_log_line(line: &str) -> Option<LogLine> {
    let fields: Vec<&str> = line.split(' ').collect();
    match fields[..] {
        ["begin", op, key, version] => {
            let op = match op {
                "put" => Op::Put,
                "del" => Op::Delete,
                _ => return None,
            };
            Some(LogLine::Begin(op, key.parse().ok()?, version.parse().ok()?))
        }
        ["ack", key, version] => Some(LogLine::Ack(key.parse().ok()?, version.parse().ok()?)),
        _ => None,
    }
}
