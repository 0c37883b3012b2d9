//! # sentelite-example-app
//!
//! The device application of the firmware examples, written once for every board: the
//! Pico W and ESP32-C3 firmware and the virtual device on a TAP all call [`run`] with their
//! network stack, a [`DeviceConfig`] and their [`Board`].
//!
//! What it does:
//! - logs through the `log` facade into sentelite's queue: a line at boot, an `info` tick and
//!   a `debug` detail line every [`DeviceConfig::tick`], a `warn` when the connection drops
//!   (shipped after the reconnect) and when the server changes the log levels;
//! - answers blob directives (feature `blob`): the handler [`FIRMWARE_HANDLER`] fetches
//!   into the board's firmware sink and, once verified, asks the board to apply the update;
//!   other handlers are refused as unsupported, and so is every directive without `blob`;
//! - with feature `demo`, shows the other calls of the handle: checks the link after every
//!   connect with a `sentelite/echo` request and logs the round trip, answers
//!   `device/status` requests with its counters, and `device/led` events (`"on"`/`"off"`)
//!   with the board's LED. Without it those requests are refused as unsupported and the
//!   events are logged at `debug` and ignored, like any other;
//! - with feature `channels`, subscribes to [`LISTEN_CHANNEL`] and publishes every message
//!   arriving there back on [`ECHO_CHANNEL`], with an `info` record of it;
//! - with feature `nrepl`, evaluates nREPL requests (`nrepl/request`, the Hello announces the
//!   NREPL capability)
//!   with the small evaluator of [`repl`]: log level, counters, uptime, LED, blink and the
//!   registered [`repl::Command`]s, so an editor connected to the host's nREPL endpoint can
//!   talk to the board.
#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "demo")]
use core::fmt::Write as _;

use embassy_futures::select::{Either, select};
use embassy_net::Stack;
use embassy_time::{Duration, Instant, Timer};
use heapless::String;
#[cfg(any(feature = "blob", feature = "nrepl", feature = "demo"))]
use sentelite_core::RequestId;
#[cfg(feature = "blob")]
use sentelite_core::blob::End;
use sentelite_core::log::{Level, LevelSet, LogConfig};
use sentelite_core::{ClientConfig, Payload, Status};
#[cfg(feature = "blob")]
use sentelite_embassy::blob::{self, BlobResources, DirectiveRequest, Served};
use sentelite_embassy::logging::{self, LOGGER};
use sentelite_embassy::sinks::ResumableSink;
use sentelite_embassy::{Config, Handle, Incoming, Resources, Runner};
use static_cell::ConstStaticCell;

/// `log::info!` and friends for the application's records, through [`log_record`]: the
/// level check and the `log::Record` are built once there instead of at every call site.
/// Defined before the code below, which `macro_rules!` macros need.
macro_rules! record {
    ($level:ident, $($arg:tt)+) => {
        $crate::log_record(log::Level::$level, format_args!($($arg)+))
    };
}
macro_rules! error {
    ($($arg:tt)+) => { record!(Error, $($arg)+) };
}
macro_rules! warn {
    ($($arg:tt)+) => { record!(Warn, $($arg)+) };
}
macro_rules! info {
    ($($arg:tt)+) => { record!(Info, $($arg)+) };
}
macro_rules! debug {
    ($($arg:tt)+) => { record!(Debug, $($arg)+) };
}

pub mod repl;

#[cfg(feature = "nrepl")]
use repl::DeviceState;
use repl::{Command, EXAMPLE_COMMANDS};

