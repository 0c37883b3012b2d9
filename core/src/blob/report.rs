//! What a client reports about a transfer: progress, completion, failure (PROTOCOL.md
//! section 14). Native clients send these maps as the directive's Reply parts and End;
//! sente-lite clients send the same maps as `blob/progress`, `blob/complete` and `blob/error`
//! Events. Each encoder writes one Value map into a caller buffer.

use super::directive::BufferTooSmall;
use super::hex;
use crate::value::{self, ValueEncoder};

/// Bytes received so far (`blob/progress`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgressReport<'a> {
    /// The directive's transfer id.
    pub transfer_id: &'a str,
    /// The URL being fetched.
    pub url: &'a str,
    /// Bytes of the blob received and written.
    pub loaded: u64,
    /// The blob's size.
    pub total: u64,
}

impl ProgressReport<'_> {
    /// Whole percent received, 0 for an empty total, never above 100.
    pub fn percent(&self) -> u64 {
        match self.total {
            0 => 100,
            total => (u128::from(self.loaded.min(total)) * 100 / u128::from(total)) as u64,
        }
    }

    /// Writes `{:transfer-id :url :loaded :total :percent}` into `buf`.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let mut e = value::encoder(buf);
        e.map(5)?;
        ids(&mut e, self.transfer_id, self.url)?;
        number(&mut e, "loaded", self.loaded)?;
        number(&mut e, "total", self.total)?;
        number(&mut e, "percent", self.percent())?;
        Ok(value::finish(e))
    }
}

/// The blob arrived, matched its hash and was handed to the handler (`blob/complete`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompleteReport<'a> {
    /// The directive's transfer id.
    pub transfer_id: &'a str,
    /// The URL of the source that completed it.
    pub url: &'a str,
    /// The handler that took it.
    pub handler: &'a str,
    /// From the directive to the commit.
    pub duration_ms: u64,
    /// Bytes received over HTTP, resumes and retries included (0 when the client already
    /// held the blob).
    pub bytes_transferred: u64,
    /// The blob's SHA-256, as verified.
    pub sha256: [u8; 32],
}

impl CompleteReport<'_> {
    /// Writes `{:transfer-id :url :handler :status :success :duration-ms :bytes-transferred
    /// :sha256}` into `buf`.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let mut e = value::encoder(buf);
        e.map(7)?;
        ids(&mut e, self.transfer_id, self.url)?;
        keyword(&mut e, "handler", self.handler)?;
        keyword(&mut e, "status", "success")?;
        number(&mut e, "duration-ms", self.duration_ms)?;
        number(&mut e, "bytes-transferred", self.bytes_transferred)?;
        text(&mut e, "sha256", hex::encode(&self.sha256).as_str())?;
        Ok(value::finish(e))
    }
}

/// How a transfer that did not complete ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FailureState {
    /// Given up; a new directive is needed.
    Failed,
    /// Stopped on transient errors; the client will be ready to try again after this long.
    Rescheduled {
        /// Milliseconds until a retry is worth it.
        after_ms: u64,
    },
}

/// The transfer did not complete (`blob/error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorReport<'a> {
    /// The directive's transfer id.
    pub transfer_id: &'a str,
    /// The URL of the last source tried.
    pub url: &'a str,
    /// What went wrong, for people.
    pub error: &'a str,
    /// Attempts after the first.
    pub retry_count: u32,
    /// The last HTTP status seen, if any.
    pub status_code: Option<u16>,
    /// Failed or rescheduled.
    pub state: FailureState,
    /// Bytes safely written, where a later directive can resume.
    pub offset: u64,
}

impl ErrorReport<'_> {
    /// Writes `{:transfer-id :url :error :retry-count :status-code :state [:after-ms]
    /// :offset}` into `buf`.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let mut e = value::encoder(buf);
        let rescheduled = matches!(self.state, FailureState::Rescheduled { .. });
        e.map(7 + u64::from(rescheduled))?;
        ids(&mut e, self.transfer_id, self.url)?;
        text(&mut e, "error", self.error)?;
        number(&mut e, "retry-count", u64::from(self.retry_count))?;
        match self.status_code {
            Some(code) => number(&mut e, "status-code", u64::from(code))?,
            None => {
                value::keyword(&mut e, "status-code")?.null()?;
            }
        }
        match self.state {
            FailureState::Failed => keyword(&mut e, "state", "failed")?,
            FailureState::Rescheduled { after_ms } => {
                keyword(&mut e, "state", "rescheduled")?;
                number(&mut e, "after-ms", after_ms)?;
            }
        }
        number(&mut e, "offset", self.offset)?;
        Ok(value::finish(e))
    }
}

/// An upload directive's blob reached the server (the End OK of `blob/upload`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadReport<'a> {
    /// The directive's transfer id.
    pub transfer_id: &'a str,
    /// The SHA-256 the client computed and the server verified.
    pub sha256: [u8; 32],
    /// The blob's size.
    pub bytes: u64,
}

impl UploadReport<'_> {
    /// Writes `{:transfer-id :sha256 :bytes}` into `buf`.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let mut e = value::encoder(buf);
        e.map(3)?;
        text(&mut e, "transfer-id", self.transfer_id)?;
        text(&mut e, "sha256", hex::encode(&self.sha256).as_str())?;
        number(&mut e, "bytes", self.bytes)?;
        Ok(value::finish(e))
    }
}

fn ids(e: &mut ValueEncoder<'_>, transfer_id: &str, url: &str) -> Result<(), BufferTooSmall> {
    text(e, "transfer-id", transfer_id)?;
    text(e, "url", url)
}

/// One `:name n` entry. Not inlined: the reports write many, and a device that sends them
/// from a closure would otherwise carry a copy of the encoder for each.
#[inline(never)]
fn number(e: &mut ValueEncoder<'_>, name: &str, n: u64) -> Result<(), BufferTooSmall> {
    value::keyword(e, name)?.u64(n)?;
    Ok(())
}

/// One `:name :keyword` entry; not inlined, as [`number`].
#[inline(never)]
fn keyword(e: &mut ValueEncoder<'_>, name: &str, keyword: &str) -> Result<(), BufferTooSmall> {
    value::keyword(value::keyword(e, name)?, keyword)?;
    Ok(())
}

/// One `:name "text"` entry; not inlined, as [`number`].
#[inline(never)]
fn text(e: &mut ValueEncoder<'_>, name: &str, text: &str) -> Result<(), BufferTooSmall> {
    value::keyword(e, name)?.str(text)?;
    Ok(())
}

/// The client will not run the directive: an unknown handler, a bad directive (the End
/// UNSUPPORTED or ERROR before any transfer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefusalReport<'a> {
    /// The directive's transfer id (empty when the payload did not decode).
    pub transfer_id: &'a str,
    /// Why, for people.
    pub error: &'a str,
}

impl RefusalReport<'_> {
    /// Writes `{:transfer-id :error}` into `buf`.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let mut e = value::encoder(buf);
        e.map(2)?;
        text(&mut e, "transfer-id", self.transfer_id)?;
        text(&mut e, "error", self.error)?;
        Ok(value::finish(e))
    }
}
