//! Model-based property test of the whole engine: random sequences of puts (with tags,
//! dependencies, TTLs, stale windows, idle timeouts, CAS versions and every admission), gets,
//! `exists`, every invalidation, namespace flushes, clock advances, close-and-reopen and clear,
//! checked against a plain map.
//!
//! Every result is compared with the model: a get's bytes, staleness, version and labels;
//! `exists`' three-valued answer; every invalidation's count; every put's CAS verdict. After
//! every step `validate()` checks both tiers' invariants and the L1 byte budget is checked.
//! L1 is small (entries are evicted all the time) and L2 large (it never evicts), so the model
//! can say exactly what must be found.

#![expect(
    clippy::option_option,
    clippy::cast_possible_truncation,
    clippy::too_many_lines,
    reason = "a test model: None / Some(None) / Some(Some(left)) reads plainly here; values are \
              arbitrary bytes; the step loop reads best as one match"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use cache_core::{
    Admission, Cascade, Clock, Config, Error, L2Options, ManualClock, Policy, Presence, Put,
    TieredCache,
};
use proptest::prelude::*;

const NAMESPACES: [&str; 2] = ["a", "b"];
const KEYS: [&[u8]; 6] = [b"a1", b"a2", b"ab", b"b1", b"b2", b"c"];
const PREFIXES: [&[u8]; 4] = [b"a", b"ab", b"b", b""];
const TAGS: [&[u8]; 3] = [b"t0", b"t1", b"t2"];
/// Dependencies: the keys themselves (for cascades) and an outside source.
const DEPS: [&[u8]; 4] = [b"a1", b"b1", b"c", b"src"];

#[derive(Debug, Clone)]
struct PutOp {
    ns: usize,
    key: usize,
    len: usize,
    tags: Vec<usize>,
    deps: Vec<usize>,
    ttl: Option<u64>,
    swr: Option<u64>,
    idle: Option<u64>,
    version: Option<u64>,
    admission: usize,
}

#[derive(Debug, Clone)]
enum Op {
    Put(PutOp),
    Get(usize, usize),
    Exists(usize, usize),
    InvalidateKey(usize, usize),
    InvalidatePrefix(usize, usize),
    InvalidateTags(usize, Vec<usize>),
    InvalidateDeps(usize, Vec<usize>, bool),
    Flush(usize),
    Advance(u64),
    Reopen,
    Clear,
}

fn op() -> impl Strategy<Value = Op> {
    let put = (
        (0..2usize, 0..6usize, 0..3000usize),
        proptest::collection::vec(0..3usize, 0..3),
        proptest::collection::vec(0..4usize, 0..3),
        (
            proptest::option::of(1..120u64),
            proptest::option::of(0..60u64),
            proptest::option::of(1..80u64),
        ),
        (proptest::option::of(0..5u64), 0..3usize),
    )
        .prop_map(
            |((ns, key, len), tags, deps, (ttl, swr, idle), (version, admission))| {
                Op::Put(PutOp {
                    ns,
                    key,
                    len,
                    tags,
                    deps,
                    ttl,
                    swr,
                    idle,
                    version,
                    admission,
                })
            },
        );
    prop_oneof![
        6 => put,
        6 => (0..2usize, 0..6usize).prop_map(|(n, k)| Op::Get(n, k)),
        2 => (0..2usize, 0..6usize).prop_map(|(n, k)| Op::Exists(n, k)),
        1 => (0..2usize, 0..6usize).prop_map(|(n, k)| Op::InvalidateKey(n, k)),
        1 => (0..2usize, 0..4usize).prop_map(|(n, p)| Op::InvalidatePrefix(n, p)),
        1 => (0..2usize, proptest::collection::vec(0..3usize, 1..3))
            .prop_map(|(n, t)| Op::InvalidateTags(n, t)),
        1 => (0..2usize, proptest::collection::vec(0..4usize, 1..3), any::<bool>())
            .prop_map(|(n, d, t)| Op::InvalidateDeps(n, d, t)),
        1 => (0..2usize).prop_map(Op::Flush),
        3 => (1..50u64).prop_map(Op::Advance),
        1 => Just(Op::Reopen),
        1 => Just(Op::Clear),
    ]
}

/// An entry as the model knows it.
#[derive(Debug, Clone)]
struct Entry {
    value: Vec<u8>,
    tags: BTreeSet<Vec<u8>>,
    deps: BTreeSet<Vec<u8>>,
    version: Option<u64>,
    expires: Option<u64>,
    swr: u64,
    idle: Option<u64>,
    last_access: u64,
}

