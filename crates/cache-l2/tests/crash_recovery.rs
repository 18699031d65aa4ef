//! Guards L2's crash semantics: after a crash, a get of a key returns a value acknowledged for
//! that key with no later acknowledged overwrite, delete or invalidation of one of its labels,
//! or a miss; never a replaced, deleted or invalidated value, never another key's bytes.
//!
//! Every test here runs its writer in a child process: this test binary re-executed with
//! `--ignored --exact <child test>`.
//!
//! - **Targeted scenarios** (child `crash_child`): a known sequence that a crash is likely to
//!   undo (a write of a key an undurable commit evicted; a put of a key that an earlier put of
//!   the same batch evicted), ended by exiting without running destructors (no flush, no
//!   close), which redb sees exactly as `kill -9` at that point.
//! - **Kill cycles** (child `killed_child`): four threads put (each put labelled with one of its
//!   thread's two labels), overwrite, delete random keys and invalidate labels (disjoint key and
//!   label sets, so each key's operations are ordered) until the parent kills the child
//!   with SIGKILL at a random moment. The parent then reopens the store, runs `validate()` and
//!   checks every key against the child's logs. One store lives through all the cycles of a run
//!   (each child opens the file its predecessor was killed on), with a budget of 64–128 KiB for
//!   values of 2–10 KiB. Cycles alternate the write mode (sync, async), compression (off, on)
//!   and the mix of operations (fresh inserts that evict; overwrites; inserts and deletes; a
//!   stream of fresh inserts between the checked operations).
//!   Every eighth crash is left unchecked, and the next child is killed 0–60 ms after it starts,
//!   without waiting for it to be ready: that kill may land while it recovers the crashed file.
//!
//! The oracle (`crash_recovery/oracle.rs`). Before calling the store a child thread logs
//! `begin put <key> <version> <label>`, `begin del <key> <version>` or
//! `begin inv <label> <version>`; after the call returns, `ack <key or label> <version>`. Each
//! line is one `write` to the thread's own log
//! file, opened for appending; no fsync is needed, since SIGKILL ends the process, not the
//! kernel, which keeps what was written. The kill can land between a call's return and its `ack`
//! line, so an operation that began and has no ack is *in flight*: it may or may not have
//! happened. After the crash a get of a key may return the version of the key's last acknowledged
//! put if no delete of the key or invalidation of the put's label was acknowledged after it, or
//! the version of a put in flight, or a miss (eviction; a fresh insert that only a non-durable
//! commit held; a delete or invalidation). Values name their key and version and are checked
//! byte for byte. Anything else is a violation: an older acknowledged version, a deleted or
//! invalidated value come back, another key's bytes.
//!
//! `kill_cycles_never_return_replaced_or_deleted_values` runs in `cargo test` (48 cycles, a fixed
//! seed; `CACHE_L2_CRASH_SEED` overrides it). The long variant runs by hand, 500 cycles by
//! default from a seed taken from the clock:
//!
//! ```text
//! cargo test -p cache-l2 --release --test crash_recovery -- --ignored long_crash_cycles --nocapture
//! CACHE_L2_CRASH_CYCLES=5000 CACHE_L2_CRASH_SEED=42 cargo test -p cache-l2 --release \
//!     --test crash_recovery -- --ignored long_crash_cycles --nocapture
//! ```
//!
//! A failure names the seed, the cycle, the key, what was found and what was allowed, and keeps
//! the store's directory (the store file and every cycle's logs) for inspection. The seed fixes
//! the operations and the kill delays; where the kill lands within the child's work is timing,
//! so a seed reproduces a failure statistically, not exactly.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Barrier;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cache_l2::{EvictionPolicy, L2Options, Store, WriteMode};

use oracle::{Oracle, Tally};

// The crate root's submodules resolve next to it, where Cargo would take `oracle.rs` for a test
// of its own.
#[path = "crash_recovery/oracle.rs"]
mod oracle;