/// The blob handler whose blobs are firmware images.
pub const FIRMWARE_HANDLER: &str = "fw/image";
/// The request the application answers with its counters.
pub const STATUS_REQUEST: &str = "device/status";
/// The event that switches the LED (`"on"` or `"off"` as JSON text).
pub const LED_EVENT: &str = "device/led";
/// The server's built-in echo request, used as a link check after every connect.
pub const ECHO_REQUEST: &str = "sentelite/echo";
/// The host's nREPL requests (PROTOCOL.md section 20).
pub const NREPL_REQUEST: &str = sentelite_core::nrepl::REQUEST_EVENT;
/// Responses one nREPL request may produce (the evaluator writes a value or an error, then
/// `done`), and the largest one.
#[cfg(feature = "nrepl")]
const NREPL_PARTS: usize = 4;
#[cfg(feature = "nrepl")]
const NREPL_PART_BYTES: usize = 384;
/// The channel the application listens on (feature `channels`).
pub const LISTEN_CHANNEL: &str = "device/broadcast";
/// Where it publishes each message from [`LISTEN_CHANNEL`] again (feature `channels`).
pub const ECHO_CHANNEL: &str = "device/echo";
/// Bytes of log records queued while the server cannot take them.
pub const LOG_QUEUE_BYTES: usize = 4096;
/// A blob transfer's buffers: the HTTP socket's receive and send buffers, and 1 KB for the
/// request and response heads (a 96-byte ETag and a static file server's headers fit).
#[cfg(feature = "blob")]
type Blobs = BlobResources<2048, 512, 1024>;

/// Who the device is and where its server is.
#[derive(Debug, Clone)]
pub struct DeviceConfig {
    /// `ws://host:port/ws` of the sentelite server.
    pub server_url: &'static str,
    /// The device's stable id (serial number, board name).
    pub client_id: &'static str,
    /// The firmware build it runs, announced in the Hello.
    pub build_id: &'static str,
    /// Differs on every boot (a counter in flash, or random), so the server tells a reboot
    /// from a reconnect.
    pub boot_id: u32,
    /// Device-unique seed for reconnect jitter and WebSocket masking.
    pub seed: u64,
    /// How often the application logs its tick.
    pub tick: Duration,
    /// Lowest level shipped until the server changes it.
    pub level: Level,
    /// Longest a log record waits before its batch goes out.
    pub log_batch_timeout: Duration,
    /// Commands the nREPL evaluator can call.
    pub commands: &'static [Command],
}

impl DeviceConfig {
    /// A configuration with a ten-second tick and `info` shipped.
    pub const fn new(
        server_url: &'static str,
        client_id: &'static str,
        build_id: &'static str,
    ) -> Self {
        Self {
            server_url,
            client_id,
            build_id,
            boot_id: 0,
            seed: 0x5e47_e11e,
            tick: Duration::from_secs(10),
            level: Level::Info,
            log_batch_timeout: Duration::from_secs(5),
            // Only the nREPL evaluator calls commands: without it the example commands
            // (and the `Debug` string quoting of `echo`, 4 KB of `core::fmt` and Unicode
            // tables on a Cortex-M0+) stay out of the image.
            commands: if cfg!(feature = "nrepl") {
                EXAMPLE_COMMANDS
            } else {
                &[]
            },
        }
    }
}

/// Why an update could not be applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateError {
    /// The sink holds no verified image.
    NothingStaged,
    /// The bootloader state could not be written.
    Flash,
}

impl UpdateError {
    /// What went wrong, for a log line.
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateError::NothingStaged => "no verified image staged",
            UpdateError::Flash => "the bootloader state could not be written",
        }
    }
}

/// What the application needs from a board. Every board's executor is single-threaded, so
/// the futures need not be `Send`.
#[allow(async_fn_in_trait)]
pub trait Board {
    /// Where fetched firmware images go (a RAM buffer, a DFU partition, an OTA slot). A
    /// flash sink with a resume record (`sinks::ResumingSink`) lets a download interrupted
    /// by a reboot continue from its last saved point when the server sends the same blob
    /// again; a RAM sink keeps no record.
    type Sink: ResumableSink;

    /// The sink for a [`FIRMWARE_HANDLER`] blob.
    fn firmware_sink(&mut self) -> &mut Self::Sink;

    /// Switches the status LED.
    fn set_led(&mut self, on: bool);

    /// A verified image with this SHA-256 is in the sink: mark it for the bootloader and
    /// restart into it. Returns only when that did not happen.
    async fn apply_update(&mut self, sha256: &[u8; 32]) -> Result<(), UpdateError>;
}

