//! The oracle of the kill cycles: from the child threads' logs, what each key may hold after the
//! crash, and the check of a reopened store against it.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::Path;

use cache_l2::Store;

use super::{Evidence, KEYS, NS, Op, THREADS, decode, key_bytes, log_path, show};

/// Counts over a run, printed at its end (`--nocapture`) to show what the cycles exercised.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    acked_puts: u64,
    acked_deletes: u64,
    acked_invalidations: u64,
    /// Allowed versions that acknowledged label invalidations ruled out.
    invalidated: u64,
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
            "acknowledged {} puts, {} deletes and {} label invalidations (ruling out {} \
             versions), {} in flight at the kills; {} checks of {KEYS} keys found {} \
             last-acknowledged values, {} in-flight puts landed, {} misses",
            self.acked_puts,
            self.acked_deletes,
            self.acked_invalidations,
            self.invalidated,
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
    /// The last acknowledged put's version (unless a delete of the key or an invalidation of
    /// its label was acknowledged after it), and versions of puts in flight at a kill since;
    /// each with the put's label.
    versions: BTreeMap<u64, u16>,
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
    /// A label invalidation in flight at the kill needs nothing: it acts as a delete in flight
    /// of every key carrying the label, and a miss is always allowed.
    pub(crate) fn replay(&mut self, dir: &Path, cycle: u32, tally: &mut Tally) {
        for thread in 0..THREADS {
            let path = log_path(dir, cycle, thread);
            // Missing if the child was killed before its threads started.
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let mut in_flight: Option<Begin> = None;
            for line in text.split_inclusive('\n').filter(|l| l.ends_with('\n')) {
                let line = line.trim_end();
                let parsed = parse_log_line(line);
                let bad = || format!("{}: line {line:?} breaks the log's order", path.display());
                match parsed {
                    Some(LogLine::Begin(b)) if in_flight.is_none() => {
                        in_flight = Some(b);
                        if b.op != Op::InvalidateLabel {
                            let shown = match b.op {
                                Op::Put => {
                                    format!("begin put {} label {}", show(b.version), b.label)
                                }
                                _ => format!("begin delete {}", show(b.version)),
                            };
                            self.keys.entry(b.target).or_default().note(shown);
                        }
                    }
                    Some(LogLine::Ack(target, version)) => {
                        let b = in_flight.take().unwrap_or_else(|| panic!("{}", bad()));
                        assert_eq!((b.target, b.version), (target, version), "{}", bad());
                        self.acknowledge(b, tally);
                    }
                    _ => panic!("{}", bad()),
                }
            }
            if let Some(b) = in_flight {
                tally.in_flight += 1;
                if b.op == Op::Put {
                    let allowed = self.keys.entry(b.target).or_default();
                    allowed.versions.insert(b.version, b.label);
                    allowed.in_flight.insert(b.version);
                }
            }
        }
    }

    fn acknowledge(&mut self, b: Begin, tally: &mut Tally) {
        if b.op == Op::InvalidateLabel {
            tally.acked_invalidations += 1;
            for allowed in self.keys.values_mut() {
                let before = allowed.versions.len();
                allowed.versions.retain(|_, label| *label != b.target);
                let ruled_out = before - allowed.versions.len();
                if ruled_out > 0 {
                    tally.invalidated += ruled_out as u64;
                    allowed
                        .in_flight
                        .retain(|v| allowed.versions.contains_key(v));
                    allowed.note(format!(
                        "ack invalidate label {} {}",
                        b.target,
                        show(b.version)
                    ));
                }
            }
            return;
        }
        let allowed = self.keys.entry(b.target).or_default();
        allowed.versions.clear();
        allowed.in_flight.clear();
        if b.op == Op::Put {
            allowed.versions.insert(b.version, b.label);
            tally.acked_puts += 1;
        } else {
            tally.acked_deletes += 1;
        }
        allowed.note(format!("ack {}", show(b.version)));
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
                Some((k, v)) if k == key && allowed.versions.contains_key(&v) => {
                    if allowed.in_flight.contains(&v) {
                        tally.in_flight_landed += 1;
                    } else {
                        tally.last_acked += 1;
                    }
                    allowed.versions.retain(|&x, _| x == v);
                    allowed.in_flight.clear();
                    continue;
                }
                Some((k, v)) if k == key => format!(
                    "version {}, neither the last acknowledged nor in flight (replaced, deleted \
                     or invalidated)",
                    show(v)
                ),
                Some((k, v)) => format!("key {k}'s value of version {} (another key's)", show(v)),
                None => format!("{} bytes this test never wrote", got.len()),
            };
            let versions: Vec<String> = allowed.versions.keys().map(|&v| show(v)).collect();
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

/// An operation a child thread began: on key `target` (put, delete) or label `target`
/// (invalidation).
#[derive(Debug, Clone, Copy)]
struct Begin {
    op: Op,
    target: u16,
    version: u64,
    /// A put's label.
    label: u16,
}

/// A whole line of a child thread's log.
#[derive(Debug, Clone, Copy)]
enum LogLine {
    /// `begin put <key> <version> <label>`, `begin del <key> <version>` or
    /// `begin inv <label> <version>`: the thread is about to call the store.
    Begin(Begin),
    /// `ack <key or label> <version>`: the call returned.
    Ack(u16, u64),
}

fn parse_log_line(line: &str) -> Option<LogLine> {
    let fields: Vec<&str> = line.split(' ').collect();
    let begin = |op, target: &str, version: &str, label: &str| {
        Some(LogLine::Begin(Begin {
            op,
            target: target.parse().ok()?,
            version: version.parse().ok()?,
            label: label.parse().ok()?,
        }))
    };
    match fields[..] {
        ["begin", "put", key, version, label] => begin(Op::Put, key, version, label),
        ["begin", "del", key, version] => begin(Op::Delete, key, version, "0"),
        ["begin", "inv", label, version] => begin(Op::InvalidateLabel, label, version, "0"),
        ["ack", target, version] => Some(LogLine::Ack(target.parse().ok()?, version.parse().ok()?)),
        _ => None,
    }
}
