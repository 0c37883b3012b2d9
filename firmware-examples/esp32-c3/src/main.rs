//! sentelite on an ESP32-C3.
//!
//! Starts esp-rtos (the embassy executor and the scheduler esp-radio needs), joins the
//! Wi-Fi network given at build time, gets an address by DHCP and runs the board-independent
//! sentelite application: remote logging and, with the `blob` feature, firmware updates
//! written into the next OTA slot and booted by the ESP-IDF second-stage bootloader.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

extern crate alloc;

#[cfg(feature = "logging")]
mod client;
mod net;
#[cfg(feature = "blob")]
mod ota;
mod wifi;

use embassy_executor::Spawner;
use esp_backtrace as _;
use esp_hal::clock::CpuClock;
use esp_hal::timer::timg::TimerGroup;
use esp_println::println;
#[cfg(not(feature = "logging"))]
use sentelite_board_common::baseline;
use sentelite_board_common::settings;

esp_bootloader_esp_idf::esp_app_desc!();

/// Heap for esp-radio's driver (the Wi-Fi blob allocates its buffers).
const RADIO_HEAP: usize = 72 * 1024;

#[esp_rtos::main]
async fn main(spawner: Spawner) -> ! {
    let peripherals = esp_hal::init(esp_hal::Config::default().with_cpu_clock(CpuClock::max()));
    esp_alloc::heap_allocator!(size: RADIO_HEAP);
    let timg0 = TimerGroup::new(peripherals.TIMG0);
    esp_rtos::start(timg0.timer0, peripherals.FROM_CPU_INTR0);
    println!("sentelite esp32-c3 starting");

    let device = wifi::start(
        spawner,
        peripherals.WIFI,
        settings::WIFI_SSID,
        settings::WIFI_PASSWORD,
    );
    let stack = net::start(spawner, device);
    stack.wait_config_up().await;
    if let Some(config) = stack.config_v4() {
        println!("address {}", config.address);
    }

    #[cfg(feature = "logging")]
    client::run(stack, peripherals.FLASH).await;
    #[cfg(not(feature = "logging"))]
    baseline::run(stack, settings::SENTELITE_URL).await;
}
