//! Requests in flight when the connection goes away, deadlines and cancels: every request
//! ends exactly once.

use sentelite_core::{CloseCode, Duration, Payload, RequestEnd, RequestId, Status};
use sentelite_sim::{LinkConfig, Outcome, Pair, Records, ReplyMode, Side};

use crate::common::*;

fn issue(p: &mut Pair, timeouts: &[Option<u64>]) -> Vec<RequestId> {
    timeouts
        .iter()
        .map(|t| {
            p.client_request("op/slow", Payload::Json("{}"), t.map(ms))
                .expect("open session accepts the request")
        })
        .collect()
}

fn single_outcome(p: &Pair, side: Side, id: RequestId) -> (sentelite_core::Instant, Outcome) {
    let outcomes = p.records().outcomes(side, id);
    assert_eq!(
        outcomes.len(),
        1,
        "request {id} of {side:?} ended {outcomes:?}"
    );
    outcomes[0]
}

#[test]
fn requests_in_flight_fail_closed_once_when_the_transport_drops() {
    for seed in SEEDS {
        let mut p = open_pair(seed, LinkConfig::lossy(ms(10), ms(5), 0.0, seed));
        p.behaviour.replies = ReplyMode::Never;
        let ids = issue(
            &mut p,
            &[None, Some(30_000), Some(60_000), None, Some(45_000)],
        );
        let server_ids: Vec<RequestId> = (0..2)
            .map(|_| p.server_request("srv/ask", None).unwrap().unwrap())
            .collect();
        p.run_for(ms(100));
        assert_eq!(p.client.requests_in_flight(), ids.len());

        p.disconnect_transport();
        let dropped = p.now();
        for &id in &ids {
            assert_eq!(
                single_outcome(&p, Side::Client, id),
                (dropped, Outcome::Ended(RequestEnd::Closed))
            );
        }
        for &id in &server_ids {
            assert_eq!(
                single_outcome(&p, Side::Server(1), id),
                (dropped, Outcome::Ended(RequestEnd::Closed))
            );
        }
        assert_eq!(p.client.requests_in_flight(), 0);

        // Reconnecting, running past every old deadline: nothing ends a second time.
        p.run_for(Duration::from_secs(70));
        assert!(p.client.is_open());
        for &id in &ids {
            single_outcome(&p, Side::Client, id);
        }
        for &id in &server_ids {
            single_outcome(&p, Side::Server(1), id);
        }
        // New requests on the new connection get fresh ids.
        let fresh = issue(&mut p, &[Some(100)]);
        assert!(!ids.contains(&fresh[0]));
        assert_no_protocol_errors(&p);
    }
}

#[test]
fn requests_fail_closed_when_the_peer_goes_silent() {
    for seed in SEEDS {
        let mut p = open_pair(seed, LinkConfig::lossy(ms(10), ms(5), 0.0, seed));
        p.behaviour.replies = ReplyMode::Never;
        let long = issue(&mut p, &[None, Some(20_000), Some(10_000)]);
        let short = issue(&mut p, &[Some(800), Some(1500)]);
        p.cut_link();
        let cut = p.now();
        p.run_for(Duration::from_secs(8));

        let (closed_at, code, _) = closes(&p, Side::Client)[0];
        assert_eq!(code, CloseCode::HEARTBEAT_TIMEOUT);
        for &id in &long {
            assert_eq!(
                single_outcome(&p, Side::Client, id),
                (closed_at, Outcome::Ended(RequestEnd::Closed))
            );
        }
        for (&id, timeout) in short.iter().zip([800, 1500]) {
            assert_eq!(
                single_outcome(&p, Side::Client, id),
                (cut + ms(timeout), Outcome::Ended(RequestEnd::TimedOut)),
                "seed {seed}"
            );
        }
    }
}

