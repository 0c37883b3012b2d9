//! Property tests of the core: codec and COBS round trips, hostile input, the session state
//! machines under arbitrary frames, and the request table against a reference model.
//!
//! One test binary keeps link time down; each module is one concern.

mod codec;
mod garbage;
mod log_batch;
mod log_queue;
mod pending;
mod sessions;
mod strategies;
