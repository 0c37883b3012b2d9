//! The directives the server sends and their wire form (PROTOCOL.md section 14).
//!
//! A fetch directive is a server→client Request whose event id names the handler kind
//! (`blob/fetch-and-process`, `-eval`, `-display`, `-render`) and whose payload is a Value map
//! in sente-lite's shape. [`Directive::decode`] borrows every string from the payload, so a
//! device decodes a directive without copying it; [`Directive::encode`] is what the host
//! sends. Keys may be keywords (`:url`) or text (`"url"`), so a client of the JSON dialect is
//! understood too; unknown keys are skipped, so later versions can add fields.

use heapless::Vec;
use minicbor::Decoder;

use super::hex;
use crate::value::{self, ValueEncoder};

/// Event id of the directive whose handler processes the blob in an application way.
pub const FETCH_AND_PROCESS: &str = "blob/fetch-and-process";
/// Event id of the directive whose handler evaluates the blob as code.
pub const FETCH_AND_EVAL: &str = "blob/fetch-and-eval";
/// Event id of the directive whose handler displays the blob.
pub const FETCH_AND_DISPLAY: &str = "blob/fetch-and-display";
/// Event id of the directive whose handler renders the blob.
pub const FETCH_AND_RENDER: &str = "blob/fetch-and-render";
/// Event id of the directive asking the client to upload one of its blobs.
pub const UPLOAD: &str = "blob/upload";
/// Event id of a progress report sent as an Event (sente-lite dialect; native clients send
/// Reply parts).
pub const PROGRESS: &str = "blob/progress";
/// Event id of a completion report sent as an Event (sente-lite dialect).
pub const COMPLETE: &str = "blob/complete";
/// Event id of a failure report sent as an Event (sente-lite dialect).
pub const ERROR: &str = "blob/error";

/// How many mirrors a decoded directive keeps beside its main URL.
pub const MAX_MIRRORS: usize = 3;

/// What the receiving handler is asked to do with the blob: the suffix of the event id.
/// Serialised by its [`HandlerKind::name`] (`"process"`, …), as the host's JSON API spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum HandlerKind {
    /// `blob/fetch-and-process`: an application handler consumes it.
    Process,
    /// `blob/fetch-and-eval`: the blob is code to evaluate.
    Eval,
    /// `blob/fetch-and-display`: the blob is shown (HTML, SVG, text).
    Display,
    /// `blob/fetch-and-render`: the blob is rendered (image, model).
    Render,
}

impl HandlerKind {
    /// Every kind, in the order of the event ids above.
    pub const ALL: [HandlerKind; 4] = [
        HandlerKind::Process,
        HandlerKind::Eval,
        HandlerKind::Display,
        HandlerKind::Render,
    ];

    /// The directive's event id for this kind.
    pub const fn event(self) -> &'static str {
        match self {
            HandlerKind::Process => FETCH_AND_PROCESS,
            HandlerKind::Eval => FETCH_AND_EVAL,
            HandlerKind::Display => FETCH_AND_DISPLAY,
            HandlerKind::Render => FETCH_AND_RENDER,
        }
    }

    /// The kind a directive's event id names, or `None` for any other event.
    pub fn from_event(event: &str) -> Option<HandlerKind> {
        HandlerKind::ALL.into_iter().find(|k| k.event() == event)
    }

    /// The short name (`process`, `eval`, `display`, `render`), as the CLI spells it.
    pub const fn name(self) -> &'static str {
        match self {
            HandlerKind::Process => "process",
            HandlerKind::Eval => "eval",
            HandlerKind::Display => "display",
            HandlerKind::Render => "render",
        }
    }
}

/// What the sender knows of the blob.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Metadata<'a> {
    /// Size in bytes.
    pub size: Option<u64>,
    /// SHA-256 of the whole blob.
    pub sha256: Option<[u8; 32]>,
    /// MIME type, for the handler.
    pub content_type: Option<&'a str>,
}

