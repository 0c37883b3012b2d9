//! # sentelite-board-common
//!
//! The parts of the Pico W and ESP32-C3 firmware that do not depend on the board and are not
//! the sentelite client: the build-time [`settings`], the image's own [`build_id`], the
//! [`hex`] of the ids a board announces and the [`baseline`] loop of the image built without
//! the client. The application itself is `sentelite-example-app`.
#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod baseline;
pub mod build_id;
pub mod hex;
pub mod settings;
