//! # sentelite-host
//!
//! The host side of sentelite: a tokio/axum WebSocket server that speaks the native frame
//! protocol of [`sentelite_core`], keeps a registry of connected clients, routes events and
//! requests to application handlers, relays channel pub/sub, and lets the application push
//! events, publish and make requests of its own.
//!
//! Each connection is one tokio task owning a [`sentelite_core::ServerSession`]: the task reads
//! the clock, feeds received frames in, drains what the session wants sent, and sleeps until
//! the session's next deadline. Everything else reaches a connection through a bounded
//! command queue, so a slow client never makes the server buffer without limit.
//!
//! ```no_run
//! use sentelite_host::{Server, ServerSettings};
//! use sentelite_core::{Status, frame::PayloadBuf};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let server = Server::builder()
//!     .listen("127.0.0.1:7700")
//!     .config(ServerSettings::default())
//!     .on_event("telemetry/log-msg", |ctx| async move {
//!         println!("{} sent {} bytes", ctx.uid, ctx.payload.as_payload().len());
//!     })
//!     .on_request("demo/echo", |ctx, mut responder| async move {
//!         let _ = responder.part(ctx.payload.clone()).await;
//!         let _ = responder.end(Status::OK, PayloadBuf::Empty).await;
//!     })
//!     .bind()
//!     .await?;
//! println!("listening on ws://{}/ws", server.local_addr());
//! server.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! | module | job |
//! |---|---|
//! | [`settings`] | limits and timings, loadable from TOML |
//! | [`server`] | builder, running server, graceful shutdown |
//! | [`handle`] | pushing events, publishing, requests to clients, connection list |
//! | [`handler`] | contexts and the responder given to application handlers |
//! | [`request`] | the reply stream of a server→client request |
//! | [`lifecycle`] | connected / handshake / closed notifications |
//! | [`observer`] | server-side observers of a channel's messages |
//! | [`error`] | error types |
//! | [`builtin`] | `sentelite/echo` and `sentelite/relay`, answered by the binary |
//! | [`device`] | a demo device client for `sentelite device` |
//! | [`translate`] | payload translation to JSON and EDN |
//! | [`dialect`] | the text dialects (sente-lite, Sente, JSON): message codec and detection |
//! | [`logs`] | the log pipeline: ingest, SQLite store, JSON-lines file, query |
//! | [`defmt`] | defmt frames of device logs decoded with the firmware's registered ELF |
//! | [`blob`] | blob store, HTTP serving and uploads, fetch directives, transfer records |
//! | [`lsp`] | language servers run for editors: sessions, stdio framing, URI remapping |

pub mod blob;
pub mod builtin;
pub mod defmt;
pub mod device;
pub mod dialect;
pub mod error;
pub mod handle;
pub mod handler;
pub mod lifecycle;
pub mod logs;
pub mod lsp;
pub mod nrepl;
pub mod observer;
pub mod request;
pub mod server;
pub mod settings;
pub mod translate;

mod accept;
mod admission;
mod clock;
mod command;
mod connection;
mod pubsub;
mod queue;
mod registry;
mod transport;

pub use error::{ConfigError, DeliveryError, ResponderError, ServerError};
pub use handle::{ChannelDrops, ConnectionInfo, Delivery, ServerHandle};
pub use handler::{EventContext, RequestContext, Responder};
pub use lifecycle::LifecycleEvent;
pub use observer::{ChannelPublish, Publisher};
pub use request::{ReplyItem, ReplyStream, RequestOutcome};
pub use server::{Server, ServerBuilder};
pub use settings::{DuplicateClientId, FileConfig, ServerSettings};

/// Identifies one connection for the lifetime of the server (also sent to the client in
/// Welcome). Never reused.
pub type ConnectionId = u64;
