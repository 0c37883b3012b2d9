//! Remote logging, the client's half: records, levels, and the bounded queue that holds
//! records until the server acknowledges them.
//!
//! Nothing here reads a clock, allocates or does IO. A front end (the `log` facade on a board,
//! a `tracing` layer on a host) filters by level and pushes [`NewRecord`]s into a
//! [`LogQueue`] over a buffer it owns; the adapter takes [`Batch`]es when connected, sends
//! them, and reports each ack or loss back. Records dropped for lack of room are never lost
//! silently: they are summed into a [`Gap`] that travels with the next batch.

mod batch;
mod breaker;
mod entry;
#[cfg(feature = "log-facade")]
mod facade;
mod filter;
mod level;
mod link;
mod queue;
mod record;
mod shipper;
mod varint;

pub use batch::{
    BATCH_VERSION, BatchError, BatchRecords, DecodedBatch, MAX_TABLE, decode_batch, encode_batch,
};
pub use breaker::{Breaker, BreakerConfig, BreakerState};
#[cfg(feature = "log-facade")]
pub use facade::{Clock, MESSAGE_BYTES, RemoteLogger, format_message, level_of};
pub use filter::{FilterConfig, FilterStats, LogFilter, Rate, Verdict, token_interval};
pub use level::{Level, LevelSet};
pub use link::{BATCH_TIMEOUT, ControlEvent, FRAME_OVERHEAD, Shipped, ShippingLink, control_event};
pub use queue::{
    Batch, BatchId, Entries, Full, LogQueue, Overflow, Pushed, QueueConfig, QueueStats,
};
pub use record::{Gap, NewRecord, Record, tally};
pub use shipper::{
    BATCH_EVENT, CONTROL_EVENT, LogConfig, LogControl, LogShipper, Logged, ReadyBatch,
    UNAPPLIED_MESSAGE, UNAPPLIED_TARGET,
};
