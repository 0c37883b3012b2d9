//! A simulated HTTP blob source, a sink with erase blocks and durable lag, and a driver
//! loop that runs the fetch machine against them, with reboots in between.
#![allow(dead_code)]

use sentelite_core::blob::{
    Action, BlobSink, End, Fetch, FetchPlan, ResponseHead, SinkError, TransferState, TransportError,
};
use sentelite_core::time::{Duration, Instant};
use sha2::{Digest, Sha256};

pub const M: usize = 4;
pub const U: usize = 64;
pub type Plan = FetchPlan<M, U>;

/// A blob with pseudo-random content.
pub fn blob(size: usize, seed: u64) -> (Vec<u8>, [u8; 32]) {
    let mut x = seed | 1;
    let data: Vec<u8> = (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let sha = Sha256::digest(&data).into();
    (data, sha)
}

/// How a simulated source behaves.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// Honours ranges, sends a strong ETag.
    Good,
    /// Like Good, but one byte of the blob is flipped.
    Corrupt(usize),
    /// Connection refused, always.
    Down,
    /// 503, always.
    Unavailable,
    /// 404, always.
    NotFound,
    /// Ignores Range: always 200 with the whole blob.
    IgnoresRange,
    /// Content-Range starts one byte off.
    WrongRange,
    /// Announces a total one byte larger.
    WrongTotal,
    /// Sends twice the bytes asked for.
    Overruns,
}

#[derive(Debug, Clone)]
pub struct Source {
    pub kind: Kind,
    /// Blob offsets at which a response is cut (each used once).
    pub cuts: Vec<u64>,
    /// Body chunk sizes, cycled.
    pub chunks: Vec<usize>,
    /// Microseconds the clock advances per body chunk.
    pub chunk_micros: u64,
    pub etag: String,
    /// Body bytes this source sent.
    pub served: u64,
    /// Requests this source received.
    pub requests: u32,
}

impl Source {
    pub fn new(kind: Kind) -> Self {
        Self {
            kind,
            cuts: Vec::new(),
            chunks: vec![1500],
            chunk_micros: 10,
            etag: "\"v1\"".into(),
            served: 0,
            requests: 0,
        }
    }

    pub fn url(i: usize) -> String {
        format!("http://source{i}.test/blobs/x")
    }
}

/// A sink like a flash partition: writes resume only on erase-block boundaries, and only
/// a prefix lagging behind what was written survives a crash.
#[derive(Debug)]
pub struct TestSink {
    pub erase: u32,
    pub lag: u64,
    pub data: Vec<u8>,
    pub len: u64,
    pub size: u64,
    pub capacity: u64,
    pub committed: Option<[u8; 32]>,
    pub commits: u32,
    pub aborts: u32,
    pub begins: u32,
    pub holds: Option<[u8; 32]>,
    /// What survived the last crash: durable whatever the lag.
    pub survived: u64,
    /// Violations of the sink contract seen (must stay empty).
    pub violations: Vec<String>,
}

impl TestSink {
    pub fn new(erase: u32, lag: u64) -> Self {
        Self {
            erase,
            lag,
            data: Vec::new(),
            len: 0,
            size: 0,
            capacity: u64::MAX,
            committed: None,
            commits: 0,
            aborts: 0,
            begins: 0,
            holds: None,
            survived: 0,
            violations: Vec::new(),
        }
    }

    /// Power loss: only the durable prefix survives.
    pub fn crash(&mut self) {
        let d = self.durable();
        self.len = d;
        self.survived = d;
        self.data.truncate(d as usize);
    }
}

