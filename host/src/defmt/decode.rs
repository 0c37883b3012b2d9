//! One defmt frame, as the device's `defmt-logger` captured it, turned back into the fields
//! of a log record with the firmware's table.

use defmt_decoder::DecodeError;
use sentelite_core::log::Level;

use super::firmware::Firmware;

/// Why a frame did not decode. The record is kept, undecoded, either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Not one whole rzCOBS frame ending in its zero byte.
    #[error("defmt frame incomplete")]
    Incomplete,
    /// The bytes do not read with this table: a format index it does not hold, arguments
    /// that do not match the format, or a broken rzCOBS encoding.
    #[error("defmt frame malformed for this ELF")]
    Malformed,
}

/// A decoded frame: what the stored record carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedFrame {
    /// The statement's level; `println!` frames, which have none, are `info`.
    pub level: Level,
    /// The formatted text.
    pub message: String,
    /// Module path of the statement, when the ELF has debug info.
    pub module: Option<String>,
    /// Source file of the statement, when the ELF has debug info.
    pub file: Option<String>,
    /// Source line of the statement, when the ELF has debug info.
    pub line: Option<u64>,
    /// The firmware's `defmt::timestamp!` rendered, when it defines one.
    pub timestamp: Option<String>,
}

impl Firmware {
    /// Decodes one captured frame (rzCOBS or raw, as the firmware's defmt encoding says),
    /// trailing zero included; bytes after that zero are ignored.
    pub fn decode(&self, frame: &[u8]) -> Result<DecodedFrame, FrameError> {
        let mut stream = self.table().new_stream_decoder();
        stream.received(frame);
        let decoded = stream.decode().map_err(|e| match e {
            DecodeError::UnexpectedEof => FrameError::Incomplete,
            DecodeError::Malformed => FrameError::Malformed,
        })?;
        let level = decoded
            .level()
            .and_then(|l| Level::from_name(l.as_str()))
            .unwrap_or(Level::Info);
        let location = self.locations().get(&decoded.index());
        Ok(DecodedFrame {
            level,
            message: decoded.display_message().to_string(),
            module: location.map(|l| l.module.clone()),
            file: location.map(|l| l.file.display().to_string()),
            line: location.map(|l| l.line),
            timestamp: decoded.display_timestamp().map(|t| t.to_string()),
        })
    }
}
