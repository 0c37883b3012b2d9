//! The WebSocket client's bytes, sans I/O (the runner moves them to and from the socket):
//! the check of the upgrade answer ([`crate::upgrade`] writes the request and parses the
//! answer), and the framing of RFC 6455 §5 as a client needs it.
//!
//! The framing is this module's own. A client only ever writes masked frames and reads
//! unmasked ones, and this one sends nothing but whole binary messages, pongs and closes:
//! the encoder is a header and a masking loop, the decoder one header parser and a copy of
//! each payload into the message buffer as it arrives. `embedded-websocket`, which did this
//! before, stalled on a fragment split across two reads and misread a control frame that
//! came between two fragments, so this module had to parse every frame header itself
//! anyway to hand that crate whole frames; the crate's general state machine (both roles,
//! both masking directions, its own handshake states) on top of that cost 1.4 KB more flash
//! on the Pico W than reading the header once here. The unit tests check both directions against
//! `embedded-websocket`'s server side, an independent implementation: it frames what this
//! decoder reads and reads what this encoder writes.
//!
//! What a server may send and what is refused (a refusal is [`WsError::Protocol`], and the
//! runner closes with 1002): a frame with a reserved bit set (no extension was agreed), a
//! masked frame, an unknown opcode, a control frame that is fragmented or longer than 125
//! bytes, a continuation without a message to continue, a new message before the last one
//! ended, and a close whose payload is one byte, names a code an endpoint may not send, or
//! carries a reason that is not UTF-8. A ping, pong or close may come between two fragments
//! of a message; its payload lands after the part assembled so far.

use crate::rng::MaskRng;
use crate::upgrade::{self, Answer};

/// Why the server's frames could not be read on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum WsError {
    /// A frame broke the WebSocket rules.
    Protocol,
    /// A message larger than the frame buffer.
    TooLarge,
}

/// What a received message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A text message (which a sentelite server never sends).
    Text,
    /// A binary message: one sentelite frame.
    Binary,
    /// A ping, to be answered by a pong with the same payload.
    Ping,
    /// A pong.
    Pong,
    /// The server's close; the payload is its status code and reason, if any.
    Close,
}

/// The opcodes this client sends (RFC 6455 §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum SendKind {
    /// A whole binary message.
    Binary = 0x2,
    /// A close, the payload a status code.
    Close = 0x8,
    /// A pong, echoing a ping's payload.
    Pong = 0xa,
}

/// A received message, reassembled in the caller's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// Text, binary, ping, pong or close.
    pub kind: Kind,
    /// Where the message starts in the caller's buffer: 0, except for a control frame that
    /// arrived between two fragments of a message, which lands after the part assembled so
    /// far (that part stays in place for the fragments still to come).
    pub start: usize,
    /// Bytes of the message.
    pub len: usize,
}

impl Received {
    /// The message's bytes in the buffer given to [`Framing::next_message`].
    pub fn bytes<'m>(&self, message: &'m [u8]) -> &'m [u8] {
        // Checked steps rather than an index: `next_message` made the range, and a range
        // outside `message` (a different buffer) reads as empty instead of panicking.
        message
            .get(self.start..)
            .and_then(|m| m.get(..self.len))
            .unwrap_or_default()
    }
}

/// The first header byte's FIN bit: the last frame of a message.
const FIN: u8 = 0x80;
/// The second header byte's MASK bit.
const MASKED: u8 = 0x80;

/// The header at the start of `input` up to the payload's length: its two first bytes, the
/// payload's length and the bytes those take. `None` while they are incomplete. (A server's
/// frame has no mask key; one that has is refused.)
fn header(input: &[u8]) -> Option<(u8, u8, usize, usize)> {
    let (&first, rest) = input.split_first()?;
    let (&second, rest) = rest.split_first()?;
    let (len, size) = match second & 0x7f {
        126 => (u16::from_be_bytes(*rest.first_chunk()?).into(), 4),
        127 => {
            // A length of 4 GiB or more is beyond any buffer: read as the largest.
            let (high, low) = rest.first_chunk::<8>()?.split_first_chunk::<4>()?;
            let low = u32::from_be_bytes(*low.first_chunk()?);
            let len = match usize::try_from(low) {
                Ok(low) if *high == [0; 4] => low,
                _ => usize::MAX,
            };
            (len, 10)
        }
        short => (short.into(), 2),
    };
    Some((first, second, len, size))
}

