//! Any text into the EDN reader, as a sente-lite or Sente peer's message would arrive: it
//! must never panic or overflow its stack, and whatever it accepts is a value whose trip
//! EDN → CBOR → EDN → CBOR comes back to the same bytes (the host forwards it to devices and
//! other peers without changing it).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sentelite_host::translate::{cbor_to_edn, cbor_to_json, edn_to_cbor, json_to_cbor};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(cbor) = edn_to_cbor(text) else {
        return;
    };
    let edn = cbor_to_edn(&cbor).expect("what the reader builds, the writer prints");
    let again = edn_to_cbor(&edn).expect("printed EDN reads back");
    assert_eq!(again, cbor, "{text:?} -> {edn}");
    assert_eq!(cbor_to_edn(&again).as_deref(), Ok(edn.as_str()));
    // Toward JSON peers: lossy once (keywords, sets, tags), then stable. Collections as map
    // keys are the one refusal.
    if let Ok(json) = cbor_to_json(&cbor) {
        let once = cbor_to_json(&json_to_cbor(&json)).expect("JSON from CBOR converts back");
        assert_eq!(cbor_to_json(&json_to_cbor(&once)).as_ref(), Ok(&once));
    }
});
