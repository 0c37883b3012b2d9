//! Encoding frames into caller buffers and decoding them without copying.
//!
//! Wire form: `[PROTOCOL_VERSION] ++ postcard(Frame)`. Decoding borrows strings and payloads
//! from the input slice; nothing is allocated and no input can make it panic.

use crate::frame::{
    Cancel, ChannelMsg, ChannelRef, Close, CloseCode, End, Event, Frame, Hello, PROTOCOL_VERSION,
    Payload, Ping, Publish, PublishDropped, Reply, Request, Status, SubscribeAck, SubscribeError,
    Welcome,
};
use postcard::ser_flavors::Size;
use serde::Serialize;

/// Why bytes could not be decoded into a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum DecodeError {
    /// Zero bytes.
    Empty,
    /// Longer than the receiver's maximum frame size.
    TooLarge {
        /// Length of the offered frame.
        len: usize,
        /// The limit it broke.
        max: usize,
    },
    /// The version byte names a protocol version this build does not speak.
    UnknownVersion(u8),
    /// The body is not a valid postcard `Frame` (bad tag, truncated, invalid UTF-8, …).
    Malformed,
    /// A valid frame followed by extra bytes.
    TrailingBytes,
}

impl DecodeError {
    /// The close code a receiver sends when a peer's frame fails this way.
    pub fn close_code(self) -> CloseCode {
        match self {
            DecodeError::TooLarge { .. } => CloseCode::FRAME_TOO_LARGE,
            DecodeError::UnknownVersion(_) => CloseCode::UNSUPPORTED_VERSION,
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }

    /// Human-readable reason, used as the close reason.
    pub fn reason(self) -> &'static str {
        match self {
            DecodeError::Empty => "empty frame",
            DecodeError::TooLarge { .. } => "frame too large",
            DecodeError::UnknownVersion(_) => "unsupported protocol version (this side speaks 1)",
            DecodeError::Malformed => "malformed frame",
            DecodeError::TrailingBytes => "trailing bytes after frame",
        }
    }
}

impl core::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DecodeError::TooLarge { len, max } => {
                write!(f, "frame of {len} bytes exceeds the limit of {max}")
            }
            DecodeError::UnknownVersion(v) => write!(f, "unknown protocol version {v}"),
            other => f.write_str(other.reason()),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for DecodeError {}

/// Why a frame could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum EncodeError {
    /// The output buffer is smaller than the encoded frame.
    BufferTooSmall {
        /// Bytes the frame needs.
        required: usize,
    },
    /// The encoded frame would exceed the peer's maximum frame size.
    TooLarge {
        /// Bytes the frame needs.
        len: usize,
        /// The peer's limit.
        max: usize,
    },
}

impl core::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            EncodeError::BufferTooSmall { required } => {
                write!(f, "output buffer too small: {required} bytes needed")
            }
            EncodeError::TooLarge { len, max } => {
                write!(f, "frame of {len} bytes exceeds the peer's limit of {max}")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for EncodeError {}

/// An error that may mean "the buffer was too small": how many bytes would have fitted the
/// frame, so a caller with an allocator can retry with a buffer that size.
pub trait NeedsRoom {
    /// The buffer size the frame needs, if that was the only problem.
    fn room_needed(&self) -> Option<usize>;
}

impl NeedsRoom for EncodeError {
    fn room_needed(&self) -> Option<usize> {
        match self {
            EncodeError::BufferTooSmall { required } => Some(*required),
            EncodeError::TooLarge { .. } => None,
        }
    }
}

/// Runs an encoding call (a session's send call, `poll_transmit`, [`encode`]) into `scratch`
/// and returns its value with the encoded bytes as a vector of their exact length. A frame
/// larger than `scratch` is encoded again into a buffer of exactly the size the first try
/// asked for, so one small scratch buffer serves every frame and nothing grows for good.
///
/// `encode` returns its value and the number of bytes written (0 when it wrote nothing); it
/// may run twice, so it must leave no trace when it fails, as every encoding call of this
/// crate does.
#[cfg(feature = "alloc")]
pub fn encode_to_vec<T, E: NeedsRoom>(
    scratch: &mut [u8],
    mut encode: impl FnMut(&mut [u8]) -> Result<(T, usize), E>,
) -> Result<(T, alloc::vec::Vec<u8>), E> {
    match encode(scratch) {
        Ok((value, n)) => Ok((value, scratch[..n].to_vec())),
        Err(error) => match error.room_needed() {
            Some(required) if required > scratch.len() => {
                let mut buf = alloc::vec![0u8; required];
                let (value, n) = encode(&mut buf)?;
                buf.truncate(n);
                Ok((value, buf))
            }
            _ => Err(error),
        },
    }
}

/// Exact number of bytes [`encode`] writes for `frame`.
pub fn encoded_len(frame: &Frame<'_>) -> usize {
    // The Size flavor cannot fail; report "huge" rather than panic if it ever did.
    postcard::serialize_with_flavor(&(PROTOCOL_VERSION, frame), Size::default())
        .unwrap_or(usize::MAX)
}

/// Encodes `frame` into the front of `buf`, returning the number of bytes written.
pub fn encode(frame: &Frame<'_>, buf: &mut [u8]) -> Result<usize, EncodeError> {
    encode_limited(frame, buf, usize::MAX)
}

/// Encodes `frame` only if it fits both `buf` and the peer's `max_frame` limit.
///
/// One pass of the serializer: a postcard flavor writes what fits and counts the rest, so the
/// length a refusal reports needs no second, size-only pass (whose code, another copy of
/// every frame's serializer, a device would carry for the error path alone).
pub fn encode_limited(
    frame: &Frame<'_>,
    buf: &mut [u8],
    max_frame: usize,
) -> Result<usize, EncodeError> {
    encode_kind(frame, buf, max_frame)
}

/// [`encode_limited`] for a [`Frame`] or a [`Sent`]: the same wire form from either.
pub(crate) fn encode_kind<F: Serialize + ?Sized>(
    frame: &F,
    buf: &mut [u8],
    max_frame: usize,
) -> Result<usize, EncodeError> {
    let bounded = Bounded { buf, len: 0 };
    // `Bounded` never refuses a byte; report "huge" rather than panic if it ever did.
    let len =
        postcard::serialize_with_flavor(&(PROTOCOL_VERSION, frame), bounded).unwrap_or(usize::MAX);
    if len > max_frame {
        Err(EncodeError::TooLarge {
            len,
            max: max_frame,
        })
    } else if len > buf.len() {
        Err(EncodeError::BufferTooSmall { required: len })
    } else {
        Ok(len)
    }
}

/// [`encode_kind`] for a [`Sent`]. Not generic, so compiled once, in this crate: a generic
/// call from a session (generic over its table sizes) would be compiled, serializer and all,
/// in each crate that instantiates one, and a firmware image would carry two copies.
#[inline(never)]
pub(crate) fn encode_sent(
    frame: &Sent<'_>,
    buf: &mut [u8],
    max_frame: usize,
) -> Result<usize, EncodeError> {
    encode_kind(frame, buf, max_frame)
}

/// What a session encodes: a [`Sent`], or a [`Frame`] for a server's own kinds, each
/// through a non-generic function of this crate (see [`encode_sent`]).
pub(crate) trait Encode {
    /// [`encode_limited`] for this frame.
    fn encode_into(&self, buf: &mut [u8], max_frame: usize) -> Result<usize, EncodeError>;
}

impl Encode for Sent<'_> {
    fn encode_into(&self, buf: &mut [u8], max_frame: usize) -> Result<usize, EncodeError> {
        encode_sent(self, buf, max_frame)
    }
}

