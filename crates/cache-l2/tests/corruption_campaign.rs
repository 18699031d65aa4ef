//! Guards "never a panic, never an abort, never wrong bytes" against damaged store files: a
//! generated campaign, not hand-picked cases. A store of a few thousand records (half of them
//! compressed, many spanning chunks, some with labels) is written and closed; each trial
//! damages a copy (random byte flips, zeroed 4 KiB pages, truncation, appended garbage, forged
//! 8-byte length and count fields, or several at once), then a **child process** opens it,
//! reads every key, writes and reads some more, and closes it. The parent checks that the child
//! exited normally (a panic reaching the caller fails it; an abort kills it), that every value
//! it read was the one written, and that a file the store refused is byte for byte unchanged.
//!
//! CI runs [`DEFAULT_TRIALS`] trials. A longer run (figures in `docs/reliability.md`):
//!
//! ```text
//! CACHE_L2_CAMPAIGN_TRIALS=600 cargo test --release -p cache-l2 --test corruption_campaign \
//!     -- --nocapture
//! ```
//!
//! `CACHE_L2_CAMPAIGN_SEED` picks another sequence of damage.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use cache_l2::{L2Error, L2Options, Store};

/// Trials when `CACHE_L2_CAMPAIGN_TRIALS` is unset.
const DEFAULT_TRIALS: u64 = 160;
/// Records in the generated store.
const RECORDS: u32 = 3000;
/// The environment variable that makes the child test run, naming the damaged file.
const CHILD_ENV: &str = "CACHE_L2_CAMPAIGN_CHILD";

/// xorshift64*: the campaign's only source of randomness, seeded.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn key(i: u32) -> Vec<u8> {
    format!("key-{i:05}").into_bytes()
}

/// The value of record `i`: sizes from 50 bytes to 40 KiB; even records compress (text), odd
/// ones do not (noise).
fn value(i: u32) -> Vec<u8> {
    let mut rng = Rng(u64::from(i).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let len = match i % 10 {
        0..=5 => 50 + rng.below(2000),
        6..=8 => 2_000 + rng.below(18_000),
        _ => 20_000 + rng.below(21_000),
    };
    let len = usize::try_from(len).unwrap();
    if i.is_multiple_of(2) {
        let text = format!("record {i} says hello; ");
        text.as_bytes().iter().copied().cycle().take(len).collect()
    } else {
        (0..len).map(|_| rng.next().to_le_bytes()[3]).collect()
    }
}

fn labels(i: u32) -> Vec<Vec<u8>> {
    if i.is_multiple_of(3) {
        vec![format!("tag-{}", i % 17).into_bytes()]
    } else {
        Vec::new()
    }
}

fn options(path: &Path) -> L2Options {
    let mut o = L2Options::new(path);
    o.max_bytes = bytesize::ByteSize::mib(64);
    o.compression.min_bytes = 64;
    o
}

/// Writes the store the trials damage, closes it cleanly, and returns its bytes.
fn generate(dir: &Path) -> Vec<u8> {
    let path = dir.join("base.redb");
    {
        let store = Store::open(&options(&path)).unwrap();
        for i in 0..RECORDS {
            let l = labels(i);
            let refs: Vec<&[u8]> = l.iter().map(Vec::as_slice).collect();
            store
                .put_with("ns", &key(i), &value(i), format!("m{i}").as_bytes(), &refs)
                .unwrap();
        }
        store.flush().unwrap();
        assert!(store.stats().compressed_insertions > u64::from(RECORDS) / 3);
    }
    std::fs::read(&path).unwrap()
}

/// One kind of damage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Damage {
    FlipBytes,
    ZeroPages,
    Truncate,
    AppendGarbage,
    ForgeFields,
    Mixed,
}

const KINDS: [Damage; 6] = [
    Damage::FlipBytes,
    Damage::ZeroPages,
    Damage::Truncate,
    Damage::AppendGarbage,
    Damage::ForgeFields,
    Damage::Mixed,
];

