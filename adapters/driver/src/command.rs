//! What the application's handles ask of the driver task. Each command that can fail carries
//! a one-slot reply channel, so the caller gets a typed result instead of a silent drop.

use async_channel::{Receiver, Sender};
use sentelite_core::frame::PayloadBuf;
use sentelite_core::{Duration, RequestId, Status};

use crate::{ClientError, Response};

/// Where the driver puts the result of one command.
pub(crate) type Reply<T> = Sender<Result<T, ClientError>>;

/// A request from a handle to the driver task.
pub(crate) enum Command {
    /// One-way event.
    Send {
        event: String,
        payload: PayloadBuf,
        reply: Reply<()>,
    },
    /// Request with streamed answer.
    Request {
        event: String,
        payload: PayloadBuf,
        timeout: Duration,
        reply: Reply<Response>,
    },
    /// Cancel one of our requests (no reply: the [`Response`] learns the outcome).
    Cancel { id: RequestId },
    /// Part or end of our answer to a server request.
    Respond {
        generation: u64,
        id: RequestId,
        answer: Answer,
        reply: Option<Reply<()>>,
    },
    /// Want a channel (now and after every reconnect).
    Subscribe { channel: String, reply: Reply<()> },
    /// Stop wanting a channel.
    Unsubscribe { channel: String, reply: Reply<()> },
    /// Publish to a channel.
    Publish {
        channel: String,
        payload: PayloadBuf,
        exclude_sender: bool,
        reply: Reply<()>,
    },
    /// Close for good.
    Shutdown,
}

/// One piece of our answer to a server request.
pub(crate) enum Answer {
    Part { seq: u32, payload: PayloadBuf },
    End { status: Status, payload: PayloadBuf },
}

/// A one-shot reply slot.
pub(crate) fn reply_slot<T>() -> (Reply<T>, Receiver<Result<T, ClientError>>) {
    async_channel::bounded(1)
}

/// Sends `make(reply)` to the driver and waits for its answer. A driver that is gone (the
/// client was closed) reads as [`ClientError::Closed`].
pub(crate) async fn call<T>(
    commands: &Sender<Command>,
    make: impl FnOnce(Reply<T>) -> Command,
) -> Result<T, ClientError> {
    let (reply, result) = reply_slot();
    commands
        .send(make(reply))
        .await
        .map_err(|_| ClientError::Closed)?;
    result.recv().await.map_err(|_| ClientError::Closed)?
}
