//! What the application's handles ask of the driver task. Each call that can fail carries a
//! one-slot result channel, so the caller gets a typed result instead of a silent drop.

use async_channel::{Receiver, Sender};
use sentelite_core::frame::PayloadBuf;
use sentelite_core::{Duration, RequestId, Status};

use crate::{ClientError, Response};

/// Where the driver puts the result of one call.
pub(crate) type ResultSlot<T> = Sender<Result<T, ClientError>>;

/// One thing a handle asks of the driver task.
pub(crate) enum Call {
    /// One-way event.
    Send {
        event: String,
        payload: PayloadBuf,
        result: ResultSlot<()>,
    },
    /// Request with streamed answer.
    Request {
        event: String,
        payload: PayloadBuf,
        timeout: Duration,
        result: ResultSlot<Response>,
    },
    /// Cancel one of our requests (no result: the [`Response`] learns the outcome).
    Cancel { id: RequestId },
    /// Part or end of our answer to a server request.
    Answer {
        generation: u64,
        id: RequestId,
        piece: AnswerPiece,
        result: Option<ResultSlot<()>>,
    },
    /// Want a channel (now and after every reconnect).
    Subscribe {
        channel: String,
        result: ResultSlot<()>,
    },
    /// Stop wanting a channel.
    Unsubscribe {
        channel: String,
        result: ResultSlot<()>,
    },
    /// Publish to a channel.
    Publish {
        channel: String,
        payload: PayloadBuf,
        exclude_sender: bool,
        result: ResultSlot<()>,
    },
    /// Log records were queued: look whether a batch is due.
    LogsQueued,
}

/// One piece of our answer to a server request.
pub(crate) enum AnswerPiece {
    Part { seq: u32, payload: PayloadBuf },
    End { status: Status, payload: PayloadBuf },
}

/// A one-shot result slot.
pub(crate) fn result_slot<T>() -> (ResultSlot<T>, Receiver<Result<T, ClientError>>) {
    async_channel::bounded(1)
}

/// Sends `make(result)` to the driver and waits for its answer. A driver that is gone (the
/// client was closed) reads as [`ClientError::Closed`].
pub(crate) async fn ask<T>(
    calls: &Sender<Call>,
    make: impl FnOnce(ResultSlot<T>) -> Call,
) -> Result<T, ClientError> {
    let (slot, result) = result_slot();
    calls
        .send(make(slot))
        .await
        .map_err(|_| ClientError::Closed)?;
    result.recv().await.map_err(|_| ClientError::Closed)?
}