/// What the parent tells a child, through its environment.
const SCENARIO: &str = "CACHE_L2_CRASH_CHILD_SCENARIO";
const DIR: &str = "CACHE_L2_CRASH_CHILD_DIR";
const SEED: &str = "CACHE_L2_CRASH_CHILD_SEED";
const CYCLE: &str = "CACHE_L2_CRASH_CHILD_CYCLE";

/// Settings of a run, read by the kill-cycle tests.
const SEED_VAR: &str = "CACHE_L2_CRASH_SEED";
const CYCLES_VAR: &str = "CACHE_L2_CRASH_CYCLES";

/// Kill cycles in `cargo test`; 43 of them kill a child that is past its first operations.
const CI_CYCLES: u32 = 48;
/// The seed of `cargo test` unless `CACHE_L2_CRASH_SEED` is set.
const CI_SEED: u64 = 2;
/// Kill cycles of `long_crash_cycles` unless `CACHE_L2_CRASH_CYCLES` is set.
const LONG_CYCLES: u32 = 500;

/// Writer threads of a killed child, each with its own keys.
const THREADS: u16 = 4;
/// Keys each thread owns; a cycle uses all of them or the first three (see [`Shape`]).
const KEYS_PER_THREAD: u16 = 12;
const KEYS: u16 = THREADS * KEYS_PER_THREAD;
const NS: &str = "crash";
/// The namespace of [`Shape::Stream`]'s fresh keys.
const STREAM_NS: &str = "stream";
/// The line a killed child prints once every thread has had an operation acknowledged.
const READY: &str = "cache-l2 crash child: ready";

// --- Targeted scenarios ---

fn scenario_options(dir: &Path) -> L2Options {
    let mut o = L2Options::new(dir.join("l2.redb"));
    o.max_bytes = bytesize::ByteSize::kib(64);
    o.compression.enabled = false;
    // The scenarios steer which record an insert evicts (the oldest) while reading it to see
    // when it goes; under SIEVE those reads would keep it.
    o.eviction = EvictionPolicy::Fifo;
    o
}

fn run_scenario(scenario: &str, dir: &Path) {
    let status = Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "crash_child", "--nocapture"])
        .env(SCENARIO, scenario)
        .env(DIR, dir)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "child {scenario} failed: {status}");
}

/// The child half of the targeted scenarios. Ignored: they run it in a subprocess (run directly,
/// it has nothing to do).
#[test]
#[ignore = "run by the crash scenarios in a child process"]
fn crash_child() {
    let Ok(scenario) = std::env::var(SCENARIO) else {
        return;
    };
    let dir = PathBuf::from(std::env::var_os(DIR).unwrap());
    let store = Store::open(&scenario_options(&dir)).unwrap();
    let k = key_bytes(0);
    if scenario == "put-after-an-eviction-in-its-own-batch" {
        race_an_eviction_and_a_put(&store, &dir);
        std::process::exit(0);
    }
    // Fresh inserts ride non-durable commits (and, every 1/16 of the budget written, a durable
    // one); keep going until one that was not durable evicts K.
    let mut i = 0u32;
    loop {
        store.put(NS, &k, &value(0, 1, 10_000)).unwrap();
        store.flush().unwrap();
        let mut last_durable = true;
        while store.get(NS, &k).unwrap().is_some() {
            let out = store
                .put("filler", &i.to_le_bytes(), &[0u8; 1_000])
                .unwrap();
            last_durable = out.durable;
            i += 1;
        }
        if !last_durable {
            break;
        }
    }
    match scenario.as_str() {
        "overwrite-after-unsynced-eviction" => {
            let out = store.put(NS, &k, &value(0, 2, 10_000)).unwrap();
            assert!(
                out.durable,
                "a write of a key an undurable commit evicted must be durable"
            );
        }
        "delete-after-unsynced-eviction" => {
            assert!(!store.delete(NS, &k).unwrap(), "K was evicted first");
        }
        other => panic!("unknown scenario {other}"),
    }
    // Crash: no destructor runs, so the store is neither flushed nor closed.
    std::process::exit(0);
}

