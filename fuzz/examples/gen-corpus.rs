//! Writes seed corpora into `fuzz/corpus/<target>/` (ignored by git; nothing large is
//! committed):
//!
//! ```text
//! cargo run --manifest-path fuzz/Cargo.toml --example gen-corpus [-- OUT_DIR]
//! ```
//!
//! (`OUT_DIR` defaults to `fuzz/corpus`.)
//!
//! - `config_toml`: `examples/cache.toml` and variations of it (L1 only, entry budgets, async
//!   promotion, inline tables, ...).
//! - `record_decode`: valid records (inline, chunked, compressed, version 1, with labels and
//!   metadata) in the target's "raw" input format, plus "valid"-mode inputs with edits.
//! - `store_open`: damage lists (none, header flips, zeroed pages, truncation, forged numbers).
//!
//! Files are named by content hash, so running it again adds nothing twice.

use std::fs;
use std::path::{Path, PathBuf};

use cache_fuzz::{CTL_LIE, CTL_NOISE, CTL_OTHER_KEY, CTL_RESIGN, CTL_V1, CTL_ZSTD, Damage, ValidInput};
use cache_l2::record::{self, CHUNK_LEN, FLAG_ZSTD, INLINE_MAX, RecordParts};

fn write_seed(dir: &Path, bytes: &[u8]) {
    let name = blake3::hash(bytes).to_hex();
    fs::write(dir.join(&name[..16]), bytes).expect("write a seed");
}

fn dir(root: &Path, target: &str) -> PathBuf {
    let d = root.join(target);
    fs::create_dir_all(&d).expect("create the corpus directory");
    d
}

fn config_seeds(root: &Path, example: &str) -> usize {
    let d = dir(root, "config_toml");
    let mut seeds: Vec<String> = vec![
        example.to_owned(),
        String::new(),
        "[l1]\nmax_bytes = \"1MiB\"\npolicy = \"sieve\"\n".into(),
        "[l1]\nmax_entries = 1000\nshards = 4\nmax_entry_fraction = 0.5\n".into(),
        "[l1]\nmax_bytes = 65536\nauto_admit_max_bytes = \"4KiB\"\n\n[promotion]\nmode = \"async\"\nworkers = 3\nqueue_capacity = 16\n".into(),
        "[l2]\npath = \"x.redb\"\nmax_bytes = \"1MiB\"\neviction = \"fifo\"\non_full = \"reject\"\nwrite_mode = \"async\"\ncompression = { enabled = false, level = 1, min_bytes = 0, max_ratio = 1.0 }\n".into(),
        "[l2]\npath = \"x.redb\"\nmax_bytes = \"64KiB\"\npage_cache_bytes = 0\nsynopsis_false_positive_rate = 0.5\n\n[l2.group_commit]\nmax_ops = 1\nmax_bytes = 1\nmax_delay_ms = 0\nqueue_capacity = 1\nqueue_max_bytes = 1\n".into(),
        "[limits]\nmax_namespaces = 1\nmax_blob_bytes = \"1GiB\"\nmax_metadata_keys = 0\nmax_metadata_bytes = \"64KiB\"\nmax_labels = 64\n".into(),
    ];
    // The example without its [l2] table (an L1-only engine), and with a small budget.
    if let Some(i) = example.find("[l2]") {
        let j = example.find("[limits]").unwrap_or(example.len());
        seeds.push(format!("{}{}", &example[..i], &example[j..]));
    }
    seeds.push(example.replace("\"8GiB\"", "\"1MiB\"").replace("\"256MiB\"", "\"2MiB\""));
    for s in &seeds {
        write_seed(&d, s.as_bytes());
    }
    seeds.len()
}

