//! How a client identifies itself and paces its reconnects, in owned host types. Checked and
//! translated into the core's fixed-capacity [`ClientConfig`] when the client starts.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sentelite_core::ClientConfig;

use crate::ClientError;
use crate::clock::to_core_duration;

/// Longest client id, token and firmware id the core's config holds.
const MAX_ID_LEN: usize = 64;

/// Smallest `max_frame` accepted: room for a Welcome with a full-length uid.
const MIN_MAX_FRAME: u32 = 256;

/// Options for [`crate::start`] and the runtime adapters' `connect`.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Server URL: `ws://host:port/path`, or `wss://host:port/path` for WebSocket over TLS
    /// (needs the default `tls` feature; without it [`crate::start`] refuses the URL with
    /// [`ClientError::TlsUnsupported`]). The port defaults to 80 and 443.
    pub url: String,
    /// Stable identity of this program or device (1 to 64 bytes).
    pub client_id: String,
    /// Shared-secret token for servers that ask for one (at most 64 bytes).
    pub token: Option<String>,
    /// Changes every start so the server can tell a restart from a reconnect.
    pub boot_id: u32,
    /// [`sentelite_core::frame::capability`] bits.
    pub capabilities: u32,
    /// Build id of this program (at most 64 bytes).
    pub firmware: Option<String>,
    /// Largest frame (and WebSocket message) this client accepts, in bytes.
    pub max_frame: u32,
    /// First reconnect delay.
    pub backoff_initial: Duration,
    /// Largest reconnect delay.
    pub backoff_max: Duration,
    /// Time from starting to connect until the server's Welcome must have arrived: covers
    /// the TCP connect, the TLS handshake for `wss://`, the WebSocket upgrade and Hello.
    pub handshake_timeout: Duration,
    /// Seed for reconnect jitter; differs per process by default so a fleet restarted at
    /// once does not reconnect in lockstep.
    pub rng_seed: u64,
    /// Events buffered for the application before new ones are dropped (and counted in
    /// [`crate::ClientStats::events_dropped`]). The driver never waits for a slow reader,
    /// because waiting would stall heartbeats.
    pub event_capacity: usize,
    /// Longest time [`crate::Client::close`] takes: sending what is queued and the Close
    /// frame, then waiting for the server's WebSocket close. When it runs out the connection
    /// is dropped as it is, so a server that stops reading cannot hold a closing client.
    pub close_timeout: Duration,
    /// Parts of one [`crate::Response`] queued for the application. While a response's
    /// queue is full the client stops reading its connection until the application takes a
    /// part (its heartbeat timeout paused meanwhile, its pings still sent), so a slow reader
    /// slows the server down instead of growing memory. Other traffic on the connection
    /// waits too; read responses promptly or drop them (which cancels the request).
    pub response_parts: usize,
    /// Certificates (DER bytes) trusted as roots for `wss://` in addition to the Mozilla
    /// roots built in, e.g. a self-signed server's own certificate or a private CA. The
    /// server is always verified against these roots and the URL's host; there is no way
    /// to skip that. Checked when the client starts; unused for `ws://`.
    pub extra_root_certs: Vec<Vec<u8>>,
    /// Remote logging: `Some` enables [`crate::Client::log`], with the core's levels,
    /// sampling, rate limits, queue bounds, batch size and timeout. `None` (the default)
    /// logs nothing.
    pub log: Option<sentelite_core::log::LogConfig>,
    /// Bytes of record storage for the log queue (records waiting for the server's ack).
    pub log_queue_bytes: usize,
}

impl ClientOptions {
    /// Defaults: 64 KiB frames, reconnect from 1 s up to 30 s, 10 s handshake timeout (TCP,
    /// TLS, WebSocket and the sentelite Hello/Welcome together), 5 s close timeout, 64 parts
    /// queued per response, 1024 queued events, only the built-in TLS roots,
    /// boot id and jitter seed drawn from the time and the process id.
    pub fn new(url: impl Into<String>, client_id: impl Into<String>) -> Self {
        let seed = entropy();
        Self {
            url: url.into(),
            client_id: client_id.into(),
            token: None,
            // The high half of a well-mixed value: differs between starts of the same program.
            boot_id: (seed >> 32) as u32,
            capabilities: 0,
            firmware: None,
            max_frame: 64 * 1024,
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(10),
            rng_seed: seed,
            event_capacity: 1024,
            close_timeout: Duration::from_secs(5),
            response_parts: 64,
            extra_root_certs: Vec::new(),
            log: None,
            log_queue_bytes: 256 * 1024,
        }
    }

