//! # sentelite-core
//!
//! The protocol heart of sentelite: a sans-IO state machine for one sente-style event
//! channel carrying logs, fetch directives, nREPL and LSP.
//!
//! **Contract.** No sockets, no clock, no threads, no allocation, no panics on any input.
//! Bytes and the current [`time::Instant`] go in through `handle_*` calls; frames to send come
//! out of `poll_transmit`, events out of `poll_event`, and the next deadline out of
//! `poll_timeout`. Every table is sized by const generics, every frame is encoded into a
//! buffer the caller owns, and a send that cannot be done hands back a typed error.
//!
//! | module | job |
//! |---|---|
//! | [`time`] | microsecond `Instant`/`Duration`; adapters convert their clocks |
//! | [`frame`] | the native frame set (wire tags, fields, close and status codes) |
//! | [`codec`] | postcard encode into caller buffers, borrowing decode, typed errors |
//! | [`cobs`] | COBS framing and an incremental accumulator for byte-stream links |
//! | [`session`] | client and server connections: handshake, heartbeat, close, reconnect |
//! | [`correlate`] | the request table: streamed parts, deadlines, cancel, fail-on-close |
//! | [`answering`] | the responder's table: the peer's requests, bounded, duplicates refused |
//! | [`channels`] | the client's wanted subscriptions, restored after reconnects |
//! | [`heartbeat`] | ping schedule, RTT, silence detection |
//! | `outcome` | `RequestOutcome`: how a request ended, owned (`alloc`) |
//! | [`log`] | log records, levels, the acknowledged log queue with exact loss accounting |
//! | [`nrepl`] | nREPL for clients: the op dispatcher an application plugs its evaluator into |
//! | [`blob`] | blob fetch: directives and reports; the fetch machine (ranges, resume, verify, failover, end states) |
//! | [`backoff`] | capped exponential reconnect backoff with seeded jitter |
//! | [`value`] | the self-describing CBOR payload form |
//! | [`websocket`] | native closes in WebSocket close frames, both ways |
#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

#[macro_use]
mod fmt;

pub mod answering;
pub mod backoff;
pub mod blob;
pub mod channels;
pub mod cobs;
pub mod codec;
pub mod correlate;
pub mod frame;
pub mod heartbeat;
pub mod log;
pub mod nrepl;
#[cfg(feature = "alloc")]
pub mod outcome;
pub mod session;
#[cfg(any(feature = "session-stats", feature = "log-facade"))]
mod text;
pub mod time;
pub mod value;
pub mod websocket;

pub use codec::{DecodeError, EncodeError, decode, encode};
pub use correlate::{RequestEnd, RequestId};
pub use frame::{CloseCode, Frame, Payload, Status};
#[cfg(feature = "alloc")]
pub use outcome::RequestOutcome;
pub use session::{
    ClientConfig, ClientSession, Endpoint, Initiator, ProtocolError, SendError, ServerConfig,
    ServerSession, Session, SessionEvent, State, Stats,
};
#[cfg(feature = "std")]
pub use time::StdClock;
pub use time::{Duration, Instant};