/// Runs the sentelite client and the application on `stack`, forever. Call it once: its
/// buffers are `static`s taken on the first call (a second call only waits).
pub async fn run<B: Board>(stack: Stack<'static>, config: DeviceConfig, board: B) -> ! {
    // One wait for every way the set-up can fail: each `await` is a state of this future.
    let Some(parts) = setup(stack, &config) else {
        halt().await
    };
    let (handle, mut runner) = (parts.handle, parts.runner);
    let mut app = App {
        handle,
        #[cfg(feature = "blob")]
        stack,
        #[cfg(feature = "blob")]
        blobs: parts.blobs,
        board,
        config: &config,
        ticks: 0,
        updates: 0,
    };
    match select(runner.run(), app.run()).await {
        Either::First(never) | Either::Second(never) => never,
    }
}

/// What [`setup`] gives [`run`]: the client's handle and runner, and the blob buffers.
struct Setup {
    handle: Handle<'static>,
    runner: Runner<'static>,
    #[cfg(feature = "blob")]
    blobs: &'static mut Blobs,
}

/// The client over `stack`, built from the buffers taken from their statics and its
/// configuration, with the logger installed. `None` when a second call finds the buffers
/// taken, or when the configuration cannot work (the reason is logged). The client is built
/// here rather than in [`run`]: the configuration is not moved through a struct first.
fn setup(stack: Stack<'static>, config: &DeviceConfig) -> Option<Setup> {
    static RESOURCES: ConstStaticCell<Resources<2048, 1024>> =
        ConstStaticCell::new(Resources::new());
    static LOG_QUEUE: ConstStaticCell<[u8; LOG_QUEUE_BYTES]> =
        ConstStaticCell::new([0; LOG_QUEUE_BYTES]);
    let (Some(resources), Some(queue)) = (RESOURCES.try_take(), LOG_QUEUE.try_take()) else {
        return None;
    };
    #[cfg(feature = "blob")]
    let blobs = {
        static BLOBS: ConstStaticCell<Blobs> = ConstStaticCell::new(BlobResources::new());
        BLOBS.try_take()?
    };
    // The defaults changed in place: one default configuration built, not two.
    let mut log_config = LogConfig::default();
    log_config.filter.levels = LevelSet::at_least(config.level);
    log_config.batch_timeout =
        sentelite_core::Duration::from_micros(config.log_batch_timeout.as_micros());
    // A logger set before (by the board, for local output) keeps the facade; records then
    // stay local.
    let _ = logging::install(&LOGGER, queue, log_config, 0);
    let Some(client) = client_config(config) else {
        error!("client id \"{}\" is empty or too long", config.client_id);
        return None;
    };
    match Config::new(config.server_url, client, Some(&LOGGER)) {
        Ok(config) => {
            let (handle, runner) = sentelite_embassy::new(stack, config, resources);
            Some(Setup {
                handle,
                runner,
                #[cfg(feature = "blob")]
                blobs,
            })
        }
        Err(e) => {
            error!("server url \"{}\": {e}", config.server_url);
            None
        }
    }
}

/// Waits forever: the configuration cannot work, and a device that restarts in a loop helps
/// no one (the error was logged locally).
async fn halt() -> ! {
    loop {
        core::future::pending::<()>().await;
    }
}

fn client_config(config: &DeviceConfig) -> Option<ClientConfig> {
    let mut client = ClientConfig::new(config.client_id)?;
    client.firmware = String::try_from(config.build_id).ok();
    client.boot_id = config.boot_id;
    client.rng_seed = config.seed;
    #[cfg(feature = "nrepl")]
    {
        client.capabilities |= sentelite_core::frame::capability::NREPL;
    }
    Some(client)
}

/// The application's state.
struct App<'a, B: Board> {
    handle: Handle<'static>,
    #[cfg(feature = "blob")]
    stack: Stack<'static>,
    #[cfg(feature = "blob")]
    blobs: &'static mut Blobs,
    board: B,
    /// `run`'s own argument, borrowed: moved in, it would sit in `run`'s future twice.
    config: &'a DeviceConfig,
    ticks: u32,
    updates: u32,
}

