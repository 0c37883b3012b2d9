//! Property tests over random [`Item`] trees: every shape the value model has (sets, tagged
//! literals, keywords, integers across the whole CBOR range, floats) survives the trips a
//! payload takes, hostile text never panics the EDN reader, and the depth bound holds the
//! same in every notation.

use std::collections::{BTreeMap, HashSet};

use proptest::prelude::*;

use super::item::{CBOR_INT_MAX, CBOR_INT_MIN, Item};
use super::{
    MAX_DEPTH, TranslateError, cbor, cbor_to_edn, cbor_to_json, edn_to_cbor, json_to_cbor,
};

const NAME: &str = "[a-zA-Z][a-zA-Z0-9.*+!_?<>=-]{0,6}";

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        NAME.prop_map(|s| s),
        (NAME, NAME).prop_map(|(ns, n)| format!("{ns}/{n}")),
    ]
}

/// Tag names other than the ones the model turns into items of their own.
fn tag_name() -> impl Strategy<Value = String> {
    name().prop_filter("a tag of its own", |n| {
        !matches!(n.as_str(), "inst" | "uuid" | "sentelite/bytes")
    })
}

fn int() -> impl Strategy<Value = i128> {
    prop_oneof![
        any::<i64>().prop_map(i128::from),
        any::<u64>().prop_map(i128::from),
        CBOR_INT_MIN..=CBOR_INT_MAX,
        Just(CBOR_INT_MIN),
        Just(CBOR_INT_MAX),
    ]
}

fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>().prop_map(|f| if f.is_nan() { f64::NAN } else { f }),
        (-1e9..1e9f64),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(f64::NAN),
        Just(-0.0),
        Just(1e7),
        Just(1e-3),
    ]
}

fn leaf() -> impl Strategy<Value = Item> {
    prop_oneof![
        Just(Item::Null),
        any::<bool>().prop_map(Item::Bool),
        int().prop_map(Item::Int),
        float().prop_map(Item::Float),
        any::<String>().prop_map(Item::Text),
        "[ -~\t\n\"\\\\]{0,12}".prop_map(Item::Text),
        name().prop_map(Item::Keyword),
        prop::collection::vec(any::<u8>(), 0..24).prop_map(Item::Bytes),
        "[0-9TZ:.-]{1,30}".prop_map(Item::Inst),
        any::<[u8; 16]>().prop_map(Item::Uuid),
    ]
}

/// Keeps the first of each group of equal items (equal as the model decides).
fn distinct(items: Vec<Item>) -> Vec<Item> {
    let mut seen = HashSet::new();
    items
        .into_iter()
        .filter(|i| seen.insert(cbor::equality_key(i)))
        .collect()
}

fn distinct_keys(entries: Vec<(Item, Item)>) -> Vec<(Item, Item)> {
    let mut seen = HashSet::new();
    entries
        .into_iter()
        .filter(|(k, _)| seen.insert(cbor::equality_key(k)))
        .collect()
}

/// Any tree the value model can hold.
fn item() -> impl Strategy<Value = Item> {
    leaf().prop_recursive(6, 96, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Item::Array),
            prop::collection::vec(inner.clone(), 0..6).prop_map(|v| Item::Set(distinct(v))),
            prop::collection::vec((inner.clone(), inner.clone()), 0..6)
                .prop_map(|e| Item::Map(distinct_keys(e))),
            (tag_name(), inner).prop_map(|(n, v)| Item::Tagged(n, Box::new(v))),
        ]
    })
}

/// Trees JSON carries without loss: no keywords, sets, tags, bytes or integral floats, and
/// maps with distinct text keys in the order `serde_json` keeps them (sorted).
fn json_item() -> impl Strategy<Value = Item> {
    let leaf = prop_oneof![
        Just(Item::Null),
        any::<bool>().prop_map(Item::Bool),
        any::<i64>().prop_map(|n| Item::Int(n.into())),
        any::<u64>().prop_map(|n| Item::Int(n.into())),
        any::<f64>()
            .prop_filter("lossless in JSON", |f| f.is_finite() && f.fract() != 0.0)
            .prop_map(Item::Float),
        any::<String>().prop_map(Item::Text),
    ];
    leaf.prop_recursive(6, 96, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Item::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..6).prop_map(
                |m: BTreeMap<String, Item>| {
                    Item::Map(m.into_iter().map(|(k, v)| (Item::Text(k), v)).collect())
                }
            ),
        ]
    })
}