impl Encode for Frame<'_> {
    fn encode_into(&self, buf: &mut [u8], max_frame: usize) -> Result<usize, EncodeError> {
        encode_limited(self, buf, max_frame)
    }
}

/// The kinds a session sends from the parts both roles share (pings, pongs, close,
/// application frames, the busy answer) and from the client (hello, subscribe, unsubscribe,
/// publish): every [`Frame`] but the four only a server sends (welcome, channel message,
/// subscribe ack, publish dropped). Its `Serialize` writes [`Frame`]'s postcard form (the
/// variant index, then the fields) in postcard's terms only, for this module's encoder, not
/// for other formats; a client that encodes through it carries no serializer for the
/// server's kinds. `the_sent_kinds_encode_as_frames` and
/// `sent_lengths_of_two_varint_bytes_encode_as_frames` hold every kind to [`Frame`]'s encoder.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Sent<'a> {
    Hello(Hello<'a>),
    Ping(Ping),
    Pong(Ping),
    Close(Close<'a>),
    Event(Event<'a>),
    Request(Request<'a>),
    Reply(Reply<'a>),
    End(End<'a>),
    Cancel(Cancel),
    Subscribe(ChannelRef<'a>),
    Unsubscribe(ChannelRef<'a>),
    Publish(Publish<'a>),
}

impl Serialize for Sent<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        // postcard writes an enum variant as its index, then its body; a struct as its
        // fields in order; a tuple as its elements in order; nothing between them. Each kind
        // is written as one tuple: its variant index (`Frame`'s variant order, its wire tag)
        // and its fields in their declaration order, every integer through `Varint`, every
        // text through `WireBytes`.
        let mut t = s.serialize_tuple(0)?;
        match self {
            Sent::Hello(f) => {
                t.serialize_element(&Varint(0))?;
                t.serialize_element(&WireBytes(f.client_id.as_bytes()))?;
                t.serialize_element(&Varint(f.boot_id))?;
                t.serialize_element(&WireText(f.token))?;
                t.serialize_element(&Varint(f.capabilities))?;
                t.serialize_element(&Varint(f.max_frame))?;
                t.serialize_element(&WireText(f.firmware))?;
            }
            Sent::Ping(f) => {
                t.serialize_element(&Varint(2))?;
                t.serialize_element(&Varint(f.nonce))?;
            }
            Sent::Pong(f) => {
                t.serialize_element(&Varint(3))?;
                t.serialize_element(&Varint(f.nonce))?;
            }
            Sent::Close(f) => {
                t.serialize_element(&Varint(4))?;
                t.serialize_element(&Varint(f.code.0.into()))?;
                t.serialize_element(&WireBytes(f.reason.as_bytes()))?;
            }
            Sent::Event(f) => {
                t.serialize_element(&Varint(5))?;
                t.serialize_element(&WireBytes(f.event.as_bytes()))?;
                t.serialize_element(&WirePayload(f.payload))?;
            }
            Sent::Request(f) => {
                t.serialize_element(&Varint(6))?;
                t.serialize_element(&Varint(f.id))?;
                t.serialize_element(&WireBytes(f.event.as_bytes()))?;
                t.serialize_element(&Varint(f.timeout_ms))?;
                t.serialize_element(&WirePayload(f.payload))?;
            }
            Sent::Reply(f) => {
                t.serialize_element(&Varint(7))?;
                t.serialize_element(&Varint(f.id))?;
                t.serialize_element(&Varint(f.seq))?;
                t.serialize_element(&WirePayload(f.payload))?;
            }
            Sent::End(f) => {
                t.serialize_element(&Varint(8))?;
                t.serialize_element(&Varint(f.id))?;
                t.serialize_element(&f.status.0)?;
                t.serialize_element(&WirePayload(f.payload))?;
            }
            Sent::Cancel(f) => {
                t.serialize_element(&Varint(9))?;
                t.serialize_element(&Varint(f.id))?;
            }
            Sent::Subscribe(f) => {
                t.serialize_element(&Varint(10))?;
                t.serialize_element(&WireBytes(f.channel.as_bytes()))?;
            }
            Sent::Unsubscribe(f) => {
                t.serialize_element(&Varint(11))?;
                t.serialize_element(&WireBytes(f.channel.as_bytes()))?;
            }
            Sent::Publish(f) => {
                t.serialize_element(&Varint(12))?;
                t.serialize_element(&WireBytes(f.channel.as_bytes()))?;
                t.serialize_element(&f.exclude_sender)?;
                t.serialize_element(&WirePayload(f.payload))?;
            }
        }
        t.end()
    }
}

/// A [`Payload`] as [`Sent`] writes it: its variant index, then its bytes or text (length
/// first), as the derived form does.
struct WirePayload<'a>(Payload<'a>);

impl Serialize for WirePayload<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let (index, body) = match self.0 {
            Payload::Empty => (0, None),
            Payload::Bytes(b) => (1, Some(b)),
            Payload::Value(b) => (2, Some(b)),
            Payload::Json(text) => (3, Some(text.as_bytes())),
        };
        let mut t = s.serialize_tuple(0)?;
        t.serialize_element(&Varint(index))?;
        if let Some(body) = body {
            t.serialize_element(&WireBytes(body))?;
        }
        t.end()
    }
}

/// Bytes as postcard writes a sequence of u8 (the derived form of a `&[u8]` field) and text
/// as it writes a `str`: the length as a [`Varint`], then the bytes, each as a u8 (which
/// postcard writes as itself).
struct WireBytes<'a>(&'a [u8]);

impl Serialize for WireBytes<'_> {
    #[inline(never)]
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // A host (64-bit) sends large payloads through its server and client sessions:
        // postcard's own length and one copy. A device writes them byte by byte, which
        // leaves postcard's usize varint writer and its panic paths out of its image.
        if cfg!(target_pointer_width = "64") {
            s.serialize_bytes(self.0)
        } else {
            self.serialize_by_element(s)
        }
    }
}

