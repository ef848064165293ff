//! Fuzz `Manifest::decode`: it must never panic, and whatever it accepts
//! must re-encode to exactly the input and decode again to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spore::content::Manifest;

/// A small entry limit keeps each run cheap; the limit check itself is on
/// the array head, before any allocation.
const MAX_ENTRIES: usize = 4096;

fuzz_target!(|data: &[u8]| {
    if let Ok(manifest) = Manifest::decode(data, MAX_ENTRIES) {
        let encoded = manifest.encode();
        assert_eq!(encoded, data, "accepted a non-canonical encoding");
        let again = Manifest::decode(&encoded, MAX_ENTRIES).expect("re-decode of own encoding");
        assert_eq!(again, manifest);
        assert_eq!(again.cid(), manifest.cid());
    }
});
