//! The core's small public building blocks checked exactly, from outside the crate: reconnect
//! backoff (growth, cap, jitter range and its seeded generator), heartbeat (ping schedule,
//! RTT and its smoothing, silence timeout), fake-time arithmetic, the client's subscription
//! table and the request table's bookkeeping. These are the pieces whose details mutation
//! testing showed the scenario tests could not pin down (see docs/TESTING.md).

use sentelite_core::backoff::Backoff;
use sentelite_core::heartbeat::{Heartbeat, HeartbeatAction};
use sentelite_core::time::earliest;
use sentelite_core::{Duration, Instant};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn at(n: u64) -> Instant {
    Instant::from_millis(n)
}

/// xorshift64* as published by Vigna, the generator the backoff documents for its jitter.
struct Reference(u64);

impl Reference {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[test]
fn backoff_delays_follow_equal_jitter_over_the_documented_generator() {
    for seed in [0u64, 1, 2, 42, 0xdead_beef, u64::MAX] {
        let (initial, max) = (ms(100), ms(3000));
        let mut backoff = Backoff::new(initial, max, seed);
        // The generator must not start at zero.
        let mut rng = Reference(seed | 1);
        for attempt in 0..40u32 {
            assert_eq!(backoff.attempt(), attempt);
            let base = initial
                .saturating_mul(1u64.checked_shl(attempt.min(32)).unwrap_or(u64::MAX))
                .min(max)
                .as_micros();
            let half = base / 2;
            let expected = base - half + rng.next() % (half + 1);
            assert_eq!(
                backoff.next_delay().as_micros(),
                expected,
                "seed {seed}, attempt {attempt}"
            );
        }
        backoff.reset();
        assert_eq!(backoff.attempt(), 0);
        let first = backoff.next_delay();
        assert!(first >= ms(50) && first <= ms(100), "{first:?}");
    }
}

#[test]
fn backoff_jitter_covers_its_whole_range() {
    // Over many seeds the first delay spreads across [initial/2, initial], not a point.
    let mut delays: Vec<u64> = (0..2000u64)
        .map(|seed| {
            Backoff::new(ms(1000), ms(1000), seed)
                .next_delay()
                .as_millis()
        })
        .collect();
    delays.sort_unstable();
    assert!(delays[0] >= 500 && delays[0] < 510, "lowest {}", delays[0]);
    let top = delays[delays.len() - 1];
    assert!(top <= 1000 && top > 990, "highest {top}");
    let mean = delays.iter().sum::<u64>() / delays.len() as u64;
    assert!((730..770).contains(&mean), "mean {mean}");
}

#[test]
fn backoff_grows_doubling_to_its_cap_and_holds_there() {
    let mut backoff = Backoff::new(ms(10), ms(1000), 7);
    let bases = [10u64, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000];
    for base in bases {
        let d = backoff.next_delay().as_micros();
        assert!(
            d >= base * 1000 / 2 && d <= base * 1000,
            "{d} µs outside [{}, {}] ms",
            base / 2,
            base
        );
    }
    // Very many failures neither overflow nor drop below the cap's half.
    for _ in 0..100 {
        assert!(backoff.next_delay() >= ms(500));
    }
    assert_eq!(backoff.attempt(), 110);
    // A zero initial delay stays zero (no jitter to draw from).
    let mut zero = Backoff::new(Duration::ZERO, ms(1000), 3);
    assert_eq!(zero.next_delay(), Duration::ZERO);
    // A one-microsecond base still ends in [0, 1] µs.
    let mut tiny = Backoff::new(Duration::from_micros(1), Duration::from_micros(1), 3);
    assert!(tiny.next_delay().as_micros() <= 1);
}

#[test]
fn heartbeat_pings_on_schedule_with_fresh_nonces() {
    let mut hb = Heartbeat::new(at(0), ms(1000), ms(3000), true);
    assert_eq!(hb.next_deadline(false), at(1000));
    assert_eq!(hb.poll(at(999), false), HeartbeatAction::Idle);
    let HeartbeatAction::SendPing(first) = hb.poll(at(1000), false) else {
        panic!("ping due at the interval")
    };
    assert_eq!(
        hb.poll(at(1000), false),
        HeartbeatAction::Idle,
        "one ping per interval"
    );
    assert_eq!(hb.next_deadline(false), at(2000));
    hb.on_receive(at(1500));
    let HeartbeatAction::SendPing(second) = hb.poll(at(2000), false) else {
        panic!("ping due")
    };
    assert_ne!(first, second);
    // A side that does not send pings only watches.
    let mut quiet = Heartbeat::new(at(0), ms(1000), ms(3000), false);
    assert_eq!(quiet.poll(at(2999), false), HeartbeatAction::Idle);
    assert_eq!(quiet.next_deadline(false), at(3000));
}

#[test]
fn heartbeat_rtt_is_the_last_sample_and_the_smoothed_value_blends() {
    let mut hb = Heartbeat::new(at(0), ms(1000), ms(10_000), true);
    assert_eq!((hb.rtt(), hb.smoothed_rtt()), (None, None));
    let mut now = 0;
    let mut ping = |hb: &mut Heartbeat, rtt: u64| {
        now += 1000;
        let HeartbeatAction::SendPing(nonce) = hb.poll(at(now), false) else {
            panic!("ping due at {now}")
        };
        // A pong for another nonce is not ours.
        assert_eq!(hb.on_pong(at(now + rtt), nonce.wrapping_add(1)), None);
        assert_eq!(hb.on_pong(at(now + rtt), nonce), Some(ms(rtt)));
        // The same pong twice measures nothing more.
        assert_eq!(hb.on_pong(at(now + rtt + 1), nonce), None);
        hb.on_receive(at(now + rtt));
    };
    ping(&mut hb, 80);
    assert_eq!((hb.rtt(), hb.smoothed_rtt()), (Some(ms(80)), Some(ms(80))));
    ping(&mut hb, 160);
    // 7/8 * 80 + 1/8 * 160 = 90
    assert_eq!((hb.rtt(), hb.smoothed_rtt()), (Some(ms(160)), Some(ms(90))));
    ping(&mut hb, 10);
    // 7/8 * 90 + 1/8 * 10 = 80
    assert_eq!((hb.rtt(), hb.smoothed_rtt()), (Some(ms(10)), Some(ms(80))));
    // Without an outstanding ping a pong is ignored.
    assert_eq!(hb.on_pong(at(now + 500), 1), None);
}

#[test]
fn heartbeat_declares_the_peer_dead_exactly_at_the_timeout() {
    let mut hb = Heartbeat::new(at(0), ms(1000), ms(3000), true);
    hb.on_receive(at(500));
    let mut pings = 0;
    for t in (600..3500).step_by(100) {
        match hb.poll(at(t), false) {
            HeartbeatAction::SendPing(_) => pings += 1,
            HeartbeatAction::Idle => {}
            HeartbeatAction::PeerDead => panic!("dead at {t}, before 3500"),
        }
    }
    assert_eq!(pings, 3, "pings at 1000, 2000 and 3000");
    assert_eq!(hb.next_deadline(false), at(3500));
    assert_eq!(hb.poll(at(3500), false), HeartbeatAction::PeerDead);
}

#[test]
fn time_arithmetic_saturates_and_orders() {
    assert_eq!(Instant::from_micros(1500).as_millis(), 1);
    assert_eq!(Instant::from_millis(2).as_micros(), 2000);
    assert_eq!(Instant::from_millis(u64::MAX).as_micros(), u64::MAX);
    assert_eq!(Duration::from_secs(3).as_millis(), 3000);
    assert_eq!(Duration::from_secs(u64::MAX).as_micros(), u64::MAX);
    assert_eq!(Duration::from_micros(2999).as_millis(), 2);
    assert_eq!(ms(5).saturating_mul(3), ms(15));
    assert_eq!(ms(5).saturating_mul(u64::MAX).as_micros(), u64::MAX);
    assert_eq!(ms(5).min(ms(7)), ms(5));
    assert_eq!(ms(7).min(ms(5)), ms(5));
    assert_eq!(ms(5) + ms(7), ms(12));
    assert_eq!(at(10) - at(4), ms(6));
    assert_eq!(at(4) - at(10), Duration::ZERO, "never negative");
    assert_eq!(at(10).saturating_since(at(4)), ms(6));
    let mut t = at(1);
    t += ms(2);
    assert_eq!(t, at(3));
    assert_eq!(
        (Instant::from_micros(u64::MAX) + ms(1)).as_micros(),
        u64::MAX
    );
    assert_eq!(earliest(Some(at(3)), Some(at(2))), Some(at(2)));
    assert_eq!(earliest(Some(at(2)), Some(at(3))), Some(at(2)));
    assert_eq!(earliest(Some(at(2)), Some(at(2))), Some(at(2)));
    assert_eq!(earliest(None, Some(at(3))), Some(at(3)));
    assert_eq!(earliest(Some(at(3)), None), Some(at(3)));
    assert_eq!(earliest(None, None), None);
}

#[test]
fn subscription_table_counts_states_and_limits() {
    use sentelite_core::channels::{ChannelError, Subscriptions};
    let mut table: Subscriptions<2, 4> = Subscriptions::new();
    assert!(table.is_empty());
    assert_eq!(table.len(), 0);
    assert_eq!(table.add(""), Err(ChannelError::InvalidName));
    assert_eq!(table.add("toolong"), Err(ChannelError::InvalidName));
    assert_eq!(table.add("a"), Ok(true));
    assert!(!table.is_empty());
    assert_eq!(table.len(), 1);
    assert_eq!(table.add("a"), Ok(false), "already wanted");
    assert_eq!(table.len(), 1);
    assert_eq!(table.add("b"), Ok(true));
    assert_eq!(table.len(), 2);
    assert_eq!(table.add("c"), Err(ChannelError::Full));
    // Sent once each, in order, then nothing more until a reconnect.
    assert_eq!(table.take_unsent(), Some("a"));
    assert_eq!(table.take_unsent(), Some("b"));
    assert_eq!(table.take_unsent(), None);
    assert!(!table.is_active("a"), "requested is not active yet");
    table.on_ack("a", true);
    table.on_ack("b", false);
    assert!(table.is_active("a") && !table.is_active("b"));
    // A refused channel is not retried, unless wanted again.
    table.on_disconnect();
    assert!(!table.is_active("a"));
    assert_eq!(table.take_unsent(), Some("a"));
    assert_eq!(table.take_unsent(), Some("b"));
    table.on_ack("b", false);
    assert_eq!(table.add("b"), Ok(false));
    assert_eq!(table.take_unsent(), Some("b"));
    // A frame that could not go out is due again.
    table.mark_unsent("a");
    assert_eq!(table.take_unsent(), Some("a"));
    assert!(table.remove("a"));
    assert!(!table.remove("a"));
    assert_eq!(table.len(), 1);
    assert!(table.remove("b"));
    assert!(table.is_empty());
}

#[test]
fn request_table_reports_its_capacity_and_fills_to_it() {
    use sentelite_core::correlate::{Pending, PendingFull};
    let mut table: Pending<3> = Pending::new();
    assert_eq!(table.capacity(), 3);
    for _ in 0..3 {
        table.insert(at(0), None).unwrap();
    }
    assert_eq!(table.occupied(), table.capacity());
    assert_eq!(table.insert(at(0), None), Err(PendingFull));
}

#[test]
fn a_forgotten_request_leaves_no_trace() {
    use sentelite_core::correlate::Pending;
    let mut table: Pending<2> = Pending::new();
    let id = table.insert(at(0), Some(ms(10))).unwrap();
    table.forget(id);
    assert!(!table.contains(id));
    assert_eq!((table.occupied(), table.in_flight()), (0, 0));
    // Nothing is reported for it, not even at its deadline.
    table.expire(at(100));
    assert_eq!(table.poll_ended(), None);
    assert_eq!(table.next_deadline(), None);
}

#[test]
fn cobs_asks_for_the_room_it_needs_and_counts_partial_packets() {
    use sentelite_core::cobs::{CobsAccumulator, Feed, encode_cobs};
    use sentelite_core::codec::{EncodeError, encoded_len};
    use sentelite_core::frame::{Event, Frame, Payload};
    for size in [0usize, 10, 253, 254, 600, 2000] {
        let body = vec![0x11u8; size];
        let frame = Frame::Event(Event {
            event: "e",
            payload: Payload::Bytes(&body),
        });
        let mut big = vec![0u8; size + 64];
        let fits = encode_cobs(&frame, &mut big).unwrap();
        let mut small = [0u8; 4];
        let Err(EncodeError::BufferTooSmall { required }) = encode_cobs(&frame, &mut small) else {
            panic!("a 4-byte buffer is too small")
        };
        // The estimate is an upper bound, and a tight one: one byte of slack at most.
        assert!(
            required >= fits && required <= fits + 1,
            "{size}: asked for {required}, needed {fits} (frame {})",
            encoded_len(&frame)
        );
        let mut exact = vec![0u8; required];
        assert_eq!(encode_cobs(&frame, &mut exact), Ok(fits));
    }
    let mut acc = CobsAccumulator::<64>::new();
    assert_eq!(acc.pending(), 0);
    assert_eq!(acc.feed(&[0x04, 0x01, 0x02]), Feed::Consumed);
    assert_eq!(acc.pending(), 3);
    acc.reset();
    assert_eq!(acc.pending(), 0);
}

#[test]
fn codec_errors_say_what_was_wrong() {
    use sentelite_core::codec::{DecodeError, EncodeError};
    assert_eq!(
        DecodeError::TooLarge { len: 300, max: 256 }.to_string(),
        "frame of 300 bytes exceeds the limit of 256"
    );
    assert_eq!(
        DecodeError::UnknownVersion(2).to_string(),
        "unknown protocol version 2"
    );
    assert_eq!(
        DecodeError::Malformed.to_string(),
        DecodeError::Malformed.reason()
    );
    assert!(!DecodeError::Malformed.to_string().is_empty());
    assert_eq!(
        EncodeError::BufferTooSmall { required: 9 }.to_string(),
        "output buffer too small: 9 bytes needed"
    );
    assert_eq!(
        EncodeError::TooLarge { len: 300, max: 256 }.to_string(),
        "frame of 300 bytes exceeds the peer's limit of 256"
    );
}

#[test]
fn the_responder_table_marks_only_cancelled_requests() {
    use sentelite_core::answering::{Admission, Answering};
    let mut table = Answering::<4>::new(4);
    assert_eq!(table.admit(7), Admission::Admitted);
    assert_eq!(table.admit(8), Admission::Admitted);
    assert!(!table.is_cancelled(7), "admitted, not cancelled");
    assert!(!table.is_cancelled(99), "unknown");
    assert!(table.cancel(7));
    assert!(table.is_cancelled(7));
    assert!(!table.is_cancelled(8), "the other request is untouched");
    table.finish(7).unwrap();
    assert!(!table.is_cancelled(7), "ended");
}

#[test]
fn payload_lengths_count_the_body() {
    use sentelite_core::Payload;
    assert_eq!(Payload::Empty.len(), 0);
    assert!(Payload::Empty.is_empty());
    assert_eq!(Payload::Bytes(b"abc").len(), 3);
    assert_eq!(Payload::Value(&[0xa0, 0x01]).len(), 2);
    assert_eq!(Payload::Json("{\"a\":1}").len(), 7);
    assert!(!Payload::Json("1").is_empty());
    assert!(Payload::Bytes(&[]).is_empty());
}

#[test]
fn capability_bits_are_distinct_single_bits() {
    use sentelite_core::frame::capability::*;
    let all = [LOGS, BLOB_FETCH, NREPL, LSP, CHANNELS, RELAY_TARGET];
    // The wire values of docs/PROTOCOL.md, bit 0 upwards.
    assert_eq!(all, [1, 2, 4, 8, 16, 32]);
}
