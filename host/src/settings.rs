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
    /// WebSocket read buffer per connection, also the most the WebSocket layer takes per
    /// read. Small, because idle devices are the common case and the buffer grows only for
    /// the message being read; reads of the socket itself go through a larger buffer shared
    /// by the connections of a thread (`connection/shared_read.rs`).
    pub read_buffer_bytes: usize,
    /// How much outgoing data the WebSocket layer gathers before writing to the socket.
    pub write_buffer_bytes: usize,
    /// Longest wait for the socket to take a write before the client is treated as gone.
    pub write_timeout_ms: u64,
    /// After sending a WebSocket close, how long to wait for the client's answering close.
    pub close_linger_ms: u64,
    /// Time an HTTP connection has to send its complete request headers, counted from the
    /// accept (and from the end of the previous response on a kept-alive connection).
    /// Silent sockets and trickled headers are closed when it runs out.
    pub header_read_timeout_ms: u64,
    /// How long a kept-alive HTTP connection (after `/health`, say) may wait for its next
    /// request before it is closed.
    pub idle_keepalive_timeout_ms: u64,
    /// Most HTTP connections not yet upgraded to a WebSocket. When full, the oldest of them
    /// is closed to admit the newcomer.
    pub max_half_open: usize,
    /// Most connections from one IP address between the TCP accept and the accepted Hello;
    /// more from that address are closed at once.
    pub max_handshaking_per_address: usize,
    /// Browser origins (`scheme://host[:port]`, compared exactly) allowed to connect. A
    /// request carrying an `Origin` header not in the list is refused with HTTP 403; requests
    /// without one (devices, command-line tools) are allowed.
    pub allowed_origins: Vec<String>,
    /// Whether `sentelite/relay` forwards requests at all. Off by default: a relay lets any
    /// token holder make a device answer requests, so it is opened on purpose.
    pub relay_enabled: bool,
    /// Event names `sentelite/relay` may forward: exact names, or a prefix when the entry
    /// ends in `*` (`"nrepl/*"`). Empty forwards nothing.
    pub relay_events: Vec<String>,
    /// What a Hello claiming a client id that already has a live connection gets.
    pub duplicate_client_id: DuplicateClientId,
    /// Longest `client_id` accepted in a Hello, in bytes; longer ones are closed with
    /// `LIMIT_EXCEEDED`.
    pub max_client_id_bytes: usize,
    /// Longest `firmware` accepted in a Hello, in bytes; longer ones are closed with
    /// `LIMIT_EXCEEDED`.
    pub max_firmware_bytes: usize,
    /// Event handler tasks one connection may have running. When all are busy the connection
    /// stops reading its socket until one ends, so a fast sender is slowed, not dropped.
    pub max_event_tasks_per_conn: usize,
    /// Shortest time between two reports of undelivered channel messages to one publishing
    /// client (a `PublishDropped` frame per channel) and between two log lines about them.
    pub drop_report_interval_ms: u64,
    /// How long `/ws` waits for a connection's first message when neither `?dialect=` nor
    /// `client-id` says what it speaks: a binary message means a native client, a text one
    /// is told apart by its shape, and silence means a sente-lite client waiting for the
    /// server's handshake (native clients always send their Hello first).
    pub dialect_detect_ms: u64,
    /// After the last connection of a Sente user id closes, how long to wait for it to come
    /// back before `chsk/uidport-close` is dispatched; a reconnect within it is no event.
    pub uidport_close_grace_ms: u64,
    /// Longest wait for the answer to a Sente callback (an event sent with a callback id):
    /// the client then gets `:chsk/timeout` and the request handler is told to stop.
    pub callback_timeout_ms: u64,
    /// Sends pushes to sente-lite and JSON clients (events, channel messages, echoes) wrapped
    /// as `[:chsk/recv [ev-id data]]`, for clients written against servers that wrap. Off:
    /// `[ev-id data]`. Clients unwrap either form.
    pub sente_lite_wrap_recv: bool,
    /// The `[logs]` table: storing and keeping client logs.
    pub logs: crate::logs::LogsSettings,
    /// The `[blobs]` table: the blob store, its HTTP serving and uploads.
    pub blobs: crate::blob::BlobSettings,
    /// The `[lsp]` table: which clients may use language servers, one table per language.
    pub lsp: crate::lsp::LspSettings,
    /// The `[nrepl]` table: the nREPL endpoint's limits (it runs with `--nrepl`).
    pub nrepl: crate::nrepl::NreplSettings,
}