/// How the client should go about the transfer. Absent fields take the client's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Give up an attempt after this long without progress.
    pub timeout_ms: Option<u64>,
    /// Attempts after the first before a source is given up.
    pub retry_count: Option<u32>,
    /// Check the SHA-256 before handing the blob over (default true; a directive without a
    /// hash cannot be verified and is refused when this is true).
    pub verify: bool,
    /// Ask for ranges of at most this many bytes (0 or absent: the whole rest at once).
    pub chunk_size: Option<u32>,
    /// The whole transfer must end within this many milliseconds of the directive.
    pub deadline_ms: Option<u64>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            timeout_ms: None,
            retry_count: None,
            verify: true,
            chunk_size: None,
            deadline_ms: None,
        }
    }
}

/// A fetch directive, borrowed from its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive<'a> {
    /// The directive's kind (from its event id; not part of the payload).
    pub kind: HandlerKind,
    /// The server's id for this transfer, echoed in every report.
    pub transfer_id: &'a str,
    /// Where to fetch the blob.
    pub url: &'a str,
    /// Other places with the same bytes, tried in order after `url`.
    pub mirrors: Vec<&'a str, MAX_MIRRORS>,
    /// The client's handler to give the blob to (`ns/name`, without the colon).
    pub handler: &'a str,
    /// What the server knows of the blob.
    pub metadata: Metadata<'a>,
    /// How to go about it.
    pub options: Options,
}

/// Why a payload is not a directive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DirectiveError {
    /// The payload is not a well-formed CBOR map.
    Malformed,
    /// A required field is missing.
    Missing(&'static str),
    /// A field has the wrong type or an impossible value.
    Invalid(&'static str),
    /// More mirrors than [`MAX_MIRRORS`].
    TooManyMirrors,
    /// The event id is not a blob directive.
    UnknownEvent,
}

impl core::fmt::Display for DirectiveError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DirectiveError::Malformed => f.write_str("directive payload is not a CBOR map"),
            DirectiveError::Missing(field) => write!(f, "directive lacks :{field}"),
            DirectiveError::Invalid(field) => write!(f, "directive's :{field} is invalid"),
            DirectiveError::TooManyMirrors => {
                write!(f, "directive lists more than {MAX_MIRRORS} mirrors")
            }
            DirectiveError::UnknownEvent => f.write_str("not a blob directive event"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for DirectiveError {}

impl From<minicbor::decode::Error> for DirectiveError {
    fn from(_: minicbor::decode::Error) -> Self {
        DirectiveError::Malformed
    }
}

/// The payload did not fit the caller's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BufferTooSmall;

impl core::fmt::Display for BufferTooSmall {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("buffer too small for the blob payload")
    }
}

#[cfg(feature = "std")]
impl std::error::Error for BufferTooSmall {}

impl<E> From<minicbor::encode::Error<E>> for BufferTooSmall {
    fn from(_: minicbor::encode::Error<E>) -> Self {
        BufferTooSmall
    }
}

impl<'a> Directive<'a> {
    /// Decodes the payload of a Request whose event id is `event`.
    pub fn decode(event: &str, payload: &'a [u8]) -> Result<Directive<'a>, DirectiveError> {
        let kind = HandlerKind::from_event(event).ok_or(DirectiveError::UnknownEvent)?;
        let mut d = Decoder::new(payload);
        let mut transfer_id = None;
        let mut url = None;
        let mut mirrors = Vec::new();
        let mut handler = None;
        let mut metadata = Metadata::default();
        let mut options = Options::default();
        let entries = map_len(&mut d)?;
        for _ in 0..entries {
            match key(&mut d)? {
                "transfer-id" => transfer_id = Some(text(&mut d, "transfer-id")?),
                "url" => url = Some(text(&mut d, "url")?),
                "mirrors" => mirrors = decode_mirrors(&mut d)?,
                "handler" => handler = Some(name(&mut d, "handler")?),
                "metadata" => metadata = decode_metadata(&mut d)?,
                "options" => options = decode_options(&mut d)?,
                _ => skip(&mut d)?,
            }
        }
        if d.position() != payload.len() {
            return Err(DirectiveError::Malformed);
        }
        let url = url.ok_or(DirectiveError::Missing("url"))?;
        let handler = handler.ok_or(DirectiveError::Missing("handler"))?;
        if options.verify && metadata.sha256.is_none() {
            return Err(DirectiveError::Missing("sha256"));
        }
        Ok(Directive {
            kind,
            transfer_id: transfer_id.unwrap_or(""),
            url,
            mirrors,
            handler,
            metadata,
            options,
        })
    }

    /// The URL and then the mirrors, in the order they should be tried.
    pub fn sources(&self) -> impl Iterator<Item = &'a str> + '_ {
        core::iter::once(self.url).chain(self.mirrors.iter().copied())
    }

    /// Writes the payload (the Value map) into `buf`; the event id is [`HandlerKind::event`].
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let mut e = value::encoder(buf);
        let mut fields = 4;
        fields += u64::from(!self.mirrors.is_empty());
        fields += u64::from(self.metadata != Metadata::default());
        e.map(fields)?;
        value::keyword(&mut e, "transfer-id")?;
        e.str(self.transfer_id)?;
        value::keyword(&mut e, "url")?;
        e.str(self.url)?;
        if !self.mirrors.is_empty() {
            value::keyword(&mut e, "mirrors")?;
            e.array(self.mirrors.len() as u64)?;
            for mirror in &self.mirrors {
                e.str(mirror)?;
            }
        }
        value::keyword(&mut e, "handler")?;
        value::keyword(&mut e, self.handler)?;
        if self.metadata != Metadata::default() {
            encode_metadata(&mut e, &self.metadata)?;
        }
        encode_options(&mut e, &self.options)?;
        Ok(value::finish(e))
    }
}

/// An upload directive: the client should send one of its blobs to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadDirective<'a> {
    /// The server's id for this transfer.
    pub transfer_id: &'a str,
    /// The base URL; the client uploads to `<url>/<sha256 hex>`.
    pub url: &'a str,
    /// Which of the client's sources to upload (`ns/name`).
    pub source: &'a str,
}

