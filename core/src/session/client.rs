//! The client role: connects, says Hello, keeps the link alive with pings, reconnects with
//! backoff, and re-subscribes its channels after every handshake.

use core::ops::{Deref, DerefMut};

use heapless::String;

use super::endpoint::{Endpoint, Routed};
use super::{Initiator, ProtocolError, SendError, SessionEvent, State};
use crate::backoff::Backoff;
use crate::channels::Subscriptions;
use crate::codec::{self, EncodeError};
use crate::frame::{ChannelRef, CloseCode, Frame, Hello, Payload, Publish};
use crate::heartbeat::Heartbeat;
use crate::time::{Duration, Instant, earliest};

/// Longest client id, token and firmware id a [`ClientConfig`] holds.
pub const MAX_ID_LEN: usize = 64;

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
}

impl ClientConfig {
    /// Defaults matching sente-lite: reconnect from 1 s up to 30 s, 10 s handshake timeout,
    /// 4 KiB frames. Returns `None` if `client_id` is empty or longer than `MAX_ID_LEN`
    /// (64) bytes.
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
        })
    }
}

/// The client side of a connection, with `P` requests in flight and `S` channels at most.
pub struct ClientSession<const P: usize = 16, const S: usize = 8> {
    endpoint: Endpoint<P>,
    config: ClientConfig,
    subscriptions: Subscriptions<S>,
    backoff: Backoff,
    /// When the next connection attempt is due (state Idle).
    retry_at: Option<Instant>,
    /// Handshake deadline (states Connecting and Handshaking).
    handshake_deadline: Option<Instant>,
    hello_due: bool,
    uid: String<MAX_ID_LEN>,
    connection_id: u64,
    shut_down: bool,
}

impl<const P: usize, const S: usize> Deref for ClientSession<P, S> {
    type Target = Endpoint<P>;
    fn deref(&self) -> &Endpoint<P> {
        &self.endpoint
    }
}

impl<const P: usize, const S: usize> DerefMut for ClientSession<P, S> {
    fn deref_mut(&mut self) -> &mut Endpoint<P> {
        &mut self.endpoint
    }
}

impl<const P: usize, const S: usize> ClientSession<P, S> {
    /// A client that wants to connect at once.
    pub fn new(config: ClientConfig, now: Instant) -> Self {
        let backoff = Backoff::new(config.backoff_initial, config.backoff_max, config.rng_seed);
        Self {
            endpoint: Endpoint::new(State::Idle, config.max_frame as usize),
            config,
            subscriptions: Subscriptions::new(),
            backoff,
            retry_at: Some(now),
            handshake_deadline: None,
            hello_due: false,
            uid: String::new(),
            connection_id: 0,
            shut_down: false,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The uid the server gave this client in the last Welcome.
    pub fn uid(&self) -> Option<&str> {
        (!self.uid.is_empty()).then_some(self.uid.as_str())
    }

    /// The server's id for the current (or last) connection.
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
        match (self.endpoint.state, self.retry_at) {
            (State::Idle, Some(at)) if now >= at && !self.shut_down => {
                self.retry_at = None;
                self.endpoint.state = State::Connecting;
                self.handshake_deadline = Some(now + self.config.handshake_timeout);
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
        self.handshake_deadline = None;
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
        let frame = match self.endpoint.route(now, bytes)? {
            Routed::Consumed => return Ok(None),
            Routed::Deliver(frame) => return Ok(Some(frame)),
            Routed::Role(frame) => frame,
        };
        match frame {
            Frame::Welcome(welcome)
                if self.endpoint.state == State::Handshaking && !self.hello_due =>
            {
                self.uid.clear();
                // A uid longer than we can hold is truncated rather than refused.
                for c in welcome.uid.chars() {
                    if self.uid.push(c).is_err() {
                        break;
                    }
                }
                self.connection_id = welcome.connection_id;
                self.endpoint.peer_max_frame = welcome.max_frame as usize;
                let interval = Duration::from_millis(u64::from(welcome.heartbeat_ms.max(1)));
                let timeout = Duration::from_millis(u64::from(welcome.heartbeat_timeout_ms.max(1)));
                self.endpoint.heartbeat = Some(Heartbeat::new(now, interval, timeout, true));
                self.endpoint.state = State::Open;
                self.endpoint.stats.handshakes += 1;
                self.handshake_deadline = None;
                self.backoff.reset();
                self.endpoint.push_event(SessionEvent::Opened {
                    connection_id: welcome.connection_id,
                });
                Ok(Some(frame))
            }
            Frame::ChannelMsg(_) if self.endpoint.state == State::Open => Ok(Some(frame)),
            Frame::SubscribeAck(ack) if self.endpoint.state == State::Open => {
                self.subscriptions.on_ack(ack.channel, ack.subscribed);
                Ok(Some(frame))
            }
            _ => Err(self
                .endpoint
                .protocol_error(CloseCode::PROTOCOL_ERROR, "unexpected frame for a client")),
        }
    }

    /// Timers: handshake deadline, heartbeat, request deadlines.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.handshake_deadline.is_some_and(|d| now >= d) {
            self.handshake_deadline = None;
            match self.endpoint.state {
                State::Connecting => self.schedule_reconnect(now),
                State::Handshaking => self.endpoint.begin_close(
                    CloseCode::HANDSHAKE_TIMEOUT,
                    "no welcome before the handshake timeout",
                    true,
                ),
                _ => {}
            }
        }
        self.endpoint.handle_timers(now);
    }

    /// When [`Self::handle_timeout`] (or [`Self::poll_connect`]) next has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let own = match self.endpoint.state {
            State::Idle => self.retry_at,
            State::Connecting | State::Handshaking => self.handshake_deadline,
            _ => None,
        };
        earliest(own, self.endpoint.next_timer())
    }

    /// The next frame the session itself wants sent (Hello, pings, pongs, re-subscriptions,
    /// Close). Call until it returns `Ok(None)`.
    pub fn poll_transmit(&mut self, buf: &mut [u8]) -> Result<Option<usize>, EncodeError> {
        if self.hello_due && self.endpoint.state == State::Handshaking {
            let frame = Frame::Hello(Hello {
                client_id: &self.config.client_id,
                boot_id: self.config.boot_id,
                token: self.config.token.as_deref(),
                capabilities: self.config.capabilities,
                max_frame: self.config.max_frame,
                firmware: self.config.firmware.as_deref(),
            });
            let n = codec::encode(&frame, buf)?;
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
        match codec::encode(&Frame::Subscribe(ChannelRef { channel }), buf) {
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
            .encode_app(&Frame::Unsubscribe(ChannelRef { channel }), buf)
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
            &Frame::Publish(Publish {
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
                self.retry_at = None;
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
        self.handshake_deadline = None;
        self.retry_at = Some(now + delay);
        self.endpoint.stats.reconnects += 1;
        self.endpoint.push_event(SessionEvent::ReconnectScheduled {
            attempt: self.backoff.attempt(),
            delay,
        });
    }
}
