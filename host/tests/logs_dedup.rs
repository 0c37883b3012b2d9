//! The log store's batch rows: compact batches stored as received, deduplicated on
//! `(client, boot, seq)` by covered sequence ranges — resends regrouped into other batches,
//! batches partly new, a repeated seq inside one batch, a store reopened (a server restart),
//! records deleted by retention — and queries that decode rows (limits across rows, level
//! counts of mixed rows).

mod support;

use std::sync::Arc;

use sentelite_core::log::{Gap, Level, Record, encode_batch};
use sentelite_host::logs::{Incoming, LogQuery, LogStore, Stored, WireBatch};
use support::TempDir;

/// The message of record `seq`, so a query shows which record it returned.
fn message(seq: u32) -> String {
    format!("record {seq}")
}

fn level_of(seq: u32) -> Level {
    if seq.is_multiple_of(2) {
        Level::Info
    } else {
        Level::Error
    }
}

/// A compact batch of the records `seqs` (in that order) from boot 7 of `client`.
fn wire(client: &str, seqs: &[u32], gap: Option<Gap>) -> WireBatch {
    let messages: Vec<String> = seqs.iter().map(|&s| message(s)).collect();
    let records: Vec<Record<'_>> = seqs
        .iter()
        .zip(&messages)
        .map(|(&seq, message)| Record {
            seq,
            time_ms: 1_000 + u64::from(seq),
            level: level_of(seq),
            namespace: "app.pump",
            id: Some("app.pump/state"),
            message,
            data: &[0xa1, 0x61, 0x6e, 0x05],
        })
        .collect();
    let mut buf = vec![0u8; 64 * 1024];
    let n = encode_batch(gap.as_ref(), records.iter().copied(), &mut buf).unwrap();
    buf.truncate(n);
    wire_of(client, 7, buf)
}

fn wire_of(client: &str, boot_id: u32, payload: Vec<u8>) -> WireBatch {
    WireBatch::checked(
        Arc::from(client),
        Arc::from("uid-1"),
        boot_id,
        5_000,
        payload,
    )
    .unwrap()
}

fn store_all(store: &mut LogStore, batches: &[WireBatch]) -> Vec<Stored> {
    let incoming: Vec<Incoming<'_>> = batches.iter().map(Incoming::Wire).collect();
    store.insert_all(&incoming).unwrap()
}

fn counts(outcomes: &[Stored]) -> Vec<(usize, usize)> {
    outcomes.iter().map(|o| (o.stored, o.duplicates)).collect()
}

/// Every stored sequence number, oldest first.
fn seqs(store: &LogStore) -> Vec<u32> {
    store
        .query(&LogQuery {
            limit: 10_000,
            ..LogQuery::default()
        })
        .unwrap()
        .iter()
        .map(|e| e.seq.unwrap())
        .collect()
}

fn open(dir: &TempDir) -> LogStore {
    std::fs::create_dir_all(&dir.0).unwrap();
    LogStore::open(&dir.0).unwrap()
}

#[test]
fn resent_records_regrouped_into_other_batches_are_stored_once() {
    let dir = TempDir::new("regroup");
    let mut store = open(&dir);
    let first: Vec<u32> = (0..10).collect();
    let second: Vec<u32> = (10..20).collect();
    let outcomes = store_all(
        &mut store,
        &[wire("pump", &first, None), wire("pump", &second, None)],
    );
    assert_eq!(counts(&outcomes), vec![(10, 0), (10, 0)]);
    // After a reconnect the client sends 5..15 and 15..25: the first all known, the second
    // half known, half new.
    let overlap: Vec<u32> = (5..15).collect();
    let partly: Vec<u32> = (15..25).collect();
    let outcomes = store_all(
        &mut store,
        &[wire("pump", &overlap, None), wire("pump", &partly, None)],
    );
    assert_eq!(counts(&outcomes), vec![(0, 10), (5, 5)]);
    let mut expected_fresh = vec![false; 5];
    expected_fresh.extend([true; 5]);
    assert_eq!(outcomes[1].fresh, expected_fresh);
    assert_eq!(seqs(&store), (0..25).collect::<Vec<_>>());
    // The re-encoded part keeps every field of its records.
    let newest = store
        .query(&LogQuery {
            limit: 1,
            ..LogQuery::default()
        })
        .unwrap();
    let e = &newest[0];
    assert_eq!(
        (
            e.client_id.as_str(),
            e.boot_id,
            e.seq,
            e.uid.as_str(),
            e.time_ms,
            e.level.as_str(),
            e.ns.as_str(),
            e.id.as_deref(),
            e.message.as_str(),
        ),
        (
            "pump",
            7,
            Some(24),
            "uid-1",
            1_024,
            "info",
            "app.pump",
            Some("app.pump/state"),
            "record 24",
        )
    );
    assert_eq!(e.data, serde_json::json!({ "n": 5 }));
    let counters = store.counters().unwrap();
    assert_eq!((counters[0].records, counters[0].duplicates), (25, 15));
    // Another client, or another boot of this one, has its own sequence.
    let other_boot = wire_of("pump", 8, wire("pump", &first, None).payload().to_vec());
    let outcomes = store_all(&mut store, &[wire("tank", &first, None), other_boot]);
    assert_eq!(counts(&outcomes), vec![(10, 0), (10, 0)]);
}