/// Rounds of: K written, then exactly enough fresh inserts of the same size to make K the oldest
/// record of a full store, all made durable; then, from two threads at once, one more fresh
/// insert (which evicts K) and a put of K. When both land in one batch in that order, one commit
/// removes K's durable record and writes K again, so it must be durable. A round in which both
/// puts are acknowledged on undurable commits ends the scenario at once (the crash then lands
/// where it matters); so do 200 rounds. The version of K acknowledged last is left in the file
/// `acked`.
///
/// Values are 3,000 bytes, under 1/16 of the 64 KiB budget, the most a batch takes: two fit in
/// one batch.
fn race_an_eviction_and_a_put(store: &Store, dir: &Path) {
    const LEN: usize = 3_000;
    // Same length as `NS` and keys as long as K's, so every record accounts the same size.
    const FILLER_NS: &str = "fillr";
    let k = key_bytes(0);
    let mut filler = 0u16;
    let mut put_filler = || {
        filler += 1;
        store
            .put(FILLER_NS, &key_bytes(filler), &value(filler, 0, LEN))
            .unwrap()
    };
    store.put(NS, &k, &value(0, 0, LEN)).unwrap();
    let size = store.stats().live_bytes;
    let capacity = scenario_options(dir).max_bytes.as_u64() / size;
    for round in 0..200u64 {
        let version = 2 * round + 1;
        store.put(NS, &k, &value(0, version, LEN)).unwrap();
        for _ in 1..capacity {
            put_filler();
        }
        store.flush().unwrap();
        let (evicting, rewrite) = std::thread::scope(|s| {
            // While the writer commits (and fsyncs) the flush, the two puts queue up behind it,
            // to form the next batch.
            let flush = s.spawn(|| store.flush().unwrap());
            // Until the flush is queued; it may also be committed already (then the round is
            // merely less likely to race).
            while store.stats().queued_writes == 0 && !flush.is_finished() {}
            let evicting = s.spawn(&mut put_filler);
            // A spin of 0–19 µs varies which put is queued first.
            let spin = Instant::now();
            while spin.elapsed() < Duration::from_micros(round % 20) {}
            let rewrite = store.put(NS, &k, &value(0, version + 1, LEN)).unwrap();
            (evicting.join().unwrap(), rewrite)
        });
        std::fs::write(dir.join("acked"), (version + 1).to_string()).unwrap();
        // Both undurable: they shared a batch (apart, the first would have left K to be
        // rewritten durably). If the fresh insert rode the flush's durable commit instead, K's
        // put may be undurable rightly: K's old record is gone for good, and a crash leaves a
        // miss.
        if !evicting.durable && !rewrite.durable {
            break;
        }
    }
}

#[test]
fn a_put_of_a_key_evicted_in_its_own_batch_survives_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    run_scenario("put-after-an-eviction-in-its-own-batch", dir.path());
    let acked: u64 = std::fs::read_to_string(dir.path().join("acked"))
        .unwrap()
        .parse()
        .unwrap();
    let store = Store::open(&scenario_options(dir.path())).unwrap();
    // A miss is allowed (a fresh insert of K after a durable eviction may be lost), K's
    // replaced value is not.
    let got = store.get(NS, &key_bytes(0)).unwrap().map(|v| decode(&v));
    assert!(
        got.is_none() || got == Some(Some((0, acked))),
        "the crash brought back {got:?} (key, version) after version {acked} of K was \
         acknowledged: an earlier put of its batch had evicted K's durable record, and the \
         batch committed undurably"
    );
    store.validate().unwrap();
}

#[test]
fn an_overwrite_after_an_unsynced_eviction_survives_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    run_scenario("overwrite-after-unsynced-eviction", dir.path());
    let store = Store::open(&scenario_options(dir.path())).unwrap();
    let got = store
        .get(NS, &key_bytes(0))
        .unwrap()
        .expect("the overwrite was durable");
    assert_eq!(
        decode(&got),
        Some((0, 2)),
        "the crash brought back the replaced value"
    );
    store.validate().unwrap();
}

