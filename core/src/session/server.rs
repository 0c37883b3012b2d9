//! The server role for one connection: waits for Hello, lets the application decide
//! (token, limits), answers Welcome, watches the client's heartbeat, and carries the frames
//! only a server sends (channel messages, subscription answers).

use core::ops::{Deref, DerefMut};

use super::endpoint::{Endpoint, Routed};
use super::{ProtocolError, SendError, SessionEvent, State};
use crate::answering::DEFAULT_ANSWERING;
use crate::codec::{self, EncodeError};
use crate::frame::{
    ChannelMsg, CloseCode, Frame, Payload, PublishDropped, SubscribeAck, SubscribeError, Welcome,
};
use crate::heartbeat::Heartbeat;
use crate::time::{Duration, Instant, earliest};

/// Limits and timings a server applies to each connection.
#[derive(Debug, Clone, Copy)]
pub struct ServerConfig {
    /// Time allowed from accepting the transport to receiving Hello.
    pub handshake_timeout: Duration,
    /// How often clients should ping (sent to them in Welcome).
    pub heartbeat_interval: Duration,
    /// Silence after which a client is declared dead.
    pub heartbeat_timeout: Duration,
    /// Largest frame the server accepts.
    pub max_frame: u32,
    /// Requests a client may have in flight towards the server (told in Welcome).
    pub max_pending: u16,
    /// Channels a client may subscribe to (told in Welcome).
    pub max_subscriptions: u16,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            handshake_timeout: Duration::from_secs(10),
            heartbeat_interval: Duration::from_secs(30),
            heartbeat_timeout: Duration::from_secs(60),
            max_frame: 64 * 1024,
            max_pending: 64,
            max_subscriptions: 32,
        }
    }
}

/// The server side of one connection, with `P` server→client requests in flight at most.
/// `R` is the capacity of the table of client requests being answered: the limit announced
/// in the Welcome is `min(config.max_pending, R)`, and requests beyond it are answered `BUSY`.
pub struct ServerSession<const P: usize = 16, const R: usize = DEFAULT_ANSWERING> {
    endpoint: Endpoint<P, R>,
    config: ServerConfig,
    handshake_deadline: Option<Instant>,
    hello_seen: bool,
}

impl<const P: usize, const R: usize> Deref for ServerSession<P, R> {
    type Target = Endpoint<P, R>;
    fn deref(&self) -> &Endpoint<P, R> {
        &self.endpoint
    }
}

impl<const P: usize, const R: usize> DerefMut for ServerSession<P, R> {
    fn deref_mut(&mut self) -> &mut Endpoint<P, R> {
        &mut self.endpoint
    }
}

impl<const P: usize, const R: usize> ServerSession<P, R> {
    /// A connection whose transport was just accepted at `now`.
    pub fn new(config: ServerConfig, now: Instant) -> Self {
        Self {
            endpoint: Endpoint::new(
                State::Handshaking,
                config.max_frame as usize,
                usize::from(config.max_pending),
            ),
            config,
            handshake_deadline: Some(now + config.handshake_timeout),
            hello_seen: false,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Feeds one received frame. `Frame::Hello` comes back once: answer it with
    /// [`Self::accept`] or [`Self::reject`]. Other application frames come back to be handled.
    pub fn handle_frame<'a>(
        &mut self,
        now: Instant,
        bytes: &'a [u8],
    ) -> Result<Option<Frame<'a>>, ProtocolError> {
        let decode = |bytes, max| codec::decode_limited(bytes, max).map(Some);
        let frame = match self.endpoint.route(now, bytes, decode)? {
            Routed::Consumed => return Ok(None),
            Routed::Deliver(frame) => return Ok(Some(frame)),
            Routed::Role(frame) => frame,
            // The server's decoder decodes every kind.
            Routed::Foreign => {
                return Err(self
                    .endpoint
                    .protocol_error(CloseCode::PROTOCOL_ERROR, "unexpected frame for a server"));
            }
        };
        match frame {
            Frame::Hello(hello)
                if self.endpoint.state == State::Handshaking && !self.hello_seen =>
            {
                if hello.client_id.is_empty() {
                    return Err(self
                        .endpoint
                        .protocol_error(CloseCode::PROTOCOL_ERROR, "empty client id"));
                }
                self.hello_seen = true;
                self.endpoint.peer_max_frame = hello.max_frame as usize;
                Ok(Some(frame))
            }
            Frame::Subscribe(_) | Frame::Unsubscribe(_) | Frame::Publish(_)
                if self.endpoint.state == State::Open =>
            {
                Ok(Some(frame))
            }
            _ => Err(self
                .endpoint
                .protocol_error(CloseCode::PROTOCOL_ERROR, "unexpected frame for a server")),
        }
    }

