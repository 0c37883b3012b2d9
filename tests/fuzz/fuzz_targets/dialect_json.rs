//! Any text as a JSON client's message: the dialect decoder and the first-message detection
//! must answer with a message or a typed error, never panic or overflow the stack, and the
//! data of a decoded event or publish is a value EDN peers can be sent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sentelite_host::dialect::{Dialect, Inbound, decode, detect};
use sentelite_host::translate::payload_to_edn;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(Inbound::Event { data, .. } | Inbound::Publish { data, .. }) =
        decode(Dialect::Json, text)
        && let Err(e) = payload_to_edn(&data)
    {
        panic!("decoded data does not print as EDN: {e}");
    }
    if let Some(dialect) = detect(text) {
        let _ = decode(dialect, text);
    }
});
