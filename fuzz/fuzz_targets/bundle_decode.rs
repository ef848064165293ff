//! Decode arbitrary bytes as a bundle; anything accepted must survive
//! encode -> decode unchanged, `encode_parts` must give the same bytes, and
//! the payload span found from the head alone must be where the decoder
//! finds the payload. Run: `cargo fuzz run bundle_decode`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spore::bundle::codec::{
    DecodeLimits, decode, decode_shared, encode, encode_parts, payload_data_span,
};

fuzz_target!(|data: &[u8]| {
    let limits = DecodeLimits::default();
    if let Ok(b) = decode(data, &limits) {
        let again = decode(&encode(&b), &limits).expect("our own encoding must decode");
        assert_eq!(again, b);
        assert_eq!(encode_parts(&b).to_bytes(), encode(&b));
    }
    let shared = bytes::Bytes::copy_from_slice(data);
    if let (Some(span), Ok(b)) = (payload_data_span(data), decode_shared(&shared, &limits)) {
        let p = b.payload().expect("a decoded bundle has a payload");
        let at = (p.as_ptr() as usize).wrapping_sub(shared.as_ptr() as usize);
        if !p.is_empty() && at < shared.len() {
            assert_eq!(span, (at, p.len()));
        }
    }
});
