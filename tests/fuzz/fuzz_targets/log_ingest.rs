//! Any bytes as the payload of a log record sent as an event by a sente-lite, Sente or JSON
//! client (`message_from_payload`): first byte picks CBOR Value or JSON text. It must answer
//! with one record or a typed error, never panic, and a record's level is stored by its
//! own name.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sentelite_core::frame::PayloadBuf;
use sentelite_core::log::Level;
use sentelite_host::logs::ingest::{Sender, message_from_payload};

const FROM: Sender<'static> = Sender {
    client_id: "fuzz-1",
    boot_id: 7,
    uid: "conn-1-1",
};

fuzz_target!(|data: &[u8]| {
    let Some((&form, rest)) = data.split_first() else {
        return;
    };
    let payload = if form & 1 == 0 {
        PayloadBuf::Value(rest.to_vec())
    } else {
        let Ok(text) = std::str::from_utf8(rest) else {
            return;
        };
        PayloadBuf::Json(text.to_owned())
    };
    if let Ok(batch) = message_from_payload(&FROM, &payload, 1_000) {
        assert_eq!(batch.records.len(), 1, "one event is one record");
        assert_eq!(batch.client_id, FROM.client_id);
        // Stored by its own name (`warn`), whatever case the client wrote it in.
        let level = &batch.records[0].level;
        let known = Level::from_name(level).map(Level::name);
        assert_eq!(known, Some(level.as_str()), "stored level {level:?}");
    }
});
