//! Reconnect timing: capped exponential backoff with jitter, reset by a good handshake.

use sentelite_core::{Duration, Instant};
use sentelite_sim::{LinkConfig, Pair, Records, Side, TransportNote};

use crate::common::*;

/// The base delay of attempt `n` (1-based): `initial * 2^(n-1)`, capped.
fn base(attempt: u32) -> Duration {
    let factor = 1u64 << (attempt - 1).min(32);
    BACKOFF_INITIAL.saturating_mul(factor).min(BACKOFF_MAX)
}

fn half(d: Duration) -> Duration {
    Duration::from_micros(d.as_micros() / 2)
}

fn connect_starts(p: &Pair) -> Vec<Instant> {
    p.records()
        .transport(Side::Client)
        .into_iter()
        .filter(|(_, t)| *t == TransportNote::ConnectStarted)
        .map(|(at, _)| at)
        .collect()
}

/// Checks every scheduled delay and that the attempt then starts exactly on time.
fn check_schedule(p: &Pair, seed: u64) -> Vec<Duration> {
    let scheduled = reconnects(p);
    let starts = connect_starts(p);
    let mut delays = Vec::new();
    for (i, &(at, attempt, delay)) in scheduled.iter().enumerate() {
        assert_eq!(
            attempt,
            i as u32 + 1,
            "seed {seed}: attempts count up from 1"
        );
        let b = base(attempt);
        assert!(
            delay >= half(b) && delay <= b,
            "seed {seed}: attempt {attempt} delay {delay:?} outside [{:?}/2, {b:?}]",
            b
        );
        if let Some(&start) = starts.get(i + 1) {
            assert_eq!(
                start,
                at + delay,
                "seed {seed}: attempt {attempt} started off time"
            );
        }
        delays.push(delay);
    }
    delays
}

#[test]
fn refused_connections_back_off_exponentially_with_jitter_up_to_the_cap() {
    let mut per_seed = Vec::new();
    for seed in SEEDS {
        let mut p = pair(seed, LinkConfig::clean(ms(5), seed));
        p.behaviour.refuse_connections = true;
        p.run_for(Duration::from_secs(15));
        assert!(!p.client.is_open());
        let scheduled = reconnects(&p);
        assert!(
            scheduled.len() >= 8,
            "seed {seed}: {} attempts",
            scheduled.len()
        );
        // Each refusal arrives one round trip after its attempt started.
        let starts = connect_starts(&p);
        for (i, &(at, _, _)) in scheduled.iter().enumerate() {
            assert_eq!(at, starts[i] + ms(10), "seed {seed}");
        }
        let delays = check_schedule(&p, seed);
        assert!(
            delays.iter().filter(|d| **d >= half(BACKOFF_MAX)).count() >= 3,
            "seed {seed}: the cap is reached and held"
        );
        per_seed.push(delays);

        // A successful handshake resets the backoff.
        p.behaviour.refuse_connections = false;
        let limit = p.now() + Duration::from_secs(5);
        assert!(p.run_until(|p| p.client.is_open(), limit));
        let before = reconnects(&p).len();
        p.disconnect_transport();
        let after = reconnects(&p);
        assert_eq!(after.len(), before + 1);
        let (_, attempt, delay) = after[before];
        assert_eq!(
            attempt, 1,
            "seed {seed}: counting restarts after a handshake"
        );
        assert!(delay <= BACKOFF_INITIAL && delay >= half(BACKOFF_INITIAL));
        assert_no_protocol_errors(&p);
    }
    // The jitter is seeded: different seeds give different schedules.
    assert!(per_seed.windows(2).any(|w| w[0][..8] != w[1][..8]));
}

#[test]
fn attempts_that_hang_time_out_and_back_off() {
    for seed in SEEDS {
        let mut p = pair(seed, LinkConfig::clean(ms(5), seed));
        p.cut_link();
        p.run_for(Duration::from_secs(20));
        let scheduled = reconnects(&p);
        assert!(scheduled.len() >= 5, "seed {seed}");
        // Each attempt waits out the handshake timeout, then the delay.
        let starts = connect_starts(&p);
        for (i, &(at, _, _)) in scheduled.iter().enumerate() {
            assert_eq!(at, starts[i] + HANDSHAKE, "seed {seed}");
        }
        check_schedule(&p, seed);

        p.restore_link();
        let limit = p.now() + HANDSHAKE + BACKOFF_MAX + Duration::from_secs(1);
        assert!(p.run_until(|p| p.client.is_open(), limit), "seed {seed}");
    }
}

#[test]
fn a_transport_lost_while_connecting_schedules_the_next_attempt_at_once() {
    for seed in SEEDS {
        let mut p = pair(seed, LinkConfig::clean(ms(50), seed));
        p.run_for(ms(10));
        assert_eq!(p.client.state(), sentelite_core::State::Connecting);
        p.disconnect_transport();
        let scheduled = reconnects(&p);
        assert_eq!(scheduled.len(), 1, "seed {seed}");
        let (at, attempt, delay) = scheduled[0];
        assert_eq!((at, attempt), (Instant::from_millis(10), 1));
        // No Opened/Closed pair for a connection that never opened.
        assert!(closes(&p, Side::Client).is_empty());
        let limit = at + delay + ms(500);
        assert!(p.run_until(|p| p.client.is_open(), limit), "seed {seed}");
        assert_eq!(opens(&p, Side::Client)[0].0, at + delay + ms(200));
    }
}

#[test]
fn refused_handshakes_keep_backing_off() {
    // The transport connects every time, but the server rejects the Hello: a connection
    // that never opened is no success, so the delays grow to the cap as for refusals.
    for seed in SEEDS {
        let mut p = pair(seed, LinkConfig::clean(ms(5), seed));
        p.behaviour.accept_hello = false;
        p.run_for(Duration::from_secs(15));
        assert!(opens(&p, Side::Client).is_empty(), "seed {seed}");
        let scheduled = reconnects(&p);
        assert!(scheduled.len() >= 8, "seed {seed}: {}", scheduled.len());
        // Each attempt connected and was rejected: one Close per attempt, from the server.
        let starts = connect_starts(&p);
        let rejected = closes(&p, Side::Client);
        assert_eq!(rejected.len(), scheduled.len(), "seed {seed}");
        for ((i, &(at, _, _)), (closed_at, code, _)) in scheduled.iter().enumerate().zip(rejected) {
            assert_eq!(code, sentelite_core::CloseCode::AUTH_FAILED);
            assert_eq!(at, closed_at, "seed {seed}: rescheduled on the rejection");
            // Connect (5 ms), accept (5 ms), Hello (5 ms), Close (5 ms).
            assert_eq!(at, starts[i] + ms(20), "seed {seed}");
        }
        let delays = check_schedule(&p, seed);
        assert!(
            delays.iter().filter(|d| **d >= half(BACKOFF_MAX)).count() >= 3,
            "seed {seed}: the cap is reached: {delays:?}"
        );
    }
}
