//! [`Pair`]: one client and its server sessions joined by a simulated link, driven in fake
//! time. The harness plays both adapters (it opens and drops transports, feeds frames, fires
//! timers, drains every output) and the server's application ([`crate::server_app`]).

mod app;
mod deliver;
mod drain;

use sentelite_core::{
    ClientConfig, ClientSession, Duration, Frame, Instant, Payload, RequestId, SendError,
    ServerConfig, ServerSession,
};

use crate::link::{Direction, Lane, LaneStats, LinkConfig, Wire};
use crate::log_store::LogStore;
use crate::record::{Observed, Record, Side, TransportNote};
use crate::rng::SimRng;
use crate::server_app::{ServerBehaviour, StoreJob, StreamJob};

/// The client type the simulation drives: 16 requests in flight, 8 channels.
pub type SimClient = ClientSession<16, 8>;
/// The server session type, one per transport connection.
pub type SimServer = ServerSession<16>;

/// Rounds of work allowed at one instant before the simulation calls it a livelock (a timer
/// that stays due after firing, or frames bouncing forever without time passing).
const MAX_ROUNDS_PER_INSTANT: usize = 10_000;
/// Steps allowed in one `run_until`, so a broken scenario fails instead of spinning.
const MAX_STEPS: usize = 2_000_000;
/// Transmit buffer size; larger than any frame the scenarios produce.
const BUF: usize = 64 * 1024;

/// The server side of one transport connection.
pub struct ServerConn {
    /// Connection number (also the `connection_id` given in Welcome), from 1.
    pub id: u64,
    /// The session.
    pub session: SimServer,
    /// The uid this connection's client was given.
    pub uid: String,
    /// False once the server side dropped the transport or saw it drop.
    pub attached: bool,
    /// The boot id of the client's Hello (0 until it arrives).
    pub boot_id: u32,
}

/// A client and a server joined by a seeded, lossy, delaying link, in fake time.
pub struct Pair {
    now: Instant,
    /// The client session. Use [`Pair::client_send`] for calls that produce a frame.
    pub client: SimClient,
    servers: Vec<ServerConn>,
    server_config: ServerConfig,
    /// The server application's policy; may be changed between steps.
    pub behaviour: ServerBehaviour,
    client_conn: Option<u64>,
    next_conn: u64,
    link: LinkConfig,
    rng: SimRng,
    c2s: Lane,
    s2c: Lane,
    order: u64,
    jobs: Vec<StreamJob>,
    store_jobs: Vec<StoreJob>,
    /// The server's durable log store (see [`crate::ServerBehaviour`] and
    /// [`crate::ReplyMode::StoreLogs`]); it survives [`Pair::restart_server`].
    pub log_store: LogStore,
    records: Vec<Record>,
    buf: Vec<u8>,
    swallow: Option<(Direction, FrameFilter)>,
}

