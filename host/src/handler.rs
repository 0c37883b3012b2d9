//! What application handlers receive.
//!
//! A handler is called on the connection's task, in the order frames arrived, and the future
//! it returns runs on a task of its own. Work that must keep the arrival order (appending log
//! lines, say) belongs in the handler's synchronous part, before the `async` block.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use sentelite_core::codec::encoded_len;
use sentelite_core::frame::{End, Frame, PayloadBuf, Reply};
use sentelite_core::{RequestId, Status};
use tokio_util::sync::CancellationToken;

use crate::ConnectionId;
use crate::command::Command;
use crate::error::ResponderError;
use crate::handle::ServerHandle;
use crate::queue::{CommandTx, TrySendError};

/// A one-way event from a client.
#[derive(Debug, Clone)]
pub struct EventContext {
    /// The connection it arrived on.
    pub connection_id: ConnectionId,
    /// The connection's uid.
    pub uid: Arc<str>,
    /// The client's stable identity.
    pub client_id: Arc<str>,
    /// The boot id of the client's Hello (0 for text clients). Carried here because the
    /// connection may be gone from the server's list by the time a handler runs.
    pub boot_id: u32,
    /// The event id.
    pub event: Arc<str>,
    /// The event data.
    pub payload: PayloadBuf,
    /// The server, for answering, publishing or looking up connections.
    pub server: ServerHandle,
}

/// A request from a client; answer it through the [`Responder`] handed in beside it.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The connection it arrived on.
    pub connection_id: ConnectionId,
    /// The connection's uid.
    pub uid: Arc<str>,
    /// The client's stable identity.
    pub client_id: Arc<str>,
    /// The boot id of the client's Hello (0 for text clients). Carried here because the
    /// connection may be gone from the server's list by the time a handler runs (a log
    /// batch stored under the wrong boot was stored twice once resent).
    pub boot_id: u32,
    /// The build id of the client's Hello (`firmware`), if it announced one; picks the ELF
    /// its defmt log frames decode with.
    pub firmware: Option<Arc<str>>,
    /// The request's event id.
    pub event: Arc<str>,
    /// The client's id for the request.
    pub request_id: RequestId,
    /// How long the client waits (`None` when it gave no bound).
    pub timeout: Option<std::time::Duration>,
    /// The request data.
    pub payload: PayloadBuf,
    /// The server.
    pub server: ServerHandle,
}

/// Answers one client request: any number of streamed parts, then exactly one status.
///
/// Dropping a responder that has not ended answers the client with [`Status::ERROR`] (or
/// [`Status::CANCELLED`] after the client cancelled), so a handler that panics or returns
/// early never leaves the client waiting. The request keeps its place in the connection's
/// `max-pending` budget until that final status is sent: a client's Cancel asks the handler
/// to stop, and only the handler's end (or the responder's drop) frees the slot, so cancels
/// cannot be used to start more handlers than the limit.
#[derive(Debug)]
pub struct Responder {
    connection_id: ConnectionId,
    id: RequestId,
    commands: CommandTx,
    cancel: CancellationToken,
    peer_max_frame: usize,
    next_seq: u32,
    ended: bool,
}

impl Responder {
    pub(crate) fn new(
        connection_id: ConnectionId,
        id: RequestId,
        commands: CommandTx,
        cancel: CancellationToken,
        peer_max_frame: usize,
    ) -> Self {
        Self {
            connection_id,
            id,
            commands,
            cancel,
            peer_max_frame,
            next_seq: 0,
            ended: false,
        }
    }

    /// The client's id for this request.
    pub fn request_id(&self) -> RequestId {
        self.id
    }

    /// The connection the request came from.
    pub fn connection_id(&self) -> ConnectionId {
        self.connection_id
    }

    /// True once the client cancelled or the connection ended. The request still counts
    /// against `max-pending` until this responder ends or is dropped.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Resolves when the client cancels or the connection ends: select on it in long work.
    pub async fn cancelled(&self) {
        self.cancel.cancelled().await;
    }