/// True for the status codes an endpoint may put in a close (RFC 6455 §7.4, and the
/// registry's 1012–1014); 1004–1006 and 1015 are reserved for reporting, not sending.
fn sendable_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// A close frame's payload as RFC 6455 §5.5.1 allows it: empty, or a sendable status code
/// and a UTF-8 reason.
fn valid_close(payload: &[u8]) -> bool {
    match payload.split_first_chunk() {
        None => payload.is_empty(),
        Some((code, reason)) => {
            sendable_close_code(u16::from_be_bytes(*code)) && core::str::from_utf8(reason).is_ok()
        }
    }
}

/// One connection's WebSocket state and the bytes read but not yet taken apart.
pub struct Framing {
    /// The masks of the frames sent.
    rng: MaskRng,
    /// Bytes of the read buffer holding unparsed input.
    filled: usize,
    /// Bytes of the current data message reassembled so far (whole fragments, and of the
    /// fragment being read what has arrived).
    assembled: usize,
    /// The frame whose payload is being read: its first header byte and the payload bytes
    /// still to come. `None` when the input starts at a frame header.
    frame: Option<(u8, usize)>,
    /// Payload bytes of a control frame read so far, after the assembled part.
    control: usize,
    /// The opcode of the data message in progress (text or binary), 0 when none is.
    message: u8,
}