impl WireBytes<'_> {
    /// The length as a [`Varint`], then each byte as a u8 element: the same bytes as
    /// `serialize_bytes` writes.
    fn serialize_by_element<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let Ok(len) = u32::try_from(self.0.len()) else {
            return s.serialize_bytes(self.0);
        };
        let mut t = s.serialize_tuple(0)?;
        t.serialize_element(&Varint(len))?;
        for byte in self.0 {
            t.serialize_element(byte)?;
        }
        t.end()
    }
}

/// An optional text as postcard writes an `Option<&str>`: a 0 byte for none, a 1 byte and
/// the text for some.
struct WireText<'a>(Option<&'a str>);

impl Serialize for WireText<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut t = s.serialize_tuple(0)?;
        t.serialize_element(&u8::from(self.0.is_some()))?;
        if let Some(text) = self.0 {
            t.serialize_element(&WireBytes(text.as_bytes()))?;
        }
        t.end()
    }
}

/// A variant index, integer field or length as postcard writes a u32 or usize: a varint,
/// seven bits a byte from the lowest, the high bit set on every byte but the last. Written
/// byte by byte (postcard writes a u8 as itself): postcard's own varint writers index a
/// fixed array by a loop counter, and the client would carry their panic paths.
struct Varint(u32);

impl Serialize for Varint {
    // One call per integer rather than the loop at each.
    #[inline(never)]
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut t = s.serialize_tuple(0)?;
        let mut rest = self.0;
        while rest >= 0x80 {
            t.serialize_element(&(rest as u8 | 0x80))?;
            rest >>= 7;
        }
        t.serialize_element(&(rest as u8))?;
        t.end()
    }
}

