//! The sentelite client: the board-independent application (`sentelite-example-app`) with
//! what the ESP32-C3 gives it; with the `blob` feature, the next OTA slot for firmware images.

use embassy_net::Stack;
use embassy_time::{Duration, Timer};
use esp_hal::peripherals::FLASH;
use esp_hal::rng::Rng;
use esp_println::println;
use sentelite_embassy::core_protocol::blob::BlobSink as _;
use sentelite_embassy::core_protocol::blob::{SinkError, TransferState};
use sentelite_embassy::sinks::{RamSink, ResumableSink};
use sentelite_example_app::{Board, DeviceConfig, UpdateError};
use static_cell::StaticCell;

use sentelite_board_common::{build_id, hex, settings};

/// Where firmware images go: the next OTA slot, or nowhere (every image refused) without
/// the `blob` feature or an OTA partition table.
enum FirmwareSink {
    #[cfg(feature = "blob")]
    Slot(crate::ota::Sink),
    Refuse(RamSink<'static>),
}

struct Esp32C3 {
    sink: FirmwareSink,
}

/// Forwards to whichever sink the board has.
macro_rules! each_sink {
    ($sink:expr, $s:ident => $body:expr) => {
        match $sink {
            #[cfg(feature = "blob")]
            FirmwareSink::Slot($s) => $body,
            FirmwareSink::Refuse($s) => $body,
        }
    };
}

impl sentelite_embassy::core_protocol::blob::BlobSink for FirmwareSink {
    fn erase_block(&self) -> u32 {
        each_sink!(self, s => s.erase_block())
    }
    fn contains(&mut self, sha256: &[u8; 32]) -> bool {
        each_sink!(self, s => s.contains(sha256))
    }
    fn begin(
        &mut self,
        size: u64,
    ) -> Result<(), sentelite_embassy::core_protocol::blob::SinkError> {
        each_sink!(self, s => s.begin(size))
    }
    fn write_at(
        &mut self,
        offset: u64,
        data: &[u8],
    ) -> Result<(), sentelite_embassy::core_protocol::blob::SinkError> {
        each_sink!(self, s => s.write_at(offset, data))
    }
    fn durable(&self) -> u64 {
        each_sink!(self, s => s.durable())
    }
    fn commit(
        &mut self,
        sha256: &[u8; 32],
    ) -> Result<(), sentelite_embassy::core_protocol::blob::SinkError> {
        each_sink!(self, s => s.commit(sha256))
    }
    fn abort(&mut self) {
        each_sink!(self, s => s.abort())
    }
}

impl ResumableSink for FirmwareSink {
    fn restore(&mut self, size: u64, sha256: &[u8; 32]) -> Option<TransferState> {
        each_sink!(self, s => s.restore(size, sha256))
    }
    fn save(&mut self, state: &TransferState) -> Result<(), SinkError> {
        each_sink!(self, s => s.save(state))
    }
    fn forget(&mut self) {
        each_sink!(self, s => s.forget())
    }
}

impl Board for Esp32C3 {
    type Sink = FirmwareSink;

    fn firmware_sink(&mut self) -> &mut Self::Sink {
        &mut self.sink
    }

    /// ESP32-C3 boards wire their LED differently (often an addressable RGB LED), so the
    /// example only reports the request on the console.
    fn set_led(&mut self, on: bool) {
        println!("led {}", if on { "on" } else { "off" });
    }

    async fn apply_update(&mut self, sha256: &[u8; 32]) -> Result<(), UpdateError> {
        if !self.sink.contains(sha256) {
            return Err(UpdateError::NothingStaged);
        }
        // The slot was selected when the hash matched; let the transfer's report leave.
        Timer::after(Duration::from_secs(1)).await;
        #[cfg(feature = "blob")]
        crate::ota::reboot();
        #[cfg(not(feature = "blob"))]
        Err(UpdateError::NothingStaged)
    }
}

/// The device's id: `esp32c3-` and the station MAC address.
fn client_id() -> &'static str {
    const PREFIX: &str = "esp32c3-";
    static ID: StaticCell<[u8; PREFIX.len() + 12]> = StaticCell::new();
    let mac = esp_hal::efuse::base_mac_address();
    hex::prefixed(PREFIX, mac.as_bytes(), ID.init([0; PREFIX.len() + 12]))
}

/// The build id announced in the Hello: the hex of the image's GNU build-id note, which
/// `sentelite elf add FILE` registers the ELF under; `name@version` if it was linked
/// without the note.
fn build_id() -> &'static str {
    static HEX: StaticCell<[u8; build_id::BUILD_ID_HEX]> = StaticCell::new();
    build_id::own(HEX.init([0; build_id::BUILD_ID_HEX])).unwrap_or(concat!(
        env!("CARGO_PKG_NAME"),
        "@",
        env!("CARGO_PKG_VERSION")
    ))
}

/// Run the application forever.
pub async fn run(stack: Stack<'static>, flash: FLASH<'static>) -> ! {
    let rng = Rng::new();
    let mut config = DeviceConfig::new(settings::SENTELITE_URL, client_id(), build_id());
    config.boot_id = rng.random();
    config.seed = (u64::from(rng.random()) << 32) | u64::from(rng.random());
    #[cfg(feature = "blob")]
    let sink = match crate::ota::open(flash) {
        Some(slot) => FirmwareSink::Slot(slot),
        None => FirmwareSink::Refuse(RamSink::new(&mut [])),
    };
    #[cfg(not(feature = "blob"))]
    let sink = {
        let _ = flash;
        FirmwareSink::Refuse(RamSink::new(&mut []))
    };
    sentelite_example_app::run(stack, config, Esp32C3 { sink }).await
}