impl<B: Board> App<'_, B> {
    /// Logs, answers and ticks; forever. It borrows the application rather than taking it,
    /// like the runner's `run`: an `async fn` that takes a value keeps it twice in its
    /// future (the argument and its local binding), 136 B of RAM on a Cortex-M0+.
    async fn run(&mut self) -> ! {
        info!(
            "booted build {} boot {} as {}",
            self.config.build_id, self.config.boot_id, self.config.client_id
        );
        #[cfg(feature = "channels")]
        self.subscribe_channels().await;
        let mut next_tick = Instant::now() + self.config.tick;
        loop {
            // The event is bound here and matched in place: passed by value it would be kept
            // three times in the task's future (this match's temporary, the argument and its
            // local binding), 584 bytes each, and an `async fn` handling it by reference
            // would be a future of its own nested in this one (70 B more on a Cortex-M0+).
            let event = match select(self.handle.next_event(), Timer::at(next_tick)).await {
                Either::First(event) => event,
                Either::Second(()) => {
                    self.ticks += 1;
                    info!("tick {}", self.ticks);
                    debug!("tick {} detail: {} updates", self.ticks, self.updates);
                    next_tick += self.config.tick;
                    continue;
                }
            };
            match event {
                Incoming::Opened { connection_id } => {
                    self.board.set_led(true);
                    info!("connected, connection {}", Decimal(connection_id));
                    #[cfg(feature = "demo")]
                    self.link_check().await;
                }
                Incoming::Closed { code } => {
                    self.board.set_led(false);
                    // Formatted as a u32: the image formats u32s anyway, a u16 would link a
                    // formatter of its own (200 B on a Cortex-M0+).
                    warn!("connection closed (code {}), reconnecting", u32::from(code));
                }
                Incoming::LogLevels { levels, enabled } => {
                    warn!(
                        "log levels changed: {} and above{}",
                        lowest(levels),
                        if enabled { "" } else { " (remote logging off)" }
                    );
                }
                #[cfg(feature = "demo")]
                Incoming::Message {
                    ref event,
                    ref payload,
                } if event == LED_EVENT => {
                    let on = payload.bytes.as_slice() == b"\"on\"";
                    self.board.set_led(on);
                    info!("led {}", if on { "on" } else { "off" });
                }
                Incoming::Message { ref event, .. } => debug!("event {event} ignored"),
                Incoming::Request {
                    id,
                    ref event,
                    ref payload,
                    timeout_ms,
                } => {
                    #[cfg(feature = "blob")]
                    if blob::is_directive(event) {
                        self.on_directive(id, event, &payload.bytes, timeout_ms)
                            .await;
                        continue;
                    }
                    #[cfg(not(feature = "blob"))]
                    let _ = (payload, timeout_ms);
                    #[cfg(feature = "nrepl")]
                    if event == NREPL_REQUEST {
                        self.on_nrepl(id, &payload.bytes).await;
                        continue;
                    }
                    #[cfg(feature = "demo")]
                    if event == STATUS_REQUEST {
                        self.on_status(id).await;
                        continue;
                    }
                    warn!("request {event} not supported");
                    let _ = self
                        .handle
                        .end(id, Status::UNSUPPORTED, Payload::Empty)
                        .await;
                }
                Incoming::Cancelled { id } => info!("server cancelled request {id}"),
                #[cfg(feature = "channels")]
                Incoming::ChannelMessage {
                    ref channel,
                    ref payload,
                } => self.on_channel_message(channel, payload).await,
                #[cfg(not(feature = "channels"))]
                Incoming::ChannelMessage { ref channel, .. } => debug!("message on {channel}"),
            }
        }
    }

    /// Answers a `device/status` request with the counters as JSON.
    #[cfg(feature = "demo")]
    async fn on_status(&mut self, id: RequestId) {
        let mut status: String<96> = String::new();
        let _ = write!(
            status,
            "{{\"ticks\":{},\"updates\":{},\"dropped\":{}}}",
            self.ticks,
            self.updates,
            self.handle.dropped()
        );
        let _ = self
            .handle
            .end(id, Status::OK, Payload::Json(&status))
            .await;
    }

    /// Evaluates one nREPL request and streams its responses back as parts; then does what
    /// the form asked of the LED.
    #[cfg(feature = "nrepl")]
    async fn on_nrepl(&mut self, id: RequestId, payload: &[u8]) {
        let mut state = DeviceState {
            ticks: self.ticks,
            updates: self.updates,
            dropped: self.handle.dropped(),
            led: None,
            blinks: 0,
            commands: self.config.commands,
        };
        let mut parts = Parts::default();
        let mut buf = [0u8; NREPL_PART_BYTES];
        let outcome = sentelite_core::nrepl::dispatch(&mut state, payload, &mut buf, &mut parts);
        for (seq, part) in parts.0.iter().enumerate() {
            let _ = self
                .handle
                .reply(id, seq as u32, Payload::Value(part))
                .await;
        }
        let status = if outcome.is_ok() {
            Status::OK
        } else {
            Status::ERROR
        };
        if let Err(e) = outcome {
            warn!("nREPL request not answered: {e:?}");
        }
        let _ = self.handle.end(id, status, Payload::Empty).await;
        if let Some(on) = state.led {
            self.board.set_led(on);
        }
        for _ in 0..state.blinks {
            self.board.set_led(true);
            Timer::after(Duration::from_millis(100)).await;
            self.board.set_led(false);
            Timer::after(Duration::from_millis(100)).await;
        }
        if state.blinks > 0 {
            self.board.set_led(self.handle.is_open());
        }
    }

    /// One request through the server and back: the round trip, or why it failed.
    #[cfg(feature = "demo")]
    async fn link_check(&mut self) {
        let started = Instant::now();
        let answer = self
            .handle
            .request(
                ECHO_REQUEST,
                Payload::Bytes(b"link check"),
                Duration::from_secs(5),
            )
            .await;
        match answer {
            Ok(answer) if answer.status == Some(Status::OK) => info!(
                "link check: echo answered in {} ms ({} parts)",
                started.elapsed().as_millis(),
                answer.parts
            ),
            Ok(answer) => match answer.status {
                Some(status) => warn!("link check: echo ended with status {}", status.0),
                None => warn!("link check: echo not answered in time"),
            },
            Err(e) => warn!("link check not sent: {e}"),
        }
    }

    /// Wants [`LISTEN_CHANNEL`]: the runner subscribes now and after every reconnect.
    #[cfg(feature = "channels")]
    async fn subscribe_channels(&self) {
        if let Err(e) = self.handle.subscribe(LISTEN_CHANNEL).await {
            warn!("not subscribed to {LISTEN_CHANNEL}: {e}");
        }
    }

    /// Logs a message from a subscribed channel and publishes one from [`LISTEN_CHANNEL`]
    /// again on [`ECHO_CHANNEL`], payload unchanged.
    #[cfg(feature = "channels")]
    async fn on_channel_message(
        &mut self,
        channel: &str,
        payload: &sentelite_embassy::OwnedPayload,
    ) {
        info!("channel {channel}: {} bytes", payload.bytes.len());
        if channel != LISTEN_CHANNEL {
            return;
        }
        if let Err(e) = self
            .handle
            .publish(ECHO_CHANNEL, payload.as_payload())
            .await
        {
            warn!("echo on {ECHO_CHANNEL} not published: {e}");
        }
    }

    #[cfg(feature = "blob")]
    async fn on_directive(&mut self, id: RequestId, event: &str, payload: &[u8], timeout: u32) {
        let firmware = blob::handler_of(event, payload) == Some(FIRMWARE_HANDLER);
        let sink = firmware.then(|| self.board.firmware_sink());
        let request = DirectiveRequest {
            id,
            event,
            payload,
            timeout_ms: timeout,
        };
        let served = blob::serve(&self.handle, self.stack, self.blobs, request, sink).await;
        match served {
            Served::Ended(End::Completed { bytes, sha256, .. }) => {
                info!(
                    "blob of {} bytes verified, sha256 {}",
                    Decimal(bytes),
                    Hex(&sha256)
                );
                if firmware {
                    self.updates += 1;
                    if let Err(e) = self.board.apply_update(&sha256).await {
                        error!("update not applied: {}", e.as_str());
                    }
                }
            }
            // Display and numbers rather than `Debug` of the core's types: the derived
            // `Debug` formatting costs about 2 KB of flash on a Cortex-M0+.
            Served::Ended(End::Failed { reason }) => {
                warn!("blob transfer failed: {reason}")
            }
            Served::Ended(End::Rescheduled { after }) => warn!(
                "blob transfer failed transiently, retry after {} ms",
                Decimal(after.as_millis())
            ),
            Served::Refused(status) => warn!("blob directive refused: status {}", status.0),
        }
    }
}

