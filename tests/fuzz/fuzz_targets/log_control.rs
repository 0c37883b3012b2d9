//! Any bytes as the payload of a `log/control` event from the server: decoding answers with
//! a control or `None`, never a panic, and a decoded control re-encodes to bytes that decode
//! to the same control (what the host sends is what the device applies).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sentelite_core::log::LogControl;

fuzz_target!(|data: &[u8]| {
    let Some(control) = LogControl::decode(data) else {
        return;
    };
    let mut buf = [0u8; 256];
    let n = control
        .encode(&mut buf)
        .expect("a decoded control re-encodes");
    assert_eq!(
        LogControl::decode(&buf[..n]),
        Some(control),
        "control changed on the round trip"
    );
});
