//! The client role: connects, says Hello, keeps the link alive with pings, reconnects with
//! backoff, and re-subscribes its channels after every handshake.

use core::ops::{Deref, DerefMut};

use heapless::String;

use super::endpoint::{Endpoint, Routed};
use super::{Initiator, ProtocolError, SendError, SessionEvent, State};
use crate::answering::DEFAULT_ANSWERING;
use crate::backoff::Backoff;
use crate::channels::Subscriptions;
use crate::codec::{self, EncodeError, Sent};
use crate::frame::{ChannelRef, CloseCode, Frame, Hello, Payload, Publish};
use crate::heartbeat::Heartbeat;
use crate::time::{Duration, Instant, earliest};

/// Longest client id, token and firmware id a [`ClientConfig`] holds.
pub const MAX_ID_LEN: usize = 64;

/// Shortest ping interval a Welcome can set: a server asking for less (by mistake or on
/// purpose) cannot make the client flood the link with pings.
pub const MIN_HEARTBEAT_INTERVAL: Duration = Duration::from_millis(100);
/// Longest ping interval a Welcome can set.
pub const MAX_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(3600);
/// Longest silence timeout a Welcome can set: a dead server is noticed within two hours
/// whatever it asked for.
pub const MAX_HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(2 * 3600);

/// How a client identifies itself and paces its reconnects.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Stable identity (device serial, program name).
    pub client_id: String<MAX_ID_LEN>,
    /// Changes every boot; lets the server tell a reboot from a reconnect.
    pub boot_id: u32,
    /// Shared-secret token for servers that ask for one.
    pub token: Option<String<MAX_ID_LEN>>,
    /// Firmware or program build id.
    pub firmware: Option<String<MAX_ID_LEN>>,
    /// [`crate::frame::capability`] bits.
    pub capabilities: u32,
    /// Largest frame this client can receive.
    pub max_frame: u32,
    /// Time allowed from starting to connect until the Welcome arrives.
    pub handshake_timeout: Duration,
    /// First reconnect delay.
    pub backoff_initial: Duration,
    /// Largest reconnect delay.
    pub backoff_max: Duration,
    /// Seed for reconnect jitter (use something device-unique, e.g. boot id ^ serial).
    pub rng_seed: u64,
    /// Ping interval used when the server's Welcome gives none (zero).
    pub heartbeat_interval: Duration,
    /// Silence timeout used when the server's Welcome gives none (zero).
    pub heartbeat_timeout: Duration,
}

impl ClientConfig {
    /// Defaults matching sente-lite: reconnect from 1 s up to 30 s, 10 s handshake timeout,
    /// 4 KiB frames, heartbeat every 30 s with a 60 s timeout unless the server says. Returns
    /// `None` if `client_id` is empty or longer than [`MAX_ID_LEN`] bytes.
    pub fn new(client_id: &str) -> Option<Self> {
        if client_id.is_empty() {
            return None;
        }
        Some(Self {
            client_id: String::try_from(client_id).ok()?,
            boot_id: 0,
            token: None,
            firmware: None,
            capabilities: 0,
            max_frame: 4096,
            handshake_timeout: Duration::from_secs(10),
            backoff_initial: Duration::from_millis(1000),
            backoff_max: Duration::from_millis(30_000),
            rng_seed: 0x5e47_e11e,
            heartbeat_interval: Duration::from_secs(30),
            heartbeat_timeout: Duration::from_secs(60),
        })
    }
}

/// The client side of a connection, with `P` requests in flight and `S` channels at most,
/// answering at most `R` server requests at once (more are answered `BUSY`).
pub struct ClientSession<
    const P: usize = 16,
    const S: usize = 8,
    const R: usize = DEFAULT_ANSWERING,
> {
    endpoint: Endpoint<P, R>,
    config: ClientConfig,
    subscriptions: Subscriptions<S>,
    backoff: Backoff,
    /// The client's own timer, by state: when the next connection attempt is due (Idle),
    /// the handshake deadline (Connecting and Handshaking); unused in the other states. One
    /// field rather than one per state: the states never need both.
    deadline: Option<Instant>,
    hello_due: bool,
    #[cfg(feature = "session-stats")]
    uid: String<MAX_ID_LEN>,
    #[cfg(feature = "session-stats")]
    connection_id: u64,
    shut_down: bool,
}