impl<'a> UploadDirective<'a> {
    /// Decodes the payload of a `blob/upload` Request.
    pub fn decode(payload: &'a [u8]) -> Result<UploadDirective<'a>, DirectiveError> {
        let mut d = Decoder::new(payload);
        let (mut transfer_id, mut url, mut source) = (None, None, None);
        for _ in 0..map_len(&mut d)? {
            match key(&mut d)? {
                "transfer-id" => transfer_id = Some(text(&mut d, "transfer-id")?),
                "url" => url = Some(text(&mut d, "url")?),
                "source" => source = Some(name(&mut d, "source")?),
                _ => skip(&mut d)?,
            }
        }
        if d.position() != payload.len() {
            return Err(DirectiveError::Malformed);
        }
        Ok(UploadDirective {
            transfer_id: transfer_id.unwrap_or(""),
            url: url.ok_or(DirectiveError::Missing("url"))?,
            source: source.ok_or(DirectiveError::Missing("source"))?,
        })
    }

    /// Writes the payload into `buf`.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let mut e = value::encoder(buf);
        e.map(3)?;
        value::keyword(&mut e, "transfer-id")?;
        e.str(self.transfer_id)?;
        value::keyword(&mut e, "url")?;
        e.str(self.url)?;
        value::keyword(&mut e, "source")?;
        value::keyword(&mut e, self.source)?;
        Ok(value::finish(e))
    }
}

