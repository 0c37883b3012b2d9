//! Any text as a JSON peer's value: once parsed, JSON → CBOR → JSON → CBOR is a fixed point
//! (integral numbers become integers on the first step, as documented), and the CBOR reaches
//! EDN peers as text that reads back to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sentelite_host::translate::{
    TranslateError, cbor_to_edn, cbor_to_json, edn_to_cbor, json_to_cbor,
};

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let cbor = json_to_cbor(&value);
    let json = match cbor_to_json(&cbor) {
        Ok(json) => json,
        // serde_json's own recursion limit is the same 128, so this should not happen; if
        // it does it must be the typed depth error.
        Err(e) => {
            assert!(matches!(e, TranslateError::TooDeep { .. }), "{e}");
            return;
        }
    };
    assert_eq!(json_to_cbor(&json), cbor, "{value} -> {json}");
    assert_eq!(cbor_to_json(&json_to_cbor(&json)).as_ref(), Ok(&json));
    let edn = cbor_to_edn(&cbor).expect("every JSON value prints as EDN");
    assert_eq!(edn_to_cbor(&edn).as_ref(), Ok(&cbor), "{value} -> {edn}");
});