#[test]
fn a_delete_after_an_unsynced_eviction_survives_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    run_scenario("delete-after-unsynced-eviction", dir.path());
    let store = Store::open(&scenario_options(dir.path())).unwrap();
    assert_eq!(
        store.get(NS, &key_bytes(0)).unwrap(),
        None,
        "a deleted key came back"
    );
    store.validate().unwrap();
}

// --- Kill cycles: the parent ---

#[test]
fn kill_cycles_never_return_replaced_or_deleted_values() {
    let seed = env_or(SEED_VAR, CI_SEED);
    run_kill_cycles(seed, CI_CYCLES);
}

/// The long variant: see the file's docs for how to run it.
#[test]
#[ignore = "long: run by hand, see the docs of tests/crash_recovery.rs"]
fn long_crash_cycles() {
    let cycles = env_or(CYCLES_VAR, LONG_CYCLES);
    let clock = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let seed = env_or(SEED_VAR, clock.as_secs() ^ u64::from(clock.subsec_nanos()));
    eprintln!("long_crash_cycles: seed {seed}, {cycles} cycles");
    run_kill_cycles(seed, cycles);
}

/// What the child of one cycle does: cycle `c` runs shape `c / 4 % 4` in both write modes and
/// with compression off and on, so every sixteen cycles run each combination once.
#[derive(Debug, Clone, Copy)]
struct Workload {
    write_mode: WriteMode,
    compression: bool,
    shape: Shape,
}

/// The operations of a cycle. A mistake in the store shows when a kill lands after an operation
/// that must be durable was acknowledged on an undurable commit and before the next durable
/// commit. A correct store makes a durable commit for every such operation, so the window
/// after one wrongly left undurable closes at the next one: each shape makes one kind of them
/// most of the cycle's operations, or (`Stream`) makes them rare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// Twelve keys per thread (48 in all, far more than the budget holds), one operation in six
    /// a delete: mostly fresh inserts that evict, and writes of keys an undurable commit evicted.
    Churn,
    /// Three keys per thread (12 in all, about what the budget holds), one operation in twenty
    /// a delete: mostly overwrites.
    Overwrite,
    /// Three keys per thread, each put and deleted in turn: fresh inserts and deletes.
    Toggle,
    /// Three keys per thread, put in turn (no deletes); before each put, about three puts of
    /// keys of [`STREAM_NS`], each written once and never checked. Those make long runs of
    /// undurable commits, in which a write acknowledged on an undurable commit stays exposed
    /// until the next durable one, and push each checked key to the front of the eviction order
    /// about when it is written again.
    Stream,
}

fn workload(cycle: u32) -> Workload {
    Workload {
        write_mode: if cycle.is_multiple_of(2) {
            WriteMode::Sync
        } else {
            WriteMode::Async
        },
        compression: cycle / 2 % 2 == 1,
        shape: [Shape::Churn, Shape::Overwrite, Shape::Toggle, Shape::Stream]
            [usize::try_from(cycle / 4 % 4).unwrap()],
    }
}

/// The options of every open in cycle `cycle` of the run seeded `seed`. The budget stays the
/// same through a run (a smaller one would leave the reopened store over budget).
fn cycle_options(dir: &Path, seed: u64, cycle: u32) -> L2Options {
    let w = workload(cycle);
    let mut o = L2Options::new(dir.join("l2.redb"));
    o.max_bytes = bytesize::ByteSize::kib(64 + 16 * (seed % 5));
    o.write_mode = w.write_mode;
    o.compression.enabled = w.compression;
    o
}