impl<const P: usize, const S: usize, const R: usize> Deref for ClientSession<P, S, R> {
    type Target = Endpoint<P, R>;
    fn deref(&self) -> &Endpoint<P, R> {
        &self.endpoint
    }
}

impl<const P: usize, const S: usize, const R: usize> DerefMut for ClientSession<P, S, R> {
    fn deref_mut(&mut self) -> &mut Endpoint<P, R> {
        &mut self.endpoint
    }
}

impl<const P: usize, const S: usize, const R: usize> ClientSession<P, S, R> {
    /// A client that wants to connect at once.
    pub fn new(config: ClientConfig, now: Instant) -> Self {
        let backoff = Backoff::new(config.backoff_initial, config.backoff_max, config.rng_seed);
        Self {
            endpoint: Endpoint::new(State::Idle, config.max_frame as usize, R),
            config,
            subscriptions: Subscriptions::new(),
            backoff,
            deadline: Some(now),
            hello_due: false,
            #[cfg(feature = "session-stats")]
            uid: String::new(),
            #[cfg(feature = "session-stats")]
            connection_id: 0,
            shut_down: false,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The uid the server gave this client in the last Welcome.
    #[cfg(feature = "session-stats")]
    pub fn uid(&self) -> Option<&str> {
        (!self.uid.is_empty()).then_some(self.uid.as_str())
    }

    /// The server's id for the current (or last) connection.
    #[cfg(feature = "session-stats")]
    pub fn connection_id(&self) -> u64 {
        self.connection_id
    }

    /// True when `channel` is subscribed and confirmed on the current connection.
    pub fn is_subscribed(&self, channel: &str) -> bool {
        self.subscriptions.is_active(channel)
    }

    /// Returns true once when it is time to open the transport; the adapter then calls
    /// [`Self::handle_connected`] or [`Self::handle_connect_failed`].
    #[must_use]
    pub fn poll_connect(&mut self, now: Instant) -> bool {
        match (self.endpoint.state, self.deadline) {
            (State::Idle, Some(at)) if now >= at && !self.shut_down => {
                self.endpoint.state = State::Connecting;
                self.deadline = Some(now + self.config.handshake_timeout);
                true
            }
            _ => false,
        }
    }

    /// The transport is up: the Hello goes out next.
    pub fn handle_connected(&mut self, now: Instant) {
        if self.endpoint.state != State::Connecting {
            return;
        }
        let _ = now;
        self.endpoint.state = State::Handshaking;
        self.endpoint.close_reason = None;
        self.hello_due = true;
    }

    /// The transport could not be opened: schedule the next attempt.
    pub fn handle_connect_failed(&mut self, now: Instant) {
        if self.endpoint.state == State::Connecting {
            self.schedule_reconnect(now);
        }
    }

    /// The transport is gone (closed by either side or lost). Every request in flight ends
    /// with `Closed`, and a reconnect is scheduled unless the client was shut down.
    pub fn handle_disconnected(&mut self, now: Instant) {
        if matches!(self.endpoint.state, State::Idle | State::Closed) {
            return;
        }
        if self.endpoint.state == State::Connecting {
            self.schedule_reconnect(now);
            return;
        }
        self.endpoint.on_transport_gone();
        self.subscriptions.on_disconnect();
        self.hello_due = false;
        self.deadline = None;
        if self.shut_down {
            self.endpoint.state = State::Closed;
        } else {
            self.schedule_reconnect(now);
        }
    }

    /// Feeds one received frame. Application frames come back for the caller to handle;
    /// pings, pongs and late replies are handled inside.
    pub fn handle_frame<'a>(
        &mut self,
        now: Instant,
        bytes: &'a [u8],
    ) -> Result<Option<Frame<'a>>, ProtocolError> {
        let frame = match self.endpoint.route(now, bytes, codec::decode_for_client)? {
            Routed::Consumed => return Ok(None),
            Routed::Deliver(frame) => return Ok(Some(frame)),
            Routed::Role(frame) => Some(frame),
            Routed::Foreign => None,
        };
        // Decided first, then returned at one place: each `Ok(frame)` of its own would be
        // another copy of the frame.
        let accepted = match frame {
            Some(Frame::Welcome(welcome))
                if self.endpoint.state == State::Handshaking && !self.hello_due =>
            {
                #[cfg(feature = "session-stats")]
                {
                    self.uid.clear();
                    // A uid longer than we can hold is truncated rather than refused.
                    let uid = crate::text::prefix_within(welcome.uid, self.uid.capacity());
                    let _ = self.uid.push_str(uid);
                }
                #[cfg(feature = "session-stats")]
                {
                    self.connection_id = welcome.connection_id;
                }
                self.endpoint.peer_max_frame = welcome.max_frame as usize;
                let (interval, timeout) = heartbeat_from_welcome(
                    welcome.heartbeat_ms,
                    welcome.heartbeat_timeout_ms,
                    &self.config,
                );
                self.endpoint.heartbeat = Some(Heartbeat::new(now, interval, timeout, true));
                self.endpoint.state = State::Open;
                self.endpoint.tally(|s| s.handshakes += 1);
                self.deadline = None;
                self.backoff.reset();
                self.endpoint.push_event(SessionEvent::Opened {
                    connection_id: welcome.connection_id,
                });
                true
            }
            Some(Frame::ChannelMsg(_) | Frame::PublishDropped(_)) => {
                self.endpoint.state == State::Open
            }
            Some(Frame::SubscribeAck(ack)) if self.endpoint.state == State::Open => {
                self.subscriptions.on_ack(ack.channel, ack.subscribed);
                true
            }
            _ => false,
        };
        if accepted {
            Ok(frame)
        } else {
            Err(self
                .endpoint
                .protocol_error(CloseCode::PROTOCOL_ERROR, "unexpected frame for a client"))
        }
    }