    /// Checks the options and builds the core's config.
    pub(crate) fn session_config(&self) -> Result<ClientConfig, ClientError> {
        let mut config = ClientConfig::new(&self.client_id).ok_or(ClientError::InvalidOptions(
            "client_id must be 1 to 64 bytes",
        ))?;
        config.token = short_string(self.token.as_deref(), "token longer than 64 bytes")?;
        config.firmware = short_string(self.firmware.as_deref(), "firmware longer than 64 bytes")?;
        if self.max_frame < MIN_MAX_FRAME {
            return Err(ClientError::InvalidOptions("max_frame below 256 bytes"));
        }
        if self.backoff_initial.is_zero() || self.backoff_max < self.backoff_initial {
            return Err(ClientError::InvalidOptions(
                "backoff_initial must be above zero and at most backoff_max",
            ));
        }
        if self.handshake_timeout.is_zero() {
            return Err(ClientError::InvalidOptions(
                "handshake_timeout must be above zero",
            ));
        }
        if self.close_timeout.is_zero() {
            return Err(ClientError::InvalidOptions(
                "close_timeout must be above zero",
            ));
        }
        if self.response_parts == 0 {
            return Err(ClientError::InvalidOptions(
                "response_parts must be above zero",
            ));
        }
        if self.event_capacity == 0 {
            return Err(ClientError::InvalidOptions(
                "event_capacity must be above zero",
            ));
        }
        config.boot_id = self.boot_id;
        config.capabilities = self.capabilities;
        config.max_frame = self.max_frame;
        config.handshake_timeout = to_core_duration(self.handshake_timeout);
        config.backoff_initial = to_core_duration(self.backoff_initial);
        config.backoff_max = to_core_duration(self.backoff_max);
        config.rng_seed = self.rng_seed;
        Ok(config)
    }
}

fn short_string(
    value: Option<&str>,
    error: &'static str,
) -> Result<Option<heapless::String<MAX_ID_LEN>>, ClientError> {
    value
        .map(|v| heapless::String::try_from(v).map_err(|_| ClientError::InvalidOptions(error)))
        .transpose()
}

/// A per-process value from the wall clock and the process id, mixed with splitmix64 so
/// nearby inputs give unrelated outputs. Not for secrets.
fn entropy() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut z = nanos ^ (u64::from(std::process::id()) << 32);
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translates_into_the_core_config() {
        let mut options = ClientOptions::new("ws://127.0.0.1:1/", "dev-1");
        options.token = Some("secret".into());
        options.backoff_initial = Duration::from_millis(50);
        options.max_frame = 1024;
        let config = options.session_config().unwrap();
        assert_eq!(config.client_id.as_str(), "dev-1");
        assert_eq!(config.token.as_deref(), Some("secret"));
        assert_eq!(config.max_frame, 1024);
        assert_eq!(config.backoff_initial.as_millis(), 50);
        assert_eq!(config.boot_id, options.boot_id);
    }

    #[test]
    fn refuses_out_of_range_fields() {
        let base = ClientOptions::new("ws://127.0.0.1:1/", "dev-1");
        let mut o = base.clone();
        o.client_id = String::new();
        assert!(matches!(
            o.session_config(),
            Err(ClientError::InvalidOptions(_))
        ));
        let mut o = base.clone();
        o.token = Some("x".repeat(65));
        assert!(matches!(
            o.session_config(),
            Err(ClientError::InvalidOptions(_))
        ));
        let mut o = base.clone();
        o.backoff_max = Duration::from_millis(1);
        assert!(matches!(
            o.session_config(),
            Err(ClientError::InvalidOptions(_))
        ));
        let mut o = base.clone();
        o.max_frame = 10;
        assert!(matches!(
            o.session_config(),
            Err(ClientError::InvalidOptions(_))
        ));
        let mut o = base.clone();
        o.close_timeout = Duration::ZERO;
        assert!(matches!(
            o.session_config(),
            Err(ClientError::InvalidOptions(_))
        ));
        let mut o = base;
        o.response_parts = 0;
        assert!(matches!(
            o.session_config(),
            Err(ClientError::InvalidOptions(_))
        ));
    }

    #[test]
    fn defaults_differ_between_clients() {
        let a = ClientOptions::new("ws://h/", "a");
        let b = ClientOptions::new("ws://h/", "a");
        assert_ne!(a.rng_seed, b.rng_seed);
    }
}
