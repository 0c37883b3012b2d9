//! A Cancel must not get round `max-pending`. A request slot is free only once its
//! handler has ended.
//!
//! How many handlers run at once is not visible from outside with the built-in handlers
//! (echo ends promptly whether cancelled or not), so this attack checks what is visible: a
//! request+cancel loop gets exactly one End per request, the ones beyond the bound are
//! answered `BUSY`, nothing arrives for a request after its End, memory stays bounded, and
//! once everything has ended both slots are free again.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use sentelite_core::codec;
use sentelite_core::frame::{Cancel, Frame, Payload, Request, Status};
use sentelite_hostile_tests::ws::{HelloFields, Peer, encode};

use crate::target::Target;

/// Request+cancel pairs in the loop.
const ROUNDS: u32 = 2000;

fn echo_request(id: u32, payload: &[u8]) -> Vec<u8> {
    encode(&Frame::Request(Request {
        id,
        event: "sentelite/echo",
        timeout_ms: 0,
        payload: Payload::Bytes(payload),
    }))
}

/// Reads frames until every id in `ids` has its End; returns the statuses. Panics on a
/// second End, or on a Reply after its request's End.
async fn collect_ends(peer: &mut Peer, ids: &HashSet<u32>) -> HashMap<u32, Status> {
    let mut ends = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while ends.len() < ids.len() && Instant::now() < deadline {
        let Some(bytes) = peer.next_frame(Duration::from_secs(5)).await else {
            break;
        };
        match codec::decode(&bytes) {
            Ok(Frame::End(end)) if ids.contains(&end.id) => {
                assert!(
                    ends.insert(end.id, end.status).is_none(),
                    "request {} ended twice",
                    end.id
                );
            }
            Ok(Frame::Reply(reply)) => assert!(
                !ends.contains_key(&reply.id),
                "reply part for request {} after its End",
                reply.id
            ),
            Ok(Frame::Close(close)) => panic!("connection closed: {close:?}"),
            _ => {}
        }
    }
    ends
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_cancel_loop_stays_within_max_pending() {
    let target = Target::start("max-pending = 2\n").await;
    let mut peer = Peer::welcomed(target.addr(), &HelloFields::new("cancel-loop")).await;
    let payload = vec![0x5A; 4096];
    for id in 1..=ROUNDS {
        assert!(peer.feed_bytes(echo_request(id, &payload)).await);
        assert!(peer.feed_bytes(encode(&Frame::Cancel(Cancel { id }))).await);
        if id % 100 == 0 {
            assert!(peer.flush().await, "connection lost at round {id}");
        }
    }
    assert!(peer.flush().await);
    let ids: HashSet<u32> = (1..=ROUNDS).collect();
    let ends = collect_ends(&mut peer, &ids).await;
    assert_eq!(ends.len(), ids.len(), "every request gets exactly one End");
    let count = |status| ends.values().filter(|s| **s == status).count();
    let (busy, ok, cancelled) = (
        count(Status::BUSY),
        count(Status::OK),
        count(Status::CANCELLED),
    );
    eprintln!("cancel loop: {ok} ok, {cancelled} cancelled, {busy} busy of {ROUNDS}");
    assert_eq!(busy + ok + cancelled, ROUNDS as usize, "{ends:?}");
    assert!(busy > 0, "no request answered BUSY with max-pending = 2");

    // Everything has ended: both slots are free again.
    let last = ROUNDS + 1;
    assert!(peer.feed_bytes(echo_request(last, b"a")).await);
    assert!(peer.feed_bytes(echo_request(last + 1, b"b")).await);
    assert!(peer.flush().await);
    let ends = collect_ends(&mut peer, &HashSet::from([last, last + 1])).await;
    assert_eq!(
        ends,
        HashMap::from([(last, Status::OK), (last + 1, Status::OK)]),
        "slots not freed after the loop"
    );
    target.assert_survived("request+cancel loop").await;
}
