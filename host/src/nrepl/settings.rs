//! The `[nrepl]` table of the server's settings file: the endpoint's limits for users of the
//! `sentelite` binary, who cannot build [`NreplOptions`] themselves. Where the endpoint
//! listens and its upstream stay command-line flags (`--nrepl`, `--nrepl-upstream`).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::NreplOptions;
use crate::error::ConfigError;

/// The endpoint's limits; every key defaults to [`NreplOptions::new`]'s value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct NreplSettings {
    /// Largest bencode message an editor may send; a larger one closes its connection.
    pub max_message_bytes: usize,
    /// How long a forwarded request may take unless it carries its own `eval-timeout`.
    pub eval_timeout_ms: u64,
    /// Sessions with nothing in flight for this long are closed.
    pub session_ttl_ms: u64,
    /// Evaluations one session may have in flight.
    pub max_evals_per_session: usize,
    /// Sessions kept at once, of every editor.
    pub max_sessions: usize,
    /// Editor connections at once.
    pub max_connections: usize,
    /// `out` and `err` bytes one request may produce unless it says otherwise.
    pub max_output_bytes: usize,
    /// Where the port is written for editors to find; `""` writes no file.
    pub port_file: String,
}

impl Default for NreplSettings {
    fn default() -> Self {
        let options = NreplOptions::new(([127, 0, 0, 1], 0).into());
        Self {
            max_message_bytes: options.max_message_bytes,
            eval_timeout_ms: millis(options.eval_timeout),
            session_ttl_ms: millis(options.session_ttl),
            max_evals_per_session: options.max_evals_per_session,
            max_sessions: options.max_sessions,
            max_connections: options.max_connections,
            max_output_bytes: options.max_output_bytes,
            port_file: options
                .port_file
                .map(|path| path.display().to_string())
                .unwrap_or_default(),
        }
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl NreplSettings {
    /// Checks the values: every limit must let at least something through.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |msg: &str| Err(ConfigError::Invalid(msg.to_owned()));
        if self.max_message_bytes < 1024 {
            return invalid("nrepl.max-message-bytes must be at least 1024");
        }
        if self.eval_timeout_ms == 0 {
            return invalid("nrepl.eval-timeout-ms must be above 0");
        }
        if self.session_ttl_ms == 0 {
            return invalid("nrepl.session-ttl-ms must be above 0");
        }
        if self.max_evals_per_session == 0 {
            return invalid("nrepl.max-evals-per-session must be at least 1");
        }
        if self.max_sessions == 0 {
            return invalid("nrepl.max-sessions must be at least 1");
        }
        if self.max_connections == 0 {
            return invalid("nrepl.max-connections must be at least 1");
        }
        Ok(())
    }

    /// Writes these limits into `options` (its address and upstream are left alone).
    pub fn apply_to(&self, options: &mut NreplOptions) {
        options.max_message_bytes = self.max_message_bytes;
        options.eval_timeout = Duration::from_millis(self.eval_timeout_ms);
        options.session_ttl = Duration::from_millis(self.session_ttl_ms);
        options.max_evals_per_session = self.max_evals_per_session;
        options.max_sessions = self.max_sessions;
        options.max_connections = self.max_connections;
        options.max_output_bytes = self.max_output_bytes;
        options.port_file = (!self.port_file.is_empty()).then(|| PathBuf::from(&self.port_file));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::FileConfig;

    #[test]
    fn the_defaults_are_the_endpoints_own() {
        let listen = ([127, 0, 0, 1], 7888).into();
        let mut applied = NreplOptions::new(listen);
        applied.max_sessions = 1;
        NreplSettings::default().apply_to(&mut applied);
        let own = NreplOptions::new(listen);
        assert_eq!(format!("{applied:?}"), format!("{own:?}"));
    }

    #[test]
    fn every_key_reaches_the_options() {
        let file = FileConfig::parse(
            "[nrepl]\nmax-message-bytes = 4096\neval-timeout-ms = 1500\n\
             session-ttl-ms = 2500\nmax-evals-per-session = 2\nmax-sessions = 3\n\
             max-connections = 4\nmax-output-bytes = 5000\nport-file = \"\"\n",
        )
        .unwrap();
        let mut options = NreplOptions::new(([127, 0, 0, 1], 7888).into());
        options.upstream = Some("127.0.0.1:1".into());
        file.settings.nrepl.apply_to(&mut options);
        assert_eq!(options.max_message_bytes, 4096);
        assert_eq!(options.eval_timeout, Duration::from_millis(1500));
        assert_eq!(options.session_ttl, Duration::from_millis(2500));
        assert_eq!(options.max_evals_per_session, 2);
        assert_eq!(options.max_sessions, 3);
        assert_eq!(options.max_connections, 4);
        assert_eq!(options.max_output_bytes, 5000);
        assert_eq!(options.port_file, None);
        assert_eq!(options.upstream.as_deref(), Some("127.0.0.1:1"));
        assert_eq!(options.listen.port(), 7888);
    }

    #[test]
    fn unknown_keys_and_zero_limits_are_refused_by_name() {
        let unknown = FileConfig::parse("[nrepl]\nmax-session = 3\n").unwrap_err();
        assert!(unknown.to_string().contains("max-session"), "{unknown}");
        for key in [
            "eval-timeout-ms",
            "session-ttl-ms",
            "max-evals-per-session",
            "max-sessions",
            "max-connections",
        ] {
            let err = FileConfig::parse(&format!("[nrepl]\n{key} = 0\n")).unwrap_err();
            assert!(err.to_string().contains(&format!("nrepl.{key}")), "{err}");
        }
        let small = FileConfig::parse("[nrepl]\nmax-message-bytes = 10\n").unwrap_err();
        assert!(
            small.to_string().contains("nrepl.max-message-bytes"),
            "{small}"
        );
    }
}