    /// Sends one streamed part. Waits while the connection's queue is full, so a fast
    /// producer is paced by the client.
    pub async fn part(&mut self, payload: PayloadBuf) -> Result<(), ResponderError> {
        self.check_open()?;
        let seq = self.next_seq;
        self.fits(&Frame::Reply(Reply {
            id: self.id,
            seq,
            payload: payload.as_payload(),
        }))?;
        self.commands
            .send(Box::new(Command::Reply {
                id: self.id,
                seq,
                payload,
            }))
            .await
            .map_err(|_| ResponderError::Closed)?;
        self.next_seq += 1;
        Ok(())
    }

    /// Ends the request with `status`. On error nothing was sent, and dropping the
    /// responder then answers [`Status::ERROR`].
    pub async fn end(mut self, status: Status, payload: PayloadBuf) -> Result<(), ResponderError> {
        self.check_open()?;
        self.fits(&Frame::End(End {
            id: self.id,
            status,
            payload: payload.as_payload(),
        }))?;
        self.ended = true;
        self.commands
            .send(Box::new(Command::End {
                id: self.id,
                status,
                payload,
            }))
            .await
            .map_err(|_| ResponderError::Closed)
    }

    /// Ends with [`Status::OK`].
    pub async fn ok(self, payload: PayloadBuf) -> Result<(), ResponderError> {
        self.end(Status::OK, payload).await
    }

    /// Ends with [`Status::ERROR`]; the payload says why.
    pub async fn fail(self, payload: PayloadBuf) -> Result<(), ResponderError> {
        self.end(Status::ERROR, payload).await
    }

    fn check_open(&self) -> Result<(), ResponderError> {
        if self.commands.is_closed() {
            Err(ResponderError::Closed)
        } else if self.cancel.is_cancelled() {
            Err(ResponderError::Cancelled)
        } else {
            Ok(())
        }
    }

    fn fits(&self, frame: &Frame<'_>) -> Result<(), ResponderError> {
        let len = encoded_len(frame);
        if len > self.peer_max_frame {
            Err(ResponderError::TooLarge {
                len,
                max: self.peer_max_frame,
            })
        } else {
            Ok(())
        }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        if self.ended || self.commands.is_closed() {
            return;
        }
        // After a cancel this End is what frees the request's slot in the session.
        let status = if self.cancel.is_cancelled() {
            Status::CANCELLED
        } else {
            Status::ERROR
        };
        let end = Box::new(Command::End {
            id: self.id,
            status,
            payload: PayloadBuf::Empty,
        });
        match self.commands.try_send(end) {
            Ok(()) | Err(TrySendError::Closed(_)) => {}
            Err(TrySendError::Full(end)) => {
                // The end must not be lost: wait for room on a task of its own.
                let commands = self.commands.clone();
                if let Ok(rt) = tokio::runtime::Handle::try_current() {
                    rt.spawn(async move {
                        let _ = commands.send(end).await;
                    });
                }
            }
        }
    }
}

/// A registered event handler.
pub(crate) type EventHandler = Arc<dyn Fn(EventContext) -> BoxFuture<'static, ()> + Send + Sync>;

/// A registered request handler.
pub(crate) type RequestHandler =
    Arc<dyn Fn(RequestContext, Responder) -> BoxFuture<'static, ()> + Send + Sync>;

/// Handlers by event id.
#[derive(Default)]
pub(crate) struct Handlers {
    pub(crate) events: HashMap<Arc<str>, EventHandler>,
    pub(crate) requests: HashMap<Arc<str>, RequestHandler>,
}

pub(crate) fn event_handler<F, Fut>(f: F) -> EventHandler
where
    F: Fn(EventContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    Arc::new(move |ctx| Box::pin(f(ctx)))
}

pub(crate) fn request_handler<F, Fut>(f: F) -> RequestHandler
where
    F: Fn(RequestContext, Responder) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    Arc::new(move |ctx, responder| Box::pin(f(ctx, responder)))
}
