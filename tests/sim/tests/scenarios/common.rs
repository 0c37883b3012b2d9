//! Configurations and small helpers shared by the scenarios.

use sentelite_core::{
    ClientConfig, CloseCode, Duration, Initiator, Instant, ServerConfig, SessionEvent,
};
use sentelite_sim::{LinkConfig, Pair, Records, Side};

/// Every scenario runs under each of these seeds.
pub const SEEDS: [u64; 8] = [1, 2, 3, 4, 5, 0x5eed, 0xdead_beef, 0x0123_4567_89ab_cdef];

/// Heartbeat interval and timeout the server announces.
pub const HB_INTERVAL: Duration = Duration::from_millis(1000);
pub const HB_TIMEOUT: Duration = Duration::from_millis(3000);
/// Handshake timeout on both sides.
pub const HANDSHAKE: Duration = Duration::from_millis(2000);
/// Reconnect backoff bounds.
pub const BACKOFF_INITIAL: Duration = Duration::from_millis(100);
pub const BACKOFF_MAX: Duration = Duration::from_millis(1600);

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub fn client_config(seed: u64) -> ClientConfig {
    let mut c = ClientConfig::new("sim-device").unwrap();
    c.handshake_timeout = HANDSHAKE;
    c.backoff_initial = BACKOFF_INITIAL;
    c.backoff_max = BACKOFF_MAX;
    c.rng_seed = seed;
    c
}

pub fn server_config() -> ServerConfig {
    ServerConfig {
        handshake_timeout: HANDSHAKE,
        heartbeat_interval: HB_INTERVAL,
        heartbeat_timeout: HB_TIMEOUT,
        max_frame: 16 * 1024,
        ..ServerConfig::default()
    }
}

pub fn pair(seed: u64, link: LinkConfig) -> Pair {
    Pair::new(client_config(seed), server_config(), link)
}

/// A pair whose handshake has completed.
pub fn open_pair(seed: u64, link: LinkConfig) -> Pair {
    let mut p = pair(seed, link);
    let limit = p.now() + Duration::from_secs(60);
    assert!(
        p.run_until(|p| p.client.is_open(), limit),
        "seed {seed}: no handshake within 60 s"
    );
    p
}

/// The `Closed` events of one side: (time, code, initiator).
pub fn closes(p: &Pair, side: Side) -> Vec<(Instant, CloseCode, Initiator)> {
    p.records()
        .events(side)
        .into_iter()
        .filter_map(|(at, e)| match e {
            SessionEvent::Closed { code, initiator } => Some((at, code, initiator)),
            _ => None,
        })
        .collect()
}

/// The `ReconnectScheduled` events of the client: (time, attempt, delay).
pub fn reconnects(p: &Pair) -> Vec<(Instant, u32, Duration)> {
    p.records()
        .events(Side::Client)
        .into_iter()
        .filter_map(|(at, e)| match e {
            SessionEvent::ReconnectScheduled { attempt, delay } => Some((at, attempt, delay)),
            _ => None,
        })
        .collect()
}

/// The `Opened` events of one side: (time, connection id).
pub fn opens(p: &Pair, side: Side) -> Vec<(Instant, u64)> {
    p.records()
        .events(side)
        .into_iter()
        .filter_map(|(at, e)| match e {
            SessionEvent::Opened { connection_id } => Some((at, connection_id)),
            _ => None,
        })
        .collect()
}

/// No side ever reported a protocol violation.
pub fn assert_no_protocol_errors(p: &Pair) {
    let errors: Vec<_> = p
        .records()
        .iter()
        .filter(|r| matches!(r.what, sentelite_sim::Observed::ProtocolError(_)))
        .collect();
    assert!(errors.is_empty(), "protocol errors: {errors:#?}");
}