/// The encoded responses of one nREPL request, sent once it is evaluated (the outbox holds
/// two frames, so they cannot all be queued while the evaluator writes them).
#[cfg(feature = "nrepl")]
#[derive(Default)]
struct Parts(heapless::Vec<heapless::Vec<u8, NREPL_PART_BYTES>, NREPL_PARTS>);

#[cfg(feature = "nrepl")]
impl sentelite_core::nrepl::PartSink for Parts {
    fn part(&mut self, map: &[u8]) -> Result<(), sentelite_core::nrepl::ReplyError> {
        let refused = sentelite_core::nrepl::ReplyError::SinkRefused;
        let part = heapless::Vec::from_slice(map).map_err(|_| refused)?;
        self.0.push(part).map_err(|_| refused)
    }
}

/// Logs one record of the application (target and module `sentelite_example_app`, like
/// the `log` macros in this module) if the facade wants its level. The `log` macros would
/// check the level and build the record at every call site, each with a source location the
/// remote records never carry (about 70 B of code and 16 B of location per site on a
/// Cortex-M0+).
#[inline(never)]
fn log_record(level: log::Level, args: core::fmt::Arguments<'_>) {
    if level <= log::max_level() {
        log::logger().log(
            &log::Record::builder()
                .args(args)
                .level(level)
                .target(module_path!())
                .module_path_static(Some(module_path!()))
                .build(),
        );
    }
}

