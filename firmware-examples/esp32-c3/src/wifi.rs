//! The ESP32-C3's radio through esp-radio: station mode, reconnecting whenever the link drops.

use embassy_executor::Spawner;
use embassy_time::{Duration, Timer};
use esp_hal::peripherals::WIFI;
use esp_println::println;
use esp_radio::wifi::sta::StationConfig;
use esp_radio::wifi::{
    AuthenticationMethodConfig, Config, ControllerConfig, Interface, WifiController,
};

/// Start the radio in station mode for the given network and spawn the task that keeps it
/// connected. Returns the network interface for embassy-net.
pub fn start(spawner: Spawner, wifi: WIFI<'static>, ssid: &str, password: &str) -> Interface {
    let authentication = if password.is_empty() {
        AuthenticationMethodConfig::Open
    } else {
        AuthenticationMethodConfig::Wpa2Personal(
            password
                .try_into()
                .expect("WIFI_PASSWORD of 8 to 64 characters"),
        )
    };
    let station = StationConfig::default()
        .with_ssid(ssid.try_into().expect("WIFI_SSID of at most 32 bytes"))
        .with_authentication(authentication);
    let controller = WifiController::new(
        wifi,
        ControllerConfig::default().with_initial_config(Config::Station(station)),
    )
    .expect("the radio starts");
    spawner.spawn(connection_task(controller).expect("one connection task"));
    Interface::station()
}

#[embassy_executor::task]
async fn connection_task(mut controller: WifiController<'static>) {
    loop {
        match controller.connect_async().await {
            Ok(_) => {
                println!("wifi connected");
                let _ = controller.wait_for_disconnect_async().await;
                println!("wifi disconnected");
            }
            Err(e) => println!("wifi connect failed: {e:?}"),
        }
        Timer::after(Duration::from_secs(3)).await;
    }
}
