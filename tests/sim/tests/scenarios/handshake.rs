//! The handshake: timing on a clean link, rejection, and persistence over a lossy link.

use sentelite_core::{CloseCode, Duration, Frame, Initiator, Instant, State};
use sentelite_sim::{LinkConfig, Records, Side, TransportNote};

use crate::common::*;

#[test]
fn handshake_completes_and_both_sides_open() {
    for seed in SEEDS {
        for latency in [1, 10, 80] {
            let l = ms(latency);
            let mut p = pair(seed, LinkConfig::clean(l, seed));
            assert!(p.run_until(|p| p.client.is_open(), Instant::from_millis(1000)));
            // connect → accept → Hello → Welcome: four one-way trips on a jitter-free link.
            let t = |trips: u64| Instant::ZERO + Duration::from_micros(l.as_micros() * trips);
            assert_eq!(opens(&p, Side::Client), vec![(t(4), 1)]);
            assert_eq!(opens(&p, Side::Server(1)), vec![(t(3), 1)]);
            assert_eq!(p.client.uid(), Some("sim-1"));
            assert_eq!(p.client.connection_id(), 1);
            let server = p.current_server().expect("server session");
            assert_eq!(server.session.state(), State::Open);
            assert_eq!(server.session.peer_max_frame(), 4096, "client's max_frame");
            assert_eq!(p.client.peer_max_frame(), 16 * 1024, "server's max_frame");

            let frames = p.records().frames(Side::Server(1));
            let Frame::Hello(hello) = frames[0].1.frame() else {
                panic!("first frame delivered to the server is {:?}", frames[0].1)
            };
            assert_eq!(hello.client_id, "sim-device");
            let frames = p.records().frames(Side::Client);
            assert!(matches!(frames[0].1.frame(), Frame::Welcome(w) if w.uid == "sim-1"));

            // Open sessions stay open on a clean link.
            p.run_for(Duration::from_secs(10));
            assert!(p.client.is_open() && p.current_server().unwrap().session.is_open());
            assert_eq!(p.client.stats().handshakes, 1);
            assert!(closes(&p, Side::Client).is_empty());
            assert_no_protocol_errors(&p);
        }
    }
}

#[test]
fn handshake_time_with_jitter_stays_within_four_trips() {
    for seed in SEEDS {
        let link = LinkConfig::lossy(ms(20), ms(15), 0.0, seed);
        let mut p = pair(seed, link);
        assert!(p.run_until(|p| p.client.is_open(), Instant::from_millis(1000)));
        let (at, _) = opens(&p, Side::Client)[0];
        assert!(
            (80..=140).contains(&at.as_millis()),
            "seed {seed}: opened at {at:?}"
        );
    }
}

#[test]
fn rejected_hello_closes_and_the_client_retries() {
    for seed in SEEDS {
        let mut p = pair(seed, LinkConfig::clean(ms(10), seed));
        p.behaviour.accept_hello = false;
        p.run_for(Duration::from_millis(500));
        assert!(!p.client.is_open());
        let (at, code, who) = closes(&p, Side::Client)[0];
        assert_eq!((code, who), (CloseCode::AUTH_FAILED, Initiator::Peer));
        assert_eq!(
            at,
            Instant::from_millis(40),
            "Close arrives one trip after the Hello"
        );
        let (sched_at, attempt, _) = reconnects(&p)[0];
        assert_eq!((sched_at, attempt), (at, 1));
        // The server side dropped its transport after sending Close.
        assert!(!p.server(1).unwrap().attached);

        p.behaviour.accept_hello = true;
        let limit = p.now() + Duration::from_secs(10);
        assert!(p.run_until(|p| p.client.is_open(), limit));
        let conn = p.client.connection_id();
        assert!(conn > 1);
        assert_eq!(p.client.uid().unwrap(), format!("sim-{conn}"));
        assert_no_protocol_errors(&p);
    }
}