/// Decides from a frame whether the link swallows it (see [`Pair::swallow_frames`]).
pub type FrameFilter = fn(&Frame<'_>) -> bool;

impl Pair {
    /// A client that wants to connect at time zero, a server that accepts, and the link.
    pub fn new(client_config: ClientConfig, server_config: ServerConfig, link: LinkConfig) -> Self {
        let now = Instant::ZERO;
        Self {
            now,
            client: SimClient::new(client_config, now),
            servers: Vec::new(),
            server_config,
            behaviour: ServerBehaviour::default(),
            client_conn: None,
            next_conn: 1,
            link,
            rng: SimRng::new(link.seed),
            c2s: Lane::default(),
            s2c: Lane::default(),
            order: 0,
            jobs: Vec::new(),
            store_jobs: Vec::new(),
            log_store: LogStore::default(),
            records: Vec::new(),
            buf: vec![0; BUF],
            swallow: None,
        }
    }

    /// Changes how the link treats frames sent from now on (those in flight keep their
    /// delay), for scenarios where latency or loss changes mid-run.
    pub fn set_link(&mut self, link: LinkConfig) {
        self.link = link;
    }

    /// From now on, frames in `direction` for which `filter` is true are lost (and counted
    /// as lost); `None` stops swallowing. Lets a scenario take away one kind of frame, for
    /// example every Pong, while the rest of the traffic flows.
    pub fn swallow_frames(&mut self, filter: Option<(Direction, FrameFilter)>) {
        self.swallow = filter;
    }

    /// Fake time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Everything observed so far (see [`crate::Records`] for queries).
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// Every server session ever created, oldest first.
    pub fn servers(&self) -> &[ServerConn] {
        &self.servers
    }

    /// The server session of connection `id`.
    pub fn server(&self, id: u64) -> Option<&ServerConn> {
        self.servers.iter().find(|s| s.id == id)
    }

    /// The newest server connection whose transport is still up on the server side.
    pub fn current_server(&self) -> Option<&ServerConn> {
        self.servers.iter().rev().find(|s| s.attached)
    }

    /// The transport connection the client is using, if any.
    pub fn client_connection(&self) -> Option<u64> {
        self.client_conn
    }

    /// Counters of one lane.
    pub fn lane_stats(&self, direction: Direction) -> LaneStats {
        self.lane(direction).stats
    }

    /// Packets (frames and transport signals) in flight in one direction.
    pub fn in_flight(&self, direction: Direction) -> usize {
        self.lane(direction).in_flight()
    }

    /// Swallows everything in both directions, in flight and from now on, without telling
    /// either side: to each, the other looks dead.
    pub fn cut_link(&mut self) {
        self.c2s.set_blackholed(true);
        self.s2c.set_blackholed(true);
    }

    /// Undoes [`Self::cut_link`] and any blackhole.
    pub fn restore_link(&mut self) {
        self.c2s.set_blackholed(false);
        self.s2c.set_blackholed(false);
    }

    /// Swallows one direction only (for example a server that stops answering).
    pub fn blackhole(&mut self, direction: Direction) {
        self.lane_mut(direction).set_blackholed(true);
    }

    /// Lets one direction through again.
    pub fn heal(&mut self, direction: Direction) {
        self.lane_mut(direction).set_blackholed(false);
    }

    /// True while `direction` swallows everything.
    pub fn is_blackholed(&self, direction: Direction) -> bool {
        self.lane(direction).is_blackholed()
    }

    /// Tears the current transport down under both sides at once (a reset both notice):
    /// both sessions get `handle_disconnected` now and its packets in flight vanish.
    pub fn disconnect_transport(&mut self) {
        let Some(conn) = self.client_conn.take() else {
            return;
        };
        self.c2s.purge(conn);
        self.s2c.purge(conn);
        let now = self.now;
        self.client.handle_disconnected(now);
        self.note(Side::Client, TransportNote::Killed);
        if let Some(s) = self.servers.iter_mut().find(|s| s.id == conn && s.attached) {
            s.session.handle_disconnected(now);
            s.attached = false;
            self.records.push(Record {
                at: now,
                side: Side::Server(conn),
                what: Observed::Transport(TransportNote::Killed),
            });
        }
        self.process_now();
    }

    /// The server process dies and comes back at once: every server session is gone (the
    /// client's transport gets a reset, frames on their way to the server are lost), and so is
    /// every reply stream and every log batch not yet committed. Only [`Pair::log_store`]
    /// survives. Set [`ServerBehaviour::refuse_connections`] around it for a longer outage.
    pub fn restart_server(&mut self) {
        let mut gone = Vec::new();
        for s in self.servers.iter_mut().filter(|s| s.attached) {
            s.attached = false;
            gone.push(s.id);
        }
        for conn in gone {
            self.c2s.purge(conn);
            // The host's kernel resets the socket after whatever was already sent.
            self.put(Direction::ServerToClient, conn, Wire::Fin);
            self.push(
                Side::Server(conn),
                Observed::Transport(TransportNote::Killed),
            );
        }
        self.jobs.clear();
        self.store_jobs.clear();
        self.process_now();
    }

    /// Runs an application call on the client that encodes a frame into the buffer (send
    /// an event, publish, cancel, ...), puts the frame on the link, and drains the session.
    /// A call that returns `Ok(0)` sends nothing, so calls without a frame fit here too.
    pub fn client_send<F>(&mut self, f: F) -> Result<usize, SendError>
    where
        F: FnOnce(&mut SimClient, Instant, &mut [u8]) -> Result<usize, SendError>,
    {
        let result = f(&mut self.client, self.now, &mut self.buf);
        // Zero means "nothing to send" (cancel or unsubscribe while not open).
        if let Ok(n @ 1..) = result {
            self.client_transmit(n);
        }
        self.process_now();
        result
    }

    /// Starts a client request and records it as issued.
    pub fn client_request(
        &mut self,
        event: &str,
        payload: Payload<'_>,
        timeout: Option<Duration>,
    ) -> Result<RequestId, SendError> {
        let now = self.now;
        let (id, n) = self
            .client
            .request(now, event, payload, timeout, &mut self.buf)?;
        self.records.push(Record {
            at: now,
            side: Side::Client,
            what: Observed::Issued(id),
        });
        self.client_transmit(n);
        self.process_now();
        Ok(id)
    }

    /// Cancels a client request; the Cancel frame (if the session is open) goes on the link.
    pub fn client_cancel(&mut self, id: RequestId) -> Result<usize, SendError> {
        self.client_send(|c, _, buf| c.cancel(id, buf))
    }

    /// Runs an application call on the current server session (`None` when there is none);
    /// as with [`Self::client_send`], `Ok(0)` sends nothing.
    pub fn server_send<F>(&mut self, f: F) -> Option<Result<usize, SendError>>
    where
        F: FnOnce(&mut SimServer, Instant, &mut [u8]) -> Result<usize, SendError>,
    {
        let idx = self.servers.iter().rposition(|s| s.attached)?;
        let now = self.now;
        let result = f(&mut self.servers[idx].session, now, &mut self.buf);
        if let Ok(n @ 1..) = result {
            let conn = self.servers[idx].id;
            self.server_transmit(conn, n);
        }
        self.process_now();
        Some(result)
    }

    /// Starts a request from the current server session to the client, recorded as issued
    /// by that server side.
    pub fn server_request(
        &mut self,
        event: &str,
        timeout: Option<Duration>,
    ) -> Option<Result<RequestId, SendError>> {
        let idx = self.servers.iter().rposition(|s| s.attached)?;
        let now = self.now;
        let conn = self.servers[idx].id;
        let result =
            self.servers[idx]
                .session
                .request(now, event, Payload::Empty, timeout, &mut self.buf);
        Some(result.map(|(id, n)| {
            self.records.push(Record {
                at: now,
                side: Side::Server(conn),
                what: Observed::Issued(id),
            });
            self.server_transmit(conn, n);
            self.process_now();
            id
        }))
    }

    /// When something next happens: a packet arrives, a timer fires, a reply part is due.
    pub fn next_wakeup(&self) -> Option<Instant> {
        let lanes = [self.c2s.next_due(), self.s2c.next_due()]
            .into_iter()
            .flatten()
            .map(|(at, _)| at);
        let jobs = self
            .jobs
            .iter()
            .map(|j| j.due)
            .chain(self.store_jobs.iter().map(|j| j.due));
        let servers = self
            .servers
            .iter()
            .filter(|s| s.attached)
            .filter_map(|s| s.session.poll_timeout());
        lanes
            .chain(jobs)
            .chain(servers)
            .chain(self.client.poll_timeout())
            .min()
            .map(|t| t.max(self.now))
    }

    /// Moves fake time to the next wakeup and does everything due then. Returns false when
    /// nothing at all is scheduled.
    pub fn step(&mut self) -> bool {
        let Some(next) = self.next_wakeup() else {
            return false;
        };
        self.now = next;
        self.process_now();
        true
    }

    /// Steps until `done` holds (true) or fake time would pass `max_time` (false; time is
    /// then left at `max_time`).
    pub fn run_until<P>(&mut self, mut done: P, max_time: Instant) -> bool
    where
        P: FnMut(&Pair) -> bool,
    {
        self.process_now();
        for _ in 0..MAX_STEPS {
            if done(self) {
                return true;
            }
            match self.next_wakeup() {
                Some(next) if next <= max_time => {
                    self.step();
                }
                _ => {
                    self.now = self.now.max(max_time);
                    self.process_now();
                    return done(self);
                }
            }
        }
        panic!(
            "run_until took more than {MAX_STEPS} steps at {:?}",
            self.now
        );
    }

    /// Lets `duration` of fake time pass, doing everything due on the way.
    pub fn run_for(&mut self, duration: Duration) {
        let until = self.now + duration;
        self.run_until(|_| false, until);
    }

    /// Does all work due at the current instant, until nothing changes.
    fn process_now(&mut self) {
        for _ in 0..MAX_ROUNDS_PER_INSTANT {
            let mut progress = self.client_connect();
            progress |= self.deliver_due();
            progress |= self.run_jobs();
            progress |= self.run_store_jobs();
            progress |= self.fire_timers();
            progress |= self.drain_client();
            progress |= self.drain_servers();
            if !progress {
                return;
            }
        }
        panic!(
            "livelock at {:?}: work stays due without time passing",
            self.now
        );
    }
}