/// What the server does with a Hello whose client id already has a live connection.
///
/// Until per-device credentials exist a client id is a claim, not a proof: every token holder
/// is trusted equally. The policy only decides which of two claims stays connected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DuplicateClientId {
    /// Refuse the newcomer with `DUPLICATE_CLIENT` (11), except when its Hello carries the
    /// live connection's `boot_id`: that is the same device run reconnecting after a drop
    /// the server has not noticed yet, so the old connection is closed with `REPLACED` (12)
    /// and the new one admitted. A device that rebooted gets in once the old connection's
    /// heartbeat has failed.
    #[default]
    Refuse,
    /// Admit the newcomer and close every older connection of that client with `REPLACED`.
    Replace,
    /// Admit both; pushes by client id reach every connection, relays the newest.
    Allow,
}

/// Capacity of each connection's table of client requests being answered: the largest
/// `max-pending` accepted. Part of every connection's fixed memory (8 bytes a slot).
pub const MAX_PENDING_CAPACITY: usize = 64;

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
            read_buffer_bytes: 256,
            write_buffer_bytes: 4096,
            write_timeout_ms: 10_000,
            close_linger_ms: 1000,
            header_read_timeout_ms: 5000,
            idle_keepalive_timeout_ms: 5000,
            max_half_open: 512,
            max_handshaking_per_address: 32,
            allowed_origins: Vec::new(),
            relay_enabled: false,
            relay_events: Vec::new(),
            duplicate_client_id: DuplicateClientId::Refuse,
            max_client_id_bytes: 128,
            max_firmware_bytes: 128,
            max_event_tasks_per_conn: 16,
            drop_report_interval_ms: 1000,
            dialect_detect_ms: 300,
            uidport_close_grace_ms: 2500,
            callback_timeout_ms: 30_000,
            sente_lite_wrap_recv: false,
            logs: crate::logs::LogsSettings::default(),
            blobs: crate::blob::BlobSettings::default(),
            lsp: crate::lsp::LspSettings::default(),
            nrepl: crate::nrepl::NreplSettings::default(),
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
        if usize::from(self.max_pending) > MAX_PENDING_CAPACITY {
            return Err(ConfigError::Invalid(format!(
                "max-pending must be at most {MAX_PENDING_CAPACITY}"
            )));
        }
        if self.max_client_id_bytes == 0 {
            return invalid("max-client-id-bytes must be at least 1");
        }
        if self.max_firmware_bytes == 0 {
            return invalid("max-firmware-bytes must be at least 1");
        }
        if self.max_event_tasks_per_conn == 0 {
            return invalid("max-event-tasks-per-conn must be at least 1");
        }
        for entry in &self.relay_events {
            let name = entry.strip_suffix('*').unwrap_or(entry);
            if entry.is_empty() || name.contains('*') {
                return Err(ConfigError::Invalid(format!(
                    "relay-events entry {entry:?} must be an event name, or a prefix ending in `*`"
                )));
            }
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
        if self.drop_report_interval_ms == 0 {
            return invalid("drop-report-interval-ms must be above 0");
        }
        if self.dialect_detect_ms == 0 {
            return invalid("dialect-detect-ms must be above 0");
        }
        if self.callback_timeout_ms == 0 {
            return invalid("callback-timeout-ms must be above 0");
        }
        self.validate_transport()?;
        self.logs.validate()?;
        self.blobs.validate()?;
        self.nrepl.validate()?;
        Ok(self.lsp.validate()?)
    }

    /// The limits that apply before the WebSocket upgrade.
    fn validate_transport(&self) -> Result<(), ConfigError> {
        let invalid = |msg: &str| Err(ConfigError::Invalid(msg.to_owned()));
        if self.header_read_timeout_ms == 0 {
            return invalid("header-read-timeout-ms must be above 0");
        }
        if self.idle_keepalive_timeout_ms == 0 {
            return invalid("idle-keepalive-timeout-ms must be above 0");
        }
        if self.max_half_open == 0 {
            return invalid("max-half-open must be at least 1");
        }
        if self.max_handshaking_per_address == 0 {
            return invalid("max-handshaking-per-address must be at least 1");
        }
        for origin in &self.allowed_origins {
            if !is_origin(origin) {
                return Err(ConfigError::Invalid(format!(
                    "allowed-origins: `{origin}` is not an origin (scheme://host[:port], \
                     no path or trailing slash)"
                )));
            }
        }
        Ok(())
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

    /// True when `sentelite/relay` may forward a request for `event`.
    pub fn relay_allows(&self, event: &str) -> bool {
        self.relay_enabled
            && self
                .relay_events
                .iter()
                .any(|entry| match entry.strip_suffix('*') {
                    Some(prefix) => event.starts_with(prefix),
                    None => event == entry,
                })
    }

    pub(crate) fn write_timeout(&self) -> Duration {
        Duration::from_millis(self.write_timeout_ms)
    }

    pub(crate) fn close_linger(&self) -> Duration {
        Duration::from_millis(self.close_linger_ms)
    }

    pub(crate) fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout_ms)
    }

    pub(crate) fn idle_keepalive_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_keepalive_timeout_ms)
    }

    /// Whether a request's `Origin` header value may connect.
    pub(crate) fn allows_origin(&self, origin: &[u8]) -> bool {
        self.allowed_origins
            .iter()
            .any(|allowed| allowed.as_bytes() == origin)
    }

    pub(crate) fn drop_report_interval(&self) -> Duration {
        Duration::from_millis(self.drop_report_interval_ms)
    }

    pub(crate) fn dialect_detect(&self) -> Duration {
        Duration::from_millis(self.dialect_detect_ms)
    }

    pub(crate) fn uidport_close_grace(&self) -> Duration {
        Duration::from_millis(self.uidport_close_grace_ms)
    }

    pub(crate) fn callback_timeout(&self) -> Duration {
        Duration::from_millis(self.callback_timeout_ms)
    }

    pub(crate) fn heartbeat_interval(&self) -> Duration {
        Duration::from_millis(self.heartbeat_interval_ms)
    }

    pub(crate) fn heartbeat_timeout(&self) -> Duration {
        Duration::from_millis(self.heartbeat_timeout_ms)
    }
}

