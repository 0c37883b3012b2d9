//! Any text as a sente-lite or Sente client's message: the dialect decoder and the
//! first-message detection must answer with a message or a typed error, never panic or
//! overflow the stack, and the data of a decoded event or publish is a value every other
//! peer can be sent (it prints back as EDN).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sentelite_core::frame::PayloadBuf;
use sentelite_host::dialect::{Dialect, Inbound, decode, detect};
use sentelite_host::translate::payload_to_edn;

fn check(inbound: &Inbound) {
    let data: &PayloadBuf = match inbound {
        Inbound::Event { data, .. } | Inbound::Publish { data, .. } => data,
        _ => return,
    };
    if let Err(e) = payload_to_edn(data) {
        panic!("decoded data does not print as EDN: {e}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for dialect in [Dialect::SenteLite, Dialect::Sente] {
        if let Ok(inbound) = decode(dialect, text) {
            check(&inbound);
        }
    }
    if let Some(dialect) = detect(text) {
        let _ = decode(dialect, text);
    }
});