/// Runs `cycles` kill cycles on one store seeded `seed`, checking the store after each (but
/// every eighth, whose crash the next child recovers from).
fn run_kill_cycles(seed: u64, cycles: u32) {
    let started = Instant::now();
    let mut evidence = Evidence::new(seed);
    let dir = evidence.path().to_owned();
    std::fs::create_dir(dir.join("logs")).unwrap();
    let mut rng = Rng::new(seed);
    let mut oracle = Oracle::default();
    let mut tally = Tally::default();
    for cycle in 0..cycles {
        evidence.cycle = cycle;
        let after_unchecked = cycle > 0 && cycle.is_multiple_of(8);
        let mut child = KilledChild::spawn(&dir, seed, cycle);
        // The delay is the test's input: where the kill lands in the child's work.
        let delay = if after_unchecked {
            rng.below(60)
        } else {
            child.wait_until_ready(seed, cycle);
            20 + rng.below(380)
        };
        std::thread::sleep(Duration::from_millis(delay));
        child.kill(seed, cycle);
        oracle.replay(&dir, cycle, &mut tally);
        let checked = cycle % 8 != 7;
        if checked {
            let store = Store::open(&cycle_options(&dir, seed, cycle)).unwrap();
            store.validate().unwrap();
            oracle.check(&store, &evidence, &mut tally);
        }
    }
    eprintln!(
        "seed {seed}: {cycles} kill cycles in {:.1?}; {tally}",
        started.elapsed()
    );
}

/// A child running `killed_child`, killed (SIGKILL) and reaped when dropped, so that a failing
/// test leaves no writer running.
struct KilledChild(Child);

impl KilledChild {
    fn spawn(dir: &Path, seed: u64, cycle: u32) -> Self {
        let child = Command::new(std::env::current_exe().unwrap())
            .args(["--ignored", "--exact", "killed_child", "--nocapture"])
            .env(DIR, dir)
            .env(SEED, seed.to_string())
            .env(CYCLE, cycle.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        Self(child)
    }

    /// Blocks until the child prints [`READY`]: every thread has had an operation acknowledged.
    fn wait_until_ready(&mut self, seed: u64, cycle: u32) {
        let out = self.0.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        // Reads to the end, so the child never writes into a closed pipe.
        std::thread::spawn(move || {
            let mut ready = false;
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if !ready && line.contains(READY) {
                    ready = true;
                    let _ = tx.send(true);
                }
            }
            if !ready {
                let _ = tx.send(false);
            }
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(true) => {}
            Ok(false) => panic!(
                "seed {seed}, cycle {cycle}: the child ended before it was ready: {:?}",
                self.0.wait()
            ),
            Err(mpsc::RecvTimeoutError::Timeout | mpsc::RecvTimeoutError::Disconnected) => {
                panic!("seed {seed}, cycle {cycle}: the child is not ready after 60 s")
            }
        }
    }

    /// Kills the child with SIGKILL, which must find it running, and reaps it.
    fn kill(&mut self, seed: u64, cycle: u32) {
        let early: Option<ExitStatus> = self.0.try_wait().unwrap();
        assert!(
            early.is_none(),
            "seed {seed}, cycle {cycle}: the child ended before the kill: {early:?} (its \
             stderr is above)"
        );
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }
}

impl Drop for KilledChild {
    fn drop(&mut self) {
        // Killed already, unless the test is failing.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The directory of a run, kept (and named on stderr) if the test fails: the store file and the
/// logs are the evidence.
struct Evidence {
    dir: Option<tempfile::TempDir>,
    seed: u64,
    cycle: u32,
}

impl Evidence {
    fn new(seed: u64) -> Self {
        Self {
            dir: Some(tempfile::tempdir().unwrap()),
            seed,
            cycle: 0,
        }
    }

    fn path(&self) -> &Path {
        self.dir.as_ref().unwrap().path()
    }
}

impl Drop for Evidence {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Some(dir) = self.dir.take()
        {
            eprintln!(
                "crash test failed at seed {}, cycle {}: the store and the logs of every cycle \
                 are kept in {}",
                self.seed,
                self.cycle,
                dir.keep().display()
            );
        }
    }
}

// --- Kill cycles: the child ---

/// The child half of the kill cycles: writes until killed. Ignored: the kill cycles run it in a
/// subprocess (run directly, it has nothing to do).
#[test]
#[ignore = "run by the kill cycles in a child process, which they kill"]
fn killed_child() {
    let Ok(cycle) = std::env::var(CYCLE) else {
        return;
    };
    let cycle: u32 = cycle.parse().unwrap();
    let dir = PathBuf::from(std::env::var_os(DIR).unwrap());
    let seed: u64 = std::env::var(SEED).unwrap().parse().unwrap();
    // A failing thread must end the child (the parent then finds it gone before the kill), not
    // leave the other threads writing as if all were well.
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        std::process::abort();
    }));
    let store = Store::open(&cycle_options(&dir, seed, cycle)).unwrap();
    let ready = Barrier::new(usize::from(THREADS) + 1);
    std::thread::scope(|s| {
        for thread in 0..THREADS {
            let log = OpenOptions::new()
                .create(true)
                .append(true)
                .open(log_path(&dir, cycle, thread))
                .unwrap();
            let rng = Rng::new(seed ^ (u64::from(cycle) << 32) ^ u64::from(thread));
            let (store, ready) = (&store, &ready);
            s.spawn(move || write_until_killed(store, log, thread, cycle, rng, ready));
        }
        ready.wait();
        let mut out = std::io::stdout().lock();
        writeln!(out, "{READY}").unwrap();
        out.flush().unwrap();
    });
}

