//! defmt logs, the host's half: devices built with the embassy adapter's `defmt-logger` send
//! each defmt frame undecoded (PROTOCOL.md section 13.3); the host turns them back into
//! text with the defmt table of the firmware's ELF, found by the build id the device's
//! Hello announces.
//!
//! `sentelite elf add FILE` registers an ELF (`POST /api/elf`); the registry keeps a copy in
//! the data dir (`defmt-elf/`), so a restarted server decodes the same builds. The log
//! pipeline ([`crate::logs`]) hands every `telemetry/log-batch` to [`DefmtService::decode`]
//! before storing it: a defmt record becomes a normal record (the statement's level, module
//! path as namespace, the formatted text, file, line and defmt timestamp in its data); one
//! it cannot decode is stored as it came with the reason as its message, and counted.
//!
//! | module | job |
//! |---|---|
//! | [`firmware`] | reading an ELF: defmt table, statement locations, build id |
//! | [`decode`] | one frame to a record's fields |
//! | [`batch`] | a batch payload with its defmt records decoded |
//! | [`registry`] | the registered ELFs, on disk and in memory, and the frame counters |
//! | [`http`] | `/api/elf` |

pub mod batch;
pub mod decode;
pub mod firmware;
pub mod http;
pub mod registry;

pub use batch::{DEFMT_NAMESPACE, Outcome, Undecoded};
pub use decode::{DecodedFrame, FrameError};
pub use firmware::{ElfError, Firmware, MAX_BUILD_ID};
pub use registry::{DefmtService, ELF_DIR, ElfInfo, FrameCounters, RegistryError};

use crate::server::ServerBuilder;

impl ServerBuilder {
    /// Serves the `/api/elf` routes of `defmt`. Decoding itself is the log pipeline's: give
    /// the same service to [`crate::logs::LogService::with_defmt`].
    pub fn with_defmt(self, defmt: DefmtService) -> Self {
        self.http_routes(http::routes(defmt))
    }
}
