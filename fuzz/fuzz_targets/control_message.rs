//! Decode arbitrary bytes as a node control message (the CBOR payload of a
//! CL control frame, as `serde_cbor::from_slice` sees it on the wire);
//! anything accepted must survive encode -> decode unchanged.
//! Run: `cargo fuzz run control_message`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spore::node::proto::ControlMessage;

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = serde_cbor::from_slice::<ControlMessage>(data) {
        let bytes = serde_cbor::to_vec(&msg).expect("a decoded message must encode");
        let again: ControlMessage =
            serde_cbor::from_slice(&bytes).expect("our own encoding must decode");
        assert_eq!(again, msg);
    }
});
