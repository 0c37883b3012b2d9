//! nREPL evaluation on a client: answer the host's `nrepl/request` with an application's
//! [`Evaluator`] through the core's op dispatcher.
//!
//! Announce the capability with `options.capabilities |= capability::NREPL` so the host
//! offers this client to editors, then pass each [`ClientEvent::Request`] whose event is
//! [`REQUEST_EVENT`] to [`answer`]:
//!
//! ```no_run
//! # async fn run(client: sentelite_driver::Client, mut evaluator: impl sentelite_driver::nrepl::Evaluator) {
//! use sentelite_driver::ClientEvent;
//! use sentelite_driver::nrepl::{REQUEST_EVENT, answer};
//! let events = client.events();
//! while let Some(event) = events.recv().await {
//!     if let ClientEvent::Request(request) = event {
//!         if request.event == REQUEST_EVENT {
//!             let _ = answer(request, &mut evaluator).await;
//!         }
//!     }
//! }
//! # }
//! ```
//!
//! [`ClientEvent::Request`]: crate::ClientEvent::Request

use sentelite_core::Status;
use sentelite_core::frame::PayloadBuf;
pub use sentelite_core::nrepl::{
    Completion, DispatchError, Evaluator, Ops, PartSink, REQUEST_EVENT, Reply, ReplyError, Request,
};

use crate::ClientError;
use crate::event::IncomingRequest;

/// Largest single response map (an `out` or `value` larger than this fails the request
/// with an error instead of being sent).
pub const MAX_RESPONSE_BYTES: usize = 60 * 1024;

/// Collects the encoded responses, to be sent as parts in order.
#[derive(Default)]
struct Collected(Vec<Vec<u8>>);

impl PartSink for Collected {
    fn part(&mut self, map: &[u8]) -> Result<(), ReplyError> {
        self.0.push(map.to_vec());
        Ok(())
    }
}

/// Answers one `nrepl/request` with `evaluator`: every response as one part, then the end.
/// A payload that is not a request, or a response too large, ends the request with
/// [`Status::ERROR`] (the host then tells the editor, with `done`).
pub async fn answer<E: Evaluator + ?Sized>(
    mut request: IncomingRequest,
    evaluator: &mut E,
) -> Result<(), ClientError> {
    let mut collected = Collected::default();
    let mut buf = vec![0u8; MAX_RESPONSE_BYTES];
    let payload = match &request.payload {
        PayloadBuf::Value(bytes) => bytes.clone(),
        _ => Vec::new(),
    };
    let outcome = sentelite_core::nrepl::dispatch(evaluator, &payload, &mut buf, &mut collected);
    for part in collected.0 {
        request.part(PayloadBuf::Value(part)).await?;
    }
    match outcome {
        Ok(()) => request.end(Status::OK, PayloadBuf::Empty).await,
        Err(e) => {
            request
                .end(
                    Status::ERROR,
                    PayloadBuf::Bytes(format!("{e:?}").into_bytes()),
                )
                .await
        }
    }
}