fn damage(kind: Damage, file: &mut Vec<u8>, rng: &mut Rng) {
    let len = file.len() as u64;
    let at = |rng: &mut Rng, len: u64| usize::try_from(rng.below(len)).unwrap();
    match kind {
        Damage::FlipBytes => {
            for _ in 0..=rng.below(64) {
                let i = at(rng, len);
                file[i] ^= 1 << rng.below(8);
            }
        }
        Damage::ZeroPages => {
            for _ in 0..=rng.below(8) {
                let page = at(rng, len / 4096) * 4096;
                let end = (page + 4096).min(file.len());
                file[page..end].fill(0);
            }
        }
        Damage::Truncate => {
            // Most often within the first pages (redb's header and the tables' roots).
            let to = if rng.below(2) == 0 {
                at(rng, 64 << 10)
            } else {
                at(rng, len)
            };
            file.truncate(to);
        }
        Damage::AppendGarbage => {
            let n = 1 + rng.below(64 << 10);
            file.extend((0..n).map(|_| rng.next().to_le_bytes()[0]));
        }
        Damage::ForgeFields => {
            // Lengths and counts that a reader might trust to size an allocation.
            const FORGED: [u64; 7] = [
                1 << 36,
                u64::MAX / 3,
                u64::MAX,
                0,
                1 << 31,
                u32::MAX as u64,
                1 << 62,
            ];
            for _ in 0..=rng.below(16) {
                // Aligned, as redb's and the record's fields are; the header pages more often.
                let region = if rng.below(3) == 0 { 8192 } else { len };
                let i = (at(rng, region.min(len) - 8) / 8) * 8;
                let v = match rng.below(8) {
                    7 => rng.next(),
                    n => FORGED[usize::try_from(n).unwrap()],
                };
                file[i..i + 8].copy_from_slice(&v.to_le_bytes());
            }
        }
        Damage::Mixed => {
            for _ in 0..2 + rng.below(3) {
                let k = KINDS[usize::try_from(rng.below(5)).unwrap()];
                damage(k, file, rng);
                if file.len() < 16 {
                    break;
                }
            }
        }
    }
}

/// What a child reported.
#[derive(Debug, Default, Clone)]
struct Outcome {
    opened: bool,
    refused: Option<String>,
    hits: u64,
    misses: u64,
    corrupt_records: u64,
    panics_contained: u64,
    degraded: bool,
}

/// The child's side: open the damaged file, read every key, write some, read them back.
/// Prints one `outcome ...` line; any wrong byte fails an assertion (exit code 101).
#[test]
fn campaign_child() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let path = PathBuf::from(path);
    let store = match Store::open(&options(&path)) {
        Ok(s) => s,
        Err(e) => {
            let kind = match e {
                L2Error::Corrupt { .. } => "corrupt",
                L2Error::Foreign { .. } => "foreign",
                L2Error::Io { .. } => "io",
                L2Error::Storage(_) => "storage",
                _ => "other",
            };
            println!("outcome refused {kind}: {e}");
            return;
        }
    };
    let (mut hits, mut misses) = (0u64, 0u64);
    for i in 0..RECORDS {
        match store.get_entry("ns", &key(i)) {
            Ok(Some(e)) => {
                assert_eq!(e.value[..], value(i)[..], "record {i}: wrong value");
                assert_eq!(&e.meta[..], format!("m{i}").as_bytes(), "record {i}: meta");
                let want = labels(i);
                let got: Vec<Vec<u8>> = e.labels.iter().map(|l| l.to_vec()).collect();
                assert_eq!(got, want, "record {i}: labels");
                hits += 1;
            }
            Ok(None) | Err(_) => misses += 1,
        }
    }
    // Writes on a damaged file: overwrites, new keys, a label invalidation, a delete; each may
    // fail, but what reads back must be what was last acknowledged.
    let mut acked: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
    for i in 0..60u32 {
        let k = key(i * 37 % RECORDS);
        let v = format!("rewritten {i}").into_bytes();
        if store.put("ns", &k, &v).is_ok() {
            acked.insert(k, Some(v));
        }
        let fresh = format!("fresh-{i}").into_bytes();
        if store.put("ns", &fresh, &value(i)).is_ok() {
            acked.insert(fresh, Some(value(i)));
        }
    }
    let _ = store.invalidate_labels("ns", &[b"tag-3"]);
    if store.delete("ns", &key(1)).is_ok() {
        acked.insert(key(1), None);
    }
    for (k, v) in &acked {
        if let Ok(Some(got)) = store.get("ns", k) {
            assert_eq!(
                Some(&got[..]),
                v.as_deref(),
                "{k:?}: not the last acknowledged"
            );
        }
    }
    let s = store.stats();
    println!(
        "outcome opened hits={hits} misses={misses} corrupt={} panics={} degraded={}",
        s.corrupt_records, s.panics_contained, s.degraded
    );
    drop(store);
}

