//! What to fetch and how hard to try: the sources, the announced size and hash, and the
//! options a directive carries. Built once per transfer and handed to [`Fetch`](super::Fetch).

use super::directive::Directive;
use crate::backoff::Backoff;
use crate::time::{Duration, Instant};
use heapless::{String, Vec};

/// How a transfer behaves on the way: chunking, retries, timeouts, progress granularity.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Retries of one source after failures that made no progress, before failing over to
    /// the next source.
    pub retry_count: u32,
    /// Check the SHA-256 before committing. When false the sink is committed under the
    /// hash actually computed (the announced one may be unknown).
    pub verify: bool,
    /// Bytes asked for per request; 0 asks for everything from the current offset.
    pub chunk_size: u32,
    /// The transfer fails with [`FailReason::Deadline`](super::FailReason::Deadline) at
    /// this instant, whatever it is doing.
    pub deadline: Option<Instant>,
    /// A request that delivers nothing for this long counts as failed; zero disables it.
    pub attempt_timeout: Duration,
    /// Report progress each time this many more bytes arrived; 0 reports every chunk.
    pub progress_step: u64,
    /// Keep a resumable hash checkpoint every this many bytes (rounded up to the sink's
    /// erase block). Smaller means less re-downloaded after a reboot.
    pub checkpoint_step: u32,
    /// Delays between retries of one source.
    pub backoff: Backoff,
}

impl Default for FetchOptions {
    fn default() -> Self {
        Self {
            retry_count: 3,
            verify: true,
            chunk_size: 0,
            deadline: None,
            attempt_timeout: Duration::from_secs(30),
            progress_step: 64 * 1024,
            checkpoint_step: 4096,
            backoff: Backoff::new(Duration::from_millis(500), Duration::from_secs(30), 0x5e7e),
        }
    }
}

/// One blob to fetch: up to `M` source URLs of up to `U` bytes each (the first is the
/// directive's `url`, the rest its `mirrors`), the announced size and SHA-256.
#[derive(Debug, Clone)]
pub struct FetchPlan<const M: usize, const U: usize> {
    /// URLs serving the same bytes, tried in order on failure.
    pub sources: Vec<String<U>, M>,
    /// The blob's size in bytes.
    pub size: u64,
    /// The blob's SHA-256.
    pub sha256: [u8; 32],
    /// How to fetch it.
    pub options: FetchOptions,
}

/// Why a plan could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PlanError {
    /// A URL is longer than the plan's `U`.
    UrlTooLong,
    /// More sources than the plan's `M`.
    TooManySources,
    /// The directive does not say the blob's size.
    MissingSize,
    /// The directive asks for verification but carries no SHA-256.
    MissingSha256,
}

impl core::fmt::Display for PlanError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            PlanError::UrlTooLong => "a source URL is longer than this client takes",
            PlanError::TooManySources => "more mirrors than this client takes",
            PlanError::MissingSize => "directive lacks :metadata :size",
            PlanError::MissingSha256 => "directive lacks :metadata :sha256 and asks to verify",
        })
    }
}

impl<const M: usize, const U: usize> FetchPlan<M, U> {
    /// A plan with one source and default options.
    pub fn new(url: &str, size: u64, sha256: [u8; 32]) -> Result<Self, PlanError> {
        let mut plan = Self {
            sources: Vec::new(),
            size,
            sha256,
            options: FetchOptions::default(),
        };
        plan.add_source(url)?;
        Ok(plan)
    }

    /// Append a mirror, tried after the sources already present.
    pub fn add_source(&mut self, url: &str) -> Result<(), PlanError> {
        let url = String::try_from(url).map_err(|_| PlanError::UrlTooLong)?;
        self.sources
            .push(url)
            .map_err(|_| PlanError::TooManySources)
    }

    /// The plan a fetch directive describes, received at `now` (its `deadline-ms` counts
    /// from then). Options the directive leaves out keep [`FetchOptions::default`]; the
    /// backoff jitter is seeded from the transfer id so that devices told at once do not
    /// retry in step.
    pub fn from_directive(directive: &Directive<'_>, now: Instant) -> Result<Self, PlanError> {
        Self::planned(directive, now, true)
    }

    /// As [`from_directive`](Self::from_directive), but the sources are kept by index only
    /// (any `U` will do, 0 included): every [`RangeRequest`](super::RangeRequest) then has an
    /// empty `url`, and the caller maps its `source` to the directive's text (0 its `url`,
    /// `i` its `mirrors[i - 1]`, [`Directive::sources`]). For a caller that holds the
    /// directive for the whole transfer anyway, so its URLs are not stored twice; their
    /// length is then not the plan's to limit.
    pub fn from_directive_by_index(
        directive: &Directive<'_>,
        now: Instant,
    ) -> Result<Self, PlanError> {
        Self::planned(directive, now, false)
    }

    fn planned(directive: &Directive<'_>, now: Instant, named: bool) -> Result<Self, PlanError> {
        let size = directive.metadata.size.ok_or(PlanError::MissingSize)?;
        let verify = directive.options.verify;
        let sha256 = match directive.metadata.sha256 {
            Some(sha) => sha,
            None if verify => return Err(PlanError::MissingSha256),
            None => [0; 32],
        };
        let mut plan = Self {
            sources: Vec::new(),
            size,
            sha256,
            options: FetchOptions::default(),
        };
        for url in directive.sources() {
            if named {
                plan.add_source(url)?;
            } else {
                plan.sources
                    .push(String::new())
                    .map_err(|_| PlanError::TooManySources)?;
            }
        }
        let o = &directive.options;
        let defaults = FetchOptions::default();
        let seed = directive
            .transfer_id
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
        plan.options = FetchOptions {
            retry_count: o.retry_count.unwrap_or(defaults.retry_count),
            verify,
            chunk_size: o.chunk_size.unwrap_or(0),
            deadline: o.deadline_ms.map(|ms| now + Duration::from_millis(ms)),
            attempt_timeout: o
                .timeout_ms
                .map_or(defaults.attempt_timeout, Duration::from_millis),
            backoff: Backoff::new(Duration::from_millis(500), Duration::from_secs(30), seed),
            ..defaults
        };
        Ok(plan)
    }

    /// Replace the options.
    pub fn with_options(mut self, options: FetchOptions) -> Self {
        self.options = options;
        self
    }
}