/// The lowest level in `levels`, by name.
fn lowest(levels: LevelSet) -> &'static str {
    Level::ALL
        .iter()
        .find(|level| levels.contains(**level))
        .map_or("nothing", |level| level.name())
}

/// A `u64` in decimal, as `u64`'s own `Display` writes it, but through the `u32` formatter
/// the image has anyway: the digits above the lowest nine, then those nine zero-padded.
/// `core`'s `u64` formatter would add 300 B on a Cortex-M0+ for the `u64`s the app logs:
/// the connection id (any `u64` on the wire, printed in decimal by the host) and, with
/// `blob`, a transfer's size and retry delay.
pub struct Decimal(pub u64);

impl core::fmt::Display for Decimal {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        const BILLION: u64 = 1_000_000_000;
        let low = (self.0 % BILLION) as u32;
        match self.0 / BILLION {
            0 => write!(f, "{low}"),
            high => write!(f, "{}{low:09}", Decimal(high)),
        }
    }
}

/// Lowercase hex of a digest, for log lines.
pub struct Hex<'a>(pub &'a [u8]);

impl core::fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

#[cfg(test)]
mod tests {
    use core::fmt::Write as _;

    use super::Decimal;

    #[test]
    fn decimal_writes_every_u64_as_its_own_display_does() {
        let edges = [
            0,
            9,
            10,
            999_999_999,
            1_000_000_000,
            1_000_000_001,
            u64::from(u32::MAX),
            u64::from(u32::MAX) + 1,
            999_999_999_999_999_999,
            1_000_000_000_000_000_000,
            1_000_000_000_000_000_007,
            12_345_678_901_234_567_890,
            u64::MAX - 1,
            u64::MAX,
        ];
        let spread = (0..64).map(|shift| 0x9e37_79b9_7f4a_7c15u64 >> shift);
        for n in edges.into_iter().chain(spread) {
            let (mut ours, mut core) =
                (heapless::String::<24>::new(), heapless::String::<24>::new());
            write!(ours, "{}", Decimal(n)).unwrap();
            write!(core, "{n}").unwrap();
            assert_eq!(ours, core);
        }
    }
}
