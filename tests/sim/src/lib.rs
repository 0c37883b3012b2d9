//! # sentelite-sim
//!
//! A deterministic simulation of a sentelite [`ClientSession`](sentelite_core::ClientSession)
//! and its [`ServerSession`](sentelite_core::ServerSession)s joined by a simulated link, in
//! fake time, in the manner of quinn-proto's test `Pair` and str0m's netem.
//!
//! | module | job |
//! |---|---|
//! | [`link`] | two one-way lanes: latency, jitter, loss, duplication, optional reordering, cut and blackhole |
//! | [`pair`] | [`Pair`]: drives both sessions and the transport, fires timers, drains outputs |
//! | [`server_app`] | the server application's policy: accept, stream replies or stay silent, ack subscriptions |
//! | [`log_store`] | the server's durable log store: dedup on `(boot_id, seq)`, kept across a server restart |
//! | [`record`] | timestamped observations and queries over them |
//! | [`rng`] | the seeded generator behind every random choice |
//!
//! Everything random comes from [`LinkConfig::seed`] and the client's backoff seed, so a
//! failing scenario replays exactly.
//!
//! ```
//! use sentelite_core::{ClientConfig, Duration, Instant, ServerConfig};
//! use sentelite_sim::{LinkConfig, Pair};
//!
//! let mut pair = Pair::new(
//!     ClientConfig::new("doc").unwrap(),
//!     ServerConfig::default(),
//!     LinkConfig::clean(Duration::from_millis(5), 1),
//! );
//! assert!(pair.run_until(|p| p.client.is_open(), Instant::from_millis(100)));
//! assert_eq!(pair.client.uid(), Some("sim-1"));
//! ```

pub mod link;
pub mod log_store;
pub mod pair;
pub mod record;
pub mod rng;
pub mod server_app;

pub use link::{Direction, LaneStats, LinkConfig};
pub use log_store::{LogStore, StoredRecord};
pub use pair::{FrameFilter, Pair, ServerConn, SimClient, SimServer};
pub use record::{DeliveredFrame, Observed, Outcome, Record, Records, Side, TransportNote};
pub use server_app::{ReplyMode, ServerBehaviour, part_payload};
