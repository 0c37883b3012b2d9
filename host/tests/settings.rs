//! Server settings: each refused value is refused with its own message, the limits sit exactly
//! where the documentation puts them, and `Server::builder` refuses what the file parser
//! refuses before it binds anything.

use sentelite_host::settings::MIN_FRAME_BYTES;
use sentelite_host::{ConfigError, FileConfig, Server, ServerError, ServerSettings};

/// The message of an `Invalid` error; any other variant fails the test.
fn invalid(result: Result<FileConfig, ConfigError>) -> String {
    match result {
        Err(ConfigError::Invalid(message)) => message,
        other => panic!("expected ConfigError::Invalid, got {other:?}"),
    }
}

#[test]
fn each_zero_limit_is_refused_by_name() {
    for (text, message) in [
        ("max-connections = 0", "max-connections must be at least 1"),
        ("max-handshaking = 0", "max-handshaking must be at least 1"),
        (
            "handshake-timeout-ms = 0",
            "handshake-timeout-ms must be above 0",
        ),
        ("max-pending = 0", "max-pending must be at least 1"),
        (
            "max-channel-name-bytes = 0",
            "max-channel-name-bytes must be at least 1",
        ),
        (
            "connection-queue = 0",
            "connection-queue must be at least 1",
        ),
        (
            "read-buffer-bytes = 0",
            "read-buffer-bytes must be at least 1",
        ),
        ("write-timeout-ms = 0", "write-timeout-ms must be above 0"),
    ] {
        assert_eq!(invalid(FileConfig::parse(text)), message, "{text}");
        // One more than the refused value is fine.
        let fixed = text.replace("= 0", "= 1");
        FileConfig::parse(&fixed).unwrap_or_else(|e| panic!("{fixed}: {e}"));
    }
    assert_eq!(
        invalid(FileConfig::parse(
            "heartbeat-interval-ms = 0\nheartbeat-timeout-ms = 10"
        )),
        "heartbeat-interval-ms must be above 0"
    );
}

#[test]
fn the_heartbeat_timeout_must_exceed_the_interval() {
    let message = "heartbeat-timeout-ms must exceed heartbeat-interval-ms";
    let parse = |interval: u64, timeout: u64| {
        FileConfig::parse(&format!(
            "heartbeat-interval-ms = {interval}\nheartbeat-timeout-ms = {timeout}\n"
        ))
    };
    assert_eq!(invalid(parse(100, 50)), message);
    assert_eq!(invalid(parse(100, 100)), message, "equal is not enough");
    let ok = parse(100, 101).expect("one millisecond more is enough");
    assert_eq!(
        (
            ok.settings.heartbeat_interval_ms,
            ok.settings.heartbeat_timeout_ms
        ),
        (100, 101)
    );
}

#[test]
fn timeouts_beyond_32_bits_are_refused() {
    // The Welcome carries the timeout as a u32 of milliseconds.
    let max = u64::from(u32::MAX);
    let ok = FileConfig::parse(&format!("heartbeat-timeout-ms = {max}\n")).unwrap();
    assert_eq!(ok.settings.heartbeat_timeout_ms, max);
    assert_eq!(
        invalid(FileConfig::parse(&format!(
            "heartbeat-timeout-ms = {}\n",
            max + 1
        ))),
        "heartbeat-timeout-ms must fit in 32 bits"
    );
    // A frame limit above u32::MAX does not even parse into its u32 field.
    match FileConfig::parse(&format!("max-frame-bytes = {}\n", max + 1)) {
        Err(ConfigError::Parse(e)) => {
            assert!(e.to_string().contains("max-frame-bytes"), "{e}")
        }
        other => panic!("expected a parse error, got {other:?}"),
    }
}

#[test]
fn the_frame_limit_has_a_floor() {
    let at = FileConfig::parse(&format!("max-frame-bytes = {MIN_FRAME_BYTES}\n")).unwrap();
    assert_eq!(at.settings.max_frame_bytes, MIN_FRAME_BYTES);
    assert_eq!(at.settings.session_config().max_frame, MIN_FRAME_BYTES);
    assert_eq!(
        invalid(FileConfig::parse(&format!(
            "max-frame-bytes = {}\n",
            MIN_FRAME_BYTES - 1
        ))),
        format!("max-frame-bytes must be at least {MIN_FRAME_BYTES}")
    );
}

#[test]
fn wrong_types_and_unknown_keys_are_parse_errors_naming_the_key() {
    for (text, key) in [
        ("max-conections = 3\n", "max-conections"),
        ("max-connections = \"many\"\n", "max-connections"),
        ("max-pending = 70000\n", "max-pending"),
    ] {
        match FileConfig::parse(text) {
            Err(ConfigError::Parse(e)) => assert!(e.to_string().contains(key), "{text}: {e}"),
            other => panic!("{text}: expected a parse error, got {other:?}"),
        }
    }
    assert_eq!(
        invalid(FileConfig::parse("listen = 7700\n")),
        "`listen` must be a string, found integer"
    );
}

