//! Any bytes as an `nrepl/request` payload on a client: the core's op dispatcher answers or
//! returns a typed error, never panics, and whatever it answers ends with a `done` status.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sentelite_core::nrepl::{Evaluator, Ops, PartSink, Reply, ReplyError, dispatch};

struct Echo;

impl Evaluator for Echo {
    fn supports(&self) -> Ops {
        Ops {
            load_file: true,
            completions: true,
            lookup: true,
            interrupt: true,
            stdin: true,
        }
    }

    fn eval(&mut self, _: &str, code: &str, ns: Option<&str>, reply: &mut Reply<'_>) -> Result<(), ReplyError> {
        reply.out(code)?;
        reply.value(code, ns.unwrap_or("user"))
    }
}

#[derive(Default)]
struct Count {
    parts: usize,
    last: Vec<u8>,
}

impl PartSink for Count {
    fn part(&mut self, map: &[u8]) -> Result<(), ReplyError> {
        self.parts += 1;
        self.last = map.to_vec();
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let mut buf = [0u8; 512];
    let mut sink = Count::default();
    if dispatch(&mut Echo, data, &mut buf, &mut sink).is_ok() {
        assert!(sink.parts > 0, "an answered request has a response");
        let done = sink.last.windows(4).any(|w| w == b"done");
        assert!(done, "the last response says done");
    }
});
