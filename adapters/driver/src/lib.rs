//! # sentelite-driver
//!
//! The host-side WebSocket client for the native sentelite protocol, written once for every
//! async runtime. The protocol itself lives in `sentelite-core`'s [`ClientSession`]; this crate
//! owns the only IO loop around it: open a TCP stream, secure it with TLS for `wss://`, upgrade
//! it to a WebSocket, feed received binary messages and the clock into the session, send what
//! it transmits, and turn its events into owned [`ClientEvent`]s for the application.
//!
//! A runtime adapter (`sentelite-tokio`, `sentelite-smol`) implements the small [`Runtime`]
//! trait — connect, sleep, spawn — and calls [`start`]. Nothing else differs between runtimes,
//! TLS included: it runs over the same `futures-io` stream.
//!
//! ## TLS
//!
//! With the `tls` feature (on by default) `wss://` URLs work on every runtime: rustls with the
//! ring provider, trusting the Mozilla roots of `webpki-roots` plus
//! [`ClientOptions::extra_root_certs`] (for a self-signed server or a private CA). The
//! server's certificate must chain to one of those roots and name the URL's host (a host name,
//! not an IP literal, is also sent as SNI). Verification cannot be turned off. The TLS handshake is part of the
//! connect phase: it counts against [`ClientOptions::handshake_timeout`], and a failure (an
//! untrusted certificate, say) is reported as [`ClientEvent::ConnectFailed`] with the reason
//! and retried after the usual backoff. Without the feature, [`start`] refuses `wss://` with
//! [`ClientError::TlsUnsupported`].
//!
//! | module | job |
//! |---|---|
//! | [`runtime`] | what an adapter provides |
//! | [`clock`] | `std::time::Instant` ⇄ the core's microsecond `Instant` |
//! | [`options`] | [`ClientOptions`] and their translation into the core's config |
//! | [`client`] | the [`Client`] handle the application holds |
//! | [`event`] | [`ClientEvent`] and [`IncomingRequest`] (the server asking the client) |
//! | [`response`] | [`Response`]: the streamed answer to one of our requests |
//! | `driver` | the loop: connect, read, write, timers, calls (split by concern inside) |
//! | [`nrepl`] | answering the host's `nrepl/request` with an application's evaluator |
//! | [`logs`] | remote logging: the shared log shipper behind [`Client::log`] |
//! | [`lsp`] | language servers run by the host: [`lsp::LspSession`] over the `lsp/*` events |
//! | `tracing_layer` | `tracing` events and span fields as log records (feature `tracing`) |
//! | `call` | what the handles ask of the driver task, each with a typed result slot |
//! | `target` | the URL split into host, port, TLS or not, and request target |
//! | `transport` | the stream under the WebSocket: plain or TLS, as one type |
//! | `tls` | rustls config and handshake (feature `tls`) |
//!
//! [`ClientSession`]: sentelite_core::ClientSession
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod blob;
mod call;
pub mod client;
pub mod clock;
mod driver;
mod error;
pub mod event;
pub mod logs;
pub mod lsp;
pub mod nrepl;
pub mod options;
pub mod response;
pub mod runtime;
mod target;
#[cfg(feature = "tls")]
mod tls;
#[cfg(feature = "tracing")]
pub mod tracing_layer;
mod transport;

pub use client::{Client, ClientStats, Events, start};
pub use error::ClientError;
pub use event::{ClientEvent, IncomingRequest};
pub use logs::{LogOutcome, LogStats};
pub use options::ClientOptions;
pub use response::{RequestOutcome, Response};
pub use runtime::Runtime;

pub use sentelite_core::frame::{PayloadBuf, SubscribeError, capability};
pub use sentelite_core::log::{Level, LogConfig};
pub use sentelite_core::{CloseCode, Initiator, RequestId, Status};
