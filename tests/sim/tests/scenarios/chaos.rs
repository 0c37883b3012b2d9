//! Many seeds of random trouble — cuts, one-way blackholes, resets, refusals, loss,
//! duplicated and reordered frames — while the application keeps issuing, cancelling and
//! subscribing. Whatever happens, every request on either side ends exactly once, a violation
//! caused by a lost, duplicated or reordered frame closes the connection at once, and the
//! client recovers once the trouble stops.

use std::collections::HashMap;

use sentelite_core::{Duration, Initiator, Payload, RequestId, SessionEvent, State};
use sentelite_sim::rng::SimRng;
use sentelite_sim::{Direction, LinkConfig, Observed, Pair, Records, ReplyMode, Side};

use crate::common::*;

/// One random disturbance or application action; trouble is rarer than traffic so that
/// connections live long enough to carry some.
fn act(p: &mut Pair, rng: &mut SimRng) {
    match rng.below_or_equal(19) {
        0 => p.cut_link(),
        1 => p.blackhole(Direction::ServerToClient),
        2 => p.blackhole(Direction::ClientToServer),
        3 => p.disconnect_transport(),
        4 => p.behaviour.refuse_connections = rng.chance(0.3),
        5..=7 => p.restore_link(),
        8 => {
            let parts = rng.below_or_equal(5) as u32;
            p.behaviour.replies = if rng.chance(0.2) {
                ReplyMode::Never
            } else {
                ReplyMode::Stream {
                    parts,
                    interval: ms(rng.below_or_equal(40)),
                }
            };
        }
        9 => {
            let issued = p.records().issued(Side::Client);
            if !issued.is_empty() {
                let id = issued[rng.below_or_equal(issued.len() as u64 - 1) as usize];
                let _ = p.client_cancel(id);
            }
        }
        10 => {
            let timeout = rng.chance(0.7).then(|| ms(rng.below_or_equal(3000)));
            let _ = p.server_request("srv/poke", timeout);
        }
        11 => {
            let channel = ["a", "b", "c"][rng.below_or_equal(2) as usize];
            if rng.chance(0.7) {
                let _ = p.client.subscribe(channel);
            } else {
                let _ = p.client_send(|c, _, buf| c.unsubscribe(channel, buf));
            }
        }
        _ => {
            for _ in 0..=rng.below_or_equal(4) {
                let timeout = rng.chance(0.8).then(|| ms(50 + rng.below_or_equal(4000)));
                let _ = p.client_request("op/chaos", Payload::Empty, timeout);
            }
        }
    }
}

/// A lost frame can leave the two sides disagreeing (a lost Welcome: the server is open, the
/// client still waits, and the server's next frame looks like a violation). That is allowed
/// only if the side that saw the violation closes with its code right then.
fn violations_close_the_connection(p: &Pair, seed: u64) -> usize {
    let records = p.records();
    let mut count = 0;
    for (i, r) in records.iter().enumerate() {
        let Observed::ProtocolError(err) = r.what else {
            continue;
        };
        count += 1;
        let next_close = records[i..].iter().find_map(|later| match later.what {
            Observed::Event(SessionEvent::Closed { code, initiator }) if later.side == r.side => {
                Some((later.at, code, initiator))
            }
            _ => None,
        });
        assert_eq!(
            next_close,
            Some((r.at, err.code, Initiator::Local)),
            "seed {seed}: {:?} saw {err:?} and did not close for it",
            r.side
        );
    }
    count
}

/// Every request `side` issued ended exactly once, and nothing else ended.
fn each_request_ended_once(p: &Pair, side: Side, seed: u64) {
    let outcomes = p.records().all_outcomes(side);
    let issued: Vec<RequestId> = p.records().issued(side);
    for id in &issued {
        let n = outcomes.get(id).map_or(0, Vec::len);
        assert_eq!(n, 1, "seed {seed}: {side:?} request {id} ended {n} times");
    }
    assert!(
        outcomes.keys().all(|id| issued.contains(id)),
        "seed {seed}: {side:?} saw an end for a request it never issued"
    );
}

#[test]
fn random_trouble_never_breaks_the_guarantees() {
    let mut reconnects_seen = 0;
    let mut frames_carried = 0;
    let mut duplicated = 0;
    for seed in 0..100u64 {
        let mut rng = SimRng::new(seed ^ 0xc4a0_5eed);
        let loss = [0.0, 0.02, 0.1][(seed % 3) as usize];
        // Every other seed reorders; duplication cycles independently of the loss.
        let link = LinkConfig {
            duplicate: [0.0, 0.03, 0.1][(seed / 3 % 3) as usize],
            reorder: seed % 2 == 1,
            ..LinkConfig::lossy(ms(5 + seed % 30), ms(seed % 15), loss, seed)
        };
        let mut p = pair(seed, link);
        let until = Duration::from_secs(60);
        while p.now() < sentelite_core::Instant::ZERO + until {
            act(&mut p, &mut rng);
            p.run_for(ms(20 + rng.below_or_equal(600)));
        }

        // Trouble over: the client must come back on its own.
        p.restore_link();
        p.behaviour.refuse_connections = false;
        let limit = p.now() + HANDSHAKE + BACKOFF_MAX + Duration::from_secs(30);
        assert!(
            p.run_until(|p| p.client.is_open(), limit),
            "seed {seed}: no recovery, client {:?}",
            p.client.state()
        );
        reconnects_seen += opens(&p, Side::Client).len();
        p.run_for(Duration::from_secs(5));

        // Shut down: everything still in flight ends, every server session goes away.
        p.client.shutdown("done");
        p.run_for(Duration::from_secs(10));
        assert_eq!(p.client.state(), State::Closed, "seed {seed}");
        assert!(
            p.servers().iter().all(|s| !s.attached),
            "seed {seed}: a server session outlived the client"
        );

        each_request_ended_once(&p, Side::Client, seed);
        let conns: Vec<u64> = p.servers().iter().map(|s| s.id).collect();
        for conn in conns {
            each_request_ended_once(&p, Side::Server(conn), seed);
        }
        // The application's tables agree with the records.
        assert_eq!(p.client.requests_in_flight(), 0);
        let per_conn_closes: HashMap<u64, usize> = p
            .servers()
            .iter()
            .map(|s| (s.id, closes(&p, Side::Server(s.id)).len()))
            .collect();
        for (conn, n) in per_conn_closes {
            assert!(
                n <= 1,
                "seed {seed}: server connection {conn} closed {n} times"
            );
        }
        let violations = violations_close_the_connection(&p, seed);
        let dropped: u64 = [Direction::ClientToServer, Direction::ServerToClient]
            .iter()
            .map(|&d| {
                let s = p.lane_stats(d);
                s.frames_lost + s.packets_blackholed + s.frames_duplicated
            })
            .sum();
        assert!(
            violations == 0 || dropped > 0 || link.reorder,
            "seed {seed}: violations on a perfect link"
        );
        duplicated += p.lane_stats(Direction::ServerToClient).frames_duplicated;
        frames_carried += p.lane_stats(Direction::ServerToClient).frames_sent;
    }
    assert!(
        frames_carried > 40 * 300,
        "only {frames_carried} frames carried"
    );
    assert!(reconnects_seen > 300, "the trouble did force reconnects");
    assert!(duplicated > 1000, "only {duplicated} frames duplicated");
}