/// EDN-looking noise: the reader's syntax characters, more often than chance gives them.
fn edn_noise() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        r#"[\[\](){}#_:;"\\ ,^'a-z0-9./+\-NMEe{}u]{0,64}"#,
        r#"(#\{|\[|#[a-z]/[a-z] |#:n\{|#_|##|\\u|"|:|[0-9]+|[ ,])*"#,
    ]
}

/// `depth` nested openers (each one level in the model), around one integer.
fn nested(openers: &[u8]) -> String {
    let (mut open, mut close) = (String::new(), String::new());
    for kind in openers {
        let (o, c) = match kind % 6 {
            0 => ("[", "]"),
            1 => ("(", ")"),
            2 => ("{:k ", "}"),
            3 => ("#{", "}"),
            4 => ("#t/g ", ""),
            _ => ("#:ns{:k ", "}"),
        };
        open.push_str(o);
        close.insert_str(0, c);
    }
    format!("{open}1{close}")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn items_survive_cbor_edn_cbor(item in item()) {
        let bytes = cbor::encode(&item);
        let edn = cbor_to_edn(&bytes).expect("every item prints");
        prop_assert_eq!(edn_to_cbor(&edn), Ok(bytes), "{}", edn);
    }

    #[test]
    fn items_reach_json_and_are_stable_after(item in item()) {
        let bytes = cbor::encode(&item);
        // Collections as map keys are the one refusal; a collision of keys is not an error.
        match cbor_to_json(&bytes) {
            Ok(json) => {
                let again = cbor_to_json(&json_to_cbor(&json)).expect("JSON converts back");
                prop_assert_eq!(cbor_to_json(&json_to_cbor(&again)), Ok(again));
            }
            Err(e) => prop_assert!(matches!(e, TranslateError::JsonKey(_)), "{}", e),
        }
    }

    #[test]
    fn json_safe_items_survive_cbor_json_cbor(item in json_item()) {
        let bytes = cbor::encode(&item);
        let json = cbor_to_json(&bytes).expect("JSON-safe items convert");
        prop_assert_eq!(json_to_cbor(&json), bytes);
    }

    #[test]
    fn text_never_panics_the_edn_reader(text in edn_noise()) {
        if let Ok(bytes) = edn_to_cbor(&text) {
            // What the reader accepts prints, and the print reads back to the same bytes.
            let edn = cbor_to_edn(&bytes).expect("what the reader builds, the writer prints");
            let _ = cbor_to_json(&bytes);
            prop_assert_eq!(edn_to_cbor(&edn), Ok(bytes), "{:?} -> {}", text, edn);
        }
    }

    #[test]
    fn nesting_past_max_depth_is_a_typed_error_in_every_notation(
        openers in prop::collection::vec(any::<u8>(), MAX_DEPTH - 3..MAX_DEPTH + 4),
    ) {
        let text = nested(&openers);
        match edn_to_cbor(&text) {
            Ok(bytes) => {
                prop_assert!(openers.len() <= MAX_DEPTH);
                // The same depth in CBOR is accepted too, by both writers.
                let edn = cbor_to_edn(&bytes);
                prop_assert!(edn.is_ok(), "{:?} {}", edn, text);
                prop_assert!(cbor_to_json(&bytes).is_ok());
            }
            Err(e) => {
                prop_assert!(openers.len() > MAX_DEPTH, "{}", e);
                prop_assert_eq!(e, TranslateError::TooDeep { limit: MAX_DEPTH });
            }
        }
    }
}