#[test]
fn holes_out_of_order_records_and_a_repeat_within_a_batch_are_exact() {
    let dir = TempDir::new("holes");
    let mut store = open(&dir);
    // Two runs with a hole between them (records 5..10 still to come).
    let outcomes = store_all(
        &mut store,
        &[
            wire("pump", &[0, 1, 2, 3, 4], None),
            wire("pump", &[10, 11], None),
        ],
    );
    assert_eq!(counts(&outcomes), vec![(5, 0), (2, 0)]);
    // A batch spanning the hole stores only the hole; one out of order and with a repeat
    // stores each new seq once.
    let outcomes = store_all(
        &mut store,
        &[
            wire("pump", &(3..12).collect::<Vec<_>>(), None),
            wire("pump", &[14, 12, 14, 13, 2], None),
        ],
    );
    assert_eq!(counts(&outcomes), vec![(5, 4), (3, 2)]);
    assert_eq!(outcomes[1].fresh, vec![true, true, false, true, false]);
    assert_eq!(
        seqs(&store),
        vec![0, 1, 2, 3, 4, 10, 11, 5, 6, 7, 8, 9, 14, 12, 13]
    );
}

#[test]
fn deduplication_survives_reopening_the_store() {
    let dir = TempDir::new("reopen");
    let mut store = open(&dir);
    let gap = Gap::of(12, Level::Debug, 1_012);
    store_all(
        &mut store,
        &[
            wire("pump", &(0..10).collect::<Vec<_>>(), None),
            wire("pump", &[13, 14], Some(gap)),
        ],
    );
    drop(store);
    // The server restarted; the client resends what it has not seen acked, regrouped.
    let mut store = open(&dir);
    let outcomes = store_all(
        &mut store,
        &[
            wire("pump", &(8..12).collect::<Vec<_>>(), None),
            wire("pump", &[13, 14, 15], Some(gap)),
        ],
    );
    assert_eq!(counts(&outcomes), vec![(2, 2), (1, 2)]);
    assert!(!outcomes[1].new_gap, "the gap is known too");
    assert_eq!(
        seqs(&store),
        vec![0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 14, 10, 11, 15]
    );
    let counters = store.counters().unwrap();
    assert_eq!(
        (counters[0].records, counters[0].gaps, counters[0].dropped),
        (15, 1, 1)
    );
}

#[test]
fn records_deleted_by_retention_stay_known() {
    let dir = TempDir::new("retained");
    let mut store = open(&dir);
    store_all(
        &mut store,
        &[
            wire("pump", &(0..10).collect::<Vec<_>>(), None),
            wire("pump", &(10..20).collect::<Vec<_>>(), None),
        ],
    );
    // The older batch goes whole and the newer one loses its five oldest records: exactly
    // the limit stays, the newest records.
    assert_eq!(store.retain(None, Some(5)).unwrap(), 15);
    assert_eq!(seqs(&store), (15..20).collect::<Vec<_>>());
    assert_eq!(store.count(&LogQuery::default()).unwrap(), 5);
    assert_eq!(
        store.retain(None, Some(5)).unwrap(),
        0,
        "nothing more to trim"
    );
    // Restarted: the deleted rows no longer show their ranges, the `covered` table must.
    drop(store);
    let mut store = open(&dir);
    let outcomes = store_all(
        &mut store,
        &[wire("pump", &(0..10).collect::<Vec<_>>(), None)],
    );
    assert_eq!(counts(&outcomes), vec![(0, 10)]);
    assert_eq!(store.retain(Some(5_001), None).unwrap(), 5);
    assert_eq!(store.count(&LogQuery::default()).unwrap(), 0);
}

#[test]
fn queries_decode_rows_for_limits_and_mixed_levels() {
    let dir = TempDir::new("rows");
    let mut store = open(&dir);
    store_all(
        &mut store,
        &[
            wire("pump", &(0..10).collect::<Vec<_>>(), None),
            wire("pump", &(10..20).collect::<Vec<_>>(), None),
        ],
    );
    let query = |limit, level: Option<&str>| -> Vec<u32> {
        store
            .query(&LogQuery {
                limit,
                level: level.map(str::to_owned),
                ..LogQuery::default()
            })
            .unwrap()
            .iter()
            .map(|e| e.seq.unwrap())
            .collect()
    };
    assert_eq!(query(3, None), vec![17, 18, 19], "the newest of one row");
    assert_eq!(
        query(12, None),
        (8..20).collect::<Vec<_>>(),
        "across two rows"
    );
    assert_eq!(query(4, Some("error")), vec![13, 15, 17, 19]);
    let count = |level: &str, grep: Option<&str>| {
        store
            .count(&LogQuery {
                level: Some(level.to_owned()),
                grep: grep.map(str::to_owned),
                ..LogQuery::default()
            })
            .unwrap()
    };
    // Rows hold info and error records: counting errors decodes them.
    assert_eq!(count("error", None), 10);
    assert_eq!(count("info", None), 20);
    assert_eq!(count("fatal", None), 0);
    assert_eq!(count("info", Some("record 1")), 11);
}