fn encode_metadata(
    e: &mut ValueEncoder<'_>,
    metadata: &Metadata<'_>,
) -> Result<(), BufferTooSmall> {
    value::keyword(e, "metadata")?;
    let fields = u64::from(metadata.size.is_some())
        + u64::from(metadata.sha256.is_some())
        + u64::from(metadata.content_type.is_some());
    e.map(fields)?;
    if let Some(size) = metadata.size {
        value::keyword(e, "size")?;
        e.u64(size)?;
    }
    if let Some(sha) = &metadata.sha256 {
        value::keyword(e, "sha256")?;
        e.str(hex::encode(sha).as_str())?;
    }
    if let Some(content_type) = metadata.content_type {
        value::keyword(e, "content-type")?;
        e.str(content_type)?;
    }
    Ok(())
}

fn encode_options(e: &mut ValueEncoder<'_>, options: &Options) -> Result<(), BufferTooSmall> {
    value::keyword(e, "options")?;
    let numbers = [
        ("timeout-ms", options.timeout_ms),
        ("retry-count", options.retry_count.map(u64::from)),
        ("chunk-size", options.chunk_size.map(u64::from)),
        ("deadline-ms", options.deadline_ms),
    ];
    let present = numbers.iter().filter(|(_, v)| v.is_some()).count() as u64;
    e.map(present + 1)?;
    for (name, value) in numbers {
        if let Some(value) = value {
            value::keyword(e, name)?;
            e.u64(value)?;
        }
    }
    value::keyword(e, "verify")?;
    e.bool(options.verify)?;
    Ok(())
}

fn decode_mirrors<'a>(d: &mut Decoder<'a>) -> Result<Vec<&'a str, MAX_MIRRORS>, DirectiveError> {
    let n = match next_head(d)? {
        (4, Some(n)) => n,
        (4, None) => return Err(DirectiveError::Invalid("mirrors")),
        _ => return Err(DirectiveError::Malformed),
    };
    let mut mirrors = Vec::new();
    for _ in 0..n {
        let mirror = text(d, "mirrors")?;
        mirrors
            .push(mirror)
            .map_err(|_| DirectiveError::TooManyMirrors)?;
    }
    Ok(mirrors)
}

fn decode_metadata<'a>(d: &mut Decoder<'a>) -> Result<Metadata<'a>, DirectiveError> {
    let mut metadata = Metadata::default();
    for _ in 0..map_len(d)? {
        let key = key(d)?;
        if !matches!(key, "size" | "sha256" | "content-type") {
            skip(d)?;
        } else if null(d)? {
            match key {
                "size" => metadata.size = None,
                "sha256" => metadata.sha256 = None,
                _ => metadata.content_type = None,
            }
        } else {
            match key {
                "size" => metadata.size = Some(unsigned(d, "size")?),
                "sha256" => metadata.sha256 = Some(decode_sha256(d)?),
                _ => metadata.content_type = Some(text(d, "content-type")?),
            }
        }
    }
    Ok(metadata)
}

/// The options that are numbers, and whether each must fit a `u32`.
const NUMBERS: [(&str, bool); 4] = [
    ("timeout-ms", false),
    ("retry-count", true),
    ("chunk-size", true),
    ("deadline-ms", false),
];

fn decode_options(d: &mut Decoder<'_>) -> Result<Options, DirectiveError> {
    let mut verify = true;
    // The numbers share one read, in the order of `NUMBERS`.
    let mut numbers = [None; 4];
    for _ in 0..map_len(d)? {
        let key = key(d)?;
        if key == "verify" {
            verify = match peek(d) {
                Ok(0xf4) => false,
                Ok(0xf5) => true,
                _ => return Err(DirectiveError::Invalid("verify")),
            };
            d.set_position(d.position() + 1);
        } else if let Some((slot, (field, small))) = numbers
            .iter_mut()
            .zip(NUMBERS)
            .find(|(_, (name, _))| *name == key)
        {
            *slot = if null(d)? {
                None
            } else {
                let n = unsigned(d, field)?;
                if small && u32::try_from(n).is_err() {
                    return Err(DirectiveError::Invalid(field));
                }
                Some(n)
            };
        } else {
            skip(d)?;
        }
    }
    let [timeout_ms, retry_count, chunk_size, deadline_ms] = numbers;
    // Both were checked to fit when read.
    let small = |n: Option<u64>| n.map(|n| n as u32);
    Ok(Options {
        timeout_ms,
        retry_count: small(retry_count),
        verify,
        chunk_size: small(chunk_size),
        deadline_ms,
    })
}

