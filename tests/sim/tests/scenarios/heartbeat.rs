//! Liveness: RTT from pings, a server that stops answering, a link that goes dead.

use sentelite_core::{CloseCode, Duration, Initiator};
use sentelite_sim::{Direction, LinkConfig, Records, Side, TransportNote};

use crate::common::*;

#[test]
fn pings_measure_the_round_trip() {
    for latency in [5, 20, 150] {
        let mut p = open_pair(1, LinkConfig::clean(ms(latency), 1));
        p.run_for(Duration::from_secs(5));
        assert_eq!(p.client.rtt(), Some(ms(2 * latency)));
        assert!(p.client.is_open());
    }
}

/// Latest one-way delay on the jittery links used below.
const WORST_TRIP: u64 = 30 + 10;

#[test]
fn a_server_that_stops_answering_is_declared_dead_within_the_timeout() {
    for seed in SEEDS {
        let mut p = open_pair(seed, LinkConfig::lossy(ms(30), ms(10), 0.0, seed));
        p.run_for(Duration::from_millis(4500));
        let cut = p.now();
        p.blackhole(Direction::ServerToClient);
        let limit = cut + Duration::from_secs(10);
        assert!(p.run_until(|p| !closes(p, Side::Client).is_empty(), limit));

        let (at, code, who) = closes(&p, Side::Client)[0];
        assert_eq!(
            (code, who),
            (CloseCode::HEARTBEAT_TIMEOUT, Initiator::Local)
        );
        let silent = at - cut;
        // The last pong left the server before the cut, at most one ping interval (plus a
        // round trip) before it; the timer fires exactly at last-heard + timeout.
        assert!(
            silent <= HB_TIMEOUT,
            "seed {seed}: declared after {silent:?}"
        );
        assert!(
            silent.as_millis() >= HB_TIMEOUT.as_millis() - HB_INTERVAL.as_millis() - 2 * WORST_TRIP,
            "seed {seed}: declared too early, after {silent:?}"
        );
        // The client's Close still reaches the server, which ends its side on it.
        p.run_for(Duration::from_millis(100));
        let server_close = closes(&p, Side::Server(1));
        assert_eq!(server_close.len(), 1);
        assert_eq!(
            (server_close[0].1, server_close[0].2),
            (CloseCode::HEARTBEAT_TIMEOUT, Initiator::Peer)
        );
        assert!(server_close[0].0 > at);
        // A reconnect is scheduled at once.
        let (sched_at, attempt, _) = reconnects(&p)[0];
        assert_eq!((sched_at, attempt), (at, 1));

        // While the server stays mute, attempts fail by handshake timeout; once it answers
        // again the client is back.
        p.run_for(Duration::from_secs(6));
        assert!(!p.client.is_open());
        assert!(reconnects(&p).len() >= 2);
        p.heal(Direction::ServerToClient);
        let limit = p.now() + Duration::from_secs(10);
        assert!(p.run_until(|p| p.client.is_open(), limit), "seed {seed}");
        assert_eq!(opens(&p, Side::Client).len(), 2);
        // Server sessions left behind by abandoned attempts were all closed.
        p.run_for(Duration::from_secs(5));
        let live: Vec<u64> = p
            .servers()
            .iter()
            .filter(|s| s.attached)
            .map(|s| s.id)
            .collect();
        assert_eq!(live, vec![p.client.connection_id()], "seed {seed}");
        assert_no_protocol_errors(&p);
    }
}

#[test]
fn a_dead_link_is_detected_by_both_sides() {
    for seed in SEEDS {
        let mut p = open_pair(seed, LinkConfig::lossy(ms(30), ms(10), 0.0, seed));
        p.run_for(Duration::from_millis(3700));
        let cut = p.now();
        p.cut_link();
        let limit = cut + Duration::from_secs(10);
        assert!(p.run_until(
            |p| !closes(p, Side::Client).is_empty() && !closes(p, Side::Server(1)).is_empty(),
            limit
        ));
        let earliest = HB_TIMEOUT.as_millis() - HB_INTERVAL.as_millis() - 2 * WORST_TRIP;
        for side in [Side::Client, Side::Server(1)] {
            let (at, code, who) = closes(&p, side)[0];
            assert_eq!(
                (code, who),
                (CloseCode::HEARTBEAT_TIMEOUT, Initiator::Local),
                "{side:?}"
            );
            let silent = (at - cut).as_millis();
            assert!(
                (earliest..=HB_TIMEOUT.as_millis()).contains(&silent),
                "seed {seed}, {side:?}: declared dead {silent} ms after the cut"
            );
        }
        // Neither side heard the other's Close or FIN: each dropped the transport itself.
        assert!(
            !p.records()
                .transport(Side::Client)
                .iter()
                .any(|(_, t)| *t == TransportNote::PeerGone)
        );

        p.restore_link();
        let limit = p.now() + Duration::from_secs(10);
        assert!(p.run_until(|p| p.client.is_open(), limit));
        assert!(p.client.connection_id() > 1);
        assert_eq!(
            closes(&p, Side::Server(1)).len(),
            1,
            "old session ends once"
        );
        assert_no_protocol_errors(&p);
    }
}

#[test]
fn a_busy_link_stays_up_without_pongs_being_needed() {
    // Frames of any kind count as signs of life: with requests streaming the whole time, a
    // lost pong here and there does not matter.
    let mut p = open_pair(4, LinkConfig::lossy(ms(10), ms(5), 0.15, 4));
    let start = p.now();
    while p.now() < start + Duration::from_secs(20) {
        let _ = p.client_request("op/x", sentelite_core::Payload::Empty, Some(ms(800)));
        p.run_for(ms(200));
    }
    let heartbeat_closes = closes(&p, Side::Client)
        .iter()
        .filter(|(at, code, _)| *at > start && *code == CloseCode::HEARTBEAT_TIMEOUT)
        .count();
    assert_eq!(heartbeat_closes, 0, "heartbeat timeouts on a busy link");
}
