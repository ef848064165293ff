//! Decode arbitrary bytes as a bundle; anything accepted must survive
//! encode -> decode unchanged. Run: `cargo fuzz run bundle_decode`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spore::bundle::codec::{DecodeLimits, decode, encode};

fuzz_target!(|data: &[u8]| {
    let limits = DecodeLimits::default();
    if let Ok(b) = decode(data, &limits) {
        let again = decode(&encode(&b), &limits).expect("our own encoding must decode");
        assert_eq!(again, b);
    }
});
