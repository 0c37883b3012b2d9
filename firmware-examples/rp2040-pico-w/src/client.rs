//! The sentelite client: the board-independent application (`sentelite-example-app`) with
//! what the Pico W gives it, namely the LED on the radio's GPIO 0 and, with the `blob`
//! feature, the DFU partition for firmware images.

use embassy_futures::select::select;
use embassy_net::Stack;
use embassy_rp::Peri;
use embassy_rp::clocks::RoscRng;
use embassy_rp::flash::{Blocking, Flash};
use embassy_rp::peripherals::FLASH;
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::signal::Signal;
use embassy_time::{Duration, Timer};
use sentelite_example_app::{Board, DeviceConfig, UpdateError};
use static_cell::StaticCell;

use sentelite_board_common::{build_id, hex, settings};

/// The Pico W's flash chip (W25Q16JV).
pub const FLASH_SIZE: usize = 2 * 1024 * 1024;

/// The flash chip, blocking: a sink's writes are synchronous.
pub type Chip = Flash<'static, FLASH, Blocking, FLASH_SIZE>;

/// The LED state the application asked for, applied by [`led`] (the radio's GPIO is only
/// reachable through async calls).
static LED: Signal<CriticalSectionRawMutex, bool> = Signal::new();

/// Applies the LED state the application asks for, forever. Polled beside the application in
/// the main task rather than spawned as a task of its own: no second task's storage, and
/// no spawn.
async fn led(mut control: cyw43::Control<'static>) -> ! {
    loop {
        let on = LED.wait().await;
        control.gpio_set(0, on).await;
    }
}

struct PicoW {
    #[cfg(feature = "blob")]
    ota: crate::ota::Ota,
    #[cfg(not(feature = "blob"))]
    no_firmware: sentelite_embassy::sinks::RamSink<'static>,
}

impl Board for PicoW {
    #[cfg(feature = "blob")]
    type Sink = crate::ota::Sink;
    /// Without the `blob` feature firmware images are refused: the sink holds nothing.
    #[cfg(not(feature = "blob"))]
    type Sink = sentelite_embassy::sinks::RamSink<'static>;

    fn firmware_sink(&mut self) -> &mut Self::Sink {
        #[cfg(feature = "blob")]
        return self.ota.sink();
        #[cfg(not(feature = "blob"))]
        return &mut self.no_firmware;
    }

    fn set_led(&mut self, on: bool) {
        LED.signal(on);
    }

    async fn apply_update(&mut self, sha256: &[u8; 32]) -> Result<(), UpdateError> {
        use sentelite_embassy::core_protocol::blob::BlobSink as _;
        if !self.firmware_sink().contains(sha256) {
            return Err(UpdateError::NothingStaged);
        }
        // The sink marked the update when its hash matched; give the report of the
        // completed transfer a moment to leave, then let the bootloader swap.
        Timer::after(Duration::from_secs(1)).await;
        #[cfg(feature = "blob")]
        crate::ota::reboot();
        #[cfg(not(feature = "blob"))]
        Err(UpdateError::NothingStaged)
    }
}

const ID_PREFIX: &str = "pico-w-";

/// The texts the Hello announces, in one static cell: one `init` (and its already-taken
/// check) instead of one per text.
type Texts = ([u8; ID_PREFIX.len() + 16], [u8; build_id::BUILD_ID_HEX]);

/// The device's id: `pico-w-` and the flash chip's unique id, stable across updates.
fn client_id(chip: &mut Chip, out: &'static mut [u8]) -> &'static str {
    let mut uid = [0u8; 8];
    let _ = chip.blocking_unique_id(&mut uid);
    hex::prefixed(ID_PREFIX, &uid, out)
}

/// The build id announced in the Hello: the hex of the image's GNU build-id note, which
/// `sentelite elf add FILE` registers the ELF under; `name@version` if it was linked
/// without the note.
fn build_id(out: &'static mut [u8; build_id::BUILD_ID_HEX]) -> &'static str {
    build_id::own(out).unwrap_or(concat!(
        env!("CARGO_PKG_NAME"),
        "@",
        env!("CARGO_PKG_VERSION")
    ))
}

/// The application beside the LED loop: a future that runs forever. A plain fn returning
/// the `select` (its set-up has no await) rather than an `async fn` around it, so the main
/// task's future holds no state machine of its own for this step.
pub fn run(
    stack: Stack<'static>,
    control: cyw43::Control<'static>,
    flash: Peri<'static, FLASH>,
) -> impl Future {
    let mut chip = Flash::new_blocking(flash);
    static TEXTS: StaticCell<Texts> = StaticCell::new();
    let (id, hex) = TEXTS.init(([0; ID_PREFIX.len() + 16], [0; build_id::BUILD_ID_HEX]));
    let mut config = DeviceConfig::new(
        settings::SENTELITE_URL,
        client_id(&mut chip, id),
        build_id(hex),
    );
    config.boot_id = RoscRng.next_u32();
    config.seed = RoscRng.next_u64();
    #[cfg(feature = "blob")]
    let board = {
        let mut ota = crate::ota::Ota::open(chip);
        // Wi-Fi and DHCP work: this image is good enough to receive the next one.
        ota.mark_booted();
        PicoW { ota }
    };
    #[cfg(not(feature = "blob"))]
    let board = PicoW {
        no_firmware: sentelite_embassy::sinks::RamSink::new(&mut []),
    };
    select(
        sentelite_example_app::run(stack, config, board),
        led(control),
    )
}