fn decode_sha256(d: &mut Decoder<'_>) -> Result<[u8; 32], DirectiveError> {
    let invalid = DirectiveError::Invalid("sha256");
    if matches!(peek(d)?, 0x40..=0x5b) {
        return string(d, 2)?.try_into().map_err(|_| invalid);
    }
    hex::decode(text(d, "sha256")?).ok_or(invalid)
}

/// A definite-length map's entry count.
fn map_len(d: &mut Decoder<'_>) -> Result<u64, DirectiveError> {
    match next_head(d)? {
        (5, Some(n)) => Ok(n),
        _ => Err(DirectiveError::Malformed),
    }
}

/// A map key: a keyword or a text string, without a leading colon.
fn key<'a>(d: &mut Decoder<'a>) -> Result<&'a str, DirectiveError> {
    let key = keyword_or_text(d, DirectiveError::Malformed)?;
    Ok(key.strip_prefix(':').unwrap_or(key))
}

/// A name such as a handler: a keyword, or text with or without the leading colon.
fn name<'a>(d: &mut Decoder<'a>, field: &'static str) -> Result<&'a str, DirectiveError> {
    let name = keyword_or_text(d, DirectiveError::Invalid(field))?;
    let name = name.strip_prefix(':').unwrap_or(name);
    // One colon is a keyword's mark. A name that still starts with one (text `"::x"` gives
    // `:x`) would be written as a keyword and read back without it: another name.
    if name.is_empty() || name.starts_with(':') {
        return Err(DirectiveError::Invalid(field));
    }
    Ok(name)
}

/// A keyword or text string; `wrong` when the item is of another type or tag, `Malformed`
/// when the bytes end early.
fn keyword_or_text<'a>(
    d: &mut Decoder<'a>,
    wrong: DirectiveError,
) -> Result<&'a str, DirectiveError> {
    if matches!(peek(d)?, 0xc0..=0xdb) && next_head(d)?.1 != Some(value::KEYWORD_TAG) {
        return Err(wrong);
    }
    text_or(d, wrong)
}

fn text<'a>(d: &mut Decoder<'a>, field: &'static str) -> Result<&'a str, DirectiveError> {
    text_or(d, DirectiveError::Invalid(field))
}

/// A definite-length text string; `wrong` when the item is of another type.
fn text_or<'a>(d: &mut Decoder<'a>, wrong: DirectiveError) -> Result<&'a str, DirectiveError> {
    if !matches!(peek(d)?, 0x60..=0x7b) {
        return Err(wrong);
    }
    core::str::from_utf8(string(d, 3)?).map_err(|_| DirectiveError::Malformed)
}

fn unsigned(d: &mut Decoder<'_>, field: &'static str) -> Result<u64, DirectiveError> {
    if peek(d)? > 0x1b {
        return Err(DirectiveError::Invalid(field));
    }
    next_head(d)?.1.ok_or(DirectiveError::Malformed)
}

/// Whether the item at the cursor is `null` (read as absent), stepping over it if so.
fn null(d: &mut Decoder<'_>) -> Result<bool, DirectiveError> {
    let null = peek(d)? == 0xf6;
    if null {
        d.set_position(d.position() + 1);
    }
    Ok(null)
}

