//! Timers and outputs: fire what is due, drain every session's transmit and event queues,
//! and drop transports the sessions are done with.

use sentelite_core::{State, decode};

use super::{BUF, Pair};
use crate::link::{Direction, Lane, Wire};
use crate::record::{Observed, Record, Side, TransportNote};

impl Pair {
    pub(super) fn fire_timers(&mut self) -> bool {
        let now = self.now;
        let mut any = false;
        if self.client.poll_timeout().is_some_and(|t| t <= now) {
            self.client.handle_timeout(now);
            any = true;
        }
        for s in self.servers.iter_mut().filter(|s| s.attached) {
            if s.session.poll_timeout().is_some_and(|t| t <= now) {
                s.session.handle_timeout(now);
                any = true;
            }
        }
        any
    }

    pub(super) fn drain_client(&mut self) -> bool {
        let mut any = false;
        loop {
            match self.client.poll_transmit(&mut self.buf) {
                Ok(Some(n)) => {
                    self.client_transmit(n);
                    any = true;
                }
                Ok(None) => break,
                Err(e) => panic!("client poll_transmit failed with a {BUF}-byte buffer: {e}"),
            }
        }
        while let Some(event) = self.client.poll_event() {
            self.push(Side::Client, Observed::Event(event));
            any = true;
        }
        if let Some(conn) = self.client_conn {
            let gave_up = matches!(self.client.state(), State::Idle | State::Closed);
            if self.client.wants_disconnect() || gave_up {
                self.client_conn = None;
                if !gave_up {
                    self.client.handle_disconnected(self.now);
                }
                self.note(Side::Client, TransportNote::Dropped);
                self.put(Direction::ClientToServer, conn, Wire::Fin);
                any = true;
            }
        }
        any
    }

    pub(super) fn drain_servers(&mut self) -> bool {
        let mut any = false;
        for idx in 0..self.servers.len() {
            let conn = self.servers[idx].id;
            while self.servers[idx].attached {
                match self.servers[idx].session.poll_transmit(&mut self.buf) {
                    Ok(Some(n)) => {
                        self.server_transmit(conn, n);
                        any = true;
                    }
                    Ok(None) => break,
                    Err(e) => panic!("server poll_transmit failed with a {BUF}-byte buffer: {e}"),
                }
            }
            while let Some(event) = self.servers[idx].session.poll_event() {
                self.push(Side::Server(conn), Observed::Event(event));
                any = true;
            }
            if self.servers[idx].attached && self.servers[idx].session.wants_disconnect() {
                let s = &mut self.servers[idx];
                s.session.handle_disconnected(self.now);
                s.attached = false;
                self.push(
                    Side::Server(conn),
                    Observed::Transport(TransportNote::Dropped),
                );
                self.put(Direction::ServerToClient, conn, Wire::Fin);
                any = true;
            }
        }
        any
    }

    pub(super) fn client_transmit(&mut self, n: usize) {
        let Some(conn) = self.client_conn else {
            panic!(
                "client produced a frame with no transport (state {:?})",
                self.client.state()
            );
        };
        let frame = Wire::Frame(self.buf[..n].to_vec());
        self.put(Direction::ClientToServer, conn, frame);
    }

    pub(super) fn server_transmit(&mut self, conn: u64, n: usize) {
        let frame = Wire::Frame(self.buf[..n].to_vec());
        self.put(Direction::ServerToClient, conn, frame);
    }

    pub(super) fn put(&mut self, direction: Direction, conn: u64, wire: Wire) {
        let (now, link) = (self.now, self.link);
        if let (Some((swallowed, filter)), Wire::Frame(bytes)) = (self.swallow, &wire)
            && swallowed == direction
            && decode(bytes).is_ok_and(|f| filter(&f))
        {
            let stats = &mut self.lane_mut(direction).stats;
            stats.frames_sent += 1;
            stats.frames_lost += 1;
            return;
        }
        let lane = match direction {
            Direction::ClientToServer => &mut self.c2s,
            Direction::ServerToClient => &mut self.s2c,
        };
        lane.send(now, conn, wire, &link, &mut self.rng, &mut self.order);
    }

    pub(super) fn lane(&self, direction: Direction) -> &Lane {
        match direction {
            Direction::ClientToServer => &self.c2s,
            Direction::ServerToClient => &self.s2c,
        }
    }

    pub(super) fn lane_mut(&mut self, direction: Direction) -> &mut Lane {
        match direction {
            Direction::ClientToServer => &mut self.c2s,
            Direction::ServerToClient => &mut self.s2c,
        }
    }

    pub(super) fn note(&mut self, side: Side, note: TransportNote) {
        self.push(side, Observed::Transport(note));
    }

    pub(super) fn push(&mut self, side: Side, what: Observed) {
        self.records.push(Record {
            at: self.now,
            side,
            what,
        });
    }
}
