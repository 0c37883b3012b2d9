//! # sentelite-embassy (placeholder)
//!
//! This crate will bind [`sentelite_core`] to embassy-net sockets and embassy-time on
//! microcontrollers (RP2040, ESP32-C3): read the clock, feed the core, drain it, arm a timer.
//! It holds no code yet; the workspace keeps it so the crate layout and the `no_std` build of
//! its dependency graph are checked from the start.
#![no_std]
#![deny(unsafe_code)]

pub use sentelite_core as core_protocol;
