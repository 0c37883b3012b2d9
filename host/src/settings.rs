//! Limits and timings of the server, loadable from a TOML file.
//!
//! Keys are kebab-case (`heartbeat-interval-ms`, `max-connections`, …). Unknown keys are an
//! error rather than silently ignored, because a misspelt limit would otherwise run with its
//! default and nobody would notice.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sentelite_core::ServerConfig;
use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// The server's limits and timings. Every field has a default, so a config file only names
/// what it changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Shared secret every client must present in its Hello; `None` admits anyone.
    pub token: Option<String>,
    /// Most handshaken connections at once; more are refused with `TOO_MANY_CONNECTIONS`.
    pub max_connections: usize,
    /// Most WebSocket upgrades still waiting for their Hello; more are refused with HTTP 503.
    pub max_handshaking: usize,
    /// Largest frame (one WebSocket message) accepted, in bytes.
    pub max_frame_bytes: u32,
    /// Time from the WebSocket upgrade to the Hello.
    pub handshake_timeout_ms: u64,
    /// How often clients ping (told to them in Welcome).
    pub heartbeat_interval_ms: u64,
    /// Silence after which a client is declared dead.
    pub heartbeat_timeout_ms: u64,
    /// Requests a client may have in flight towards the server; more are answered `BUSY`.
    pub max_pending: u16,
    /// Channels one connection may join.
    pub max_subscriptions_per_conn: u16,
    /// Connections one channel may hold.
    pub max_subscribers_per_channel: usize,
    /// Longest channel name, in bytes.
    pub max_channel_name_bytes: usize,
    /// Depth of each connection's command queue (pushes, publishes, replies waiting to be
    /// written). A full queue makes the sender's call fail instead of buffering more.
    pub connection_queue: usize,
    /// WebSocket read buffer per connection. Small, because idle devices are the common case
    /// and the buffer grows only for the message being read.
    pub read_buffer_bytes: usize,
    /// How much outgoing data the WebSocket layer gathers before writing to the socket.
    pub write_buffer_bytes: usize,
    /// Longest wait for the socket to take a write before the client is treated as gone.
    pub write_timeout_ms: u64,
    /// After sending a WebSocket close, how long to wait for the client's answering close.
    pub close_linger_ms: u64,
    /// The `[logs]` table: storing and keeping client logs.
    pub logs: crate::logs::LogsSettings,
}

impl Default for ServerSettings {
    fn default() -> Self {
        let core = ServerConfig::default();
        Self {
            token: None,
            max_connections: 10_000,
            max_handshaking: 1024,
            max_frame_bytes: core.max_frame,
            handshake_timeout_ms: core.handshake_timeout.as_millis(),
            heartbeat_interval_ms: core.heartbeat_interval.as_millis(),
            heartbeat_timeout_ms: core.heartbeat_timeout.as_millis(),
            max_pending: core.max_pending,
            max_subscriptions_per_conn: core.max_subscriptions,
            max_subscribers_per_channel: 10_000,
            max_channel_name_bytes: 128,
            connection_queue: 64,
            read_buffer_bytes: 4096,
            write_buffer_bytes: 4096,
            write_timeout_ms: 10_000,
            close_linger_ms: 1000,
            logs: crate::logs::LogsSettings::default(),
        }
    }
}

/// Smallest `max-frame-bytes` accepted: a Welcome with a long uid must still fit.
pub const MIN_FRAME_BYTES: u32 = 128;

impl ServerSettings {
    /// Checks that the values make sense together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |msg: &str| Err(ConfigError::Invalid(msg.to_owned()));
        if self.max_connections == 0 {
            return invalid("max-connections must be at least 1");
        }
        if self.max_handshaking == 0 {
            return invalid("max-handshaking must be at least 1");
        }
        if self.max_frame_bytes < MIN_FRAME_BYTES {
            return Err(ConfigError::Invalid(format!(
                "max-frame-bytes must be at least {MIN_FRAME_BYTES}"
            )));
        }
        if self.handshake_timeout_ms == 0 {
            return invalid("handshake-timeout-ms must be above 0");
        }
        if self.heartbeat_interval_ms == 0 {
            return invalid("heartbeat-interval-ms must be above 0");
        }
        if self.heartbeat_timeout_ms <= self.heartbeat_interval_ms {
            return invalid("heartbeat-timeout-ms must exceed heartbeat-interval-ms");
        }
        if u32::try_from(self.heartbeat_timeout_ms).is_err() {
            return invalid("heartbeat-timeout-ms must fit in 32 bits");
        }
        if self.max_pending == 0 {
            return invalid("max-pending must be at least 1");
        }
        if self.max_channel_name_bytes == 0 {
            return invalid("max-channel-name-bytes must be at least 1");
        }
        if self.connection_queue == 0 {
            return invalid("connection-queue must be at least 1");
        }
        if self.read_buffer_bytes == 0 {
            return invalid("read-buffer-bytes must be at least 1");
        }
        if self.write_timeout_ms == 0 {
            return invalid("write-timeout-ms must be above 0");
        }
        self.logs.validate()
    }

    /// The per-connection configuration handed to each [`sentelite_core::ServerSession`].
    pub fn session_config(&self) -> ServerConfig {
        ServerConfig {
            handshake_timeout: core_ms(self.handshake_timeout_ms),
            heartbeat_interval: core_ms(self.heartbeat_interval_ms),
            heartbeat_timeout: core_ms(self.heartbeat_timeout_ms),
            max_frame: self.max_frame_bytes,
            max_pending: self.max_pending,
            max_subscriptions: self.max_subscriptions_per_conn,
        }
    }

    pub(crate) fn write_timeout(&self) -> Duration {
        Duration::from_millis(self.write_timeout_ms)
    }

    pub(crate) fn close_linger(&self) -> Duration {
        Duration::from_millis(self.close_linger_ms)
    }
}