/// Steps over one data item (an unknown key's value) exactly as minicbor's `Decoder::skip`
/// does in a build without `alloc`, which is what a device links: the same bytes consumed for
/// every item it accepts, refused where it refuses (an indefinite-length array or map only
/// where no sibling follows it). Counters instead of a stack, so nesting depth costs nothing,
/// and every round consumes at least one byte, so it ends. Its own, not minicbor's, because
/// that general skipper is over 2 KB of a device's flash.
fn skip(d: &mut Decoder<'_>) -> Result<(), DirectiveError> {
    let input = d.input();
    let mut pos = d.position();
    // Items still to step over, and break bytes owed to open indefinite arrays and maps.
    let (mut items, mut breaks) = (1u64, 0u64);
    while items > 0 || breaks > 0 {
        let (major, arg) = head(input, &mut pos)?;
        match (major, arg) {
            // A tag is part of the item it tags.
            (6, Some(_)) => continue,
            (2 | 3, Some(len)) => skip_string(input, &mut pos, major, len)?,
            (2 | 3, None) => loop {
                if input.get(pos) == Some(&BREAK) {
                    pos += 1;
                    break;
                }
                match head(input, &mut pos)? {
                    (chunk, Some(len)) if chunk == major => {
                        skip_string(input, &mut pos, major, len)?
                    }
                    _ => return Err(DirectiveError::Malformed),
                }
            },
            (4, Some(n)) => items = items.saturating_add(n),
            (5, Some(n)) => items = items.saturating_add(n.saturating_mul(2)),
            (4 | 5, None) if items < 2 => breaks = breaks.saturating_add(1),
            (7, None) => breaks = breaks.saturating_sub(1),
            (0 | 1 | 7, Some(_)) => {}
            _ => return Err(DirectiveError::Malformed),
        }
        items = items.saturating_sub(1);
    }
    d.set_position(pos);
    Ok(())
}

/// The initial byte of the item at the cursor, which stays put. Fails (as `Malformed`) where
/// minicbor's `Decoder::datatype` fails, so a wrong type reads as `Invalid` exactly as
/// before: at the end of the input, or on a negative integer whose first argument byte is
/// missing.
fn peek(d: &Decoder<'_>) -> Result<u8, DirectiveError> {
    let (input, pos) = (d.input(), d.position());
    match input.get(pos) {
        Some(0x38..=0x3b) if input.get(pos + 1).is_none() => Err(DirectiveError::Malformed),
        Some(&b) => Ok(b),
        None => Err(DirectiveError::Malformed),
    }
}

/// The head at the cursor, which moves past it; see [`head`].
fn next_head(d: &mut Decoder<'_>) -> Result<(u8, Option<u64>), DirectiveError> {
    let mut pos = d.position();
    let head = head(d.input(), &mut pos)?;
    d.set_position(pos);
    Ok(head)
}

/// The contents of the definite byte (`major` 2) or text (3) string at the cursor, which
/// moves past it; `Malformed` for any other item or one cut short.
fn string<'a>(d: &mut Decoder<'a>, major: u8) -> Result<&'a [u8], DirectiveError> {
    let (input, mut pos) = (d.input(), d.position());
    let len = match head(input, &mut pos)? {
        (m, Some(len)) if m == major => {
            usize::try_from(len).map_err(|_| DirectiveError::Malformed)?
        }
        _ => return Err(DirectiveError::Malformed),
    };
    let bytes = take(input, &mut pos, len)?;
    d.set_position(pos);
    Ok(bytes)
}

/// The break byte that ends an indefinite-length item.
const BREAK: u8 = 0xff;

/// The head at `pos`: major type and argument (`None` for indefinite length or a break);
/// `pos` moves past it.
fn head(input: &[u8], pos: &mut usize) -> Result<(u8, Option<u64>), DirectiveError> {
    let [initial] = *take(input, pos, 1)? else {
        return Err(DirectiveError::Malformed);
    };
    let arg = match initial & 0x1f {
        info @ 0..=23 => Some(u64::from(info)),
        info @ 24..=27 => Some(
            take(input, pos, 1 << (info - 24))?
                .iter()
                .fold(0, |n, b| n << 8 | u64::from(*b)),
        ),
        31 => None,
        _ => return Err(DirectiveError::Malformed),
    };
    Ok((initial >> 5, arg))
}

