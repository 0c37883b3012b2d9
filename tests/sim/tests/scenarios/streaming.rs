//! Streamed replies with many requests in flight over bad links: each request ends exactly
//! once (its End, its deadline, or the connection's end), and no part arrives after that.

use sentelite_core::{Duration, Frame, Payload, RequestEnd, SendError, Status};
use sentelite_sim::{LinkConfig, Observed, Outcome, Pair, Records, ReplyMode, Side, part_payload};

use crate::common::*;

const PARTS: u32 = 4;

/// Keeps up to 6 requests going for `secs` seconds of fake time, then lets all of them end.
fn churn(p: &mut Pair, secs: u64) {
    p.behaviour.replies = ReplyMode::Stream {
        parts: PARTS,
        interval: ms(15),
    };
    let end = p.now() + Duration::from_secs(secs);
    while p.now() < end {
        while p.client.is_open() && p.client.requests_in_flight() < 6 {
            match p.client_request("op/stream", Payload::Empty, Some(ms(1000))) {
                Ok(_) => {}
                Err(SendError::PendingFull) => break,
                Err(e) => panic!("request refused: {e}"),
            }
        }
        p.run_for(ms(100));
    }
    // Every request has a 1 s deadline: after that long, each has ended one way or another.
    p.run_for(Duration::from_millis(1500));
}

/// Checks every issued request and returns (completed, timed out, closed).
fn check_outcomes(p: &Pair, parts: u32, fifo: bool, label: &str) -> (usize, usize, usize) {
    let (mut completed, mut timed_out, mut closed) = (0, 0, 0);
    let mut gaps = 0u64;
    let all_outcomes = p.records().all_outcomes(Side::Client);
    let all_seqs = p.records().all_reply_seqs(Side::Client);
    let issued = p.records().issued(Side::Client);
    assert!(
        all_outcomes.keys().all(|id| issued.contains(id)),
        "{label}: an end for a request never issued"
    );
    for id in issued {
        let outcomes = all_outcomes.get(&id).map_or(&[][..], |v| &v[..]);
        assert_eq!(
            outcomes.len(),
            1,
            "{label}: request {id} ended {outcomes:?}"
        );
        let (ended_at, outcome) = outcomes[0];
        match outcome {
            Outcome::Completed(Status::OK) => completed += 1,
            Outcome::Ended(RequestEnd::TimedOut) => timed_out += 1,
            Outcome::Ended(RequestEnd::Closed) => closed += 1,
            other => panic!("{label}: request {id} ended as {other:?}"),
        }
        let seqs = all_seqs.get(&id).cloned().unwrap_or_default();
        assert!(
            seqs.iter().all(|(at, _)| *at <= ended_at),
            "{label}: request {id} got a part after its end"
        );
        assert!(seqs.iter().all(|(_, s)| *s < parts));
        if fifo {
            assert!(
                seqs.windows(2).all(|w| w[0].1 < w[1].1),
                "{label}: parts out of order on a FIFO link: {seqs:?}"
            );
        }
        // Recount the gaps the session reports, with the requester's rule: a part is a gap
        // when it is not the next expected one; the expectation never moves backwards.
        let mut expected = 0u32;
        for (_, seq) in &seqs {
            if *seq != expected {
                gaps += 1;
            }
            expected = expected.max(seq + 1);
        }
    }
    assert_eq!(p.client.stats().reply_gaps, gaps, "{label}: gap count");
    assert_eq!(p.client.requests_in_flight(), 0);
    (completed, timed_out, closed)
}

#[test]
fn clean_link_streams_every_part_in_order() {
    for seed in SEEDS {
        let mut p = open_pair(seed, LinkConfig::lossy(ms(10), ms(8), 0.0, seed));
        churn(&mut p, 5);
        let (completed, timed_out, closed) = check_outcomes(&p, PARTS, true, "clean");
        assert!(completed > 50);
        assert_eq!((timed_out, closed), (0, 0));
        let all_seqs = p.records().all_reply_seqs(Side::Client);
        for id in p.records().issued(Side::Client) {
            let seqs: Vec<u32> = all_seqs[&id].iter().map(|(_, s)| *s).collect();
            assert_eq!(seqs, (0..PARTS).collect::<Vec<_>>());
        }
        // Part payloads arrive intact.
        for (_, f) in p.records().frames(Side::Client) {
            if let Frame::Reply(r) = f.frame() {
                assert_eq!(r.payload, Payload::Bytes(&part_payload(r.id, r.seq)));
            }
        }
        assert_eq!(p.client.stats().late_replies, 0);
    }
}

