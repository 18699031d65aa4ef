//! `config_toml`: `cache_core::Config::from_toml_str` on arbitrary text (lossy UTF-8), then
//! `TieredCache::open` of every config it accepts (an `[l2]` store is put in a fresh file of a
//! temporary directory) and drop. Nothing may panic; run with `-rss_limit_mb=2048` so an absurd
//! allocation a config asks for is a crash too.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use cache_core::{Config, TieredCache};
use libfuzzer_sys::fuzz_target;

fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| cache_fuzz::scratch_dir("config_toml"))
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(mut config) = Config::from_toml_str(&text) else {
        return;
    };
    let l2_path = scratch().join("l2.redb");
    if let Some(l2) = config.l2.as_mut() {
        let _ = std::fs::remove_file(&l2_path);
        l2.path = l2_path.clone();
    }
    // An Err (e.g. a store option redb refuses) is fine; a panic or an abort is not.
    if let Ok(cache) = TieredCache::open(&config) {
        drop(cache);
    }
    if config.l2.is_some() {
        let _ = std::fs::remove_file(&l2_path);
    }
});
