//! A log batch whose connection closes while the server handles it must be stored under the
//! boot id of that connection's Hello, like every other batch of the connection: the store
//! deduplicates on `(client, boot_id, seq)`, so a batch stored under another boot id is
//! stored again when the client resends it on its next connection (its ack never arrived).
//!
//! Found by the soak (`tests/soak.rs`): after a connection cut, one batch per client was
//! stored twice, the first copy with `boot-id` 0 and the uid of the cut connection. The
//! server read the boot id from the connection registry when the batch handler ran, and a
//! handler that ran after the connection left the registry got 0; the boot id now travels in
//! the handler's context (`RequestContext::boot_id`).

use std::process::Command;
use std::time::Duration;

use sentelite_core::codec;
use sentelite_core::frame::{Frame, Payload, Request};
use sentelite_core::log::{BATCH_EVENT, Level, Record, encode_batch};
use sentelite_integration_tests::ServeProcess;
use sentelite_integration_tests::raw::RawPeer;
use sentelite_integration_tests::serve::sentelite_binary;

/// Batches sent in one burst before the connection is dropped.
const BURST: u32 = 300;

/// One request frame carrying a batch of the single record `seq`.
fn batch_request(seq: u32) -> Vec<u8> {
    let message = format!("record {seq}");
    let record = Record {
        seq,
        time_ms: 1_000 + u64::from(seq),
        level: Level::Warn,
        namespace: "closing",
        id: None,
        message: &message,
        data: &[],
    };
    let mut batch = [0u8; 256];
    let n = encode_batch(None, std::iter::once(record), &mut batch).expect("encode batch");
    let frame = Frame::Request(Request {
        id: seq + 1,
        event: BATCH_EVENT,
        timeout_ms: 10_000,
        payload: Payload::Bytes(&batch[..n]),
    });
    let mut buf = [0u8; 512];
    let n = codec::encode(&frame, &mut buf).expect("encode request");
    buf[..n].to_vec()
}

/// Boot ids of the client's stored records.
fn stored_boot_ids(server: &ServeProcess, client: &str) -> Vec<u64> {
    let out = Command::new(sentelite_binary())
        .args(["logs", "query", "--json", "--limit", "10000", "--server"])
        .arg(format!("http://{}", server.addr))
        .args(["--client", client])
        .output()
        .expect("run sentelite logs query");
    assert!(out.status.success(), "sentelite logs query failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            v["boot-id"].as_u64().expect("a boot id")
        })
        .collect()
}

#[test]
fn a_batch_handled_as_its_connection_closes_keeps_the_connections_boot_id() {
    let server = ServeProcess::start(&[]);
    // The race is the server's: three bursts, each from a client of its own.
    for attempt in 1..=3 {
        let client = format!("closing-{attempt}");
        smol::block_on(async {
            let mut peer = RawPeer::handshake(&server.addr, &client).await;
            for seq in 0..BURST {
                peer.send_raw(batch_request(seq)).await;
            }
            // Gone without a close, as a cut connection is.
            drop(peer);
        });
        // Whatever the server stored of the burst is committed well within this.
        std::thread::sleep(Duration::from_secs(2));
        let boots = stored_boot_ids(&server, &client);
        assert!(!boots.is_empty(), "nothing of burst {attempt} was stored");
        let wrong: Vec<u64> = boots.iter().copied().filter(|&b| b != 1).collect();
        assert!(
            wrong.is_empty(),
            "burst {attempt}: {} of {} stored records carry another boot id than the Hello's 1: {:?}",
            wrong.len(),
            boots.len(),
            &wrong[..wrong.len().min(5)]
        );
    }
}