    /// Accepts the Hello: encodes the Welcome into `buf` and opens the session.
    pub fn accept(
        &mut self,
        now: Instant,
        uid: &str,
        connection_id: u64,
        buf: &mut [u8],
    ) -> Result<usize, SendError> {
        if self.endpoint.state != State::Handshaking || !self.hello_seen {
            return Err(SendError::NotOpen);
        }
        let welcome = Frame::Welcome(Welcome {
            uid,
            connection_id,
            heartbeat_ms: clamp_ms(self.config.heartbeat_interval),
            heartbeat_timeout_ms: clamp_ms(self.config.heartbeat_timeout),
            max_frame: self.config.max_frame,
            // The session enforces the smaller of the configured limit and its capacity.
            max_pending: u16::try_from(self.endpoint.answer_limit()).unwrap_or(u16::MAX),
            max_subscriptions: self.config.max_subscriptions,
        });
        let n = codec::encode_limited(&welcome, buf, self.endpoint.peer_max_frame)?;
        self.endpoint.count_sent(n);
        self.endpoint.state = State::Open;
        self.endpoint.tally(|s| s.handshakes += 1);
        self.handshake_deadline = None;
        self.endpoint.heartbeat = Some(Heartbeat::new(
            now,
            self.config.heartbeat_interval,
            self.config.heartbeat_timeout,
            false,
        ));
        self.endpoint
            .push_event(SessionEvent::Opened { connection_id });
        Ok(n)
    }

    /// Refuses the Hello (bad token, server full): a Close frame follows from `poll_transmit`.
    pub fn reject(&mut self, code: CloseCode, reason: &'static str) {
        self.endpoint.begin_close(code, reason, true);
    }

    /// Delivers a channel message to this connection's client.
    pub fn channel_msg(
        &mut self,
        channel: &str,
        from: &str,
        payload: Payload<'_>,
        buf: &mut [u8],
    ) -> Result<usize, SendError> {
        self.endpoint.encode_app(
            &Frame::ChannelMsg(ChannelMsg {
                channel,
                from,
                payload,
            }),
            buf,
        )
    }

    /// Answers a Subscribe or Unsubscribe.
    pub fn subscribe_ack(
        &mut self,
        channel: &str,
        subscribed: bool,
        error: SubscribeError,
        buf: &mut [u8],
    ) -> Result<usize, SendError> {
        self.endpoint.encode_app(
            &Frame::SubscribeAck(SubscribeAck {
                channel,
                subscribed,
                error,
            }),
            buf,
        )
    }

    /// Tells the client that `dropped` deliveries of its messages on `channel` failed since
    /// the last report (see [`PublishDropped`]); the host decides how often.
    pub fn publish_dropped(
        &mut self,
        channel: &str,
        dropped: u32,
        buf: &mut [u8],
    ) -> Result<usize, SendError> {
        self.endpoint.encode_app(
            &Frame::PublishDropped(PublishDropped { channel, dropped }),
            buf,
        )
    }

    /// Timers: handshake deadline, heartbeat silence, request deadlines.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.handshake_deadline.is_some_and(|d| now >= d) {
            self.handshake_deadline = None;
            if self.endpoint.state == State::Handshaking {
                self.endpoint.begin_close(
                    CloseCode::HANDSHAKE_TIMEOUT,
                    "no hello before the handshake timeout",
                    true,
                );
            }
        }
        self.endpoint.handle_timers(now);
    }

    /// When [`Self::handle_timeout`] next has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let own = if self.endpoint.state == State::Handshaking {
            self.handshake_deadline
        } else {
            None
        };
        earliest(own, self.endpoint.next_timer())
    }

    /// The next frame the session itself wants sent (pongs, Close).
    pub fn poll_transmit(&mut self, buf: &mut [u8]) -> Result<Option<usize>, EncodeError> {
        self.endpoint.poll_control(buf)
    }

    /// The transport is gone; requests in flight end with `Closed`. The session is finished.
    pub fn handle_disconnected(&mut self, _now: Instant) {
        if self.endpoint.state == State::Closed {
            return;
        }
        self.endpoint.on_transport_gone();
        self.endpoint.state = State::Closed;
    }
}

fn clamp_ms(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}
