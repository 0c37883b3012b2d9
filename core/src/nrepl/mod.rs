//! nREPL for clients: the op dispatcher that turns one `nrepl/request` into the response
//! maps an editor expects, with the evaluating left to the application.
//!
//! The host owns nREPL sessions and forwards each editor request as the event
//! `nrepl/request`, its map untouched (PROTOCOL.md section 20). A client that evaluates
//! implements [`Evaluator`] and calls [`dispatch`] with the request's payload: the dispatcher
//! reads the op, calls the evaluator, and writes every response — `out`, `err`, `value` with
//! `ns`, `ex`, `need-input`, completions, lookup info — as a CBOR map into the caller's buffer,
//! handing each to a [`PartSink`] (the adapter sends it as one streamed part). The last
//! response carries a `status` containing `done`. Ops the evaluator does not support are
//! answered `["done","unknown-op","error"]`, and `describe` lists only what it supports.
//!
//! No allocation: request fields borrow from the payload, responses are encoded one at a time
//! into one buffer.

mod request;

pub use request::{Request, RequestError};

use crate::value::{self, ValueEncoder};

/// The event a forwarded nREPL request arrives as.
pub const REQUEST_EVENT: &str = "nrepl/request";

/// The optional ops an evaluator supports (`eval` and `describe` always are).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ops {
    /// `load-file`: evaluate a whole file's text.
    pub load_file: bool,
    /// `completions`: candidates for a prefix.
    pub completions: bool,
    /// `lookup`: information about a symbol.
    pub lookup: bool,
    /// `interrupt`: stop an evaluation in flight.
    pub interrupt: bool,
    /// `stdin`: input after a `need-input`.
    pub stdin: bool,
}

/// Why a response could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ReplyError {
    /// One response map does not fit the buffer.
    BufferTooSmall,
    /// The sink refused the part (its queue is full or the connection ended).
    SinkRefused,
}

/// Where the encoded responses go, one map per call, in order.
pub trait PartSink {
    /// Takes one encoded response map; `Err` when it cannot.
    fn part(&mut self, map: &[u8]) -> Result<(), ReplyError>;
}

/// One candidate of a `completions` answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Completion<'a> {
    /// The completed text.
    pub candidate: &'a str,
    /// Its kind (`function`, `var`, `keyword`, …).
    pub kind: &'a str,
}

/// The responses to one request: each call writes one map `{id, session, …}`.
pub struct Reply<'r> {
    id: &'r str,
    session: &'r str,
    buf: &'r mut [u8],
    sink: &'r mut dyn PartSink,
}

impl<'r> Reply<'r> {
    /// Responses to the request with `id` in `session`, encoded into `buf`.
    pub fn new(
        id: &'r str,
        session: &'r str,
        buf: &'r mut [u8],
        sink: &'r mut dyn PartSink,
    ) -> Self {
        Self {
            id,
            session,
            buf,
            sink,
        }
    }

