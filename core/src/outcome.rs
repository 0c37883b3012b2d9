//! How a request ended, as the requesting application sees it: the core's [`RequestEnd`]
//! with the final frame's status and payload kept, in owned form (`alloc` feature). Every
//! adapter hands its applications this one type, whichever side asked.

use crate::correlate::RequestEnd;
use crate::frame::{End, PayloadBuf, Status};

/// How a request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestOutcome {
    /// The peer sent its final frame.
    Completed {
        /// The peer's status.
        status: Status,
        /// Result data or error detail.
        payload: PayloadBuf,
    },
    /// The requester's deadline passed first.
    TimedOut,
    /// The requester cancelled it.
    Cancelled,
    /// The connection (or the requester) closed before it completed.
    Closed,
}

impl From<&End<'_>> for RequestOutcome {
    /// The peer's End frame.
    fn from(end: &End<'_>) -> Self {
        RequestOutcome::Completed {
            status: end.status,
            payload: end.payload.into(),
        }
    }
}

impl From<RequestEnd> for RequestOutcome {
    /// An end the session decided (or an End whose payload was not kept).
    fn from(end: RequestEnd) -> Self {
        match end {
            RequestEnd::Completed(status) => RequestOutcome::Completed {
                status,
                payload: PayloadBuf::Empty,
            },
            RequestEnd::TimedOut => RequestOutcome::TimedOut,
            RequestEnd::Cancelled => RequestOutcome::Cancelled,
            RequestEnd::Closed => RequestOutcome::Closed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::Payload;

    #[test]
    fn every_end_maps_to_its_outcome() {
        assert_eq!(
            RequestOutcome::from(RequestEnd::Completed(Status::BUSY)),
            RequestOutcome::Completed {
                status: Status::BUSY,
                payload: PayloadBuf::Empty
            }
        );
        assert_eq!(
            RequestOutcome::from(RequestEnd::TimedOut),
            RequestOutcome::TimedOut
        );
        assert_eq!(
            RequestOutcome::from(RequestEnd::Cancelled),
            RequestOutcome::Cancelled
        );
        assert_eq!(
            RequestOutcome::from(RequestEnd::Closed),
            RequestOutcome::Closed
        );
        let end = End {
            id: 3,
            status: Status::OK,
            payload: Payload::Bytes(b"fin"),
        };
        assert_eq!(
            RequestOutcome::from(&end),
            RequestOutcome::Completed {
                status: Status::OK,
                payload: PayloadBuf::Bytes(b"fin".to_vec())
            }
        );
    }
}
