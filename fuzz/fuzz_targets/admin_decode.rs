//! Decode arbitrary bytes as an administrative record payload; anything
//! accepted must survive encode -> decode unchanged.
//! Run: `cargo fuzz run admin_decode`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spore::bundle::admin::AdministrativeRecord;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = AdministrativeRecord::decode(data) {
        let again = AdministrativeRecord::decode(&r.encode()).expect("our own encoding must decode");
        assert_eq!(again, r);
    }
});
