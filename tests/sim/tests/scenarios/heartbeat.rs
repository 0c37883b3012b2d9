//! Liveness: RTT from pings, a server that stops answering, a link that goes dead.

use sentelite_core::{CloseCode, Duration, Frame, Initiator, Payload};
use sentelite_sim::{Direction, LinkConfig, Pair, Records, Side, TransportNote};

use crate::common::*;

#[test]
fn pings_measure_the_round_trip() {
    for seed in SEEDS {
        for latency in [5, 20, 150] {
            let mut p = open_pair(seed, LinkConfig::clean(ms(latency), seed));
            p.run_for(Duration::from_secs(5));
            assert_eq!(p.client.rtt(), Some(ms(2 * latency)), "seed {seed}");
            assert!(p.client.is_open());
        }
    }
}

/// Samples the client's RTT every 50 ms for `secs` seconds and returns each new value.
fn rtt_changes(p: &mut Pair, secs: u64) -> Vec<Duration> {
    let mut seen: Vec<Duration> = p.client.rtt().into_iter().collect();
    let end = p.now() + Duration::from_secs(secs);
    while p.now() < end {
        p.run_for(ms(50));
        if let Some(rtt) = p.client.rtt()
            && seen.last() != Some(&rtt)
        {
            seen.push(rtt);
        }
    }
    seen
}

#[test]
fn rtt_is_smoothed_when_the_latency_changes() {
    for seed in SEEDS {
        let mut p = open_pair(seed, LinkConfig::clean(ms(20), seed));
        p.run_for(Duration::from_secs(5));
        assert_eq!(p.client.rtt(), Some(ms(40)));
        p.set_link(LinkConfig::clean(ms(100), seed));
        let seen = rtt_changes(&mut p, 30);
        // Each pong moves the smoothed value an eighth of the way to its sample (RFC 6298):
        // neither frozen at 40 ms nor jumping straight to 200 ms. The ping in flight when
        // the latency changed may come back after 20 + 100 ms.
        let blend = |srtt: Duration, sample: u64| {
            Duration::from_micros((srtt.as_micros() * 7 + ms(sample).as_micros()) / 8)
        };
        assert_eq!(seen[0], ms(40));
        let mut expected = if seen[1] == blend(ms(40), 120) {
            seen[1]
        } else {
            blend(ms(40), 200)
        };
        assert_eq!(seen[1], expected, "seed {seed}: {seen:?}");
        for (i, rtt) in seen.iter().enumerate().skip(2) {
            expected = blend(expected, 200);
            assert_eq!(*rtt, expected, "seed {seed}: change {i} of {seen:?}");
        }
        assert!(
            seen.len() >= 25,
            "seed {seed}: only {} pongs counted",
            seen.len()
        );
        let last = *seen.last().unwrap();
        assert!(
            last > ms(190) && last < ms(200),
            "seed {seed}: ended at {last:?}"
        );
    }
}

#[test]
fn rtt_starts_afresh_after_a_reconnect() {
    for seed in SEEDS {
        let mut p = open_pair(seed, LinkConfig::clean(ms(20), seed));
        p.run_for(Duration::from_secs(5));
        assert_eq!(p.client.rtt(), Some(ms(40)));
        p.set_link(LinkConfig::clean(ms(100), seed));
        p.disconnect_transport();
        assert_eq!(
            p.client.rtt(),
            None,
            "seed {seed}: no RTT without a connection"
        );
        let limit = p.now() + Duration::from_secs(10);
        assert!(p.run_until(|p| p.client.is_open(), limit), "seed {seed}");
        assert_eq!(
            p.client.rtt(),
            None,
            "seed {seed}: old connection's RTT kept"
        );
        let limit = p.now() + Duration::from_secs(5);
        assert!(p.run_until(|p| p.client.rtt().is_some(), limit));
        // The first pong of the new connection is its RTT, not blended with the old one.
        assert_eq!(p.client.rtt(), Some(ms(200)), "seed {seed}");
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
    // Frames of any kind count as signs of life: with replies streaming the whole time the
    // client stays up although not a single pong ever reaches it.
    for seed in SEEDS {
        let mut p = open_pair(seed, LinkConfig::lossy(ms(10), ms(5), 0.0, seed));
        p.swallow_frames(Some((Direction::ServerToClient, |f| {
            matches!(f, Frame::Pong(_))
        })));
        let start = p.now();
        while p.now() < start + Duration::from_secs(20) {
            p.client_request("op/x", Payload::Empty, Some(ms(800)))
                .expect("the connection stays open");
            p.run_for(ms(500));
        }
        assert!(p.client.is_open(), "seed {seed}");
        assert_eq!(opens(&p, Side::Client).len(), 1, "seed {seed}: reconnected");
        assert!(closes(&p, Side::Client).is_empty(), "seed {seed}");
        assert!(p.lane_stats(Direction::ServerToClient).frames_lost >= 15);

        // The same link without the requests: pongs are all the client could hear, so it
        // declares the server dead within the timeout.
        let quiet = p.now();
        p.run_for(HB_TIMEOUT + Duration::from_secs(1));
        let (at, code, _) = closes(&p, Side::Client)[0];
        assert_eq!(code, CloseCode::HEARTBEAT_TIMEOUT, "seed {seed}");
        assert!(at - quiet <= HB_TIMEOUT, "seed {seed}");
    }
}
