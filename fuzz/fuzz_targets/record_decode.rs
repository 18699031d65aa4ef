//! `record_decode`: `cache_l2::record::verify_entry` + `assemble` on arbitrary and on
//! valid-then-damaged records. Never panics; a decoded value has the header's original length;
//! an intact record decodes to exactly its value; a changed (unsigned) record, or one read under
//! another key, never decodes. Input format: `cache_fuzz::record_decode`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    cache_fuzz::record_decode(data);
});