/// A postcard flavor over a caller's buffer that stores the bytes that fit and counts all
/// of them: the output is the encoded length, larger than the buffer when it did not fit
/// (then the buffer holds a prefix, which the caller does not use).
struct Bounded<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl postcard::ser_flavors::Flavor for Bounded<'_> {
    type Output = usize;

    #[inline]
    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = byte;
        }
        self.len = self.len.saturating_add(1);
        Ok(())
    }

    #[inline]
    fn try_extend(&mut self, bytes: &[u8]) -> postcard::Result<()> {
        let end = self.len.saturating_add(bytes.len());
        // Byte by byte into a room checked to be long enough: `copy_from_slice` checks the
        // lengths again out of line and carries a panic path (and this file's name) for it.
        if let Some(room) = self
            .buf
            .get_mut(self.len..)
            .filter(|rest| rest.len() >= bytes.len())
        {
            for (slot, &byte) in room.iter_mut().zip(bytes) {
                *slot = byte;
            }
        }
        self.len = end;
        Ok(())
    }

    fn finalize(self) -> postcard::Result<usize> {
        Ok(self.len)
    }
}

/// Decodes one whole frame, borrowing from `bytes`.
pub fn decode(bytes: &[u8]) -> Result<Frame<'_>, DecodeError> {
    decode_limited(bytes, usize::MAX)
}

/// Decodes one whole frame no longer than `max_frame` bytes.
pub fn decode_limited(bytes: &[u8], max_frame: usize) -> Result<Frame<'_>, DecodeError> {
    let (frame, rest) = postcard::take_from_bytes::<Frame<'_>>(body(bytes, max_frame)?)
        .map_err(|_| DecodeError::Malformed)?;
    if !rest.is_empty() {
        return Err(DecodeError::TrailingBytes);
    }
    Ok(frame)
}

/// [`decode_limited`] for a client: `Ok(None)` for a kind only a server receives (hello,
/// subscribe, unsubscribe, publish), whose body is not decoded. A client refuses those
/// whatever they hold, so its decoder need not carry their fields (about 0.3 KB of flash on a
/// Cortex-M0+).
pub fn decode_for_client(bytes: &[u8], max_frame: usize) -> Result<Option<Frame<'_>>, DecodeError> {
    let (ForClient(frame), rest) =
        postcard::take_from_bytes::<ForClient<'_>>(body(bytes, max_frame)?)
            .map_err(|_| DecodeError::Malformed)?;
    if frame.is_some() && !rest.is_empty() {
        return Err(DecodeError::TrailingBytes);
    }
    Ok(frame)
}

/// The frame's body after the checks of its length and version byte.
#[inline]
fn body(bytes: &[u8], max_frame: usize) -> Result<&[u8], DecodeError> {
    let (&version, body) = bytes.split_first().ok_or(DecodeError::Empty)?;
    if bytes.len() > max_frame {
        return Err(DecodeError::TooLarge {
            len: bytes.len(),
            max: max_frame,
        });
    }
    if version != PROTOCOL_VERSION {
        return Err(DecodeError::UnknownVersion(version));
    }
    Ok(body)
}

/// The fields of one frame body, for the client decoder. postcard writes a struct as its
/// fields in order, the same as a tuple, so the client reads each kind's body as a tuple of
/// its fields ([`Body`]), every field of one type through one function. A field that is
/// missing or does not decode marks the body bad and reads as its type's default, and no
/// further field is read; the body is refused after its last field. No early return per
/// field: each would be another branch and error copy at every field of every kind.
struct Fields<'s, A> {
    seq: &'s mut A,
    bad: bool,
}

impl<'de, A: serde::de::SeqAccess<'de>> Fields<'_, A> {
    fn next<T: serde::Deserialize<'de> + Default>(&mut self) -> T {
        if !self.bad {
            if let Ok(Some(value)) = self.seq.next_element() {
                return value;
            }
            self.bad = true;
        }
        T::default()
    }

    /// A varint field of at most `bytes` bytes whose last byte, when it takes them all, is at
    /// most `last_max`: postcard's form and limits for a u16 (3, 3), a u32 (5, 15) or a u64
    /// (10, 1). Read through [`VarintSeed`], so the client carries one reader for the three
    /// rather than postcard's three. `the_client_decoder_takes_varints_to_the_limits_of_their_types`
    /// holds it to postcard's.
    fn varint(&mut self, bytes: u32, last_max: u8) -> u64 {
        if !self.bad {
            if let Ok(Some(value)) = self.seq.next_element_seed(VarintSeed { bytes, last_max }) {
                return value;
            }
            self.bad = true;
        }
        0
    }

    /// A text field: its bytes, which must be UTF-8 (postcard's `str` form).
    fn text(&mut self) -> &'de str {
        let bytes: &'de [u8] = self.next();
        core::str::from_utf8(bytes).unwrap_or_else(|_| {
            self.bad = true;
            ""
        })
    }

    /// A [`Payload`] field: its variant index (a u32), then the bytes or text of the kinds
    /// that carry them, as the derived form reads it.
    fn payload(&mut self) -> Payload<'de> {
        match self.u32() {
            0 => Payload::Empty,
            1 => Payload::Bytes(self.next()),
            2 => Payload::Value(self.next()),
            3 => Payload::Json(self.text()),
            _ => {
                self.bad = true;
                Payload::Empty
            }
        }
    }

    /// A bool field: one byte, 0 or 1 (postcard's form), read as a u8 rather than through
    /// a reader of its own.
    fn flag(&mut self) -> bool {
        match self.next::<u8>() {
            0 => false,
            1 => true,
            _ => {
                self.bad = true;
                false
            }
        }
    }

    /// A u32 field: at most five bytes, the fifth at most 15, so the value fits.
    fn u32(&mut self) -> u32 {
        self.varint(5, 15) as u32
    }
}