/// An origin as browsers send it: `scheme://host[:port]`, nothing after the authority.
fn is_origin(text: &str) -> bool {
    let Some((scheme, authority)) = text.split_once("://") else {
        return false;
    };
    !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        && !authority.is_empty()
        && !authority.contains(['/', '?', '#', ' '])
        && text.is_ascii()
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
        // Read apart so that its errors keep their type (`ConfigError::Lsp`).
        let lsp = match table.remove("lsp") {
            None => None,
            Some(toml::Value::Table(lsp)) => Some(crate::lsp::LspSettings::from_table(lsp)?),
            Some(_) => {
                return Err(crate::lsp::LspConfigError::WrongType {
                    key: "lsp".to_owned(),
                    expected: "a table ([lsp])",
                }
                .into());
            }
        };
        let mut settings: ServerSettings = toml::Value::Table(table)
            .try_into()
            .map_err(ConfigError::Parse)?;
        if let Some(lsp) = lsp {
            settings.lsp = lsp;
        }
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
    fn transport_limits_are_read_and_checked() {
        let cfg = FileConfig::parse(
            "header-read-timeout-ms = 2000\nidle-keepalive-timeout-ms = 1000\n\
             max-half-open = 64\nmax-handshaking-per-address = 4\n\
             allowed-origins = [\"https://console.example\", \"http://localhost:8080\"]\n",
        )
        .unwrap();
        assert_eq!(cfg.settings.header_read_timeout_ms, 2000);
        assert_eq!(cfg.settings.idle_keepalive_timeout_ms, 1000);
        assert_eq!(cfg.settings.max_half_open, 64);
        assert_eq!(cfg.settings.max_handshaking_per_address, 4);
        assert!(cfg.settings.allows_origin(b"http://localhost:8080"));
        assert!(!cfg.settings.allows_origin(b"http://localhost:8081"));
        let defaults = ServerSettings::default();
        assert!(defaults.header_read_timeout_ms <= 10_000);
        assert!(defaults.idle_keepalive_timeout_ms <= 10_000);
        assert!(!defaults.allows_origin(b"http://localhost"));
        for (text, key) in [
            ("header-read-timeout-ms = 0", "header-read-timeout-ms"),
            ("idle-keepalive-timeout-ms = 0", "idle-keepalive-timeout-ms"),
            ("max-half-open = 0", "max-half-open"),
            (
                "max-handshaking-per-address = 0",
                "max-handshaking-per-address",
            ),
            (
                "allowed-origins = [\"https://a.example/\"]",
                "allowed-origins",
            ),
            ("allowed-origins = [\"a.example\"]", "allowed-origins"),
            ("allowed-origins = [\"*\"]", "allowed-origins"),
        ] {
            let err = FileConfig::parse(text).unwrap_err();
            assert!(matches!(err, ConfigError::Invalid(_)), "{text}: {err:?}");
            assert!(err.to_string().contains(key), "{text}: {err}");
        }
    }

    #[test]
    fn inconsistent_limits_are_refused() {
        let err = FileConfig::parse("heartbeat-interval-ms = 100\nheartbeat-timeout-ms = 50\n")
            .unwrap_err();
        assert!(err.to_string().contains("heartbeat-timeout-ms"), "{err}");
        assert!(FileConfig::parse("max-frame-bytes = 16\n").is_err());
        assert!(FileConfig::parse("max-connections = 0\n").is_err());
        let err = FileConfig::parse("drop-report-interval-ms = 0\n").unwrap_err();
        assert!(err.to_string().contains("drop-report-interval-ms"), "{err}");
        let cfg = FileConfig::parse("drop-report-interval-ms = 250\n").unwrap();
        assert_eq!(cfg.settings.drop_report_interval_ms, 250);
    }

    #[test]
    fn dialect_keys_parse_and_zero_waits_are_refused() {
        let defaults = ServerSettings::default();
        assert_eq!(
            (
                defaults.dialect_detect_ms,
                defaults.uidport_close_grace_ms,
                defaults.callback_timeout_ms
            ),
            (300, 2500, 30_000)
        );
        let cfg = FileConfig::parse(
            "dialect-detect-ms = 50\nuidport-close-grace-ms = 0\ncallback-timeout-ms = 900\n\
             sente-lite-wrap-recv = true\n",
        )
        .unwrap();
        let s = &cfg.settings;
        assert_eq!(
            (
                s.dialect_detect_ms,
                s.uidport_close_grace_ms,
                s.callback_timeout_ms
            ),
            (50, 0, 900)
        );
        assert!(s.sente_lite_wrap_recv && !defaults.sente_lite_wrap_recv);
        for key in ["dialect-detect-ms", "callback-timeout-ms"] {
            let err = FileConfig::parse(&format!("{key} = 0\n")).unwrap_err();
            assert!(err.to_string().contains(key), "{key}: {err}");
        }
    }

    #[test]
    fn policy_keys_parse_and_bad_values_are_named() {
        let cfg = FileConfig::parse(
            "relay-enabled = true\nrelay-events = [\"nrepl/*\", \"test/count\"]\n\
             duplicate-client-id = \"replace\"\nmax-client-id-bytes = 32\n\
             max-firmware-bytes = 16\nmax-event-tasks-per-conn = 4\n",
        )
        .unwrap();
        let s = &cfg.settings;
        assert_eq!(s.duplicate_client_id, DuplicateClientId::Replace);
        assert_eq!(
            (
                s.max_client_id_bytes,
                s.max_firmware_bytes,
                s.max_event_tasks_per_conn
            ),
            (32, 16, 4)
        );
        assert!(s.relay_allows("nrepl/eval"));
        assert!(s.relay_allows("test/count"));
        assert!(!s.relay_allows("test/count2"));
        assert!(!s.relay_allows("lsp/hover"));
        let off = ServerSettings {
            relay_events: vec!["*".into()],
            ..ServerSettings::default()
        };
        assert!(!off.relay_allows("x/y"), "relay is off unless enabled");

        for (text, key) in [
            ("duplicate-client-id = \"maybe\"\n", "maybe"),
            ("relay-events = [\"a*b\"]\n", "relay-events"),
            ("relay-events = [\"\"]\n", "relay-events"),
            ("max-client-id-bytes = 0\n", "max-client-id-bytes"),
            ("max-firmware-bytes = 0\n", "max-firmware-bytes"),
            ("max-event-tasks-per-conn = 0\n", "max-event-tasks-per-conn"),
            ("max-pending = 1000\n", "max-pending"),
        ] {
            let err = FileConfig::parse(text).unwrap_err();
            assert!(err.to_string().contains(key), "{text}: {err}");
        }
    }
}
