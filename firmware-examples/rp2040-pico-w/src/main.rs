//! sentelite on a Raspberry Pi Pico W.
//!
//! Brings up the CYW43439 radio, joins the Wi-Fi network given at build time, gets an
//! address by DHCP and runs the board-independent sentelite application: remote logging and,
//! with the `blob` feature, firmware updates fetched into the DFU partition and swapped in
//! by the bootloader in `./bootloader`.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

#[cfg(feature = "logging")]
mod client;
mod net;
#[cfg(feature = "blob")]
mod ota;
mod wifi;

use embassy_executor::Spawner;
#[cfg(not(feature = "logging"))]
use sentelite_board_common::baseline;
use sentelite_board_common::settings;
use {defmt_rtt as _, panic_probe as _};

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let p = embassy_rp::init(Default::default());
    defmt::info!("sentelite pico w starting");

    let pins = wifi::RadioPins {
        pwr: p.PIN_23,
        dio: p.PIN_24,
        cs: p.PIN_25,
        clk: p.PIN_29,
        pio: p.PIO0,
        dma: p.DMA_CH0,
    };
    let (device, mut control) = wifi::start(spawner, pins).await;
    let stack = net::start(spawner, device);

    wifi::join(&mut control, settings::WIFI_SSID, settings::WIFI_PASSWORD).await;
    stack.wait_link_up().await;
    stack.wait_config_up().await;
    if let Some(config) = stack.config_v4() {
        defmt::info!("address {}", config.address);
    }

    #[cfg(feature = "logging")]
    client::run(stack, control, p.FLASH).await;
    #[cfg(not(feature = "logging"))]
    baseline::run(stack, settings::SENTELITE_URL).await;
}
