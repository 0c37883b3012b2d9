//! Transport and frame delivery: connects, accepts, refusals, FINs and frames arriving at
//! either side, handed to the sessions as the adapters would.

use sentelite_core::State;

use super::{Pair, ServerConn, SimServer};
use crate::link::{Direction, Wire};
use crate::record::{DeliveredFrame, Observed, Side, TransportNote};
use crate::server_app::respond;

impl Pair {
    pub(super) fn client_connect(&mut self) -> bool {
        if !self.client.poll_connect(self.now) {
            return false;
        }
        let conn = self.next_conn;
        self.next_conn += 1;
        self.client_conn = Some(conn);
        self.note(Side::Client, TransportNote::ConnectStarted);
        self.put(Direction::ClientToServer, conn, Wire::Connect);
        true
    }

    pub(super) fn deliver_due(&mut self) -> bool {
        let mut any = false;
        loop {
            let c = self.c2s.next_due().filter(|(at, _)| *at <= self.now);
            let s = self.s2c.next_due().filter(|(at, _)| *at <= self.now);
            let to_server = match (c, s) {
                (Some(a), Some(b)) => a <= b,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => return any,
            };
            any = true;
            if to_server {
                let p = self.c2s.pop_due(self.now).expect("due packet");
                self.at_server(p.conn, p.wire);
            } else {
                let p = self.s2c.pop_due(self.now).expect("due packet");
                self.at_client(p.conn, p.wire);
            }
        }
    }

    pub(super) fn at_client(&mut self, conn: u64, wire: Wire) {
        let now = self.now;
        let current = self.client_conn == Some(conn);
        match wire {
            Wire::Frame(bytes) if current => match self.client.handle_frame(now, &bytes) {
                Ok(Some(_)) => {
                    self.push(Side::Client, Observed::Frame(DeliveredFrame::new(&bytes)))
                }
                Ok(None) => {}
                Err(e) => self.push(Side::Client, Observed::ProtocolError(e)),
            },
            Wire::Accept if current && self.client.state() == State::Connecting => {
                self.client.handle_connected(now);
                self.note(Side::Client, TransportNote::Connected);
            }
            // The client gave up on this transport before the server accepted it: close it.
            Wire::Accept => self.put(Direction::ClientToServer, conn, Wire::Fin),
            Wire::Refuse if current => {
                self.client_conn = None;
                self.client.handle_connect_failed(now);
                self.note(Side::Client, TransportNote::ConnectFailed);
            }
            Wire::Fin if current => {
                self.client_conn = None;
                self.client.handle_disconnected(now);
                self.note(Side::Client, TransportNote::PeerGone);
            }
            // Anything for a transport the client no longer has is dropped.
            _ => {}
        }
    }

    pub(super) fn at_server(&mut self, conn: u64, wire: Wire) {
        let now = self.now;
        match wire {
            Wire::Connect if self.behaviour.refuse_connections => {
                self.push(
                    Side::Server(conn),
                    Observed::Transport(TransportNote::Refused),
                );
                self.put(Direction::ServerToClient, conn, Wire::Refuse);
            }
            Wire::Connect => {
                self.servers.push(ServerConn {
                    id: conn,
                    session: SimServer::new(self.server_config, now),
                    uid: format!("sim-{conn}"),
                    attached: true,
                    boot_id: 0,
                });
                self.push(
                    Side::Server(conn),
                    Observed::Transport(TransportNote::Accepted),
                );
                self.put(Direction::ServerToClient, conn, Wire::Accept);
            }
            Wire::Frame(bytes) => {
                let Some(idx) = self.servers.iter().position(|s| s.id == conn && s.attached) else {
                    return;
                };
                let action = match self.servers[idx].session.handle_frame(now, &bytes) {
                    Ok(Some(frame)) => {
                        if let sentelite_core::Frame::Hello(hello) = &frame {
                            self.servers[idx].boot_id = hello.boot_id;
                        }
                        let action = respond(&self.behaviour, &frame);
                        self.push(
                            Side::Server(conn),
                            Observed::Frame(DeliveredFrame::new(&bytes)),
                        );
                        action
                    }
                    Ok(None) => None,
                    Err(e) => {
                        self.push(Side::Server(conn), Observed::ProtocolError(e));
                        None
                    }
                };
                if let Some(action) = action {
                    self.server_act(idx, action);
                }
            }
            Wire::Fin => {
                if let Some(s) = self.servers.iter_mut().find(|s| s.id == conn && s.attached) {
                    s.session.handle_disconnected(now);
                    s.attached = false;
                    self.push(
                        Side::Server(conn),
                        Observed::Transport(TransportNote::PeerGone),
                    );
                }
            }
            Wire::Accept | Wire::Refuse => {}
        }
    }
}