    /// Writes one map: `id`, `session`, then what `fields` writes (`extra` entries).
    fn write(
        &mut self,
        extra: u64,
        fields: impl FnOnce(&mut ValueEncoder<'_>) -> Result<(), Overflow>,
    ) -> Result<(), ReplyError> {
        let mut e = value::encoder(self.buf);
        let written = (|| -> Result<(), Overflow> {
            e.map(2 + extra)?;
            value::keyword(&mut e, "id")?.str(self.id)?;
            value::keyword(&mut e, "session")?.str(self.session)?;
            fields(&mut e)
        })();
        if written.is_err() {
            return Err(ReplyError::BufferTooSmall);
        }
        let len = value::finish(e);
        let map = self.buf.get(..len).ok_or(ReplyError::BufferTooSmall)?;
        self.sink.part(map)
    }

    /// Printed output (`out`).
    pub fn out(&mut self, text: &str) -> Result<(), ReplyError> {
        self.write(1, |e| {
            value::keyword(e, "out")?.str(text)?;
            Ok(())
        })
    }

    /// Error output (`err`).
    pub fn err(&mut self, text: &str) -> Result<(), ReplyError> {
        self.write(1, |e| {
            value::keyword(e, "err")?.str(text)?;
            Ok(())
        })
    }

    /// A printed value (`value`) and the namespace it was read in (`ns`).
    pub fn value(&mut self, printed: &str, ns: &str) -> Result<(), ReplyError> {
        self.write(2, |e| {
            value::keyword(e, "value")?.str(printed)?;
            value::keyword(e, "ns")?.str(ns)?;
            Ok(())
        })
    }

    /// An evaluation error: `ex` and `root-ex` (the error's kind), `err` (its message) and
    /// status `eval-error`.
    pub fn ex(&mut self, kind: &str, message: &str) -> Result<(), ReplyError> {
        self.write(4, |e| {
            value::keyword(e, "ex")?.str(kind)?;
            value::keyword(e, "root-ex")?.str(kind)?;
            value::keyword(e, "err")?.str(message)?;
            value::keyword(e, "status")?.array(1)?.str("eval-error")?;
            Ok(())
        })
    }

    /// Asks the editor for input; it arrives as a `stdin` request ([`Evaluator::stdin`]).
    pub fn need_input(&mut self) -> Result<(), ReplyError> {
        self.status(&["need-input"])
    }

    /// A `completions` answer.
    pub fn completions(&mut self, candidates: &[Completion<'_>]) -> Result<(), ReplyError> {
        self.write(1, |e| {
            value::keyword(e, "completions")?.array(candidates.len() as u64)?;
            for c in candidates {
                e.map(2)?;
                value::keyword(e, "candidate")?.str(c.candidate)?;
                value::keyword(e, "type")?.str(c.kind)?;
            }
            Ok(())
        })
    }

    /// A `lookup` answer: `info` with these entries (`name`, `ns`, `doc`, `arglists-str` …).
    pub fn info(&mut self, entries: &[(&str, &str)]) -> Result<(), ReplyError> {
        self.write(1, |e| {
            value::keyword(e, "info")?.map(entries.len() as u64)?;
            for (k, v) in entries {
                value::keyword(e, k)?.str(v)?;
            }
            Ok(())
        })
    }

    /// A response with only a status; the request ends when it contains `done`.
    pub fn status(&mut self, words: &[&str]) -> Result<(), ReplyError> {
        self.write(1, |e| {
            value::keyword(e, "status")?.array(words.len() as u64)?;
            for w in words {
                e.str(w)?;
            }
            Ok(())
        })
    }
}

type Overflow = minicbor::encode::Error<minicbor::encode::write::EndOfSlice>;

/// What the application evaluates with. `eval` is required; the other ops are answered
/// `unknown-op` unless [`Evaluator::supports`] says otherwise.
pub trait Evaluator {
    /// The optional ops this evaluator answers.
    fn supports(&self) -> Ops {
        Ops::default()
    }

    /// The language and version `describe` reports under `versions` (e.g. `("device",
    /// "0.1")`).
    fn version(&self) -> (&str, &str) {
        ("evaluator", "0")
    }

    /// Evaluates `code` in `ns` (the editor's namespace, if it sent one), streaming `out`,
    /// `err`, `value` or `ex` through `reply`. The dispatcher sends the final `done`.
    fn eval(
        &mut self,
        session: &str,
        code: &str,
        ns: Option<&str>,
        reply: &mut Reply<'_>,
    ) -> Result<(), ReplyError>;

    /// Evaluates a whole file's text (`load-file`).
    fn load_file(
        &mut self,
        session: &str,
        file: &str,
        file_path: Option<&str>,
        reply: &mut Reply<'_>,
    ) -> Result<(), ReplyError> {
        let _ = file_path;
        self.eval(session, file, None, reply)
    }

    /// Candidates for `prefix` (`completions`).
    fn completions(
        &mut self,
        prefix: &str,
        ns: Option<&str>,
        reply: &mut Reply<'_>,
    ) -> Result<(), ReplyError> {
        let _ = (prefix, ns);
        reply.completions(&[])
    }

    /// Information about `sym` (`lookup`).
    fn lookup(
        &mut self,
        sym: &str,
        ns: Option<&str>,
        reply: &mut Reply<'_>,
    ) -> Result<(), ReplyError> {
        let _ = (sym, ns);
        reply.info(&[])
    }

    /// Stops the evaluation `interrupt_id` (or any) of `session`; `false` when nothing was
    /// running.
    fn interrupt(&mut self, session: &str, interrupt_id: Option<&str>) -> bool {
        let _ = (session, interrupt_id);
        false
    }

    /// Input for `session` after a `need-input`.
    fn stdin(&mut self, session: &str, text: &str) {
        let _ = (session, text);
    }
}

/// Why a request could not be answered at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DispatchError {
    /// The payload is not an nREPL request map.
    Request(RequestError),
    /// A response could not be written.
    Reply(ReplyError),
}

impl From<ReplyError> for DispatchError {
    fn from(e: ReplyError) -> Self {
        Self::Reply(e)
    }
}

/// Answers one `nrepl/request` payload with `evaluator`, writing each response map into
/// `buf` and handing it to `sink`. The last response's status contains `done`.
pub fn dispatch<E: Evaluator + ?Sized>(
    evaluator: &mut E,
    payload: &[u8],
    buf: &mut [u8],
    sink: &mut dyn PartSink,
) -> Result<(), DispatchError> {
    let request = Request::decode(payload).map_err(DispatchError::Request)?;
    let ops = evaluator.supports();
    let mut reply = Reply::new(request.id, request.session, buf, sink);
    let unknown: &[&str] = &["done", "unknown-op", "error"];
    match request.op {
        "describe" => {
            let (language, version) = evaluator.version();
            describe(&mut reply, ops, language, version)?;
            return Ok(());
        }
        "eval" => match request.code {
            Some(code) => evaluator.eval(request.session, code, request.ns, &mut reply)?,
            None => {
                reply.err("eval needs :code\n")?;
                return Ok(reply.status(&["done", "error"])?);
            }
        },
        "load-file" if ops.load_file => match request.file {
            Some(file) => {
                evaluator.load_file(request.session, file, request.file_path, &mut reply)?
            }
            None => {
                reply.err("load-file needs :file\n")?;
                return Ok(reply.status(&["done", "error"])?);
            }
        },
        "completions" if ops.completions => {
            evaluator.completions(request.prefix.unwrap_or(""), request.ns, &mut reply)?;
        }
        "lookup" if ops.lookup => {
            evaluator.lookup(request.sym.unwrap_or(""), request.ns, &mut reply)?;
        }
        "interrupt" if ops.interrupt => {
            if !evaluator.interrupt(request.session, request.interrupt_id) {
                return Ok(reply.status(&["done", "session-idle"])?);
            }
        }
        "stdin" if ops.stdin => evaluator.stdin(request.session, request.stdin.unwrap_or("")),
        "close" => return Ok(reply.status(&["done", "session-closed"])?),
        _ => return Ok(reply.status(unknown)?),
    }
    Ok(reply.status(&["done"])?)
}

fn describe(
    reply: &mut Reply<'_>,
    ops: Ops,
    language: &str,
    version: &str,
) -> Result<(), ReplyError> {
    let optional = [
        ("load-file", ops.load_file),
        ("completions", ops.completions),
        ("lookup", ops.lookup),
        ("interrupt", ops.interrupt),
        ("stdin", ops.stdin),
    ];
    let count = 2 + optional.iter().filter(|(_, on)| *on).count() as u64;
    reply.write(3, |e| {
        value::keyword(e, "ops")?.map(count)?;
        e.str("eval")?.map(0)?;
        e.str("describe")?.map(0)?;
        for (op, on) in optional {
            if on {
                e.str(op)?.map(0)?;
            }
        }
        value::keyword(e, "versions")?.map(1)?;
        e.str(language)?.map(1)?;
        value::keyword(e, "version-string")?.str(version)?;
        value::keyword(e, "status")?.array(1)?.str("done")?;
        Ok(())
    })
}

#[cfg(test)]
mod tests;
