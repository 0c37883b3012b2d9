use heapless::Vec;
use minicbor::Decoder;
use minicbor::data::Type;

use super::*;

/// Keeps every part, to read back.
#[derive(Default)]
struct Parts {
    parts: Vec<Vec<u8, 512>, 8>,
}

impl PartSink for Parts {
    fn part(&mut self, map: &[u8]) -> Result<(), ReplyError> {
        let part = Vec::from_slice(map).map_err(|_| ReplyError::SinkRefused)?;
        self.parts.push(part).map_err(|_| ReplyError::SinkRefused)
    }
}

impl Parts {
    /// The text value of `key` in part `n` (keys read without their keyword tag).
    fn text(&self, n: usize, key: &str) -> Option<&str> {
        let mut d = Decoder::new(&self.parts[n]);
        let entries = d.map().ok()??;
        for _ in 0..entries {
            if d.datatype().ok()? == Type::Tag {
                d.tag().ok()?;
            }
            let k = d.str().ok()?;
            if k == key && d.datatype().ok()? == Type::String {
                return d.str().ok();
            }
            d.skip().ok()?;
        }
        None
    }

    /// The status words of part `n`, joined with commas.
    fn status(&self, n: usize, out: &mut heapless::String<64>) {
        let mut d = Decoder::new(&self.parts[n]);
        let entries = d.map().unwrap().unwrap();
        for _ in 0..entries {
            d.tag().unwrap();
            if d.str().unwrap() == "status" {
                let len = d.array().unwrap().unwrap();
                for i in 0..len {
                    if i > 0 {
                        out.push(',').unwrap();
                    }
                    out.push_str(d.str().unwrap()).unwrap();
                }
                return;
            }
            d.skip().unwrap();
        }
    }
}

/// Answers `(inc N)` for small N and fails everything else.
struct Adder;

impl Evaluator for Adder {
    fn eval(
        &mut self,
        _: &str,
        code: &str,
        _: Option<&str>,
        reply: &mut Reply<'_>,
    ) -> Result<(), ReplyError> {
        match code {
            "(inc 1)" => {
                reply.out("adding\n")?;
                reply.value("2", "user")
            }
            _ => reply.ex("unsupported", "only (inc 1)\n"),
        }
    }
}

/// A request map with text keys (as a text dialect sends it) and an extension key.
fn request(op: &str, code: Option<&str>, buf: &mut [u8]) -> usize {
    let mut e = value::encoder(buf);
    e.map(if code.is_some() { 5 } else { 4 }).unwrap();
    e.str("op").unwrap().str(op).unwrap();
    value::keyword(&mut e, "id").unwrap().str("").unwrap();
    e.str("session").unwrap().str("s-1").unwrap();
    value::keyword(&mut e, "x.ext/list")
        .unwrap()
        .array(2)
        .unwrap()
        .u8(1)
        .unwrap()
        .u8(2)
        .unwrap();
    if let Some(code) = code {
        e.str("code").unwrap().str(code).unwrap();
    }
    value::finish(e)
}

#[test]
fn eval_streams_out_value_and_done_with_the_id_and_session() {
    let mut payload = [0u8; 128];
    let n = request("eval", Some("(inc 1)"), &mut payload);
    let (mut buf, mut parts) = ([0u8; 256], Parts::default());
    dispatch(&mut Adder, &payload[..n], &mut buf, &mut parts).unwrap();
    assert_eq!(parts.parts.len(), 3);
    assert_eq!(parts.text(0, "out"), Some("adding\n"));
    assert_eq!(parts.text(1, "value"), Some("2"));
    assert_eq!(parts.text(1, "ns"), Some("user"));
    assert_eq!(parts.text(2, "id"), Some(""));
    assert_eq!(parts.text(2, "session"), Some("s-1"));
    let mut status = heapless::String::new();
    parts.status(2, &mut status);
    assert_eq!(status.as_str(), "done");
}

#[test]
fn errors_unknown_ops_and_describe() {
    let mut payload = [0u8; 128];
    let (mut buf, mut parts) = ([0u8; 256], Parts::default());
    let n = request("eval", Some("(boom)"), &mut payload);
    dispatch(&mut Adder, &payload[..n], &mut buf, &mut parts).unwrap();
    assert_eq!(parts.text(0, "ex"), Some("unsupported"));
    let n = request("load-file", None, &mut payload);
    dispatch(&mut Adder, &payload[..n], &mut buf, &mut parts).unwrap();
    let mut status = heapless::String::new();
    parts.status(2, &mut status);
    assert_eq!(
        status.as_str(),
        "done,unknown-op,error",
        "Adder loads no files"
    );
    let n = request("describe", None, &mut payload);
    dispatch(&mut Adder, &payload[..n], &mut buf, &mut parts).unwrap();
    let describe = &parts.parts[3];
    let has = |needle: &[u8]| describe.windows(needle.len()).any(|w| w == needle);
    assert!(has(b"eval") && has(b"describe"));
    assert!(
        !has(b"load-file") && !has(b"interrupt"),
        "only what the evaluator supports"
    );
}

#[test]
fn bad_payloads_and_small_buffers_are_typed_errors() {
    let (mut buf, mut parts) = ([0u8; 256], Parts::default());
    for bad in [
        &b""[..],
        b"\x01",
        b"\xa1\x62op",
        b"\xa1\x62op\x01",
        b"\xa0",
        b"\xa1\x62op\x64eval\x00",
    ] {
        assert!(
            matches!(
                dispatch(&mut Adder, bad, &mut buf, &mut parts),
                Err(DispatchError::Request(_))
            ),
            "{bad:?}"
        );
    }
    let mut payload = [0u8; 128];
    let n = request("eval", Some("(inc 1)"), &mut payload);
    let mut tiny = [0u8; 12];
    assert_eq!(
        dispatch(&mut Adder, &payload[..n], &mut tiny, &mut parts),
        Err(DispatchError::Reply(ReplyError::BufferTooSmall))
    );
}
