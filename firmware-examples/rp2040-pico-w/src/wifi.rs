//! The Pico W's CYW43439 radio: power-up over PIO SPI, firmware and NVRAM load, join.
//!
//! The firmware and CLM blobs come from the `cyw43-firmware` crate; the NVRAM (board
//! configuration) is copied by `build.rs` from `CYW43_NVRAM_PATH`.

use cyw43::{A4, Aligned, JoinOptions};
use cyw43_pio::{DEFAULT_CLOCK_DIVIDER, PioSpi};
use embassy_executor::Spawner;
use embassy_rp::gpio::{Level, Output};
use embassy_rp::peripherals::{DMA_CH0, PIN_23, PIN_24, PIN_25, PIN_29, PIO0};
use embassy_rp::pio::{InterruptHandler as PioIrq, Pio};
use embassy_rp::{Peri, bind_interrupts, dma};
use embassy_time::{Duration, Timer};
use static_cell::StaticCell;

bind_interrupts!(struct Irqs {
    PIO0_IRQ_0 => PioIrq<PIO0>;
    DMA_IRQ_0 => dma::InterruptHandler<DMA_CH0>;
});

/// cyw43 loads its firmware with 32-bit transfers, so the blobs are copied into aligned
/// statics at compile time (the crate's own arrays carry no alignment).
static FIRMWARE: &Aligned<A4, [u8]> = &Aligned(*cyw43_firmware::CYW43_43439A0);
static NVRAM: &Aligned<A4, [u8]> =
    &Aligned(*include_bytes!(concat!(env!("OUT_DIR"), "/nvram.bin")));

type Spi = PioSpi<'static, PIO0, 0>;

/// The pins and blocks wired to the CYW43439 on a Pico W.
pub struct RadioPins {
    pub pwr: Peri<'static, PIN_23>,
    pub dio: Peri<'static, PIN_24>,
    pub cs: Peri<'static, PIN_25>,
    pub clk: Peri<'static, PIN_29>,
    pub pio: Peri<'static, PIO0>,
    pub dma: Peri<'static, DMA_CH0>,
}

#[embassy_executor::task]
async fn radio_task(runner: cyw43::Runner<'static, cyw43::SpiBus<Output<'static>, Spi>>) -> ! {
    runner.run().await
}

/// Power the radio up, load its firmware and start its driver task. Returns the network
/// device for embassy-net and the control handle used to join.
pub async fn start(
    spawner: Spawner,
    pins: RadioPins,
) -> (cyw43::NetDriver<'static>, cyw43::Control<'static>) {
    let pwr = Output::new(pins.pwr, Level::Low);
    let cs = Output::new(pins.cs, Level::High);
    let mut pio = Pio::new(pins.pio, Irqs);
    let spi = PioSpi::new(
        &mut pio.common,
        pio.sm0,
        DEFAULT_CLOCK_DIVIDER,
        pio.irq0,
        cs,
        pins.dio,
        pins.clk,
        dma::Channel::new(pins.dma, Irqs),
    );
    static STATE: StaticCell<cyw43::State> = StaticCell::new();
    let (device, mut control, runner) =
        cyw43::new(STATE.init(cyw43::State::new()), pwr, spi, FIRMWARE, NVRAM).await;
    spawner.spawn(defmt::unwrap!(radio_task(runner)));
    control.init(cyw43_firmware::CYW43_43439A0_CLM).await;
    control
        .set_power_management(cyw43::PowerManagementMode::PowerSave)
        .await;
    (device, control)
}

/// Join the configured network, retrying every few seconds until it works.
pub async fn join(control: &mut cyw43::Control<'static>, ssid: &str, password: &str) {
    loop {
        let options = if password.is_empty() {
            JoinOptions::new_open()
        } else {
            JoinOptions::new(password.as_bytes())
        };
        match control.join(ssid, options).await {
            Ok(()) => return,
            Err(e) => {
                defmt::warn!("joining {} failed ({}), retrying", ssid, e);
                Timer::after(Duration::from_secs(3)).await;
            }
        }
    }
}