/// What a child thread does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// A fresh insert or an overwrite of a key, whichever the key's state makes it, with one of
    /// the thread's labels.
    Put,
    /// A delete of a key.
    Delete,
    /// An invalidation of one of the thread's labels: every key whose record carries it.
    InvalidateLabel,
}

/// Labels per thread; label `l` of thread `t` is number `t * LABELS_PER_THREAD + l`.
const LABELS_PER_THREAD: u16 = 2;

/// The bytes of label number `label`.
fn label_bytes(label: u16) -> Vec<u8> {
    format!("label-{label}").into_bytes()
}

/// The next operation on a key whose last operation (by this thread, this cycle) was a put
/// (`put_last`); about one in twenty is a label invalidation instead (none in
/// [`Shape::Toggle`], whose keys alternate put and delete).
fn pick_op(rng: &mut Rng, shape: Shape, put_last: bool) -> Op {
    if shape != Shape::Toggle && rng.below(20) == 0 {
        return Op::InvalidateLabel;
    }
    let delete = match shape {
        Shape::Churn => rng.below(6) == 0,
        Shape::Overwrite => rng.below(20) == 0,
        Shape::Toggle => put_last,
        Shape::Stream => false,
    };
    if delete { Op::Delete } else { Op::Put }
}

/// One child thread: operations on its keys, each logged before and after, forever. Keys come in
/// a loop: under FIFO eviction the next key is then often the oldest, about to be evicted or just
/// evicted, so many puts are writes of keys that a commit of the same batch or an undurable one
/// removed (what a crash is most likely to undo). Except in [`Shape::Stream`] the loop is
/// jittered and one key in four is picked at random.
fn write_until_killed(
    store: &Store,
    mut log: File,
    thread: u16,
    cycle: u32,
    mut rng: Rng,
    ready: &Barrier,
) {
    let shape = workload(cycle).shape;
    let first_key = thread * KEYS_PER_THREAD;
    let n_keys = if shape == Shape::Churn {
        KEYS_PER_THREAD
    } else {
        3
    };
    let mut put_last = vec![false; usize::from(n_keys)];
    let mut streamed = 0u32;
    for n in 1u32.. {
        while shape == Shape::Stream && rng.below(4) != 0 {
            streamed += 1;
            let len = 2048 + usize::try_from(rng.below(8 * 1024)).unwrap();
            let key = (u64::from(thread) << 32 | u64::from(streamed)).to_le_bytes();
            store
                .put(STREAM_NS, &key, &value(thread, u64::from(streamed), len))
                .unwrap_or_else(|e| panic!("put of stream key {streamed}: {e}"));
        }
        let version = (u64::from(cycle) << 32) | u64::from(n);
        let index = if shape == Shape::Stream {
            u64::from(n) % u64::from(n_keys)
        } else if rng.below(4) == 0 {
            rng.below(u64::from(n_keys))
        } else {
            (u64::from(n) + rng.below(3)) % u64::from(n_keys)
        };
        let index = usize::try_from(index).unwrap();
        let key = first_key + u16::try_from(index).unwrap();
        let op = pick_op(&mut rng, shape, put_last[index]);
        let label = thread * LABELS_PER_THREAD
            + u16::try_from(rng.below(u64::from(LABELS_PER_THREAD))).unwrap();
        let target = match op {
            Op::Put => {
                put_last[index] = true;
                log_line(&mut log, &format!("begin put {key} {version} {label}\n"));
                let len = 2048 + usize::try_from(rng.below(8 * 1024)).unwrap();
                store
                    .put_with(
                        NS,
                        &key_bytes(key),
                        &value(key, version, len),
                        b"",
                        &[&label_bytes(label)],
                    )
                    .unwrap_or_else(|e| panic!("put {key} {version}: {e}"));
                key
            }
            Op::Delete => {
                put_last[index] = false;
                log_line(&mut log, &format!("begin del {key} {version}\n"));
                store
                    .delete(NS, &key_bytes(key))
                    .unwrap_or_else(|e| panic!("delete {key} {version}: {e}"));
                key
            }
            Op::InvalidateLabel => {
                log_line(&mut log, &format!("begin inv {label} {version}\n"));
                store
                    .invalidate_labels(NS, &[&label_bytes(label)])
                    .unwrap_or_else(|e| panic!("invalidate label {label} {version}: {e}"));
                label
            }
        };
        log_line(&mut log, &format!("ack {target} {version}\n"));
        if n == 1 {
            ready.wait();
        }
    }
}