    /// Timers: handshake deadline, heartbeat, request deadlines.
    pub fn handle_timeout(&mut self, now: Instant) {
        let state = self.endpoint.state;
        if matches!(state, State::Connecting | State::Handshaking)
            && self.deadline.is_some_and(|d| now >= d)
        {
            self.deadline = None;
            if state == State::Connecting {
                self.schedule_reconnect(now);
            } else {
                self.endpoint.begin_close(
                    CloseCode::HANDSHAKE_TIMEOUT,
                    "no welcome before the handshake timeout",
                    true,
                );
            }
        }
        self.endpoint.handle_timers(now);
    }

    /// When [`Self::handle_timeout`] (or [`Self::poll_connect`]) next has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let own = match self.endpoint.state {
            State::Idle | State::Connecting | State::Handshaking => self.deadline,
            _ => None,
        };
        earliest(own, self.endpoint.next_timer())
    }

    /// The next frame the session itself wants sent (Hello, pings, pongs, re-subscriptions,
    /// Close). Call until it returns `Ok(None)`.
    pub fn poll_transmit(&mut self, buf: &mut [u8]) -> Result<Option<usize>, EncodeError> {
        if self.hello_due && self.endpoint.state == State::Handshaking {
            let frame = Sent::Hello(Hello {
                client_id: &self.config.client_id,
                boot_id: self.config.boot_id,
                token: self.config.token.as_deref(),
                capabilities: self.config.capabilities,
                max_frame: self.config.max_frame,
                firmware: self.config.firmware.as_deref(),
            });
            let n = codec::encode_sent(&frame, buf, usize::MAX)?;
            self.hello_due = false;
            self.endpoint.count_sent(n);
            return Ok(Some(n));
        }
        if let Some(n) = self.endpoint.poll_control(buf)? {
            return Ok(Some(n));
        }
        if self.endpoint.state != State::Open {
            return Ok(None);
        }
        let Some(channel) = self.subscriptions.take_unsent() else {
            return Ok(None);
        };
        match codec::encode_sent(&Sent::Subscribe(ChannelRef { channel }), buf, usize::MAX) {
            Ok(n) => {
                self.endpoint.count_sent(n);
                Ok(Some(n))
            }
            Err(e) => {
                let mut name: String<32> = String::new();
                let _ = name.push_str(channel);
                self.subscriptions.mark_unsent(&name);
                Err(e)
            }
        }
    }

    /// Wants `channel`: subscribes now if open, and again after every reconnect. The Subscribe
    /// frame comes out of `poll_transmit`; the server's answer arrives as `Frame::SubscribeAck`.
    pub fn subscribe(&mut self, channel: &str) -> Result<(), SendError> {
        self.subscriptions
            .add(channel)
            .map_err(SendError::Channel)?;
        Ok(())
    }

    /// Stops wanting `channel`. Returns the Unsubscribe frame length, or 0 if not open (the
    /// server drops subscriptions with the connection anyway).
    pub fn unsubscribe(&mut self, channel: &str, buf: &mut [u8]) -> Result<usize, SendError> {
        self.subscriptions.remove(channel);
        if !self.endpoint.is_open() {
            return Ok(0);
        }
        self.endpoint
            .encode_app(&Sent::Unsubscribe(ChannelRef { channel }), buf)
    }

    /// Publishes to a channel through the server.
    pub fn publish(
        &mut self,
        channel: &str,
        payload: Payload<'_>,
        exclude_sender: bool,
        buf: &mut [u8],
    ) -> Result<usize, SendError> {
        self.endpoint.encode_app(
            &Sent::Publish(Publish {
                channel,
                exclude_sender,
                payload,
            }),
            buf,
        )
    }

    /// Closes for good: no reconnect afterwards.
    pub fn shutdown(&mut self, reason: &'static str) {
        self.shut_down = true;
        match self.endpoint.state {
            State::Idle | State::Connecting => {
                self.endpoint.state = State::Closed;
                self.deadline = None;
                self.endpoint.pending.close_all();
                self.endpoint.push_event(SessionEvent::Closed {
                    code: CloseCode::NORMAL,
                    initiator: Initiator::Local,
                });
            }
            _ => self.endpoint.close(CloseCode::NORMAL, reason),
        }
    }

    fn schedule_reconnect(&mut self, now: Instant) {
        let delay = self.backoff.next_delay();
        self.endpoint.state = State::Idle;
        self.deadline = Some(now + delay);
        self.endpoint.tally(|s| s.reconnects += 1);
        self.endpoint.push_event(SessionEvent::ReconnectScheduled {
            attempt: self.backoff.attempt(),
            delay,
        });
    }
}