/// Reads a varint one byte at a time (postcard reads a u8 as itself) with the limits
/// postcard sets for the field's type: at most `bytes` bytes, the last of all `bytes` at
/// most `last_max`, so that the value fits the type and no other reading is accepted.
#[derive(Clone, Copy)]
struct VarintSeed {
    bytes: u32,
    last_max: u8,
}

impl<'de> serde::de::DeserializeSeed<'de> for VarintSeed {
    type Value = u64;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<u64, D::Error> {
        deserializer.deserialize_tuple(self.bytes as usize, self)
    }
}

impl<'de> serde::de::Visitor<'de> for VarintSeed {
    type Value = u64;

    fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("a varint")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<u64, A::Error> {
        let mut value = 0u64;
        let mut shift = 0;
        for i in 1..=self.bytes {
            let Some(byte) = seq.next_element::<u8>()? else {
                break;
            };
            value |= u64::from(byte & 0x7f) << shift;
            shift += 7;
            if byte < 0x80 {
                if i == self.bytes && byte > self.last_max {
                    break;
                }
                return Ok(value);
            }
        }
        Err(serde::de::Error::custom("a varint too long for its type"))
    }
}

/// The body of the kind with this variant index (one a client receives), read as the tuple
/// of its fields in their declaration order (the wire order). One visitor for every kind
/// rather than one per kind (the derived decoder's way): their calls into postcard are
/// shared.
struct Body(u32);

impl<'de> serde::de::Visitor<'de> for Body {
    type Value = Frame<'de>;

    fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("a frame body")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Frame<'de>, A::Error> {
        let mut f = Fields {
            seq: &mut seq,
            bad: false,
        };
        let s = &mut f;
        let frame = match self.0 {
            1 => Frame::Welcome(Welcome {
                uid: s.text(),
                connection_id: s.varint(10, 1),
                heartbeat_ms: s.u32(),
                heartbeat_timeout_ms: s.u32(),
                max_frame: s.u32(),
                // Three bytes at most, the third at most 3: below 2^16.
                max_pending: s.varint(3, 3) as u16,
                max_subscriptions: s.varint(3, 3) as u16,
            }),
            2 => Frame::Ping(Ping { nonce: s.u32() }),
            3 => Frame::Pong(Ping { nonce: s.u32() }),
            4 => Frame::Close(Close {
                code: CloseCode(s.varint(3, 3) as u16),
                reason: s.text(),
            }),
            5 => Frame::Event(Event {
                event: s.text(),
                payload: s.payload(),
            }),
            6 => Frame::Request(Request {
                id: s.u32(),
                event: s.text(),
                timeout_ms: s.u32(),
                payload: s.payload(),
            }),
            7 => Frame::Reply(Reply {
                id: s.u32(),
                seq: s.u32(),
                payload: s.payload(),
            }),
            8 => Frame::End(End {
                id: s.u32(),
                status: Status(s.next()),
                payload: s.payload(),
            }),
            9 => Frame::Cancel(Cancel { id: s.u32() }),
            13 => Frame::ChannelMsg(ChannelMsg {
                channel: s.text(),
                from: s.text(),
                payload: s.payload(),
            }),
            14 => Frame::SubscribeAck(SubscribeAck {
                channel: s.text(),
                subscribed: s.flag(),
                error: SubscribeError(s.next()),
            }),
            15 => Frame::PublishDropped(PublishDropped {
                channel: s.text(),
                dropped: s.u32(),
            }),
            _ => return Err(serde::de::Error::custom("not a kind a client receives")),
        };
        if f.bad {
            return Err(serde::de::Error::custom("a field is missing or malformed"));
        }
        Ok(frame)
    }
}

/// A [`Frame`] as a client decodes it: the same wire form (postcard's variant index, then
/// the variant's body), with the kinds only a server receives left undecoded (`None`).
/// The indices are [`Frame`]'s variant order; property tests
/// (`the_client_decoder_agrees_with_the_full_one` in `tests/properties/codec.rs`, and
/// `the_client_decoder_agrees_with_the_derived_one_on_any_bytes` here) hold every kind to
/// the derived decoder.
struct ForClient<'a>(Option<Frame<'a>>);