/// Appends `line` with one `write` (a short write to a regular file is never split), so a kill
/// leaves whole lines and at most one cut last line.
fn log_line(log: &mut File, line: &str) {
    let n = log.write(line.as_bytes()).unwrap();
    assert_eq!(n, line.len(), "short write to the log");
}

fn log_path(dir: &Path, cycle: u32, thread: u16) -> PathBuf {
    dir.join("logs")
        .join(format!("cycle-{cycle:04}-thread-{thread}.log"))
}

// --- Keys, values, randomness ---

fn key_bytes(key: u16) -> [u8; 2] {
    key.to_le_bytes()
}

/// A value of `len` bytes (at least 10) that names its key and version: `version` (u64 LE),
/// `key` (u16 LE), then bytes derived from both, half of them random and half repeated, so that
/// compression has something to save and a value of another key or version never matches.
fn value(key: u16, version: u64, len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len.max(10) + 16);
    v.extend_from_slice(&version.to_le_bytes());
    v.extend_from_slice(&key.to_le_bytes());
    let mut rng = Rng::new(version ^ (u64::from(key) << 48));
    while v.len() < len {
        let r = rng.next_u64().to_le_bytes();
        v.extend_from_slice(&r);
        v.extend_from_slice(&[r[0]; 8]);
    }
    v.truncate(len.max(10));
    v
}

/// The key and version a stored value names, if its bytes are exactly what [`value`] makes of
/// them.
fn decode(v: &[u8]) -> Option<(u16, u64)> {
    let version = u64::from_le_bytes(v.get(..8)?.try_into().ok()?);
    let key = u16::from_le_bytes(v.get(8..10)?.try_into().ok()?);
    (value(key, version, v.len()) == v).then_some((key, version))
}

/// A version as `cycle.operation`.
fn show(version: u64) -> String {
    format!("{}.{}", version >> 32, version & 0xFFFF_FFFF)
}

fn env_or<T: std::str::FromStr>(var: &str, default: T) -> T {
    match std::env::var(var) {
        Ok(s) => s
            .parse()
            .unwrap_or_else(|_| panic!("{var}={s:?} is not a number")),
        Err(_) => default,
    }
}

/// splitmix64: the crate has no RNG dependency, and the sequences only need to be seeded.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}