fn core_ms(ms: u64) -> sentelite_core::Duration {
    sentelite_core::Duration::from_millis(ms)
}

/// What a `sentelite serve --config FILE` file holds: where to listen, where to keep data,
/// and the [`ServerSettings`] keys, all at the top level.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FileConfig {
    /// `listen = "127.0.0.1:7700"`.
    pub listen: Option<String>,
    /// `data-dir = "./sentelite-data"`.
    pub data_dir: Option<PathBuf>,
    /// Every other key.
    pub settings: ServerSettings,
}

impl FileConfig {
    /// Parses TOML text. Unknown keys, wrong types and inconsistent limits are errors.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let mut table: toml::Table = toml::from_str(text).map_err(ConfigError::Parse)?;
        let listen = take_string(&mut table, "listen")?;
        let data_dir = take_string(&mut table, "data-dir")?.map(PathBuf::from);
        let settings: ServerSettings = toml::Value::Table(table)
            .try_into()
            .map_err(ConfigError::Parse)?;
        settings.validate()?;
        Ok(Self {
            listen,
            data_dir,
            settings,
        })
    }

    /// Reads and parses a file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|e| e.in_file(path))
    }
}

fn take_string(table: &mut toml::Table, key: &str) -> Result<Option<String>, ConfigError> {
    match table.remove(key) {
        None => Ok(None),
        Some(toml::Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(ConfigError::Invalid(format!(
            "`{key}` must be a string, found {}",
            other.type_str()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_match_the_core() {
        let s = ServerSettings::default();
        s.validate().unwrap();
        let core = s.session_config();
        assert_eq!(core.max_frame, ServerConfig::default().max_frame);
        assert_eq!(
            core.heartbeat_timeout,
            ServerConfig::default().heartbeat_timeout
        );
    }

    #[test]
    fn file_keys_are_kebab_case_and_only_named_keys_change() {
        let cfg = FileConfig::parse(
            "listen = \"0.0.0.0:9000\"\ndata-dir = \"/tmp/x\"\nheartbeat-interval-ms = 5000\n\
             max-connections = 3\nmax-frame-bytes = 2048\ntoken = \"s3cret\"\n",
        )
        .unwrap();
        assert_eq!(cfg.listen.as_deref(), Some("0.0.0.0:9000"));
        assert_eq!(cfg.data_dir.as_deref(), Some(Path::new("/tmp/x")));
        assert_eq!(cfg.settings.heartbeat_interval_ms, 5000);
        assert_eq!(cfg.settings.max_connections, 3);
        assert_eq!(cfg.settings.max_frame_bytes, 2048);
        assert_eq!(cfg.settings.token.as_deref(), Some("s3cret"));
        assert_eq!(
            cfg.settings.heartbeat_timeout_ms,
            ServerSettings::default().heartbeat_timeout_ms
        );
    }

    #[test]
    fn unknown_keys_are_named_in_the_error() {
        let err = FileConfig::parse("max-conections = 3\n").unwrap_err();
        assert!(err.to_string().contains("max-conections"), "{err}");
        let err = FileConfig::parse("listen = 7700\n").unwrap_err();
        assert!(err.to_string().contains("listen"), "{err}");
    }

    #[test]
    fn inconsistent_limits_are_refused() {
        let err = FileConfig::parse("heartbeat-interval-ms = 100\nheartbeat-timeout-ms = 50\n")
            .unwrap_err();
        assert!(err.to_string().contains("heartbeat-timeout-ms"), "{err}");
        assert!(FileConfig::parse("max-frame-bytes = 16\n").is_err());
        assert!(FileConfig::parse("max-connections = 0\n").is_err());
    }
}