/// The heartbeat a client runs after a Welcome, from the server's values (milliseconds)
/// kept within sane bounds: zero means "no opinion" and takes the client's own setting; the
/// interval is clamped to [`MIN_HEARTBEAT_INTERVAL`]..=[`MAX_HEARTBEAT_INTERVAL`]; the
/// timeout to at least one and a half intervals (so one late pong is not death) and at most
/// [`MAX_HEARTBEAT_TIMEOUT`].
pub fn heartbeat_from_welcome(
    interval_ms: u32,
    timeout_ms: u32,
    config: &ClientConfig,
) -> (Duration, Duration) {
    let or_own = |ms: u32, own: Duration| match ms {
        0 => own,
        // A u32 of milliseconds cannot overflow u64 microseconds: no saturating multiply.
        ms => Duration::from_micros(u64::from(ms) * 1000),
    };
    let interval = or_own(interval_ms, config.heartbeat_interval)
        .max(MIN_HEARTBEAT_INTERVAL)
        .min(MAX_HEARTBEAT_INTERVAL);
    let shortest_timeout = interval + Duration::from_micros(interval.as_micros() / 2);
    let timeout = or_own(timeout_ms, config.heartbeat_timeout)
        .max(shortest_timeout)
        .min(MAX_HEARTBEAT_TIMEOUT);
    (interval, timeout)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ClientConfig {
        ClientConfig::new("dev").unwrap()
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn sane_welcome_values_are_kept() {
        assert_eq!(
            heartbeat_from_welcome(30_000, 60_000, &config()),
            (ms(30_000), ms(60_000))
        );
        assert_eq!(
            heartbeat_from_welcome(100, 400, &config()),
            (ms(100), ms(400))
        );
    }

    #[test]
    fn zero_takes_the_clients_own_setting() {
        let mut own = config();
        own.heartbeat_interval = ms(5_000);
        own.heartbeat_timeout = ms(20_000);
        assert_eq!(heartbeat_from_welcome(0, 0, &own), (ms(5_000), ms(20_000)));
        assert_eq!(
            heartbeat_from_welcome(2_000, 0, &own),
            (ms(2_000), ms(20_000))
        );
        assert_eq!(
            heartbeat_from_welcome(0, 9_000, &own),
            (ms(5_000), ms(9_000))
        );
    }

    #[test]
    fn the_interval_is_clamped_to_its_bounds() {
        assert_eq!(
            heartbeat_from_welcome(1, 10_000, &config()).0,
            MIN_HEARTBEAT_INTERVAL
        );
        assert_eq!(
            heartbeat_from_welcome(u32::MAX, u32::MAX, &config()).0,
            MAX_HEARTBEAT_INTERVAL
        );
    }

    #[test]
    fn the_timeout_outlasts_the_interval_and_has_a_ceiling() {
        // A timeout at or below the interval would kill every healthy connection.
        assert_eq!(
            heartbeat_from_welcome(10_000, 1, &config()),
            (ms(10_000), ms(15_000))
        );
        assert_eq!(
            heartbeat_from_welcome(10_000, 10_000, &config()).1,
            ms(15_000)
        );
        // u32::MAX ms is 49 days: a dead server would go unnoticed that long.
        assert_eq!(
            heartbeat_from_welcome(1_000, u32::MAX, &config()).1,
            MAX_HEARTBEAT_TIMEOUT
        );
        let (interval, timeout) = heartbeat_from_welcome(u32::MAX, 1, &config());
        assert!(timeout > interval && timeout <= MAX_HEARTBEAT_TIMEOUT);
    }

    /// A client past its Hello that was sent `welcome`.
    fn welcomed(welcome: crate::frame::Welcome<'_>) -> ClientSession<4, 2> {
        let mut client: ClientSession<4, 2> = ClientSession::new(config(), Instant::ZERO);
        assert!(client.poll_connect(Instant::ZERO));
        client.handle_connected(Instant::ZERO);
        let mut buf = [0u8; 256];
        while client.poll_transmit(&mut buf).unwrap().is_some() {}
        let mut frame = [0u8; 256];
        let n = codec::encode(&Frame::Welcome(welcome), &mut frame).unwrap();
        client.handle_frame(Instant::ZERO, &frame[..n]).unwrap();
        assert!(client.is_open());
        client
    }

    fn welcome(
        uid: &str,
        heartbeat_ms: u32,
        heartbeat_timeout_ms: u32,
    ) -> crate::frame::Welcome<'_> {
        crate::frame::Welcome {
            uid,
            connection_id: 1,
            max_frame: 4096,
            heartbeat_ms,
            heartbeat_timeout_ms,
            max_pending: 4,
            max_subscriptions: 2,
        }
    }

    #[test]
    fn a_welcome_with_a_zero_heartbeat_does_not_ping_in_a_loop() {
        let client = welcomed(welcome("u", 1, 0));
        // The first ping is due one clamped interval later, not after 1 ms.
        assert_eq!(
            client.poll_timeout(),
            Some(Instant::ZERO + MIN_HEARTBEAT_INTERVAL)
        );
    }

    #[cfg(feature = "session-stats")]
    #[test]
    fn a_uid_longer_than_the_session_holds_is_cut_between_characters() {
        // 63 ASCII bytes, then a two-byte 'é' that would end at byte 65: it does not fit.
        let long = "u".repeat(MAX_ID_LEN - 1) + "é" + "tail";
        let client = welcomed(welcome(&long, 10_000, 30_000));
        assert_eq!(client.uid(), Some(&long[..MAX_ID_LEN - 1]));
    }
}