impl Framing {
    /// A framing whose masks are drawn from `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: MaskRng::new(seed),
            filled: 0,
            assembled: 0,
            frame: None,
            control: 0,
            message: 0,
        }
    }

    /// Checks the server's answer to the upgrade request sent with `key`, in what was read
    /// so far. Accepted, the answer is taken out of `input`, and frames read with it stay.
    /// An answer that does not fit `input` is refused.
    pub fn upgraded(&mut self, key: &upgrade::Key, input: &mut [u8]) -> Answer {
        match upgrade::answer(key, self.unread(input)) {
            Answer::Accepted(head) => {
                self.consume(input, head);
                Answer::Accepted(head)
            }
            Answer::Partial if self.filled < input.len() => Answer::Partial,
            _ => Answer::Refused,
        }
    }

    /// `payload` as one masked frame of `kind` (the whole message) in `out`: its length, or
    /// `None` when `out` cannot hold it. A frame this client sends carries at most 64 KiB.
    pub fn encode(&mut self, kind: SendKind, payload: &[u8], out: &mut [u8]) -> Option<usize> {
        let len = payload.len();
        let mut head = [FIN | kind as u8, MASKED | len as u8, 0, 0];
        let size = if len < 126 {
            2
        } else {
            let [high, low] = u16::try_from(len).ok()?.to_be_bytes();
            head[1] = MASKED | 126;
            (head[2], head[3]) = (high, low);
            4
        };
        let mask = self.rng.next_mask();
        let (head_out, rest) = out.split_at_mut_checked(size + 4)?;
        let body = rest.get_mut(..len)?;
        for (to, from) in head_out.iter_mut().zip(head.iter().take(size).chain(&mask)) {
            *to = *from;
        }
        for (i, (to, from)) in body.iter_mut().zip(payload).enumerate() {
            *to = from ^ mask[i % 4];
        }
        Some(size + 4 + len)
    }

    /// The free part of the read buffer, for the next socket read.
    pub fn spare<'b>(&self, input: &'b mut [u8]) -> &'b mut [u8] {
        input.get_mut(self.filled..).unwrap_or_default()
    }

    /// What was read and not yet taken.
    fn unread<'b>(&self, input: &'b [u8]) -> &'b [u8] {
        input.get(..self.filled).unwrap_or_default()
    }

    /// Drops the first `n` unread bytes, moving the rest to the front. Byte by byte through
    /// checked accessors: `copy_within` would link a panic for a range its callers never
    /// pass (`n` is at most what is unread).
    fn consume(&mut self, input: &mut [u8], n: usize) {
        let unread = input.get_mut(..self.filled).unwrap_or_default();
        let mut to = 0;
        while let Some(&b) = unread.get(to + n) {
            if let Some(slot) = unread.get_mut(to) {
                *slot = b;
            }
            to += 1;
        }
        self.filled = to;
    }

    /// `n` bytes were read into [`Self::spare`].
    pub fn filled(&mut self, n: usize) {
        self.filled += n;
    }

    /// Takes the next whole message out of what was read, reassembled into `message`.
    /// `Ok(None)`: more input is needed.
    #[inline(never)]
    pub fn next_message(
        &mut self,
        input: &mut [u8],
        message: &mut [u8],
    ) -> Result<Option<Received>, WsError> {
        loop {
            let (first, remaining) = match self.frame {
                Some(frame) => frame,
                None => {
                    let Some((first, second, len, size)) = header(self.unread(input)) else {
                        // A buffer too small for a header would never be read into again.
                        if self.filled == input.len() {
                            return Err(WsError::TooLarge);
                        }
                        return Ok(None);
                    };
                    let refused = first & 0x70 != 0
                        || second & MASKED != 0
                        || match first & 0x0f {
                            0 => self.message == 0,
                            1 | 2 => self.message != 0,
                            8..=10 => first & FIN == 0 || len > 125,
                            _ => true,
                        };
                    if refused {
                        return Err(WsError::Protocol);
                    }
                    if len > message.len().saturating_sub(self.assembled) {
                        return Err(WsError::TooLarge);
                    }
                    self.consume(input, size);
                    (first, len)
                }
            };
            let n = remaining.min(self.filled);
            let at = self.assembled + self.control;
            let to = message.get_mut(at..).unwrap_or_default();
            for (to, from) in to.iter_mut().zip(input.iter().take(n)) {
                *to = *from;
            }
            self.consume(input, n);
            let opcode = first & 0x0f;
            let control = opcode & 0x08 != 0;
            if control {
                self.control += n;
            } else {
                self.assembled += n;
            }
            if n < remaining {
                self.frame = Some((first, remaining - n));
                return Ok(None);
            }
            self.frame = None;
            if control {
                let len = core::mem::take(&mut self.control);
                let kind = match opcode {
                    0x9 => Kind::Ping,
                    0xa => Kind::Pong,
                    _ => Kind::Close,
                };
                let received = Received {
                    kind,
                    start: self.assembled,
                    len,
                };
                if kind == Kind::Close && !valid_close(received.bytes(message)) {
                    return Err(WsError::Protocol);
                }
                return Ok(Some(received));
            }
            if opcode != 0 {
                self.message = opcode;
            }
            if first & FIN != 0 {
                let kind = if core::mem::take(&mut self.message) == 1 {
                    Kind::Text
                } else {
                    Kind::Binary
                };
                return Ok(Some(Received {
                    kind,
                    start: 0,
                    len: core::mem::take(&mut self.assembled),
                }));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec;
    use std::vec::Vec;

    use embedded_websocket::{
        WebSocketReceiveMessageType, WebSocketSendMessageType, WebSocketServer, WebSocketState,
    };

    use super::*;

    /// A server past its handshake: embedded-websocket's, the other end for these tests.
    fn server() -> WebSocketServer {
        let mut server = WebSocketServer::new_server();
        server.state = WebSocketState::Open;
        server
    }

    /// `payload` as the server would frame it (unmasked).
    fn server_frame(payload: &[u8], out: &mut [u8]) -> usize {
        server()
            .write(WebSocketSendMessageType::Binary, true, payload, out)
            .unwrap()
    }

    /// Hands `bytes` to the framing as one socket read.
    fn feed(framing: &mut Framing, input: &mut [u8], bytes: &[u8]) {
        let spare = framing.spare(input);
        spare[..bytes.len()].copy_from_slice(bytes);
        framing.filled(bytes.len());
    }

    /// The key of the tests' upgrade requests.
    fn test_key() -> upgrade::Key {
        upgrade::key(crate::rng::nonce(5))
    }

    /// Hands the server's `answer` to the framing in reads of `piece` bytes until it
    /// decides: the decision, the framing, its read buffer and how much of `answer` it
    /// was given.
    fn upgrade_with(piece: usize, answer: &[u8]) -> (Answer, Framing, [u8; 256], usize) {
        let key = test_key();
        let mut framing = Framing::new(9);
        let mut input = [0u8; 256];
        let mut given = 0;
        loop {
            let n = piece
                .min(answer.len() - given)
                .min(framing.spare(&mut input).len());
            feed(&mut framing, &mut input, &answer[given..given + n]);
            given += n;
            match framing.upgraded(&key, &mut input) {
                Answer::Partial if given < answer.len() => {}
                decided => return (decided, framing, input, given),
            }
        }
    }

    /// embedded-websocket's server answer to `key`.
    fn accepting_server(key: &str) -> Vec<u8> {
        let mut out = [0u8; 256];
        let key = embedded_websocket::WebSocketKey::from(key);
        let n = WebSocketServer::new_server()
            .server_accept(&key, None, &mut out)
            .unwrap();
        out[..n].to_vec()
    }

    /// embedded-websocket's server answer to the tests' key.
    fn accepted() -> Vec<u8> {
        accepting_server(core::str::from_utf8(&test_key()).unwrap())
    }

    #[test]
    fn the_upgrade_is_accepted_in_any_split_and_keeps_the_frame_after_the_answer() {
        let mut wire = accepted();
        let head = wire.len();
        let mut frame = [0u8; 16];
        let n = server_frame(b"hello", &mut frame);
        wire.extend_from_slice(&frame[..n]);
        for piece in [1, 7, 64, 256] {
            let (answer, mut framing, mut input, given) = upgrade_with(piece, &wire);
            assert_eq!(answer, Answer::Accepted(head), "reads of {piece}");
            let mut message = [0u8; 64];
            // What the last read brought past the answer stays; the rest comes in later.
            feed(&mut framing, &mut input, &wire[given..]);
            let got = framing
                .next_message(&mut input, &mut message)
                .unwrap()
                .unwrap();
            assert_eq!(got.bytes(&message), b"hello", "reads of {piece}");
        }
    }

    #[test]
    fn the_upgrade_is_refused_on_a_wrong_answer() {
        let wrong_key = accepting_server("dGhlIHNhbXBsZSBub25jZQ==");
        assert_eq!(upgrade_with(64, &wrong_key).0, Answer::Refused);
        let not_101 = b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(upgrade_with(64, not_101).0, Answer::Refused);
        // Cut short: still waiting for the rest when the server stops sending.
        let mut cut_short = accepted();
        cut_short.truncate(cut_short.len() - 2);
        assert_eq!(upgrade_with(64, &cut_short).0, Answer::Partial);
        // A head longer than the read buffer can never be checked.
        let mut too_long = b"HTTP/1.1 101 Switching Protocols\r\nx-padding: ".to_vec();
        too_long.extend_from_slice(&[b'a'; 300]);
        too_long.extend_from_slice(b"\r\n\r\n");
        assert_eq!(upgrade_with(64, &too_long).0, Answer::Refused);
    }

    #[test]
    fn a_message_read_in_pieces_comes_out_whole_once() {
        let payload: [u8; 300] = core::array::from_fn(|i| i as u8);
        let mut wire = [0u8; 400];
        let n = server_frame(&payload, &mut wire);
        let mut framing = Framing::new(1);
        let (mut input, mut message) = ([0u8; 512], [0u8; 512]);
        for piece in [&wire[..1], &wire[1..150], &wire[150..n]] {
            assert_eq!(framing.next_message(&mut input, &mut message), Ok(None));
            feed(&mut framing, &mut input, piece);
        }
        let got = framing
            .next_message(&mut input, &mut message)
            .unwrap()
            .unwrap();
        assert_eq!(got.kind, Kind::Binary);
        assert_eq!(&message[..got.len], &payload[..]);
        assert_eq!(framing.next_message(&mut input, &mut message), Ok(None));
    }

    #[test]
    fn a_frame_longer_than_the_read_buffer_fills_the_message_buffer_exactly() {
        // 1,024 bytes of payload behind a 4-byte header: more than the read buffer holds.
        let payload: Vec<u8> = (0..1024).map(|i| (i * 7) as u8).collect();
        let mut wire = [0u8; 1100];
        let n = server_frame(&payload, &mut wire);
        let mut framing = Framing::new(1);
        let (mut input, mut message) = ([0u8; 256], [0u8; 1024]);
        let mut got = Vec::new();
        for piece in wire[..n].chunks(200) {
            feed(&mut framing, &mut input, piece);
            while let Some(received) = framing.next_message(&mut input, &mut message).unwrap() {
                got.push(received.bytes(&message).to_vec());
            }
        }
        assert_eq!(got, vec![payload]);
    }

    #[test]
    fn a_short_payload_with_a_64_bit_length_is_read() {
        // RFC 6455 asks for the shortest length form; the longest still reads.
        let wire = [0x82, 127, 0, 0, 0, 0, 0, 0, 0, 3, b'a', b'b', b'c'];
        for sizes in [&[1][..], &[wire.len()]] {
            assert_eq!(
                messages_of(&wire, sizes),
                vec![(Kind::Binary, b"abc".to_vec())],
                "reads of {sizes:?}"
            );
        }
    }

    #[test]
    fn two_messages_in_one_read_come_out_in_order() {
        let mut wire = [0u8; 64];
        let a = server_frame(b"first", &mut wire);
        let b = server_frame(b"second", &mut wire[a..]);
        let mut framing = Framing::new(1);
        let (mut input, mut message) = ([0u8; 128], [0u8; 128]);
        feed(&mut framing, &mut input, &wire[..a + b]);
        let first = framing
            .next_message(&mut input, &mut message)
            .unwrap()
            .unwrap();
        assert_eq!(&message[..first.len], b"first");
        let second = framing
            .next_message(&mut input, &mut message)
            .unwrap()
            .unwrap();
        assert_eq!(&message[..second.len], b"second");
        assert_eq!(framing.next_message(&mut input, &mut message), Ok(None));
    }

    /// Binary "abc", continuation "de", final continuation "f": one message in three
    /// fragments, as the server's frames would carry it (unmasked).
    const FRAGMENTS: [u8; 12] = [
        0x02, 3, b'a', b'b', b'c', 0x00, 2, b'd', b'e', 0x80, 1, b'f',
    ];

    /// Feeds `wire` in reads of the given sizes (cycled), taking every message out after
    /// each read; stops at the first error.
    fn read_all(wire: &[u8], sizes: &[usize]) -> (Vec<(Kind, Vec<u8>)>, Option<WsError>) {
        let mut framing = Framing::new(1);
        let (mut input, mut message) = ([0u8; 64], [0u8; 64]);
        let mut got = Vec::new();
        let mut at = 0;
        for size in sizes.iter().cycle() {
            if at == wire.len() {
                break;
            }
            let piece = &wire[at..(at + size).min(wire.len())];
            at += piece.len();
            feed(&mut framing, &mut input, piece);
            loop {
                match framing.next_message(&mut input, &mut message) {
                    Ok(Some(received)) => {
                        got.push((received.kind, received.bytes(&message).to_vec()))
                    }
                    Ok(None) => break,
                    Err(e) => return (got, Some(e)),
                }
            }
        }
        (got, None)
    }

    /// The messages in `wire`, which must all be valid.
    fn messages_of(wire: &[u8], sizes: &[usize]) -> Vec<(Kind, Vec<u8>)> {
        let (got, error) = read_all(wire, sizes);
        assert_eq!(error, None, "reads of {sizes:?}");
        got
    }

    #[test]
    fn fragments_split_across_reads_come_out_as_one_message() {
        for sizes in [&[2, 16, 1][..], &[1], &[3, 2], &[12]] {
            assert_eq!(
                messages_of(&FRAGMENTS, sizes),
                vec![(Kind::Binary, b"abcdef".to_vec())],
                "reads of {sizes:?}"
            );
        }
    }

    #[test]
    fn control_frames_between_fragments_keep_their_own_bytes_and_the_message_whole() {
        let mut wire = FRAGMENTS[..5].to_vec();
        wire.extend_from_slice(&[0x89, 1, b'p']);
        wire.extend_from_slice(&FRAGMENTS[5..9]);
        wire.extend_from_slice(&[0x8a, 2, b'q', b'r']);
        wire.extend_from_slice(&[0x88, 3, 0x03, 0xe8, b's']);
        wire.extend_from_slice(&FRAGMENTS[9..]);
        for sizes in [&[1][..], &[2, 16, 1], &[wire.len()]] {
            assert_eq!(
                messages_of(&wire, sizes),
                vec![
                    (Kind::Ping, b"p".to_vec()),
                    (Kind::Pong, b"qr".to_vec()),
                    (Kind::Close, vec![0x03, 0xe8, b's']),
                    (Kind::Binary, b"abcdef".to_vec()),
                ],
                "reads of {sizes:?}"
            );
        }
    }

    #[test]
    fn a_frame_read_a_byte_at_a_time_is_not_mistaken_for_a_fragment_inside_its_payload() {
        // The payload starts with 0x25: read on its own after the header, that byte looks
        // like the header of a non-final fragment.
        let payload = [0x25, 0x01, 0x90, 0x80, 0xdc, 0xcd, 0xb1, 0x2e, 0x30];
        let mut wire = [0u8; 32];
        let n = server_frame(&payload, &mut wire);
        for sizes in [&[1][..], &[2, 1], &[2, 200]] {
            assert_eq!(
                messages_of(&wire[..n], sizes),
                vec![(Kind::Binary, payload.to_vec())],
                "reads of {sizes:?}"
            );
        }
    }

    #[test]
    fn the_servers_own_frames_read_as_it_sent_them() {
        let mut out = [0u8; 64];
        let mut wire = Vec::new();
        let mut server = server();
        for (kind, payload) in [
            (WebSocketSendMessageType::Text, &b"text"[..]),
            (WebSocketSendMessageType::Ping, b"ping"),
            (WebSocketSendMessageType::Pong, b""),
            (WebSocketSendMessageType::Binary, b"\x00\x01"),
        ] {
            let n = server.write(kind, true, payload, &mut out).unwrap();
            wire.extend_from_slice(&out[..n]);
        }
        let n = server
            .close(
                embedded_websocket::WebSocketCloseStatusCode::EndpointUnavailable,
                Some("restart"),
                &mut out,
            )
            .unwrap();
        wire.extend_from_slice(&out[..n]);
        assert_eq!(
            messages_of(&wire, &[3]),
            vec![
                (Kind::Text, b"text".to_vec()),
                (Kind::Ping, b"ping".to_vec()),
                (Kind::Pong, vec![]),
                (Kind::Binary, vec![0, 1]),
                (Kind::Close, b"\x03\xe9restart".to_vec()),
            ]
        );
    }

    #[test]
    fn frames_that_break_the_rules_are_refused() {
        let cases: [(&str, &[u8]); 13] = [
            ("a reserved bit", &[0xc2, 1, 0]),
            ("another reserved bit", &[0x92, 0]),
            ("a masked server frame", &[0x82, 0x81, 1, 2, 3, 4, 0]),
            ("an unknown data opcode", &[0x83, 0]),
            ("an unknown control opcode", &[0x8b, 0]),
            ("a fragmented ping", &[0x09, 0]),
            ("a ping of 126 bytes", &[0x89, 126, 0, 126]),
            ("a continuation of nothing", &[0x80, 1, 0]),
            ("a new message inside one", &[0x02, 1, 0, 0x82, 1, 0]),
            ("a close of one byte", &[0x88, 1, 3]),
            ("a close with code 1005", &[0x88, 2, 0x03, 0xed]),
            ("a close with code 999", &[0x88, 2, 0x03, 0xe7]),
            (
                "a close whose reason is no UTF-8",
                &[0x88, 3, 0x03, 0xe8, 0xff],
            ),
        ];
        for (what, wire) in cases {
            for sizes in [&[1][..], &[wire.len()]] {
                assert_eq!(
                    read_all(wire, sizes).1,
                    Some(WsError::Protocol),
                    "{what}, reads of {sizes:?}"
                );
            }
        }
    }

    #[test]
    fn the_close_codes_an_endpoint_may_send_are_taken() {
        for code in [1000u16, 1001, 1003, 1007, 1011, 1012, 1014, 3000, 4999] {
            let [high, low] = code.to_be_bytes();
            assert_eq!(
                messages_of(&[0x88, 4, high, low, b'o', b'k'], &[1]),
                vec![(Kind::Close, vec![high, low, b'o', b'k'])],
                "code {code}"
            );
        }
        assert_eq!(messages_of(&[0x88, 0], &[2]), vec![(Kind::Close, vec![])]);
        for code in [0u16, 1004, 1006, 1015, 1016, 2999, 5000] {
            let [high, low] = code.to_be_bytes();
            assert_eq!(
                read_all(&[0x88, 2, high, low], &[4]).1,
                Some(WsError::Protocol),
                "code {code}"
            );
        }
    }

    #[test]
    fn a_message_larger_than_the_buffer_is_refused() {
        let payload = [7u8; 200];
        let mut wire = [0u8; 256];
        let n = server_frame(&payload, &mut wire);
        let mut framing = Framing::new(1);
        let (mut input, mut message) = ([0u8; 256], [0u8; 100]);
        feed(&mut framing, &mut input, &wire[..n]);
        assert_eq!(
            framing.next_message(&mut input, &mut message),
            Err(WsError::TooLarge)
        );
        // Fragments that add up to more than the buffer, and a 64-bit length.
        let mut wire = vec![0x02, 60];
        wire.extend_from_slice(&[1; 60]);
        wire.extend_from_slice(&[0x80, 5, 1, 2, 3, 4, 5]);
        assert_eq!(read_all(&wire, &[64]).1, Some(WsError::TooLarge));
        let huge = [0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(read_all(&huge, &[1]).1, Some(WsError::TooLarge));
        let above_4_gib = [0x82, 127, 0, 0, 0, 1, 0, 0, 0, 3];
        assert_eq!(read_all(&above_4_gib, &[1]).1, Some(WsError::TooLarge));
        let low_half_too_large = [0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0];
        assert_eq!(
            read_all(&low_half_too_large, &[1]).1,
            Some(WsError::TooLarge)
        );
    }

    /// What embedded-websocket's server reads from `wire`: the kind, the end-of-message
    /// flag and the payload, frame by frame.
    fn server_reads(wire: &[u8]) -> Vec<(WebSocketReceiveMessageType, bool, Vec<u8>)> {
        let mut server = server();
        let mut payload = [0u8; 2048];
        let mut at = 0;
        let mut got = Vec::new();
        while at < wire.len() {
            let read = server.read(&wire[at..], &mut payload).unwrap();
            at += read.len_from;
            got.push((
                read.message_type,
                read.end_of_message,
                payload[..read.len_to].to_vec(),
            ));
        }
        got
    }

    #[test]
    fn the_server_reads_what_the_client_sent_in_every_length_form() {
        let mut framing = Framing::new(3);
        let mut out = [0u8; 1100];
        for len in [0, 1, 125, 126, 127, 300, 1024] {
            let payload: Vec<u8> = (0..len).map(|i| (i * 13 + 1) as u8).collect();
            let n = framing
                .encode(SendKind::Binary, &payload, &mut out)
                .unwrap();
            let header = if len < 126 { 2 } else { 4 };
            assert_eq!(n, header + 4 + len, "length {len}");
            assert_eq!(out[1] & 0x80, 0x80, "masked, length {len}");
            assert_eq!(
                server_reads(&out[..n]),
                vec![(WebSocketReceiveMessageType::Binary, true, payload)],
                "length {len}"
            );
        }
    }

    #[test]
    fn the_server_reads_the_clients_pong_and_close() {
        let mut framing = Framing::new(4);
        let mut out = [0u8; 64];
        let pong = framing.encode(SendKind::Pong, b"ping", &mut out).unwrap();
        assert_eq!(
            server_reads(&out[..pong]),
            vec![(WebSocketReceiveMessageType::Pong, true, b"ping".to_vec())]
        );
        let close = framing
            .encode(SendKind::Close, &1002u16.to_be_bytes(), &mut out)
            .unwrap();
        let read = server().read(&out[..close], &mut [0u8; 8]).unwrap();
        assert_eq!(
            read.message_type,
            WebSocketReceiveMessageType::CloseMustReply
        );
        assert_eq!(
            read.close_status,
            Some(embedded_websocket::WebSocketCloseStatusCode::ProtocolError)
        );
    }

    #[test]
    fn every_frame_has_a_fresh_mask_and_a_frame_too_large_is_not_written() {
        let mut framing = Framing::new(5);
        let (mut a, mut b) = ([0u8; 16], [0u8; 16]);
        framing.encode(SendKind::Binary, b"same", &mut a).unwrap();
        framing.encode(SendKind::Binary, b"same", &mut b).unwrap();
        assert_eq!(a[..2], b[..2]);
        assert_ne!(a[2..6], b[2..6], "the masks");
        assert_ne!(a[6..10], b[6..10], "the masked payloads");
        // Header, mask and payload must fit, to the byte.
        let mut out = [0u8; 10];
        assert_eq!(
            framing.encode(SendKind::Binary, b"four", &mut out),
            Some(10)
        );
        assert_eq!(framing.encode(SendKind::Binary, b"five!", &mut out), None);
        let big = vec![0u8; 65536];
        let mut room = vec![0u8; 70000];
        assert_eq!(framing.encode(SendKind::Binary, &big, &mut room), None);
        assert!(
            framing
                .encode(SendKind::Binary, &big[1..], &mut room)
                .is_some()
        );
    }
}
