//! Build-time settings. Each comes from the environment of the build, with a harmless
//! default so CI builds without secrets; nothing secret is committed.

/// Wi-Fi network to join (`WIFI_SSID`).
pub const WIFI_SSID: &str = match option_env!("WIFI_SSID") {
    Some(v) => v,
    None => "sentelite",
};

/// WPA2 passphrase (`WIFI_PASSWORD`); empty joins an open network.
pub const WIFI_PASSWORD: &str = match option_env!("WIFI_PASSWORD") {
    Some(v) => v,
    None => "",
};

/// The server's WebSocket endpoint (`SENTELITE_URL`).
pub const SENTELITE_URL: &str = match option_env!("SENTELITE_URL") {
    Some(v) => v,
    None => "ws://192.168.1.10:7700/ws",
};
