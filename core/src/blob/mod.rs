//! Blob fetch directives: the server tells a client to fetch a blob over HTTP (or to upload
//! one); the channel carries only the directive and the reports, HTTP moves the bytes.
//!
//! The fetch itself is a sans-IO state machine that brings one blob into a sink, resuming,
//! verifying and failing over, and always ending in one explicit state. It never touches a
//! socket or a clock. A caller (the driver's fetchers, an embassy task) loops:
//!
//! 1. [`Fetch::poll_action`] says: make this [`RangeRequest`], wait until an instant, or the
//!    transfer is [`Finished`](Action::Finished) with an [`End`].
//! 2. The response head goes to [`Fetch::on_response`], each body chunk to
//!    [`Fetch::on_body`] (hashed and written to the [`BlobSink`]), the end of the body to
//!    [`Fetch::on_body_end`], a broken connection to [`Fetch::on_error`].
//! 3. [`Fetch::poll_progress`] yields progress at the configured granularity, and
//!    [`Fetch::state`] a [`TransferState`] to persist for a resume after a reboot.
//!
//! | module | job |
//! |---|---|
//! | [`directive`] | the directives' wire form: borrowed decode, encode |
//! | [`report`] | progress, completion, failure and refusal maps |
//! | [`hex`] | SHA-256 digests as the hex the wire and URLs use |
//! | [`sink`] | the `BlobSink` trait and a sink over a caller's buffer |
//! | [`plan`] | sources, size, hash and options of one transfer |
//! | [`io`] | requests, response heads, errors, progress and end states |
//! | [`http`] | the HTTP/1.1 answer to a range request: head fields and where the body ends |
//! | [`state`] | the serialisable resume point, SHA-256 state included |
//! | [`fetch`] | the machine |

pub mod directive;
pub mod fetch;
pub mod hex;
pub mod http;
pub mod io;
pub mod plan;
pub mod report;
pub mod sink;
pub mod state;

pub use fetch::{CHECKPOINTS, Fetch};
pub use io::{
    Action, End, FailReason, FetchError, Progress, RangeRequest, ResponseHead, TransportError,
    parse_content_range,
};
pub use plan::{FetchOptions, FetchPlan, PlanError};
pub use sink::{BlobSink, SinkError, SliceSink};
pub use state::{ETAG_MAX, HASH_STATE_LEN, TRANSFER_STATE_MAX_ENCODED, TransferState};
