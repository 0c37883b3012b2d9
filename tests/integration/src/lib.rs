//! Support for the loopback integration tests: the real `sentelite serve` binary and the
//! outside peers of `tests/peers/` as child processes, and scenarios written once against the client API that both the tokio and the
//! smol adapter run.

pub mod blob_rig;
pub mod blob_server;
pub mod chaos_proxy;
pub mod fault_proxy;
pub mod peers;
pub mod raw;
pub mod scenarios;
pub mod serve;
pub mod tap;
pub mod wait;

pub use serve::{ServeProcess, TempDir};