/// A definite string's `len` bytes; a text string's must be UTF-8.
fn skip_string(input: &[u8], pos: &mut usize, major: u8, len: u64) -> Result<(), DirectiveError> {
    let len = usize::try_from(len).map_err(|_| DirectiveError::Malformed)?;
    let bytes = take(input, pos, len)?;
    if major == 3 && core::str::from_utf8(bytes).is_err() {
        return Err(DirectiveError::Malformed);
    }
    Ok(())
}

fn take<'a>(input: &'a [u8], pos: &mut usize, n: usize) -> Result<&'a [u8], DirectiveError> {
    let end = pos.checked_add(n).ok_or(DirectiveError::Malformed)?;
    let bytes = input.get(*pos..end).ok_or(DirectiveError::Malformed)?;
    *pos = end;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    extern crate std;

    use std::boxed::Box;
    use std::string::String;
    use std::vec::Vec as StdVec;

    use minicbor::Encoder;
    use minicbor::encode::write::Cursor;
    use proptest::prelude::*;

    use super::*;

    /// A CBOR data item of any kind minicbor's encoder writes, stray breaks included.
    #[derive(Debug, Clone)]
    enum Item {
        Unsigned(u64),
        Signed(i64),
        Bytes(StdVec<u8>),
        Text(String),
        BytesChunks(StdVec<StdVec<u8>>),
        TextChunks(StdVec<String>),
        Array(StdVec<Item>),
        ArrayIndefinite(StdVec<Item>),
        Map(StdVec<(Item, Item)>),
        MapIndefinite(StdVec<(Item, Item)>),
        Tagged(u64, Box<Item>),
        Simple(u8),
        Float(f64),
        Break,
    }

    fn item() -> impl Strategy<Value = Item> {
        let leaf = prop_oneof![
            prop_oneof![any::<u64>(), 0..30u64].prop_map(Item::Unsigned),
            prop_oneof![any::<i64>(), -30..0i64].prop_map(Item::Signed),
            proptest::collection::vec(any::<u8>(), 0..30).prop_map(Item::Bytes),
            ".{0,12}".prop_map(Item::Text),
            proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..5), 0..4)
                .prop_map(Item::BytesChunks),
            proptest::collection::vec(".{0,4}", 0..4).prop_map(Item::TextChunks),
            any::<u8>().prop_map(Item::Simple),
            any::<f64>().prop_map(Item::Float),
            Just(Item::Break),
        ];
        leaf.prop_recursive(5, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Item::Array),
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Item::ArrayIndefinite),
                proptest::collection::vec((inner.clone(), inner.clone()), 0..4).prop_map(Item::Map),
                proptest::collection::vec((inner.clone(), inner.clone()), 0..4)
                    .prop_map(Item::MapIndefinite),
                (any::<u64>(), inner).prop_map(|(t, i)| Item::Tagged(t, Box::new(i))),
            ]
        })
    }

    type Enc<'b> = Encoder<Cursor<&'b mut [u8]>>;
    type EncResult = Result<(), minicbor::encode::Error<minicbor::encode::write::EndOfSlice>>;

    fn encode(e: &mut Enc<'_>, item: &Item) -> EncResult {
        match item {
            Item::Unsigned(n) => e.u64(*n).map(drop),
            Item::Signed(n) => e.i64(*n).map(drop),
            Item::Bytes(b) => e.bytes(b).map(drop),
            Item::Text(s) => e.str(s).map(drop),
            Item::BytesChunks(chunks) => {
                e.begin_bytes()?;
                for c in chunks {
                    e.bytes(c)?;
                }
                e.end().map(drop)
            }
            Item::TextChunks(chunks) => {
                e.begin_str()?;
                for c in chunks {
                    e.str(c)?;
                }
                e.end().map(drop)
            }
            Item::Array(items) => {
                e.array(items.len() as u64)?;
                items.iter().try_for_each(|i| encode(e, i))
            }
            Item::ArrayIndefinite(items) => {
                e.begin_array()?;
                items.iter().try_for_each(|i| encode(e, i))?;
                e.end().map(drop)
            }
            Item::Map(entries) => {
                e.map(entries.len() as u64)?;
                entries
                    .iter()
                    .try_for_each(|(k, v)| encode(e, k).and_then(|()| encode(e, v)))
            }
            Item::MapIndefinite(entries) => {
                e.begin_map()?;
                entries
                    .iter()
                    .try_for_each(|(k, v)| encode(e, k).and_then(|()| encode(e, v)))?;
                e.end().map(drop)
            }
            Item::Tagged(t, i) => {
                e.tag(minicbor::data::Tag::new(*t))?;
                encode(e, i)
            }
            Item::Simple(n) => e.simple(*n).map(drop),
            Item::Float(f) => e.f64(*f).map(drop),
            Item::Break => e.end().map(drop),
        }
    }

    fn bytes_of(items: &[Item]) -> StdVec<u8> {
        let mut buf = [0u8; 8192];
        let mut e = Encoder::new(Cursor::new(&mut buf[..]));
        for item in items {
            encode(&mut e, item).expect("fits the buffer");
        }
        let len = e.writer().position();
        buf[..len].to_vec()
    }

    /// Skips item after item with both skippers: each must accept and refuse alike and
    /// consume the same bytes.
    fn same_as_minicbor(input: &[u8]) -> Result<(), TestCaseError> {
        let mut pos = 0;
        while pos < input.len() {
            let mut theirs = Decoder::new(input);
            theirs.set_position(pos);
            let mut ours = Decoder::new(input);
            ours.set_position(pos);
            let (t, o) = (theirs.skip(), skip(&mut ours));
            prop_assert_eq!(
                t.is_ok(),
                o.is_ok(),
                "at {} of {:02x?}: {:?}",
                pos,
                input,
                t
            );
            if t.is_err() {
                break;
            }
            prop_assert_eq!(
                theirs.position(),
                ours.position(),
                "from {} of {:02x?}",
                pos,
                input
            );
            pos = ours.position();
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn skip_matches_minicbor_on_encoded_items(items in proptest::collection::vec(item(), 1..4)) {
            same_as_minicbor(&bytes_of(&items))?;
        }

        #[test]
        fn skip_matches_minicbor_on_damaged_items(
            items in proptest::collection::vec(item(), 1..4),
            cut in any::<prop::sample::Index>(),
            flip in any::<prop::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let mut bytes = bytes_of(&items);
            if !bytes.is_empty() {
                let at = flip.index(bytes.len());
                bytes[at] = byte;
                same_as_minicbor(&bytes)?;
                bytes.truncate(cut.index(bytes.len()));
                same_as_minicbor(&bytes)?;
            }
        }

        #[test]
        fn skip_matches_minicbor_on_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            same_as_minicbor(&bytes)?;
        }
    }

    #[test]
    fn skip_refuses_nested_indefinite_containers_with_siblings_after_them() {
        // [[_ ], 1]: minicbor without `alloc` refuses it; so must the skipper.
        let input = [0x82, 0x9f, 0xff, 0x01];
        assert!(Decoder::new(&input).skip().is_err());
        assert_eq!(
            skip(&mut Decoder::new(&input)),
            Err(DirectiveError::Malformed)
        );
        // [1, [_ 2]] is accepted whole.
        let input = [0x82, 0x01, 0x9f, 0x02, 0xff];
        let mut d = Decoder::new(&input);
        assert_eq!(skip(&mut d), Ok(()));
        assert_eq!(d.position(), input.len());
    }
}