#[test]
fn lossy_link_handshake_eventually_succeeds() {
    let mut retried_seeds = 0;
    for seed in SEEDS {
        let link = LinkConfig::lossy(ms(15), ms(10), 0.3, seed);
        let mut p = open_pair(seed, link);
        assert_eq!(opens(&p, Side::Client).len(), 1);
        // Every attempt but the last failed with a close and scheduled the next one.
        let starts = p
            .records()
            .transport(Side::Client)
            .iter()
            .filter(|(_, t)| *t == TransportNote::ConnectStarted)
            .count();
        let failed = closes(&p, Side::Client).len();
        assert_eq!(starts, failed + 1, "seed {seed}");
        assert_eq!(reconnects(&p).len(), failed, "seed {seed}");
        retried_seeds += usize::from(failed > 0);
        // Every earlier attempt ended cleanly: by a handshake timeout on one side or the
        // other, never by a protocol error.
        for (_, code, _) in closes(&p, Side::Client) {
            assert_eq!(code, CloseCode::HANDSHAKE_TIMEOUT, "seed {seed}");
        }
        assert_no_protocol_errors(&p);
        // Old server sessions whose client gave up are all torn down eventually (the link
        // is lossy enough that heartbeats may fail too, so the client may be reconnecting).
        p.run_for(Duration::from_secs(5));
        let current = p.client_connection();
        for s in p.servers() {
            if Some(s.id) != current {
                assert!(
                    !s.attached || !s.session.is_open(),
                    "stale server session {}",
                    s.id
                );
            }
        }
    }
    assert!(retried_seeds > 0, "30% loss never cost a handshake");
}

#[test]
fn same_seed_replays_identically() {
    let run = |seed| {
        let link = LinkConfig {
            duplicate: 0.05,
            reorder: true,
            ..LinkConfig::lossy(ms(15), ms(10), 0.1, seed)
        };
        let mut p = open_pair(seed, link);
        for _ in 0..5 {
            let _ = p.client_request("op/x", sentelite_core::Payload::Empty, Some(ms(500)));
        }
        p.run_for(Duration::from_secs(20));
        format!("{:?}", p.records())
    };
    assert_eq!(run(7), run(7));
    assert_ne!(run(7), run(8));
}

#[test]
fn client_shutdown_closes_for_good() {
    for seed in SEEDS {
        let mut p = open_pair(seed, LinkConfig::clean(ms(10), seed));
        p.behaviour.replies = sentelite_sim::ReplyMode::Never;
        let id = p
            .client_request("op/x", sentelite_core::Payload::Empty, None)
            .unwrap();
        let t = p.now();
        p.client.shutdown("bye");
        p.run_for(Duration::from_secs(30));
        assert_eq!(p.client.state(), State::Closed);
        assert_eq!(
            closes(&p, Side::Client),
            vec![(t, CloseCode::NORMAL, Initiator::Local)]
        );
        assert_eq!(
            closes(&p, Side::Server(1)),
            vec![(t + ms(10), CloseCode::NORMAL, Initiator::Peer)]
        );
        assert!(reconnects(&p).is_empty(), "no reconnect after shutdown");
        assert_eq!(
            p.records().outcomes(Side::Client, id),
            vec![(
                t,
                sentelite_sim::Outcome::Ended(sentelite_core::RequestEnd::Closed)
            )]
        );
        // Cancelling an ended request, or anything after shutdown, is refused cleanly.
        assert!(p.client_cancel(id).is_err());
        assert_eq!(p.client.poll_timeout(), None);
        assert!(!p.step(), "nothing is scheduled any more");
    }
}

#[test]
fn server_going_away_makes_the_client_reconnect() {
    for seed in SEEDS {
        let mut p = open_pair(seed, LinkConfig::clean(ms(10), seed));
        let t = p.now();
        p.server_send(|s, _, _| {
            s.close(CloseCode::GOING_AWAY, "restart");
            Ok(0)
        })
        .expect("a server session is up")
        .unwrap();
        p.run_for(ms(15));
        assert_eq!(
            closes(&p, Side::Client),
            vec![(t + ms(10), CloseCode::GOING_AWAY, Initiator::Peer)]
        );
        assert_eq!(
            closes(&p, Side::Server(1)),
            vec![(t, CloseCode::GOING_AWAY, Initiator::Local)]
        );
        let (at, attempt, delay) = reconnects(&p)[0];
        assert_eq!((at, attempt), (t + ms(10), 1));
        let limit = p.now() + Duration::from_secs(2);
        assert!(p.run_until(|p| p.client.is_open(), limit));
        assert_eq!(opens(&p, Side::Client)[1].0, at + delay + ms(40));
        assert_no_protocol_errors(&p);
    }
}
