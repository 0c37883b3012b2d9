//! The server application's side effects: answering Hellos, streaming replies, acking
//! subscriptions, echoing publishes.

use sentelite_core::{CloseCode, Payload, Status};

use super::Pair;
use crate::server_app::{Action, ReplyMode, StoreJob, StreamJob, part_payload};

impl Pair {
    /// Carries out the server application's decision on connection `servers[idx]`.
    pub(super) fn server_act(&mut self, idx: usize, action: Action) {
        let now = self.now;
        let conn = self.servers[idx].id;
        let server = &mut self.servers[idx];
        let sent = match action {
            Action::Accept => server.session.accept(now, &server.uid, conn, &mut self.buf),
            Action::Reject => {
                server
                    .session
                    .reject(CloseCode::AUTH_FAILED, "simulated rejection");
                return;
            }
            Action::StartStream(id) => {
                if let ReplyMode::Stream { parts, interval } = self.behaviour.replies {
                    self.jobs.push(StreamJob {
                        conn,
                        id,
                        next_seq: 0,
                        parts,
                        interval,
                        due: now,
                    });
                }
                return;
            }
            Action::StoreLogs { id, payload } => {
                let ReplyMode::StoreLogs { delay } = self.behaviour.replies else {
                    return;
                };
                let valid = sentelite_core::log::decode_batch(&payload)
                    .and_then(|b| b.validate())
                    .is_ok();
                if valid {
                    self.store_jobs.push(StoreJob {
                        conn,
                        id,
                        boot_id: server.boot_id,
                        payload,
                        due: now + delay,
                    });
                    return;
                }
                server
                    .session
                    .end(id, Status::ERROR, Payload::Empty, &mut self.buf)
            }
            Action::CancelStream(id) => {
                let before = self.jobs.len();
                self.jobs.retain(|j| !(j.conn == conn && j.id == id));
                if self.jobs.len() == before {
                    return;
                }
                server
                    .session
                    .end(id, Status::CANCELLED, Payload::Empty, &mut self.buf)
            }
            Action::Ack {
                channel,
                subscribed,
            } => server.session.subscribe_ack(
                &channel,
                subscribed,
                sentelite_core::frame::SubscribeError::NONE,
                &mut self.buf,
            ),
            Action::Echo { channel, payload } => server.session.channel_msg(
                &channel,
                &server.uid,
                payload.as_payload(),
                &mut self.buf,
            ),
        };
        if let Ok(n) = sent {
            self.server_transmit(conn, n);
        }
    }

    /// Emits reply parts and Ends that are due.
    pub(super) fn run_jobs(&mut self) -> bool {
        let mut any = false;
        let mut i = 0;
        while i < self.jobs.len() {
            if self.jobs[i].due > self.now {
                i += 1;
                continue;
            }
            any = true;
            let job = self.jobs[i].clone();
            let Some(idx) = self
                .servers
                .iter()
                .position(|s| s.id == job.conn && s.attached && s.session.is_open())
            else {
                self.jobs.swap_remove(i);
                continue;
            };
            let finished = self.emit_part(idx, &job);
            if finished {
                self.jobs.swap_remove(i);
            } else {
                let j = &mut self.jobs[i];
                j.next_seq += 1;
                // Not advancing `i`: a zero interval emits the next part at once, any other
                // interval makes the job not due and the loop moves past it.
                j.due = self.now + j.interval;
            }
        }
        any
    }

    /// Commits the log batches that are due to the store, then acks each on its connection
    /// if that is still open. A batch whose connection died meanwhile is still stored (the
    /// commit was under way): its ack is what gets lost.
    pub(super) fn run_store_jobs(&mut self) -> bool {
        let now = self.now;
        let (due, waiting): (Vec<StoreJob>, Vec<StoreJob>) =
            self.store_jobs.drain(..).partition(|j| j.due <= now);
        self.store_jobs = waiting;
        let any = !due.is_empty();
        for job in due {
            // Checked when the batch arrived.
            let _ = self.log_store.store_batch(job.boot_id, &job.payload);
            let Some(server) = self
                .servers
                .iter_mut()
                .find(|s| s.id == job.conn && s.attached && s.session.is_open())
            else {
                continue;
            };
            if let Ok(n) = server
                .session
                .end(job.id, Status::OK, Payload::Empty, &mut self.buf)
            {
                self.server_transmit(job.conn, n);
            }
        }
        any
    }

    /// Sends part `job.next_seq` (or the End after the last part); true when the job is done.
    pub(super) fn emit_part(&mut self, idx: usize, job: &StreamJob) -> bool {
        let session = &mut self.servers[idx].session;
        let (result, done) = if job.next_seq < job.parts {
            let payload = part_payload(job.id, job.next_seq);
            (
                session.reply(
                    job.id,
                    job.next_seq,
                    Payload::Bytes(&payload),
                    &mut self.buf,
                ),
                false,
            )
        } else {
            (
                session.end(job.id, Status::OK, Payload::Json("\"done\""), &mut self.buf),
                true,
            )
        };
        match result {
            Ok(n) => {
                self.server_transmit(job.conn, n);
                done
            }
            // The session is no longer open: the stream dies with it.
            Err(_) => true,
        }
    }
}
