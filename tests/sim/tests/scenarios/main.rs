//! Scenario tests: the client and server sessions over the simulated link, across seeds.

mod backoff;
mod chaos;
mod common;
mod handshake;
mod heartbeat;
mod logging;
mod requests;
mod streaming;
mod subscriptions;