impl BlobSink for TestSink {
    fn erase_block(&self) -> u32 {
        self.erase
    }
    fn contains(&mut self, sha256: &[u8; 32]) -> bool {
        self.holds.as_ref() == Some(sha256) || self.committed.as_ref() == Some(sha256)
    }
    fn begin(&mut self, size: u64) -> Result<(), SinkError> {
        if size > self.capacity {
            return Err(SinkError::NoSpace);
        }
        self.begins += 1;
        self.survived = 0;
        self.size = size;
        self.len = 0;
        self.data.clear();
        self.committed = None;
        Ok(())
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), SinkError> {
        if offset > self.len {
            self.violations
                .push(format!("gap: write at {offset}, len {}", self.len));
            return Err(SinkError::Refused);
        }
        if offset < self.len && !offset.is_multiple_of(u64::from(self.erase)) {
            self.violations
                .push(format!("rewind to {offset}, not on an erase block"));
            return Err(SinkError::Refused);
        }
        let end = offset + data.len() as u64;
        if end > self.size {
            self.violations.push(format!("write past the size: {end}"));
            return Err(SinkError::TooLarge);
        }
        if end > self.capacity {
            return Err(SinkError::NoSpace);
        }
        self.data.truncate(offset as usize);
        self.survived = self.survived.min(offset);
        self.data.extend_from_slice(data);
        self.len = end;
        Ok(())
    }
    fn durable(&self) -> u64 {
        let e = u64::from(self.erase);
        (self.len / e * e)
            .saturating_sub(self.lag)
            .max(self.survived.min(self.len))
    }
    fn commit(&mut self, sha256: &[u8; 32]) -> Result<(), SinkError> {
        let actual: [u8; 32] = Sha256::digest(&self.data).into();
        if self.len != self.size || &actual != sha256 {
            self.violations
                .push("commit of bytes that do not hash to it".into());
        }
        self.commits += 1;
        self.committed = Some(*sha256);
        Ok(())
    }
    fn abort(&mut self) {
        self.aborts += 1;
        self.survived = 0;
        self.len = 0;
        self.data.clear();
        self.committed = None;
    }
}

/// What a run ended with, and what it cost.
#[derive(Debug)]
pub struct Outcome {
    pub end: End,
    pub steps: u32,
    pub requests: u32,
    pub reboots: u32,
    pub now: Instant,
    pub progress: Vec<(u64, u8)>,
}

pub struct Sim {
    pub data: Vec<u8>,
    pub sources: Vec<Source>,
    pub now: Instant,
    /// Request counts after which the device reboots (state saved through postcard).
    pub reboot_after: Vec<u32>,
    pub step_limit: u32,
    pub progress: Vec<(u64, u8)>,
}

impl Sim {
    pub fn new(data: Vec<u8>, sources: Vec<Source>) -> Self {
        Self {
            data,
            sources,
            now: Instant::from_millis(1),
            reboot_after: Vec::new(),
            step_limit: 100_000,
            progress: Vec::new(),
        }
    }

    pub fn plan(&self, sha: [u8; 32]) -> Plan {
        let mut plan = Plan::new(&Source::url(0), self.data.len() as u64, sha).unwrap();
        for i in 1..self.sources.len() {
            plan.add_source(&Source::url(i)).unwrap();
        }
        plan
    }

    pub fn served(&self) -> u64 {
        self.sources.iter().map(|s| s.served).sum()
    }

