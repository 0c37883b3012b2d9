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
//! `blob aborted after N bytes` when a transfer is given up or cancelled) so a test can
//! follow it; everything else goes to the server as log records.

use std::net::Ipv4Addr;

use clap::Parser;
use embassy_executor::{Executor, Spawner};
use embassy_net::{Ipv4Cidr, Runner as NetRunner, StackResources, StaticConfigV4};
use embassy_net_tuntap::TunTapDevice;
use embassy_time::Duration;
use sentelite_core::blob::{BlobSink, SinkError};
use sentelite_core::log::Level;
use sentelite_embassy::sinks::RamSink;
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
    /// Bytes of RAM for a fetched blob
    #[arg(long, default_value_t = 1 << 20)]
    blob_bytes: usize,
}

/// The board's RAM sink, saying on stdout when a transfer is discarded, so a test sees a
/// cancel or a failure reach the sink (and that nothing was committed).
struct PrintingSink {
    ram: RamSink<'static>,
    /// Bytes written since the last `begin`.
    written: u64,
}

impl BlobSink for PrintingSink {
    fn erase_block(&self) -> u32 {
        self.ram.erase_block()
    }

    fn contains(&mut self, sha256: &[u8; 32]) -> bool {
        self.ram.contains(sha256)
    }

    fn begin(&mut self, size: u64) -> Result<(), SinkError> {
        self.written = 0;
        self.ram.begin(size)
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), SinkError> {
        self.written = self.written.max(offset + data.len() as u64);
        self.ram.write_at(offset, data)
    }

    fn durable(&self) -> u64 {
        self.ram.durable()
    }

    fn commit(&mut self, sha256: &[u8; 32]) -> Result<(), SinkError> {
        self.ram.commit(sha256)
    }

    fn abort(&mut self) {
        println!("blob aborted after {} bytes", self.written);
        self.ram.abort();
    }
}

/// The host as a board: a RAM sink, an LED that prints.
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
        let image = self
            .sink
            .ram
            .committed()
            .ok_or(UpdateError::NothingStaged)?;
        let actual: [u8; 32] = Sha256::digest(image).into();
        if &actual != sha256 {
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
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let mut config = DeviceConfig::new(leak(args.server), leak(args.name), leak(args.build));
    config.boot_id = args.boot_id;
    config.seed = seed;
    config.tick = Duration::from_millis(args.tick_ms.max(1));
    config.level = level;
    config.log_batch_timeout = Duration::from_millis(args.batch_ms);
    let buffer: &'static mut [u8] = Box::leak(vec![0u8; args.blob_bytes].into_boxed_slice());
    let board = VirtualBoard {
        sink: PrintingSink {
            ram: RamSink::new(buffer),
            written: 0,
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

fn main() {
    let args = Args::parse();
    static EXECUTOR: StaticCell<Executor> = StaticCell::new();
    let executor = EXECUTOR.init(Executor::new());
    executor.run(|spawner| start(spawner, args));
}
