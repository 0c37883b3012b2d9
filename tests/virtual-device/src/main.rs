//! The virtual device: the firmware examples' application ([`sentelite_example_app`]) on
//! the host, with embassy-executor's std platform, embassy-time's std driver and embassy-net
//! on a Linux TAP interface. It stands in for a board in the TAP integration test and for
//! trying the device side without hardware.
//!
//! ```text
//! ip netns exec NS sentelite-virtual-device --tap tap0 --address 192.168.69.2/24 \
//!     --server ws://192.168.69.100:7700/ws --name vdev-1
//! ```
//!
//! It prints one line per board action on stdout (`led on`, `update staged sha256=… bytes=…`,
//! `blob aborted after N bytes` when a transfer is given up or cancelled, `checkpoint saved
//! at offset N`, `resume point found at offset N`, `blob writes from offset N`) so a test
//! can follow it; everything else goes to the server as log records.
//!
//! Firmware images go into a flash partition with a resume record beside it, as on the
//! boards. With `--flash-dir DIR` both are files in `DIR` (`partition.bin`, `resume.bin`)
//! that outlive the process, so a device killed mid-download and started again resumes
//! where its last saved point was.

mod flash;

use std::net::Ipv4Addr;
use std::path::PathBuf;

use clap::Parser;
use embassy_executor::{Executor, Spawner};
use embassy_net::{Ipv4Cidr, Runner as NetRunner, StackResources, StaticConfigV4};
use embassy_net_tuntap::TunTapDevice;
use embassy_time::Duration;
use flash::FileFlash;
use sentelite_core::blob::{BlobSink, SinkError, TransferState};
use sentelite_core::log::Level;
use sentelite_embassy::sinks::{
    Activation, PartitionSink, ResumableSink, ResumeStore, ResumingSink,
};
use sentelite_example_app::{Board, DeviceConfig, UpdateError};
use sha2::{Digest, Sha256};
use static_cell::StaticCell;

/// Command line (every flag also reads an environment variable).
#[derive(Debug, Parser)]
#[command(
    version,
    about = "The sentelite example application on a Linux TAP interface"
)]
struct Args {
    /// TAP interface to run on (it must exist and be up)
    #[arg(long, env = "SENTELITE_TAP", default_value = "tap0")]
    tap: String,
    /// The device's address and prefix
    #[arg(
        long,
        env = "SENTELITE_DEVICE_ADDRESS",
        default_value = "192.168.69.2/24"
    )]
    address: String,
    /// Default gateway, if any
    #[arg(long, env = "SENTELITE_DEVICE_GATEWAY")]
    gateway: Option<Ipv4Addr>,
    /// The server's WebSocket URL
    #[arg(
        long,
        env = "SENTELITE_URL",
        default_value = "ws://192.168.69.100:7700/ws"
    )]
    server: String,
    /// Client id
    #[arg(long, env = "SENTELITE_DEVICE_NAME", default_value = "virtual-device")]
    name: String,
    /// Build id announced in the Hello
    #[arg(long, default_value = concat!("virtual-device-", env!("CARGO_PKG_VERSION")))]
    build: String,
    /// Boot id (differs per run so the server sees a reboot)
    #[arg(long, default_value_t = 1)]
    boot_id: u32,
    /// Milliseconds between the application's tick records
    #[arg(long, default_value_t = 1000)]
    tick_ms: u64,
    /// Lowest level shipped until the server changes it
    #[arg(long, default_value = "info")]
    level: String,
    /// Longest a log record waits before its batch goes out, in milliseconds
    #[arg(long, default_value_t = 5000)]
    batch_ms: u64,
    /// Bytes of the firmware partition a fetched blob goes to
    #[arg(long, default_value_t = 1 << 20)]
    blob_bytes: usize,
    /// Keep the firmware partition and the resume record in files in this directory, so
    /// they survive a restart (without it they live in memory)
    #[arg(long, env = "SENTELITE_DEVICE_FLASH_DIR")]
    flash_dir: Option<PathBuf>,
}

/// The partition sink's commit: the board only notes the verified image's size.
#[derive(Default)]
struct Staged {
    size: Option<u64>,
}

impl Activation for Staged {
    fn ready(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    fn activate(&mut self, size: u64) -> Result<(), SinkError> {
        self.size = Some(size);
        Ok(())
    }
}

type FlashSink = ResumingSink<FileFlash, Staged, FileFlash>;

/// The board's flash sink, saying on stdout when a transfer is discarded (so a test sees a
/// cancel or a failure reach the sink, and that nothing was committed), where its writes
/// start and when its resume point is saved or found.
struct PrintingSink {
    flash: FlashSink,
    /// Bytes written since the last `begin`.
    written: u64,
    /// The first write of a transfer (after `begin` or a restore) is still to come.
    first_write: bool,
}

impl BlobSink for PrintingSink {
    fn erase_block(&self) -> u32 {
        self.flash.erase_block()
    }

    fn contains(&mut self, sha256: &[u8; 32]) -> bool {
        self.flash.contains(sha256)
    }

    fn begin(&mut self, size: u64) -> Result<(), SinkError> {
        self.written = 0;
        self.first_write = true;
        self.flash.begin(size)
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), SinkError> {
        if self.first_write {
            self.first_write = false;
            println!("blob writes from offset {offset}");
        }
        self.written = self.written.max(offset + data.len() as u64);
        self.flash.write_at(offset, data)
    }

    fn durable(&self) -> u64 {
        self.flash.durable()
    }