fn parse(stdout: &str) -> Option<Outcome> {
    // libtest prints `test campaign_child ... ` before the child's own line.
    let line = stdout
        .lines()
        .find_map(|l| l.find("outcome ").map(|i| &l[i + "outcome ".len()..]))?;
    if let Some(why) = line.strip_prefix("refused ") {
        return Some(Outcome {
            refused: Some(why.split(':').next().unwrap_or(why).to_owned()),
            ..Outcome::default()
        });
    }
    let mut o = Outcome {
        opened: true,
        ..Outcome::default()
    };
    for field in line.split_whitespace().skip(1) {
        let (name, v) = field.split_once('=')?;
        match name {
            "hits" => o.hits = v.parse().ok()?,
            "misses" => o.misses = v.parse().ok()?,
            "corrupt" => o.corrupt_records = v.parse().ok()?,
            "panics" => o.panics_contained = v.parse().ok()?,
            "degraded" => o.degraded = v.parse().ok()?,
            _ => {}
        }
    }
    Some(o)
}

/// One trial: damage, run the child, check. Returns the outcome or why the trial failed.
fn trial(
    dir: &Path,
    base: &[u8],
    seed: u64,
    n: u64,
) -> (Damage, std::result::Result<Outcome, String>) {
    let mut rng = Rng(seed ^ (n + 1).wrapping_mul(0xD134_2543_DE82_EF95));
    let kind = KINDS[usize::try_from(n % KINDS.len() as u64).unwrap()];
    let mut file = base.to_vec();
    damage(kind, &mut file, &mut rng);
    let path = dir.join(format!("trial-{n}.redb"));
    std::fs::write(&path, &file).unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "campaign_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &path)
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let result = if out.status.success() {
        match parse(&stdout) {
            None => Err(format!("trial {n}: no outcome in {stdout}")),
            Some(o) if o.refused.is_some() => {
                let after = std::fs::read(&path).unwrap_or_default();
                if after == file {
                    Ok(o)
                } else {
                    Err(format!("trial {n} ({kind:?}): a refused file was changed"))
                }
            }
            Some(o) => Ok(o),
        }
    } else {
        let tail: String = stderr.lines().rev().take(12).collect::<Vec<_>>().join("\n");
        Err(format!(
            "trial {n} ({kind:?}): the child failed ({}): {tail}",
            out.status
        ))
    };
    let _ = std::fs::remove_file(&path);
    (kind, result)
}

#[test]
fn damaged_files_never_panic_abort_or_return_wrong_bytes() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let trials: u64 = std::env::var("CACHE_L2_CAMPAIGN_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_TRIALS);
    let seed: u64 = std::env::var("CACHE_L2_CAMPAIGN_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5EED_CAFE);
    let dir = tempfile::tempdir().unwrap();
    let base = generate(dir.path());
    // Two children at a time (the machines have two cores).
    let results: Vec<(Damage, std::result::Result<Outcome, String>)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..2u64)
            .map(|w| {
                let (dir, base) = (dir.path(), &base);
                s.spawn(move || {
                    (w..trials)
                        .step_by(2)
                        .map(|n| trial(dir, base, seed, n))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let mut by_kind: BTreeMap<Damage, [u64; 7]> = BTreeMap::new();
    let mut failures = Vec::new();
    for (kind, r) in &results {
        let row = by_kind.entry(*kind).or_default();
        row[0] += 1;
        match r {
            Ok(o) if o.opened => {
                row[1] += 1;
                row[3] += o.hits;
                row[4] += o.corrupt_records;
                row[5] += o.panics_contained;
                row[6] += u64::from(o.degraded);
            }
            Ok(_) => row[2] += 1,
            Err(e) => failures.push(e.clone()),
        }
    }
    println!(
        "corruption campaign: {trials} trials, seed {seed}, base file {} bytes, {RECORDS} records",
        base.len()
    );
    println!("kind            trials  opened  refused  hits      corrupt  panics  degraded");
    for (kind, r) in &by_kind {
        println!(
            "{:<15} {:>6}  {:>6}  {:>7}  {:>8}  {:>7}  {:>6}  {:>8}",
            format!("{kind:?}"),
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            r[5],
            r[6]
        );
    }
    assert!(
        failures.is_empty(),
        "{} of {trials} trials failed:\n{}",
        failures.len(),
        failures.join("\n---\n")
    );
}