#[test]
fn a_file_error_names_the_file() {
    let dir = std::env::temp_dir().join(format!("sentelite-settings-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.toml");
    std::fs::write(&path, "max-connections = 0\n").unwrap();
    let err = FileConfig::load(&path).unwrap_err();
    std::fs::remove_dir_all(&dir).unwrap();
    match &err {
        ConfigError::InFile { path: p, source } => {
            assert_eq!(p, &path);
            assert!(
                matches!(&**source, ConfigError::Invalid(m) if m == "max-connections must be at least 1"),
                "{source:?}"
            );
        }
        other => panic!("expected InFile, got {other:?}"),
    }
    assert!(err.to_string().starts_with(&path.display().to_string()));
    match FileConfig::load(&dir.join("missing.toml")) {
        Err(ConfigError::Io { path: p, .. }) => assert_eq!(p, dir.join("missing.toml")),
        other => panic!("expected an Io error, got {other:?}"),
    }
}

#[tokio::test]
async fn the_builder_refuses_invalid_settings_before_binding() {
    let data_dir = std::env::temp_dir().join(format!("sentelite-builder-{}", std::process::id()));
    let settings = ServerSettings {
        heartbeat_interval_ms: 1000,
        heartbeat_timeout_ms: 1000,
        ..ServerSettings::default()
    };
    let result = Server::builder()
        .listen("127.0.0.1:0")
        .data_dir(&data_dir)
        .config(settings)
        .bind()
        .await;
    match result {
        Err(ServerError::Config(ConfigError::Invalid(message))) => assert_eq!(
            message,
            "heartbeat-timeout-ms must exceed heartbeat-interval-ms"
        ),
        Err(other) => panic!("expected a config error, got {other:?}"),
        Ok(_) => panic!("a server started with a timeout equal to its interval"),
    }
    assert!(
        !data_dir.exists(),
        "nothing is created for refused settings"
    );

    let settings = ServerSettings {
        max_frame_bytes: MIN_FRAME_BYTES - 1,
        ..ServerSettings::default()
    };
    let result = Server::builder()
        .listen("127.0.0.1:0")
        .data_dir(&data_dir)
        .config(settings)
        .bind()
        .await;
    assert!(
        matches!(result, Err(ServerError::Config(ConfigError::Invalid(ref m))) if m.starts_with("max-frame-bytes")),
        "{:?}",
        result.as_ref().err()
    );

    // The same builder with valid settings binds.
    let server = Server::builder()
        .listen("127.0.0.1:0")
        .data_dir(&data_dir)
        .config(ServerSettings::default())
        .bind()
        .await
        .expect("valid settings bind");
    assert!(server.local_addr().ip().is_loopback());
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&data_dir);
}

#[test]
fn lsp_tables_are_read_from_the_file_with_typed_errors() {
    use sentelite_host::ConfigError;
    use sentelite_host::lsp::LspConfigError;
    let file = sentelite_host::FileConfig::parse(
        "[lsp]\nallowed-clients = [\"*\"]\n[lsp.python]\ncommand = \"pylsp\"\nsession-timeout-ms = 5000\n",
    )
    .expect("valid");
    let python = &file.settings.lsp.languages["python"];
    assert_eq!(python.command, "pylsp");
    assert_eq!(python.session_timeout_ms, 5000);
    assert_eq!(python.max_sessions, 4);
    assert!(file.settings.lsp.allows("anyone"));
    let bad = |text: &str| match sentelite_host::FileConfig::parse(text) {
        Err(ConfigError::Lsp(e)) => e,
        other => panic!("{text}: {other:?}"),
    };
    assert_eq!(
        bad("[lsp.python]\nmax-sessions = 0\ncommand = \"pylsp\""),
        LspConfigError::NoSessions("python".into())
    );
    assert_eq!(
        bad("[lsp]\npython = \"pylsp\""),
        LspConfigError::NotALanguageTable("python".into())
    );
    assert!(matches!(
        bad("[lsp.python]\ncommand = \"pylsp\"\nargz = []"),
        LspConfigError::BadLanguage { .. }
    ));
    assert!(matches!(bad("lsp = 1"), LspConfigError::WrongType { .. }));
    assert_eq!(
        bad("[lsp.python]\ncommand = \"pylsp\"\nmax-sessions = 0").to_string(),
        "lsp.python.max-sessions must be at least 1"
    );
}