fn record_seeds(root: &Path) -> usize {
    let d = dir(root, "record_decode");
    let mut n = 0;
    let text = b"the quick brown fox jumps over the lazy dog. ".repeat(1200);
    let noise = cache_fuzz::payload(CHUNK_LEN + INLINE_MAX + 17, b"noise", true);
    let labels: [&[u8]; 3] = [b"tag:users", b"dep:42", b""];
    let cases: Vec<(&str, &[u8], Vec<u8>, bool, &[&[u8]], &[u8])> = vec![
        ("ns", b"k", b"hello".to_vec(), false, &[], b""),
        ("users", b"42", b"{\"name\":\"Ada\"}".to_vec(), false, &labels, b"meta"),
        ("ns", b"inline-max", text[..INLINE_MAX].to_vec(), false, &[], b""),
        ("ns", b"one-chunk+tail", noise.clone(), false, &labels[..1], b"m"),
        ("ns", b"two-chunks", noise[..CHUNK_LEN + INLINE_MAX + 1].to_vec(), false, &[], b""),
        ("big", b"zstd", text.clone(), true, &labels, b"content-type=text/plain"),
        ("big", b"zstd-small", text[..3000].to_vec(), true, &[], b""),
    ];
    for (ns, key, value, compress, labels, meta) in &cases {
        let (stored, flags) = if *compress {
            (zstd::bulk::compress(value, 3).expect("compress"), FLAG_ZSTD)
        } else {
            (value.clone(), 0)
        };
        let parts = RecordParts {
            seq: 7,
            generation: 1,
            flags,
            original_len: value.len() as u64,
            labels,
            meta,
            payload: &stored,
        };
        let e = record::encode(ns, key, &parts);
        let chunks: Vec<&[u8]> = e.chunks().collect();
        write_seed(&d, &cache_fuzz::raw_input(ns, key, &e.entry, &chunks));
        n += 1;
    }
    let v1 = record::encode_v1("ns", b"old", 3, 0, 5, b"hello");
    write_seed(&d, &cache_fuzz::raw_input("ns", b"old", &v1, &[]));
    n += 1;

    // "Valid" mode: the target builds the record itself, then edits it.
    let base = ValidInput {
        ns: b"ns",
        key: b"key",
        payload_len: 100,
        seed: b"abc",
        seq: 1,
        generation: 0,
        labels: vec![b"tag:a"],
        meta: b"meta",
        ..ValidInput::default()
    };
    let mut header_forge = vec![7u8, 6]; // op 7: header field 6 (stored length)
    header_forge.extend_from_slice(&(1u64 << 31).to_le_bytes());
    let mut flip = vec![0u8];
    flip.extend_from_slice(&130u32.to_le_bytes());
    flip.push(0x40);
    let variants: Vec<ValidInput<'_>> = vec![
        base.clone(),
        ValidInput { ctl: CTL_ZSTD, payload_len: 40_000, ..base.clone() },
        ValidInput { ctl: CTL_NOISE, payload_len: 2 * CHUNK_LEN as u32 + 5, ..base.clone() },
        ValidInput { ctl: CTL_NOISE | CTL_ZSTD, payload_len: CHUNK_LEN as u32 + 3000, ..base.clone() },
        ValidInput { ctl: CTL_V1, ..base.clone() },
        ValidInput { ctl: CTL_V1 | CTL_ZSTD, payload_len: 5000, ..base.clone() },
        ValidInput { ctl: CTL_OTHER_KEY, ..base.clone() },
        ValidInput { ctl: CTL_ZSTD | CTL_LIE, payload_len: 5000, lie: 4999, ..base.clone() },
        ValidInput { edits: flip, ..base.clone() },
        ValidInput { ctl: CTL_RESIGN, payload_len: 30_000, edits: header_forge.clone(), ..base.clone() },
        ValidInput { ctl: CTL_RESIGN | CTL_ZSTD, payload_len: 30_000, edits: header_forge, ..base.clone() },
    ];
    for v in &variants {
        write_seed(&d, &v.to_bytes());
        n += 1;
    }
    n
}

fn store_seeds(root: &Path) -> usize {
    let d = dir(root, "store_open");
    let lists: Vec<Vec<(Damage<'_>, bool)>> = vec![
        vec![],
        vec![(Damage::Flip { offset: 0, mask: 1 }, true)],
        vec![(Damage::Flip { offset: 64, mask: 0x80 }, true)],
        vec![(Damage::Set { offset: 9, value: 0xff }, true)],
        vec![(Damage::ZeroPage { offset: 4096 }, false)],
        vec![(Damage::ZeroPage { offset: 1 << 20 }, false)],
        vec![(Damage::Truncate { len: 1 << 20 }, false)],
        vec![(Damage::Truncate { len: 4096 }, true)],
        vec![(Damage::Append(&[0xAB; 64]), false)],
        vec![(Damage::PutU64 { offset: 128, value: u64::MAX }, true)],
        vec![(Damage::PutU32 { offset: 300_000, value: 0xFFFF_FFF0 }, false)],
        vec![(Damage::CopyPage { from: 8192, to: 0 }, true)],
        vec![
            (Damage::Flip { offset: 2_000_003, mask: 0x10 }, false),
            (Damage::Flip { offset: 700_001, mask: 0x01 }, false),
            (Damage::PutU64 { offset: 1_500_000, value: 1 << 40 }, false),
        ],
    ];
    for ops in &lists {
        let mut bytes = Vec::new();
        for (op, head) in ops {
            op.encode(*head, &mut bytes);
        }
        write_seed(&d, &bytes);
    }
    lists.len()
}

fn main() {
    let fuzz_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = std::env::args_os()
        .nth(1)
        .map_or_else(|| fuzz_dir.join("corpus"), PathBuf::from);
    let example = fs::read_to_string(fuzz_dir.join("../examples/cache.toml"))
        .expect("read examples/cache.toml");
    let c = config_seeds(&root, &example);
    let r = record_seeds(&root);
    let s = store_seeds(&root);
    println!(
        "wrote {c} config_toml, {r} record_decode and {s} store_open seeds under {}",
        root.display()
    );
}
