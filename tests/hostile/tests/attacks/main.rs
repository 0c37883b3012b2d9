//! Attacks on the real `sentelite serve` binary from outside, each with a well-behaved
//! client beside it that must keep working. One module per kind of attack; `refused` holds
//! the attacks the server already withstood when this suite was written, kept so they stay
//! refused.

mod control_frames;
mod dialects;
mod events;
mod hello_limits;
mod origin;
mod pending;
mod pre_upgrade;
mod publish_drops;
mod refused;
mod relay;
mod slow_reader;
mod target;