    /// Run one transfer to its end (or panic past the step limit: a hang).
    pub fn run(&mut self, plan: Plan, sink: &mut TestSink) -> Outcome {
        let mut fetch: Fetch<M, U> = Fetch::new(self.now, plan.clone(), sink);
        let mut steps = 0u32;
        let mut requests = 0u32;
        let mut reboots = 0u32;
        loop {
            steps += 1;
            assert!(
                steps <= self.step_limit,
                "no end after {steps} steps: {fetch:?}"
            );
            if self.reboot_after.first() == Some(&requests) && fetch.end().is_none() {
                self.reboot_after.remove(0);
                let bytes = postcard::to_allocvec(&fetch.state()).unwrap();
                assert!(bytes.len() <= sentelite_core::blob::TRANSFER_STATE_MAX_ENCODED);
                drop(fetch);
                sink.crash();
                let saved: TransferState = postcard::from_bytes(&bytes).unwrap();
                fetch = Fetch::resume(self.now, plan.clone(), &saved, sink);
                reboots += 1;
                continue;
            }
            let req = match fetch.poll_action(self.now, sink) {
                Action::Finished(end) => {
                    let end = *end;
                    // The end stays put.
                    assert!(
                        matches!(fetch.poll_action(self.now, sink), Action::Finished(e) if *e == end)
                    );
                    while let Some(p) = fetch.poll_progress() {
                        self.progress.push((p.loaded, p.percent));
                    }
                    return Outcome {
                        end,
                        steps,
                        requests,
                        reboots,
                        now: self.now,
                        progress: std::mem::take(&mut self.progress),
                    };
                }
                Action::Wait(t) => {
                    assert!(
                        t > self.now,
                        "wait for a past instant {t:?} at {:?}",
                        self.now
                    );
                    self.now = t;
                    continue;
                }
                Action::Request(r) => (
                    r.source,
                    r.start,
                    r.end_inclusive,
                    r.if_range.map(str::to_owned),
                ),
            };
            requests += 1;
            self.serve(&mut fetch, sink, req);
        }
    }

    fn serve(
        &mut self,
        fetch: &mut Fetch<M, U>,
        sink: &mut TestSink,
        (source, start, end_inclusive, if_range): (usize, u64, Option<u64>, Option<String>),
    ) {
        let size = self.data.len() as u64;
        let src = &mut self.sources[source];
        src.requests += 1;
        self.now += Duration::from_micros(100);
        let (status, range_start, total, from, to) = match src.kind {
            Kind::Down => {
                fetch.on_error(self.now, TransportError::Connect);
                return;
            }
            Kind::Unavailable => (503, None, None, 0, 0),
            Kind::NotFound => (404, None, None, 0, 0),
            Kind::IgnoresRange => (200, None, Some(size), 0, size),
            _ => {
                let stale = if_range.is_some_and(|t| t != src.etag);
                let last = end_inclusive.map_or(size, |e| (e + 1).min(size));
                if stale || start >= size {
                    (200, None, Some(size), 0, size)
                } else {
                    let to = if src.kind == Kind::Overruns {
                        (last + (last - start)).min(size)
                    } else {
                        last
                    };
                    let rs = if src.kind == Kind::WrongRange {
                        start + 1
                    } else {
                        start
                    };
                    let total = if src.kind == Kind::WrongTotal {
                        size + 1
                    } else {
                        size
                    };
                    (206, Some(rs), Some(total), start, to)
                }
            }
        };
        let etag = src.etag.clone();
        let head = ResponseHead {
            status,
            range_start,
            total,
            etag: Some(&etag),
        };
        if fetch.on_response(self.now, head).is_err() {
            return;
        }
        let mut pos = from;
        let mut chunk_i = 0;
        while pos < to {
            let src = &mut self.sources[source];
            let mut n = src.chunks[chunk_i % src.chunks.len()].max(1) as u64;
            chunk_i += 1;
            n = n.min(to - pos);
            // A cut inside this chunk: deliver up to it, then break the connection.
            let cut = src.cuts.iter().position(|&c| c > pos && c < pos + n);
            if let Some(i) = cut {
                n = src.cuts.remove(i) - pos;
            }
            let mut bytes = self.data[pos as usize..(pos + n) as usize].to_vec();
            if let Kind::Corrupt(at) = src.kind {
                let at = at as u64;
                if at >= pos && at < pos + n {
                    bytes[(at - pos) as usize] ^= 0x5a;
                }
            }
            src.served += n;
            self.now += Duration::from_micros(src.chunk_micros);
            let r = fetch.on_body(self.now, &bytes, sink);
            while let Some(p) = fetch.poll_progress() {
                self.progress.push((p.loaded, p.percent));
            }
            pos += n;
            if cut.is_some() {
                fetch.on_error(self.now, TransportError::Cut);
                return;
            }
            if r.is_err() {
                return;
            }
        }
        fetch.on_body_end(self.now, sink);
    }
}
