//! Any bytes into the host's payload translator, as CBOR, as EDN text and as JSON text: it
//! must never panic or overflow its stack, and whatever it accepts must survive the trips a
//! payload takes between devices (CBOR), sente-lite peers (EDN) and web peers (JSON).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sentelite_host::translate::{cbor_to_edn, cbor_to_json, edn_to_cbor, json_to_cbor};

fuzz_target!(|data: &[u8]| {
    // As CBOR from a device: printed EDN reads back and prints the same again.
    if let Ok(edn) = cbor_to_edn(data) {
        let read = edn_to_cbor(&edn).expect("printed EDN reads back");
        assert_eq!(cbor_to_edn(&read).as_deref(), Ok(edn.as_str()));
    }
    // JSON is lossy once (keywords, bytes, integral floats), then stable.
    if let Ok(json) = cbor_to_json(data) {
        let once = cbor_to_json(&json_to_cbor(&json)).expect("JSON from CBOR converts back");
        assert_eq!(cbor_to_json(&json_to_cbor(&once)).as_ref(), Ok(&once));
    }

    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // As EDN from a sente-lite peer: accepted text is a value that prints and reads back
    // to the same bytes.
    if let Ok(cbor) = edn_to_cbor(text) {
        let edn = cbor_to_edn(&cbor).expect("what the reader builds, the writer prints");
        assert_eq!(edn_to_cbor(&edn).as_ref(), Ok(&cbor), "{text:?} -> {edn}");
        let _ = cbor_to_json(&cbor);
    }
    // As JSON from a web peer.
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(text) {
        let cbor = json_to_cbor(&json);
        let _ = cbor_to_edn(&cbor);
        let _ = cbor_to_json(&cbor);
    }
});