#[test]
fn lossy_link_ends_every_stream_exactly_once() {
    let mut totals = (0, 0, 0);
    for seed in SEEDS {
        let mut p = open_pair(seed, LinkConfig::lossy(ms(15), ms(10), 0.1, seed));
        churn(&mut p, 20);
        let (c, t, x) = check_outcomes(&p, PARTS, true, &format!("lossy seed {seed}"));
        totals = (totals.0 + c, totals.1 + t, totals.2 + x);
        assert_no_protocol_errors(&p);
        // Parts and Ends arriving after a timeout are dropped quietly; they must not cost
        // the connection.
        assert!(p.client.is_open(), "seed {seed}");
        assert_eq!(opens(&p, Side::Client).len(), 1, "seed {seed}: reconnected");
        assert_eq!(x, 0, "seed {seed}: requests ended by a closed connection");
    }
    assert!(
        totals.0 > 0 && totals.1 > 0,
        "both completions and timeouts: {totals:?}"
    );
    assert!(totals.0 > 2 * totals.1, "mostly completions: {totals:?}");
}

#[test]
fn duplicating_reordering_link_ends_every_stream_exactly_once() {
    for seed in SEEDS {
        let link = LinkConfig {
            duplicate: 0.1,
            reorder: true,
            ..LinkConfig::lossy(ms(15), ms(20), 0.05, seed)
        };
        let mut p = pair(seed, link);
        // Reordering may put a duplicate Hello or a ping before the Welcome; the handshake
        // still has to get through eventually.
        let limit = p.now() + Duration::from_secs(60);
        assert!(p.run_until(|p| p.client.is_open(), limit), "seed {seed}");
        // A duplicated Hello arriving after the Welcome is a violation the server rightly
        // closes for (TCP never duplicates); for the streams, start on a connection that
        // opened over an orderly link, then let the trouble begin.
        p.set_link(LinkConfig::lossy(ms(15), ms(20), 0.0, seed));
        p.disconnect_transport();
        let limit = p.now() + Duration::from_secs(10);
        assert!(p.run_until(|p| p.client.is_open(), limit), "seed {seed}");
        p.set_link(link);
        let opened = p.now();
        churn(&mut p, 20);
        let (completed, _, closed) =
            check_outcomes(&p, PARTS, false, &format!("reorder seed {seed}"));
        // Duplicated parts and Ends are late repeats, dropped without a fuss: once open,
        // nothing is a violation and the connection carries the whole run.
        let late_errors = p
            .records()
            .iter()
            .filter(|r| r.at > opened && matches!(r.what, Observed::ProtocolError(_)))
            .count();
        assert_eq!(
            late_errors,
            0,
            "seed {seed}: {:#?}",
            p.records()
                .iter()
                .filter(|r| r.at > opened && matches!(r.what, Observed::ProtocolError(_)))
                .collect::<Vec<_>>()
        );
        assert!(p.client.is_open(), "seed {seed}");
        assert_eq!(closed, 0, "seed {seed}: {:?}", closes(&p, Side::Client));
        assert!(completed > 50, "seed {seed}: {completed} completed");
        assert!(
            p.client.stats().late_replies > 0,
            "seed {seed}: no duplicate came late"
        );
    }
}

#[test]
fn streams_cut_by_a_dead_link_end_closed() {
    for seed in SEEDS {
        let mut p = open_pair(seed, LinkConfig::lossy(ms(10), ms(5), 0.0, seed));
        p.behaviour.replies = ReplyMode::Stream {
            parts: 1000,
            interval: ms(20),
        };
        let ids: Vec<_> = (0..5)
            .map(|_| p.client_request("op/tail", Payload::Empty, None).unwrap())
            .collect();
        p.run_for(ms(500));
        p.cut_link();
        p.run_for(Duration::from_secs(5));
        for id in ids {
            let outcomes = p.records().outcomes(Side::Client, id);
            assert_eq!(outcomes.len(), 1);
            assert_eq!(outcomes[0].1, Outcome::Ended(RequestEnd::Closed));
            assert!(p.records().reply_seqs(Side::Client, id).len() >= 20);
        }
        check_outcomes(&p, 1000, true, "cut");
    }
}
