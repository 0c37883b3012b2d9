//! The WebSocket client over any `embedded_io_async` stream: the framing comes from
//! `embedded-websocket`'s `WebSocketClient` state machine, the opening handshake's two
//! messages from [`crate::upgrade`]; this module moves bytes between them and the socket,
//! and reassembles messages that arrive in pieces.

use embedded_io_async::{Read, Write};
use embedded_websocket::{
    WebSocketClient, WebSocketReceiveMessageType, WebSocketSendMessageType, WebSocketState,
};

use crate::rng::MaskRng;
use crate::upgrade::{self, Answer};
use crate::url::WsUrl;

/// Why the WebSocket could not go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum WsError {
    /// The socket failed or ended.
    Io,
    /// The server's upgrade answer was not a valid `101 Switching Protocols`.
    Handshake,
    /// A frame broke the WebSocket rules.
    Protocol,
    /// A message larger than the frame buffer.
    TooLarge,
}

/// A received message, reassembled in the caller's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// Text, binary, ping, pong or close.
    pub kind: WebSocketReceiveMessageType,
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

/// Bytes of the frame at the start of `input` (header and payload) when it must reach
/// embedded-websocket whole: a fragment of a longer message (FIN clear, or a continuation)
/// or a control frame (ping, pong, close: at most 125 bytes of payload). `None` for a whole
/// unfragmented data frame, or while the header is incomplete. embedded-websocket decodes an
/// unfinished single data frame piece by piece, but stalls on a fragment split across reads
/// and misreads a control frame split inside a fragmented message.
fn whole_frame_len(input: &[u8]) -> Option<usize> {
    let (&first, rest) = input.split_first()?;
    let fin = first & 0x80 != 0;
    let opcode = first & 0x0f;
    let control = opcode & 0x08 != 0;
    if fin && opcode != 0 && !control {
        return None;
    }
    let &second = rest.first()?;
    let (payload, header) = match second & 0x7f {
        126 => (
            u16::from_be_bytes([*input.get(2)?, *input.get(3)?]) as usize,
            4,
        ),
        127 => {
            let bytes: [u8; 8] = input.get(2..10)?.try_into().ok()?;
            (
                usize::try_from(u64::from_be_bytes(bytes)).unwrap_or(usize::MAX),
                10,
            )
        }
        short => (short as usize, 2),
    };
    let mask = if second & 0x80 != 0 { 4 } else { 0 };
    Some(payload.saturating_add(header + mask))
}

/// True for the frames that may come between two fragments of a message.
fn is_control(kind: WebSocketReceiveMessageType) -> bool {
    !matches!(
        kind,
        WebSocketReceiveMessageType::Text | WebSocketReceiveMessageType::Binary
    )
}

/// One connection's WebSocket state and the bytes read but not yet taken apart.
pub struct Framing {
    ws: WebSocketClient<MaskRng>,
    /// Bytes of the read buffer holding unparsed input.
    filled: usize,
    /// Bytes of the current message reassembled so far.
    assembled: usize,
    /// embedded-websocket has taken the start of an unfragmented frame but not its end, so
    /// the input starts inside that frame's payload, not at a frame header.
    mid_frame: bool,
}