impl Entry {
    /// `None` if it may not be served at `now`, else `Some(stale window left)`.
    fn serve(&self, now: u64) -> Option<Option<u64>> {
        let idle = self.idle.is_some_and(|i| now >= self.last_access + i);
        match self.expires {
            Some(at) if now >= at + self.swr => None,
            _ if idle => None,
            Some(at) if now >= at => Some(Some(at + self.swr - now)),
            _ => Some(None),
        }
    }
}

type Model = BTreeMap<(usize, Vec<u8>), Entry>;

fn config(dir: &tempfile::TempDir) -> Config {
    let mut config = Config::from_toml_str(
        "[l1]\nmax_bytes = \"48KiB\"\nshards = 2\n[limits]\nmax_namespaces = 4",
    )
    .unwrap();
    let mut l2 = L2Options::new(dir.path().join("l2.redb"));
    l2.max_bytes = bytesize::ByteSize::mib(64);
    config.l2 = Some(l2);
    config
}

fn value(op: &PutOp, now: u64) -> Vec<u8> {
    let seed = (op.ns * 7 + op.key * 13) as u64 ^ now;
    (0..op.len)
        .map(|i| (seed as usize + i * 31) as u8)
        .collect()
}

fn check(cache: &TieredCache) {
    cache.validate().unwrap();
    let s = cache.stats();
    assert!(
        s.l1_bytes <= s.l1_max_bytes,
        "L1 holds {} bytes, over its {}",
        s.l1_bytes,
        s.l1_max_bytes
    );
    let l2 = s.l2.expect("an L2");
    assert!(l2.footprint_bytes <= l2.footprint_limit);
}

/// Removes from the model what the engine must remove, returning the count it must report.
fn remove_where(
    model: &mut Model,
    ns: usize,
    pred: impl Fn(&[u8], &Entry) -> bool,
) -> Vec<Vec<u8>> {
    let keys: Vec<Vec<u8>> = model
        .iter()
        .filter(|((n, k), e)| *n == ns && pred(k, e))
        .map(|((_, k), _)| k.clone())
        .collect();
    for k in &keys {
        model.remove(&(ns, k.clone()));
    }
    keys
}