impl<'de> serde::Deserialize<'de> for ForClient<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Kinds;

        impl<'de> serde::de::Visitor<'de> for Kinds {
            type Value = ForClient<'de>;

            fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str("a frame")
            }

            fn visit_enum<A: serde::de::EnumAccess<'de>>(
                self,
                data: A,
            ) -> Result<ForClient<'de>, A::Error> {
                use serde::de::VariantAccess;
                let (index, body): (u32, _) = data.variant()?;
                // Hello, Subscribe, Unsubscribe, Publish.
                if matches!(index, 0 | 10..=12) {
                    return Ok(ForClient(None));
                }
                // The most elements `Body` reads from a kind's body: its fields, a payload
                // counting two (its variant index, then its bytes or text). postcard's tuple
                // only stops a visitor reading more than this; `Body` reads exactly its
                // kind's fields, and refuses an index no kind has.
                const MOST_ELEMENTS: usize = 7;
                Ok(ForClient(Some(
                    body.tuple_variant(MOST_ELEMENTS, Body(index))?,
                )))
            }
        }

        // postcard reads the variant by index; the names are not on the wire.
        deserializer.deserialize_enum("Frame", &[], Kinds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::*;

    #[test]
    fn ping_is_four_bytes_on_the_wire() {
        let mut buf = [0u8; 16];
        let n = encode(&Frame::Ping(Ping { nonce: 7 }), &mut buf).unwrap();
        assert_eq!(&buf[..n], &[PROTOCOL_VERSION, 2, 7]);
        assert_eq!(encoded_len(&Frame::Ping(Ping { nonce: 7 })), n);
    }

    #[test]
    fn event_layout_matches_the_spec() {
        let mut buf = [0u8; 64];
        let frame = Frame::Event(Event {
            event: "a/b",
            payload: Payload::Bytes(&[9, 8]),
        });
        let n = encode(&frame, &mut buf).unwrap();
        assert_eq!(&buf[..n], &[1, 5, 3, b'a', b'/', b'b', 1, 2, 9, 8]);
        assert_eq!(decode(&buf[..n]).unwrap(), frame);
    }

    #[test]
    fn typed_errors() {
        assert_eq!(decode(&[]), Err(DecodeError::Empty));
        assert_eq!(decode(&[9, 2, 0]), Err(DecodeError::UnknownVersion(9)));
        assert_eq!(decode(&[1, 200]), Err(DecodeError::Malformed));
        assert_eq!(decode(&[1, 2, 0, 0]), Err(DecodeError::TrailingBytes));
        assert_eq!(
            decode_limited(&[1, 2, 0], 2),
            Err(DecodeError::TooLarge { len: 3, max: 2 })
        );
        let mut small = [0u8; 2];
        assert_eq!(
            encode(&Frame::Ping(Ping { nonce: 1 }), &mut small),
            Err(EncodeError::BufferTooSmall { required: 3 })
        );
        let mut buf = [0u8; 64];
        let big = Frame::Event(Event {
            event: "x",
            payload: Payload::Bytes(&[0; 40]),
        });
        assert!(matches!(
            encode_limited(&big, &mut buf, 10),
            Err(EncodeError::TooLarge { max: 10, .. })
        ));
    }

    /// The one-pass encoder reports the exact length for every buffer too small (the
    /// prefix it stored must not stop the count) and writes the same bytes as the size pass
    /// measures once the buffer is just large enough.
    #[test]
    fn every_buffer_too_small_learns_the_exact_length() {
        let frames = [
            Frame::Ping(Ping { nonce: 300 }),
            Frame::Event(Event {
                event: "sensor/reading",
                payload: Payload::Bytes(&[5; 200]),
            }),
            Frame::Request(Request {
                id: 70_000,
                event: "telemetry/log-batch",
                timeout_ms: 30_000,
                payload: Payload::Json("{\"a\":1}"),
            }),
        ];
        for frame in frames {
            let len = encoded_len(&frame);
            let mut exact = [0u8; 256];
            assert_eq!(encode(&frame, &mut exact[..len]), Ok(len));
            assert_eq!(decode(&exact[..len]), Ok(frame));
            for size in 0..len {
                let mut buf = [0u8; 256];
                assert_eq!(
                    encode(&frame, &mut buf[..size]),
                    Err(EncodeError::BufferTooSmall { required: len }),
                    "buffer of {size} for a frame of {len}"
                );
                assert_eq!(
                    encode_limited(&frame, &mut buf[..size], len - 1),
                    Err(EncodeError::TooLarge { len, max: len - 1 }),
                    "the peer's limit is reported before the buffer's"
                );
            }
        }
    }

    /// The devices' byte-by-byte form of bytes and text (a 32-bit target's) writes what
    /// postcard's `serialize_bytes`, the host's form, writes, at every length form of the
    /// varint up to three bytes.
    #[test]
    fn bytes_by_element_match_postcards_bytes() {
        struct ByElement<'a>(&'a [u8]);
        impl Serialize for ByElement<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                WireBytes(self.0).serialize_by_element(s)
            }
        }
        struct Whole<'a>(&'a [u8]);
        impl Serialize for Whole<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(self.0)
            }
        }
        let source: [u8; 20_000] = core::array::from_fn(|i| (i * 7 + 3) as u8);
        for len in [0, 1, 127, 128, 200, 16_383, 16_384, 20_000] {
            let bytes = &source[..len];
            let (mut a, mut b) = ([0u8; 20_016], [0u8; 20_016]);
            let by_element = postcard::to_slice(&ByElement(bytes), &mut a).unwrap();
            let whole = postcard::to_slice(&Whole(bytes), &mut b).unwrap();
            assert_eq!(by_element, whole, "length {len}");
        }
    }

    /// Every kind a session sends through [`Sent`] comes out byte for byte as the same
    /// [`Frame`] from the derived encoder, limits and all.
    #[test]
    fn sent_lengths_of_two_varint_bytes_encode_as_frames() {
        // Lengths from 128 up take a second varint byte; `Sent` writes bytes and text in
        // one piece, `Frame` (derived) a byte sequence element by element.
        let bytes = [0xa5u8; 200];
        let text = core::str::from_utf8(&[b'e'; 130]).unwrap();
        let payloads = [
            Payload::Bytes(&bytes),
            Payload::Value(&bytes),
            Payload::Json(text),
        ];
        for payload in payloads {
            let cases = [
                (
                    Sent::Event(Event {
                        event: text,
                        payload,
                    }),
                    Frame::Event(Event {
                        event: text,
                        payload,
                    }),
                ),
                (
                    Sent::Publish(Publish {
                        channel: text,
                        exclude_sender: false,
                        payload,
                    }),
                    Frame::Publish(Publish {
                        channel: text,
                        exclude_sender: false,
                        payload,
                    }),
                ),
            ];
            for (sent, frame) in cases {
                let (mut a, mut b) = ([0u8; 512], [0u8; 512]);
                let n = encode(&frame, &mut a).unwrap();
                assert!(n > 260);
                assert_eq!(encode_kind(&sent, &mut b, usize::MAX), Ok(n));
                assert_eq!(a[..n], b[..n]);
            }
        }
    }

    #[test]
    fn the_sent_kinds_encode_as_frames() {
        let payloads = [
            Payload::Empty,
            Payload::Bytes(&[1, 2, 3]),
            Payload::Value(&[0xa0]),
            Payload::Json("{}"),
        ];
        let mut cases: heapless::Vec<(Sent<'_>, Frame<'_>), 64> = heapless::Vec::new();
        let mut add = |sent: Sent<'static>, frame: Frame<'static>| {
            cases.push((sent, frame)).unwrap();
        };
        let hello = Hello {
            client_id: "dev-1",
            boot_id: 300,
            token: Some("t"),
            capabilities: 0x21,
            max_frame: 70_000,
            firmware: None,
        };
        add(Sent::Hello(hello), Frame::Hello(hello));
        let hello = Hello {
            token: None,
            firmware: Some("fw@1"),
            ..hello
        };
        add(Sent::Hello(hello), Frame::Hello(hello));
        for nonce in [0, 127, 128, u32::MAX] {
            add(Sent::Ping(Ping { nonce }), Frame::Ping(Ping { nonce }));
            add(Sent::Pong(Ping { nonce }), Frame::Pong(Ping { nonce }));
        }
        for code in [0, 127, 128, 300, 16_383, 16_384, u16::MAX] {
            let close = Close {
                code: CloseCode(code),
                reason: "bye",
            };
            add(Sent::Close(close), Frame::Close(close));
        }
        for payload in payloads {
            let event = Event {
                event: "a/b",
                payload,
            };
            add(Sent::Event(event), Frame::Event(event));
            let request = Request {
                id: 200,
                event: "x/y",
                timeout_ms: 30_000,
                payload,
            };
            add(Sent::Request(request), Frame::Request(request));
            let reply = Reply {
                id: 1,
                seq: 129,
                payload,
            };
            add(Sent::Reply(reply), Frame::Reply(reply));
            let end = End {
                id: u32::MAX,
                status: Status::BUSY,
                payload,
            };
            add(Sent::End(end), Frame::End(end));
            let publish = Publish {
                channel: "c",
                exclude_sender: true,
                payload,
            };
            add(Sent::Publish(publish), Frame::Publish(publish));
        }
        add(
            Sent::Cancel(Cancel { id: 5 }),
            Frame::Cancel(Cancel { id: 5 }),
        );
        let channel = ChannelRef { channel: "room" };
        add(Sent::Subscribe(channel), Frame::Subscribe(channel));
        add(Sent::Unsubscribe(channel), Frame::Unsubscribe(channel));
        for (sent, frame) in cases {
            let (mut a, mut b) = ([0u8; 64], [0u8; 64]);
            let n = encode(&frame, &mut a).unwrap();
            assert_eq!(encode_kind(&sent, &mut b, usize::MAX), Ok(n), "{frame:?}");
            assert_eq!(a[..n], b[..n], "{frame:?}");
            assert_eq!(
                encode_kind(&sent, &mut b, n - 1),
                encode_limited(&frame, &mut a, n - 1)
            );
            assert_eq!(
                encode_kind(&sent, &mut b[..n - 1], usize::MAX),
                Err(EncodeError::BufferTooSmall { required: n })
            );
        }
    }

    #[test]
    fn the_client_decoder_takes_varints_to_the_limits_of_their_types() {
        // (kind, bytes before the varint, the varint, bytes after it, accepted).
        type Case<'a> = (u8, &'a [u8], &'a [u8], &'a [u8], bool);
        let u64_max = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        let u64_over = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        let u64_long = [
            0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00,
        ];
        let welcome_rest: &[u8] = &[0, 0, 0, 0, 0];
        let cases: [Case<'_>; 20] = [
            // Close code: a u16.
            (4, &[], &[0x7f], &[0], true),
            (4, &[], &[0x80, 0x01], &[0], true),
            (4, &[], &[0x80, 0x80, 0x00], &[0], true),
            (4, &[], &[0xff, 0xff, 0x03], &[0], true),
            (4, &[], &[0xff, 0xff, 0x04], &[0], false),
            (4, &[], &[0x80, 0x80, 0x80, 0x00], &[0], false),
            (4, &[], &[0x80], &[], false),
            // Ping nonce: a u32.
            (2, &[], &[0xff, 0xff, 0xff, 0xff, 0x0f], &[], true),
            (2, &[], &[0x80, 0x80, 0x80, 0x80, 0x00], &[], true),
            (2, &[], &[0xff, 0xff, 0xff, 0xff, 0x10], &[], false),
            (2, &[], &[0x80, 0x80, 0x80, 0x80, 0x80, 0x00], &[], false),
            // Welcome connection id: a u64; its max pending: a u16.
            (1, &[0], &u64_max, welcome_rest, true),
            (1, &[0], &u64_over, welcome_rest, false),
            (1, &[0], &u64_long, welcome_rest, false),
            (1, &[0], &[0x81, 0x01], welcome_rest, true),
            (1, &[0, 0, 0, 0, 0], &[0xff, 0xff, 0x03], &[0], true),
            (1, &[0, 0, 0, 0, 0], &[0xff, 0xff, 0x04], &[0], false),
            // Reply seq and Cancel id: u32s.
            (7, &[1], &[0xff, 0xff, 0xff, 0xff, 0x0f], &[0], true),
            (7, &[1], &[0xff, 0xff, 0xff, 0xff, 0x1f], &[0], false),
            (9, &[], &[0xff, 0xff, 0xff, 0xff, 0xff], &[], false),
        ];
        for (kind, before, varint, after, accepted) in cases {
            let mut bytes = heapless::Vec::<u8, 32>::new();
            bytes.extend_from_slice(&[PROTOCOL_VERSION, kind]).unwrap();
            for part in [before, varint, after] {
                bytes.extend_from_slice(part).unwrap();
            }
            let client = decode_for_client(&bytes, usize::MAX);
            assert_eq!(client, decode(&bytes).map(Some), "{bytes:x?}");
            assert_eq!(client.is_ok(), accepted, "{bytes:x?}");
        }
    }

    #[test]
    fn the_client_decoder_takes_a_bool_as_0_or_1_only() {
        // SubscribeAck: channel "c", subscribed, error 0.
        for (flag, accepted) in [(0u8, true), (1, true), (2, false), (0xff, false)] {
            let bytes = [PROTOCOL_VERSION, 14, 1, b'c', flag, 0];
            let client = decode_for_client(&bytes, usize::MAX);
            assert_eq!(client, decode(&bytes).map(Some), "{bytes:x?}");
            assert_eq!(client.is_ok(), accepted, "{bytes:x?}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]

        /// On any bytes, valid or not, the client decoder says what the derived one says
        /// (the same frame, the same error) for every kind a client receives, and `None`
        /// for the kinds it leaves undecoded. Small byte values make varints, booleans,
        /// UTF-8 and payload tags that decode often enough to reach every field.
        #[test]
        fn the_client_decoder_agrees_with_the_derived_one_on_any_bytes(
            tag in 0u8..18,
            body in proptest::collection::vec(
                proptest::prop_oneof![0u8..4, 0u8..=255, 0x61u8..0x63],
                0..24,
            ),
        ) {
            let mut bytes = heapless::Vec::<u8, 32>::new();
            bytes.push(PROTOCOL_VERSION).unwrap();
            bytes.push(tag).unwrap();
            bytes.extend_from_slice(&body).unwrap();
            let client = decode_for_client(&bytes, usize::MAX);
            match tag {
                0 | 10..=12 => proptest::prop_assert_eq!(client, Ok(None)),
                _ => proptest::prop_assert_eq!(client, decode(&bytes).map(Some)),
            }
        }
    }

    #[cfg(feature = "alloc")]
    #[test]
    fn encode_to_vec_retries_once_at_the_size_asked_for() {
        use crate::frame::{Event, Payload};
        let big = [7u8; 300];
        let frame = Frame::Event(Event {
            event: "e",
            payload: Payload::Bytes(&big),
        });
        let mut calls = 0;
        let mut scratch = [0u8; 64];
        let (value, bytes) = encode_to_vec(&mut scratch, |buf| {
            calls += 1;
            encode(&frame, buf).map(|n| (n, n))
        })
        .unwrap();
        assert_eq!(calls, 2);
        assert_eq!(bytes.len(), value);
        assert_eq!(bytes.len(), encoded_len(&frame));
        assert_eq!(decode(&bytes).unwrap(), frame);

        // A small frame takes the scratch buffer alone.
        let small = Frame::Event(Event {
            event: "e",
            payload: Payload::Empty,
        });
        let (_, bytes) =
            encode_to_vec(&mut scratch, |buf| encode(&small, buf).map(|n| ((), n))).unwrap();
        assert_eq!(decode(&bytes).unwrap(), small);

        // Errors other than a small buffer are returned as they are.
        let refused = encode_to_vec(&mut scratch, |_| {
            Err::<((), usize), _>(EncodeError::TooLarge { len: 9, max: 8 })
        });
        assert_eq!(refused, Err(EncodeError::TooLarge { len: 9, max: 8 }));
    }
}