impl Framing {
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            ws: WebSocketClient::new_client(MaskRng::new(seed)),
            filled: 0,
            assembled: 0,
            mid_frame: false,
        }
    }

    /// A framing past its handshake, for feeding server frames straight to
    /// [`Self::next_message`] (the unit tests and the `ws_frames` fuzz target).
    #[doc(hidden)]
    pub fn opened(seed: u64) -> Self {
        let mut framing = Self::new(seed);
        framing.ws.state = WebSocketState::Open;
        framing
    }

    /// Sends the upgrade request with a key drawn from `seed` and reads the answer; bytes
    /// after it stay in `input`.
    pub(crate) async fn handshake<S: Read + Write>(
        &mut self,
        io: &mut S,
        url: &WsUrl<'_>,
        seed: u64,
        input: &mut [u8],
        out: &mut [u8],
    ) -> Result<(), WsError> {
        let key = upgrade::key(crate::rng::nonce(seed));
        let len = upgrade::request(url, &key, out).ok_or(WsError::Handshake)?;
        io.write_all(out.get(..len).ok_or(WsError::TooLarge)?)
            .await
            .map_err(|_| WsError::Io)?;
        io.flush().await.map_err(|_| WsError::Io)?;
        loop {
            let spare = self.spare(input);
            if spare.is_empty() {
                return Err(WsError::Handshake);
            }
            let n = io.read(spare).await.map_err(|_| WsError::Io)?;
            if n == 0 {
                return Err(WsError::Io);
            }
            self.filled += n;
            match upgrade::answer(&key, self.unread(input)) {
                Answer::Accepted(used) => {
                    self.consume(input, used);
                    self.ws.state = WebSocketState::Open;
                    return Ok(());
                }
                Answer::Partial => {}
                Answer::Refused => return Err(WsError::Handshake),
            }
        }
    }

    /// Writes one message of `kind` carrying `payload`.
    pub(crate) async fn send<S: Write>(
        &mut self,
        io: &mut S,
        kind: WebSocketSendMessageType,
        payload: &[u8],
        out: &mut [u8],
    ) -> Result<(), WsError> {
        let len = self
            .ws
            .write(kind, true, payload, out)
            .map_err(|_| WsError::TooLarge)?;
        io.write_all(out.get(..len).ok_or(WsError::TooLarge)?)
            .await
            .map_err(|_| WsError::Io)?;
        io.flush().await.map_err(|_| WsError::Io)
    }

    /// Starts the closing handshake with `code` (a WebSocket status, 1000 normal).
    pub(crate) async fn close<S: Write>(
        &mut self,
        io: &mut S,
        normal: bool,
        out: &mut [u8],
    ) -> Result<(), WsError> {
        use embedded_websocket::WebSocketCloseStatusCode as Code;
        let code = if normal {
            Code::NormalClosure
        } else {
            Code::ProtocolError
        };
        let len = self
            .ws
            .close(code, None, out)
            .map_err(|_| WsError::Protocol)?;
        io.write_all(out.get(..len).ok_or(WsError::TooLarge)?)
            .await
            .map_err(|_| WsError::Io)?;
        io.flush().await.map_err(|_| WsError::Io)
    }

    /// The free part of the read buffer, for the next socket read.
    pub fn spare<'b>(&self, input: &'b mut [u8]) -> &'b mut [u8] {
        input.get_mut(self.filled..).unwrap_or_default()
    }

    /// What was read and not yet taken.
    fn unread<'b>(&self, input: &'b [u8]) -> &'b [u8] {
        input.get(..self.filled).unwrap_or_default()
    }

    /// Drops the first `n` unread bytes, moving the rest to the front.
    fn consume(&mut self, input: &mut [u8], n: usize) {
        input.copy_within(n..self.filled, 0);
        self.filled -= n;
    }

    /// `n` bytes were read into [`Self::spare`].
    pub fn filled(&mut self, n: usize) {
        self.filled += n;
    }

    /// Takes the next whole message out of what was read, reassembled into `message`.
    /// `Ok(None)`: more input is needed.
    pub fn next_message(
        &mut self,
        input: &mut [u8],
        message: &mut [u8],
    ) -> Result<Option<Received>, WsError> {
        loop {
            if self.filled == 0 {
                return Ok(None);
            }
            if self.assembled == message.len() {
                return Err(WsError::TooLarge);
            }
            let whole = if self.mid_frame {
                None
            } else {
                whole_frame_len(self.unread(input))
            };
            if let Some(whole) = whole {
                if whole > input.len() {
                    return Err(WsError::TooLarge);
                }
                if whole > self.filled {
                    return Ok(None);
                }
            }
            let start = self.assembled;
            let read = match self.ws.read(
                self.unread(input),
                message.get_mut(self.assembled..).unwrap_or_default(),
            ) {
                Ok(read) => read,
                Err(embedded_websocket::Error::ReadFrameIncomplete) => {
                    if self.filled == input.len() {
                        return Err(WsError::TooLarge);
                    }
                    return Ok(None);
                }
                Err(_) => return Err(WsError::Protocol),
            };
            self.consume(input, read.len_from);
            // Only an unfragmented data frame is read in pieces (the others arrive whole): it
            // is unfinished while its message is.
            self.mid_frame =
                whole.is_none() && !read.end_of_message && (self.mid_frame || read.len_from > 0);
            if read.end_of_message && start > 0 && is_control(read.message_type) {
                // A ping, pong or close inside a fragmented message: its payload sits after
                // the assembled part, which the next fragment continues.
                return Ok(Some(Received {
                    kind: read.message_type,
                    start,
                    len: read.len_to,
                }));
            }
            self.assembled += read.len_to;
            if read.end_of_message {
                let len = core::mem::take(&mut self.assembled);
                return Ok(Some(Received {
                    kind: read.message_type,
                    start: 0,
                    len,
                }));
            }
            if read.len_from == 0 && read.len_to == 0 {
                return Ok(None);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec;
    use std::vec::Vec;

    use embedded_websocket::WebSocketServer;

    use super::*;

    /// A client framing past its handshake.
    fn open() -> Framing {
        Framing::opened(1)
    }

    /// `payload` as the server would frame it (unmasked).
    fn server_frame(payload: &[u8], out: &mut [u8]) -> usize {
        let mut server = WebSocketServer::new_server();
        server.state = WebSocketState::Open;
        server
            .write(WebSocketSendMessageType::Binary, true, payload, out)
            .unwrap()
    }

    /// Hands `bytes` to the framing as one socket read.
    fn feed(framing: &mut Framing, input: &mut [u8], bytes: &[u8]) {
        let spare = framing.spare(input);
        spare[..bytes.len()].copy_from_slice(bytes);
        framing.filled(bytes.len());
    }

    /// A server on the other end of the handshake: takes the request, answers it with
    /// embedded-websocket's own server side in reads of `piece` bytes.
    struct Server {
        request: Vec<u8>,
        answer: Vec<u8>,
        piece: usize,
    }

    impl embedded_io_async::ErrorType for Server {
        type Error = core::convert::Infallible;
    }

    impl Write for Server {
        async fn write(&mut self, bytes: &[u8]) -> Result<usize, Self::Error> {
            self.request.extend_from_slice(bytes);
            Ok(bytes.len())
        }

        async fn flush(&mut self) -> Result<(), Self::Error> {
            Ok(())
        }
    }

    impl Read for Server {
        async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
            let n = self.piece.min(buf.len()).min(self.answer.len());
            buf[..n].copy_from_slice(&self.answer[..n]);
            self.answer.drain(..n);
            Ok(n)
        }
    }

    /// Runs the client's handshake against `server`, whose answer `answer` makes from the
    /// request's key.
    fn handshake_with(
        piece: usize,
        after: &[u8],
        answer: impl Fn(&str) -> Vec<u8>,
    ) -> (Result<(), WsError>, Framing, [u8; 256], Vec<u8>) {
        let url = WsUrl::parse("ws://device.test:7700/ws").unwrap();
        let mut framing = Framing::new(9);
        let (mut input, mut out) = ([0u8; 256], [0u8; 256]);
        // The request is known before the answer: the key comes from the seed.
        let key = upgrade::key(crate::rng::nonce(5));
        let mut reply = answer(core::str::from_utf8(&key).unwrap());
        reply.extend_from_slice(after);
        let mut server = Server {
            request: Vec::new(),
            answer: reply,
            piece,
        };
        let result = embassy_futures::block_on(framing.handshake(
            &mut server,
            &url,
            5,
            &mut input,
            &mut out,
        ));
        let request = std::string::String::from_utf8(server.request).unwrap();
        assert!(
            request.contains(std::str::from_utf8(&key).unwrap()),
            "{request}"
        );
        (result, framing, input, server.answer)
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

    #[test]
    fn the_handshake_opens_in_any_split_and_keeps_the_frame_after_the_answer() {
        let mut frame = [0u8; 16];
        let n = server_frame(b"hello", &mut frame);
        for piece in [1, 7, 64, 256] {
            let (result, mut framing, mut input, unread) =
                handshake_with(piece, &frame[..n], accepting_server);
            assert_eq!(result, Ok(()), "reads of {piece}");
            let mut message = [0u8; 64];
            // What the last read brought past the answer stays; the rest comes in later.
            feed(&mut framing, &mut input, &unread);
            let got = framing
                .next_message(&mut input, &mut message)
                .unwrap()
                .unwrap();
            assert_eq!(got.bytes(&message), b"hello", "reads of {piece}");
        }
    }

    #[test]
    fn the_handshake_fails_on_a_wrong_answer() {
        let (wrong_key, ..) =
            handshake_with(64, &[], |_| accepting_server("dGhlIHNhbXBsZSBub25jZQ=="));
        assert_eq!(wrong_key, Err(WsError::Handshake));
        let (not_101, ..) = handshake_with(64, &[], |_| {
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n".to_vec()
        });
        assert_eq!(not_101, Err(WsError::Handshake));
        let (cut_short, ..) = handshake_with(64, &[], |key| {
            let mut answer = accepting_server(key);
            answer.truncate(answer.len() - 2);
            answer
        });
        assert_eq!(cut_short, Err(WsError::Io));
    }

    #[test]
    fn a_message_read_in_pieces_comes_out_whole_once() {
        let payload: [u8; 300] = core::array::from_fn(|i| i as u8);
        let mut wire = [0u8; 400];
        let n = server_frame(&payload, &mut wire);
        let mut framing = open();
        let (mut input, mut message) = ([0u8; 512], [0u8; 512]);
        for piece in [&wire[..1], &wire[1..150], &wire[150..n]] {
            assert_eq!(framing.next_message(&mut input, &mut message), Ok(None));
            feed(&mut framing, &mut input, piece);
        }
        let got = framing
            .next_message(&mut input, &mut message)
            .unwrap()
            .unwrap();
        assert_eq!(got.kind, WebSocketReceiveMessageType::Binary);
        assert_eq!(&message[..got.len], &payload[..]);
        assert_eq!(framing.next_message(&mut input, &mut message), Ok(None));
    }

    #[test]
    fn two_messages_in_one_read_come_out_in_order() {
        let mut wire = [0u8; 64];
        let a = server_frame(b"first", &mut wire);
        let b = server_frame(b"second", &mut wire[a..]);
        let mut framing = open();
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
    /// each read.
    fn messages_of(wire: &[u8], sizes: &[usize]) -> Vec<(WebSocketReceiveMessageType, Vec<u8>)> {
        let mut framing = open();
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
            while let Some(received) = framing.next_message(&mut input, &mut message).unwrap() {
                got.push((received.kind, received.bytes(&message).to_vec()));
            }
        }
        got
    }

    #[test]
    fn fragments_split_across_reads_come_out_as_one_message() {
        for sizes in [&[2, 16, 1][..], &[1], &[3, 2], &[12]] {
            assert_eq!(
                messages_of(&FRAGMENTS, sizes),
                vec![(WebSocketReceiveMessageType::Binary, b"abcdef".to_vec())],
                "reads of {sizes:?}"
            );
        }
    }

    #[test]
    fn a_ping_between_fragments_keeps_its_own_bytes_and_the_message_whole() {
        let mut wire = FRAGMENTS[..5].to_vec();
        wire.extend_from_slice(&[0x89, 1, b'p']);
        wire.extend_from_slice(&FRAGMENTS[5..]);
        for sizes in [&[1][..], &[2, 16, 1], &[wire.len()]] {
            assert_eq!(
                messages_of(&wire, sizes),
                vec![
                    (WebSocketReceiveMessageType::Ping, b"p".to_vec()),
                    (WebSocketReceiveMessageType::Binary, b"abcdef".to_vec()),
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
                vec![(WebSocketReceiveMessageType::Binary, payload.to_vec())],
                "reads of {sizes:?}"
            );
        }
    }

    #[test]
    fn a_message_larger_than_the_buffer_is_refused() {
        let payload = [7u8; 200];
        let mut wire = [0u8; 256];
        let n = server_frame(&payload, &mut wire);
        let mut framing = open();
        let (mut input, mut message) = ([0u8; 256], [0u8; 100]);
        feed(&mut framing, &mut input, &wire[..n]);
        assert_eq!(
            framing.next_message(&mut input, &mut message),
            Err(WsError::TooLarge)
        );
    }
}
