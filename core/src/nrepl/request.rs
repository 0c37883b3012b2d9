//! Reading an `nrepl/request` payload: a CBOR map whose keys are keywords or text, values
//! borrowed. Keys the dispatcher does not use (extension keys) are skipped, not refused.

use minicbor::Decoder;
use minicbor::data::Type;

use crate::value;

/// The fields of one nREPL request the dispatcher uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Request<'a> {
    /// The op.
    pub op: &'a str,
    /// The editor's id, echoed in every response (may be empty).
    pub id: &'a str,
    /// The session (the host's id for it).
    pub session: &'a str,
    /// `eval`: the code.
    pub code: Option<&'a str>,
    /// The namespace the editor is in.
    pub ns: Option<&'a str>,
    /// `load-file`: the file's text.
    pub file: Option<&'a str>,
    /// `load-file`: where the file lives on the editor's machine.
    pub file_path: Option<&'a str>,
    /// `completions`: the prefix.
    pub prefix: Option<&'a str>,
    /// `lookup`: the symbol.
    pub sym: Option<&'a str>,
    /// `stdin`: the input.
    pub stdin: Option<&'a str>,
    /// `interrupt`: the id of the request to stop.
    pub interrupt_id: Option<&'a str>,
}

/// Why a payload is not a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RequestError {
    /// Not a CBOR map, cut short, or trailing bytes.
    Malformed,
    /// A field the dispatcher reads is not text.
    NotText,
    /// No `op`.
    NoOp,
}

impl From<minicbor::decode::Error> for RequestError {
    fn from(_: minicbor::decode::Error) -> Self {
        Self::Malformed
    }
}

impl<'a> Request<'a> {
    /// Reads a request payload.
    pub fn decode(payload: &'a [u8]) -> Result<Self, RequestError> {
        let mut d = Decoder::new(payload);
        if d.datatype()? != Type::Map {
            return Err(RequestError::Malformed);
        }
        let entries = d.map()?.ok_or(RequestError::Malformed)?;
        let mut r = Request::default();
        let mut op = None;
        for _ in 0..entries {
            let key = key(&mut d)?;
            let slot = match key {
                "op" => &mut op,
                "id" => {
                    r.id = text(&mut d)?;
                    continue;
                }
                "session" => {
                    r.session = text(&mut d)?;
                    continue;
                }
                "code" => &mut r.code,
                "ns" => &mut r.ns,
                "file" => &mut r.file,
                "file-path" => &mut r.file_path,
                "prefix" => &mut r.prefix,
                "sym" | "symbol" => &mut r.sym,
                "stdin" => &mut r.stdin,
                "interrupt-id" => &mut r.interrupt_id,
                _ => {
                    d.skip()?;
                    continue;
                }
            };
            *slot = Some(text(&mut d)?);
        }
        if d.position() != payload.len() {
            return Err(RequestError::Malformed);
        }
        r.op = op.ok_or(RequestError::NoOp)?;
        Ok(r)
    }
}

/// A key: a keyword (tag 39) or text, without a leading colon.
fn key<'a>(d: &mut Decoder<'a>) -> Result<&'a str, RequestError> {
    if d.datatype()? == Type::Tag && d.tag()?.as_u64() != value::KEYWORD_TAG {
        return Err(RequestError::Malformed);
    }
    if d.datatype()? != Type::String {
        return Err(RequestError::Malformed);
    }
    let k = d.str()?;
    Ok(k.strip_prefix(':').unwrap_or(k))
}

fn text<'a>(d: &mut Decoder<'a>) -> Result<&'a str, RequestError> {
    if d.datatype()? != Type::String {
        return Err(RequestError::NotText);
    }
    Ok(d.str()?)
}