#[test]
fn a_cancelled_request_ends_once_and_its_late_end_is_ignored() {
    for seed in SEEDS {
        let mut p = open_pair(seed, LinkConfig::clean(ms(10), seed));
        p.behaviour.replies = ReplyMode::Stream {
            parts: 10,
            interval: ms(50),
        };
        let id = issue(&mut p, &[Some(5000)])[0];
        p.run_for(ms(130));
        let parts_before = p.records().reply_seqs(Side::Client, id).len();
        assert!(parts_before >= 1, "some parts arrived before the cancel");
        let cancelled_at = p.now();
        p.client_cancel(id).unwrap();
        p.run_for(Duration::from_secs(2));

        assert_eq!(
            single_outcome(&p, Side::Client, id),
            (cancelled_at, Outcome::Ended(RequestEnd::Cancelled))
        );
        // The server stopped streaming and answered End(CANCELLED), which arrived late.
        let server_saw_cancel = p
            .records()
            .frames(Side::Server(1))
            .iter()
            .any(|(_, f)| matches!(f.frame(), sentelite_core::Frame::Cancel(c) if c.id == id));
        assert!(server_saw_cancel);
        assert!(p.client.stats().late_replies >= 1);
        let parts = p.records().reply_seqs(Side::Client, id);
        assert!(parts.iter().all(|(at, _)| *at <= cancelled_at));
        assert!(parts.len() < 10);
        // Ignored means ignored: no violation, the same connection, and it still works.
        assert_no_protocol_errors(&p);
        assert!(p.client.is_open(), "seed {seed}");
        assert_eq!(opens(&p, Side::Client).len(), 1, "seed {seed}: reconnected");
        let next = issue(&mut p, &[Some(5000)])[0];
        p.run_for(Duration::from_secs(1));
        assert_eq!(
            single_outcome(&p, Side::Client, next).1,
            Outcome::Completed(sentelite_core::Status::OK),
            "seed {seed}"
        );
    }
}

#[test]
fn unanswered_requests_time_out_on_their_own_deadlines() {
    for seed in SEEDS {
        let mut p = open_pair(seed, LinkConfig::clean(ms(10), seed));
        p.behaviour.replies = ReplyMode::Never;
        let start = p.now();
        let timeouts = [300, 100, 200, 100];
        let ids = issue(&mut p, &timeouts.map(Some));
        assert_eq!(p.client.poll_timeout(), Some(start + ms(100)));
        p.run_for(Duration::from_secs(1));
        for (&id, t) in ids.iter().zip(timeouts) {
            assert_eq!(
                single_outcome(&p, Side::Client, id),
                (start + ms(t), Outcome::Ended(RequestEnd::TimedOut))
            );
        }
        assert!(p.client.is_open(), "timeouts do not close the connection");
    }
}

/// Ids of the server requests delivered to the client.
fn server_requests_seen_by_client(p: &Pair) -> Vec<RequestId> {
    p.records()
        .frames(Side::Client)
        .into_iter()
        .filter_map(|(_, f)| match f.frame() {
            sentelite_core::Frame::Request(r) => Some(r.id),
            _ => None,
        })
        .collect()
}

#[test]
fn a_server_cancel_reaches_the_client_and_ends_the_request_once() {
    for seed in SEEDS {
        let mut p = open_pair(seed, LinkConfig::clean(ms(10), seed));
        let id = p
            .server_request("srv/ask", Some(ms(5000)))
            .unwrap()
            .unwrap();
        p.run_for(ms(50));
        assert_eq!(server_requests_seen_by_client(&p), [id]);
        let cancelled_at = p.now();
        let n = p
            .server_send(|s, _, buf| s.cancel(id, buf))
            .unwrap()
            .unwrap();
        assert!(n > 0, "an open session sends the Cancel");
        p.run_for(ms(50));
        // The client application is told; the server's request ended at the cancel, once.
        let cancels: Vec<_> = p
            .records()
            .frames(Side::Client)
            .into_iter()
            .filter(|(_, f)| matches!(f.frame(), sentelite_core::Frame::Cancel(c) if c.id == id))
            .collect();
        assert_eq!(cancels.len(), 1, "seed {seed}");
        assert_eq!(
            single_outcome(&p, Side::Server(1), id),
            (cancelled_at, Outcome::Ended(RequestEnd::Cancelled))
        );
        // The client answers End anyway (it had started): a late End, ignored quietly.
        p.client_send(|c, _, buf| c.end(id, Status::CANCELLED, Payload::Empty, buf))
            .expect("the client may still end what it was asked");
        p.run_for(Duration::from_secs(6));
        single_outcome(&p, Side::Server(1), id);
        assert_eq!(p.server(1).unwrap().session.stats().late_replies, 1);
        assert!(p.client.is_open());
        assert_no_protocol_errors(&p);
    }
}
