//! Carrying out the application's calls: sends, requests, answers to server requests,
//! channel changes.

use sentelite_core::frame::PayloadBuf;
use sentelite_core::{Instant, RequestId, Status};

use super::Driver;
use crate::call::{AnswerPiece, Call};
use crate::{ClientError, Response, Runtime};

impl<R: Runtime> Driver<R> {
    pub(super) fn on_call(&mut self, now: Instant, call: Call) {
        match call {
            Call::Send {
                event,
                payload,
                result,
            } => {
                let sent = self.outbox.encode(&mut self.session, |s, buf| {
                    s.send_event(&event, payload.as_payload(), buf)
                        .map(|n| ((), n))
                });
                let _ = result.try_send(sent);
            }
            Call::Request {
                event,
                payload,
                timeout,
                result,
            } => {
                let started = self.outbox.encode(&mut self.session, |s, buf| {
                    s.request(now, &event, payload.as_payload(), Some(timeout), buf)
                });
                let started = started.map(|id| {
                    let (response, feed) =
                        Response::new(id, self.response_parts, self.calls_tx.clone());
                    self.ours.insert(id, feed);
                    response
                });
                // If the caller gave up waiting, the response is dropped here, which cancels.
                let _ = result.try_send(started);
            }
            Call::Cancel { id } => self.cancel(id),
            Call::Answer {
                generation,
                id,
                piece,
                result,
            } => {
                let answered = self.answer(generation, id, piece);
                if let Some(result) = result {
                    let _ = result.try_send(answered);
                }
            }
            Call::Subscribe { channel, result } => {
                let wanted = self.session.subscribe(&channel).map_err(ClientError::from);
                let _ = result.try_send(wanted);
            }
            Call::Unsubscribe { channel, result } => {
                let sent = self.outbox.encode(&mut self.session, |s, buf| {
                    s.unsubscribe(&channel, buf).map(|n| ((), n))
                });
                let _ = result.try_send(sent);
            }
            Call::Publish {
                channel,
                payload,
                exclude_sender,
                result,
            } => {
                let sent = self.outbox.encode(&mut self.session, |s, buf| {
                    s.publish(&channel, payload.as_payload(), exclude_sender, buf)
                        .map(|n| ((), n))
                });
                let _ = result.try_send(sent);
            }
            // The loop looks for a due batch on its next turn.
            Call::LogsQueued => {}
        }
    }

    /// Cancels one of our requests if it is still in flight.
    pub(super) fn cancel(&mut self, id: RequestId) {
        if self.ours.contains(id) {
            let _ = self.outbox.encode(&mut self.session, |s, buf| {
                s.cancel(id, buf).map(|n| ((), n))
            });
        }
    }

    /// Our answer to a server request, if that request is still open on this connection: an
    /// answer from an earlier connection is refused here, one the session is no longer
    /// answering (ended, or never admitted) by the session itself.
    fn answer(
        &mut self,
        generation: u64,
        id: RequestId,
        piece: AnswerPiece,
    ) -> Result<(), ClientError> {
        if generation != self.theirs.generation() {
            return Err(ClientError::UnknownRequest);
        }
        match piece {
            AnswerPiece::Part { seq, payload } => {
                self.outbox.encode(&mut self.session, |s, buf| {
                    s.reply(id, seq, payload.as_payload(), buf).map(|n| ((), n))
                })
            }
            AnswerPiece::End { status, payload } => {
                let sent = self.outbox.encode(&mut self.session, |s, buf| {
                    s.end(id, status, payload.as_payload(), buf)
                        .map(|n| ((), n))
                });
                if matches!(sent, Err(ClientError::TooLarge { .. })) {
                    // The request must still end; the caller hears why its data did not fit.
                    let _ = self.outbox.encode(&mut self.session, |s, buf| {
                        s.end(id, Status::ERROR, PayloadBuf::Empty.as_payload(), buf)
                            .map(|n| ((), n))
                    });
                }
                sent
            }
        }
    }
}