    fn commit(&mut self, sha256: &[u8; 32]) -> Result<(), SinkError> {
        self.flash.commit(sha256)
    }

    fn abort(&mut self) {
        println!("blob aborted after {} bytes", self.written);
        self.flash.abort();
    }
}

impl ResumableSink for PrintingSink {
    fn restore(&mut self, size: u64, sha256: &[u8; 32]) -> Option<TransferState> {
        let state = self.flash.restore(size, sha256)?;
        println!("resume point found at offset {}", state.offset);
        self.written = state.offset;
        self.first_write = true;
        Some(state)
    }

    fn save(&mut self, state: &TransferState) -> Result<(), SinkError> {
        self.flash.save(state)?;
        println!("checkpoint saved at offset {}", state.offset);
        Ok(())
    }

    fn forget(&mut self) {
        self.flash.forget();
    }
}

/// The host as a board: a flash sink, an LED that prints.
struct VirtualBoard {
    sink: PrintingSink,
}

impl Board for VirtualBoard {
    type Sink = PrintingSink;

    fn firmware_sink(&mut self) -> &mut Self::Sink {
        &mut self.sink
    }

    fn set_led(&mut self, on: bool) {
        println!("led {}", if on { "on" } else { "off" });
    }

    async fn apply_update(&mut self, sha256: &[u8; 32]) -> Result<(), UpdateError> {
        if !self.sink.flash.contains(sha256) {
            return Err(UpdateError::NothingStaged);
        }
        let partition = self.sink.flash.sink_mut();
        let size = partition
            .activation_mut()
            .size
            .ok_or(UpdateError::NothingStaged)?;
        let image = partition.flash_mut().contents(size as usize);
        let actual: [u8; 32] = Sha256::digest(image).into();
        if &actual != sha256 {
            // The sink committed an image whose bytes are not the verified ones: a bug the
            // test must see, not a quiet refusal.
            println!(
                "update refused: partition holds sha256={}",
                sentelite_example_app::Hex(&actual)
            );
            return Err(UpdateError::NothingStaged);
        }
        // A board would mark the image for its bootloader and restart; the host only says so.
        println!(
            "update staged sha256={} bytes={}",
            sentelite_example_app::Hex(&actual),
            image.len()
        );
        Ok(())
    }
}

#[embassy_executor::task]
async fn net_task(mut runner: NetRunner<'static, TunTapDevice>) -> ! {
    runner.run().await
}

#[embassy_executor::task]
async fn app_task(stack: embassy_net::Stack<'static>, config: DeviceConfig, board: VirtualBoard) {
    sentelite_example_app::run(stack, config, board).await
}

fn fail(message: String) -> ! {
    eprintln!("sentelite-virtual-device: {message}");
    std::process::exit(2)
}

fn start(spawner: Spawner, args: Args) {
    let device = TunTapDevice::new(&args.tap)
        .unwrap_or_else(|e| fail(format!("cannot open TAP {}: {e}", args.tap)));
    let address: Ipv4Cidr = args
        .address
        .parse()
        .unwrap_or_else(|_| fail(format!("bad --address {}", args.address)));
    let net_config = embassy_net::Config::ipv4_static(StaticConfigV4 {
        address,
        gateway: args.gateway,
        dns_servers: heapless::Vec::new(),
    });
    static NET: StaticCell<StackResources<4>> = StaticCell::new();
    let seed = u64::from(args.boot_id) ^ 0x5e47_e11e_0000_0000;
    let (stack, runner) =
        embassy_net::new(device, net_config, NET.init(StackResources::new()), seed);
    let level = Level::from_name(&args.level)
        .unwrap_or_else(|| fail(format!("bad --level {}", args.level)));
    let flash = flash_sink(&args);
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let mut config = DeviceConfig::new(leak(args.server), leak(args.name), leak(args.build));
    config.boot_id = args.boot_id;
    config.seed = seed;
    config.tick = Duration::from_millis(args.tick_ms.max(1));
    config.level = level;
    config.log_batch_timeout = Duration::from_millis(args.batch_ms);
    let board = VirtualBoard {
        sink: PrintingSink {
            flash,
            written: 0,
            first_write: true,
        },
    };
    match (net_task(runner), app_task(stack, config, board)) {
        (Ok(net), Ok(app)) => {
            spawner.spawn(net);
            spawner.spawn(app);
        }
        _ => fail("cannot spawn the tasks".into()),
    }
}

/// The firmware partition and the resume record's sector, in `--flash-dir` or in memory.
fn flash_sink(args: &Args) -> FlashSink {
    let (partition, record) = match &args.flash_dir {
        Some(dir) => {
            let open = |name: &str, len: usize| {
                FileFlash::open(&dir.join(name), len)
                    .unwrap_or_else(|e| fail(format!("cannot open {}: {e}", dir.display())))
            };
            (
                open("partition.bin", args.blob_bytes),
                open("resume.bin", flash::ERASE),
            )
        }
        None => (
            FileFlash::in_memory(args.blob_bytes),
            FileFlash::in_memory(flash::ERASE),
        ),
    };
    ResumingSink::new(
        PartitionSink::new(partition, Staged::default()),
        ResumeStore::new(record),
    )
}

fn main() {
    let args = Args::parse();
    static EXECUTOR: StaticCell<Executor> = StaticCell::new();
    let executor = EXECUTOR.init(Executor::new());
    executor.run(|spawner| start(spawner, args));
}