fn run(ops: &[Op]) {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000_000));
    let cfg = config(&dir);
    let mut cache = Some(TieredCache::open_with_clock(&cfg, clock.clone()).unwrap());
    let mut model = Model::new();
    for (step, op) in ops.iter().enumerate() {
        let c = cache.as_ref().unwrap();
        let now = clock.now();
        match op {
            Op::Put(p) => {
                let mut policy = Policy::new()
                    .l1_admission(
                        [Admission::Always, Admission::Auto, Admission::Never][p.admission],
                    )
                    .priority((p.len % 3) as u8);
                if let Some(t) = p.ttl {
                    policy = policy.ttl_ms(t);
                }
                if let Some(w) = p.swr {
                    policy = policy.stale_while_revalidate_ms(w);
                }
                if let Some(i) = p.idle {
                    policy = policy.idle_ttl_ms(i);
                }
                if let Some(v) = p.version {
                    policy = policy.version(v);
                }
                let bytes = value(p, now);
                let mut put = Put::new(bytes.clone()).policy(policy);
                for &t in &p.tags {
                    put = put.tag(TAGS[t]);
                }
                for &d in &p.deps {
                    put = put.depends_on(DEPS[d]);
                }
                let mk = (p.ns, KEYS[p.key].to_vec());
                let existing = model
                    .get(&mk)
                    .filter(|e| e.serve(now).is_some())
                    .and_then(|e| e.version);
                let got = c.put_with(NAMESPACES[p.ns], KEYS[p.key], put);
                match (p.version, existing) {
                    (Some(v), Some(x)) if v <= x => match got {
                        Err(Error::VersionMismatch {
                            existing,
                            attempted,
                        }) => {
                            assert_eq!((existing, attempted), (x, v), "step {step}");
                        }
                        other => panic!("step {step}: expected a version mismatch, got {other:?}"),
                    },
                    _ => {
                        got.unwrap();
                        model.insert(
                            mk,
                            Entry {
                                value: bytes,
                                tags: p.tags.iter().map(|&t| TAGS[t].to_vec()).collect(),
                                deps: p.deps.iter().map(|&d| DEPS[d].to_vec()).collect(),
                                version: p.version,
                                expires: p.ttl.map(|t| now + t),
                                swr: p.swr.unwrap_or(0),
                                idle: p.idle,
                                last_access: now,
                            },
                        );
                    }
                }
            }
            Op::Get(n, k) => {
                let got = c.get(NAMESPACES[*n], KEYS[*k]).unwrap();
                let expected = model.get_mut(&(*n, KEYS[*k].to_vec()));
                match (expected.as_ref().and_then(|e| e.serve(now)), got) {
                    (None, None) => {}
                    (Some(stale), Some(hit)) => {
                        let e = expected.unwrap();
                        assert_eq!(&hit.value[..], &e.value[..], "step {step}: bytes");
                        assert_eq!(hit.stale, stale, "step {step}: staleness");
                        assert_eq!(hit.version(), e.version, "step {step}: version");
                        let tags: BTreeSet<Vec<u8>> =
                            hit.info.tags.iter().map(|t| t.to_vec()).collect();
                        assert_eq!(tags, e.tags, "step {step}: tags");
                        let deps: BTreeSet<Vec<u8>> =
                            hit.info.dependencies.iter().map(|d| d.to_vec()).collect();
                        assert_eq!(deps, e.deps, "step {step}: dependencies");
                        e.last_access = now;
                    }
                    (want, got) => panic!("step {step}: {op:?} expected {want:?}, got {got:?}"),
                }
            }
            Op::Exists(n, k) => {
                let got = c.exists(NAMESPACES[*n], KEYS[*k]).unwrap();
                let live = model
                    .get(&(*n, KEYS[*k].to_vec()))
                    .is_some_and(|e| e.serve(now).is_some());
                let ok = match got {
                    Presence::Present => live,
                    Presence::Absent => !live,
                    Presence::MaybePresent => true,
                };
                assert!(ok, "step {step}: {op:?} answered {got:?}, live = {live}");
            }
            Op::InvalidateKey(n, k) => {
                let expected = u64::from(model.remove(&(*n, KEYS[*k].to_vec())).is_some());
                let got = c.invalidate_key(NAMESPACES[*n], KEYS[*k]).unwrap();
                assert_eq!(got, expected, "step {step}: {op:?}");
            }
            Op::InvalidatePrefix(n, p) => {
                let expected = remove_where(&mut model, *n, |k, _| k.starts_with(PREFIXES[*p]));
                let got = c.invalidate_prefix(NAMESPACES[*n], PREFIXES[*p]).unwrap();
                assert_eq!(got, expected.len() as u64, "step {step}: {op:?}");
            }
            Op::InvalidateTags(n, tags) => {
                let set: BTreeSet<Vec<u8>> = tags.iter().map(|&t| TAGS[t].to_vec()).collect();
                let expected = remove_where(&mut model, *n, |_, e| !e.tags.is_disjoint(&set));
                let tags: Vec<&[u8]> = tags.iter().map(|&t| TAGS[t]).collect();
                let got = c.invalidate_tags(NAMESPACES[*n], &tags).unwrap();
                assert_eq!(got, expected.len() as u64, "step {step}: {op:?}");
            }
            Op::InvalidateDeps(n, deps, transitive) => {
                let mut seen: BTreeSet<Vec<u8>> = deps.iter().map(|&d| DEPS[d].to_vec()).collect();
                let mut frontier = seen.clone();
                let mut expected = 0;
                while !frontier.is_empty() {
                    let removed =
                        remove_where(&mut model, *n, |_, e| !e.deps.is_disjoint(&frontier));
                    expected += removed.len() as u64;
                    if !transitive {
                        break;
                    }
                    frontier = removed
                        .into_iter()
                        .filter(|k| seen.insert(k.clone()))
                        .collect();
                }
                let deps: Vec<&[u8]> = deps.iter().map(|&d| DEPS[d]).collect();
                let cascade = if *transitive {
                    Cascade::Transitive
                } else {
                    Cascade::Direct
                };
                let got = c
                    .invalidate_dependencies(NAMESPACES[*n], &deps, cascade)
                    .unwrap();
                assert_eq!(got, expected, "step {step}: {op:?}");
            }
            Op::Flush(n) => {
                remove_where(&mut model, *n, |_, _| true);
                c.invalidate_namespace(NAMESPACES[*n]).unwrap();
            }
            Op::Advance(ms) => clock.advance(*ms),
            Op::Reopen => {
                drop(cache.take());
                cache = Some(TieredCache::open_with_clock(&cfg, clock.clone()).unwrap());
                // Idle clocks live in memory: a restart restarts them.
                for e in model.values_mut() {
                    e.last_access = now;
                }
            }
            Op::Clear => {
                c.clear().unwrap();
                model.clear();
            }
        }
        check(cache.as_ref().unwrap());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn the_engine_matches_a_map(ops in proptest::collection::vec(op(), 1..60)) {
        run(&ops);
    }
}
