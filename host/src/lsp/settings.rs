//! The `[lsp]` table of the server's settings file: who may use language servers, and one
//! table per language saying which program to run.
//!
//! ```toml
//! [lsp]
//! allowed-clients = ["editor-*"]
//!
//! [lsp.python]
//! command = "pylsp"
//! args = []
//! root = "/srv/project"        # optional: the directory a client's virtual root maps to
//! max-sessions = 4             # optional
//! session-timeout-ms = 60000   # optional: reconnect grace
//! enabled = true               # optional
//! save-to-disk = false         # optional: write didSave text under `root`
//! ```
//!
//! A table's keys are fixed at the top (`allowed-clients`, `max-message-bytes`); every other
//! key must be a language table. Unknown keys are refused as everywhere in the file.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize};

/// Why the `[lsp]` table cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LspConfigError {
    /// A top-level key of `[lsp]` that is neither a setting nor a language table.
    #[error("lsp.{0}: not a setting; a language needs a table ([lsp.{0}])")]
    NotALanguageTable(String),
    /// A setting has the wrong type.
    #[error("lsp.{key}: {expected}")]
    WrongType {
        /// The key.
        key: String,
        /// What it must be.
        expected: &'static str,
    },
    /// A language table has an unknown key or a value of the wrong type.
    #[error("lsp.{language}: {message}")]
    BadLanguage {
        /// The language.
        language: String,
        /// What is wrong.
        message: String,
    },
    /// A language without a program.
    #[error("lsp.{0}.command must not be empty")]
    EmptyCommand(String),
    /// `max-sessions = 0`.
    #[error("lsp.{0}.max-sessions must be at least 1")]
    NoSessions(String),
    /// `session-timeout-ms = 0`.
    #[error("lsp.{0}.session-timeout-ms must be above 0")]
    NoGrace(String),
    /// `root` is not an absolute path.
    #[error("lsp.{0}.root must be an absolute path")]
    RelativeRoot(String),
    /// `save-to-disk` without a `root` to write under.
    #[error("lsp.{0}.save-to-disk needs a root")]
    SaveWithoutRoot(String),
    /// A language name that cannot be a table key the clients send back.
    #[error("lsp.{0}: a language name is letters, digits, `-`, `_` or `.`")]
    BadLanguageName(String),
    /// `max-message-bytes` out of range.
    #[error("lsp.max-message-bytes must be within 1 KiB and 1 GiB")]
    MessageLimit,
    /// An `allowed-clients` entry with `*` anywhere but at its end.
    #[error("lsp.allowed-clients entry {0:?} must be a client id, or a prefix ending in `*`")]
    BadPattern(String),
}

/// One language's server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct LanguageConfig {
    /// The program, looked up on `PATH` unless it has a slash.
    pub command: String,
    /// Its arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// The directory the server works in. A client's `rootUri` (say `source://`) is then a
    /// virtual root mapped onto it in every URI both ways; without it the client's `rootUri`
    /// must be a `file://` URI and is used as it is.
    #[serde(default)]
    pub root: Option<PathBuf>,
    /// Most sessions (server processes) of this language at once.
    #[serde(default = "default_max_sessions")]
    pub max_sessions: usize,
    /// How long a session's server process outlives its client's connection (the reconnect
    /// grace); after it the server is sent `shutdown` and `exit`.
    #[serde(default = "default_session_timeout_ms")]
    pub session_timeout_ms: u64,
    /// `false` refuses new sessions of this language.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Writes the text of a `textDocument/didSave` (when the client includes it) to the
    /// file under `root`.
    #[serde(default)]
    pub save_to_disk: bool,
}

fn default_max_sessions() -> usize {
    4
}

fn default_session_timeout_ms() -> u64 {
    60_000
}

fn default_true() -> bool {
    true
}

impl LanguageConfig {
    /// A configuration running `command` with the defaults.
    pub fn new(command: impl Into<String>) -> Self {
        Self {
            command: command.into(),
            args: Vec::new(),
            root: None,
            max_sessions: default_max_sessions(),
            session_timeout_ms: default_session_timeout_ms(),
            enabled: true,
            save_to_disk: false,
        }
    }

    /// The reconnect grace.
    pub fn session_timeout(&self) -> Duration {
        Duration::from_millis(self.session_timeout_ms)
    }

    fn validate(&self, language: &str) -> Result<(), LspConfigError> {
        let language = || language.to_owned();
        if self.command.trim().is_empty() {
            return Err(LspConfigError::EmptyCommand(language()));
        }
        if self.max_sessions == 0 {
            return Err(LspConfigError::NoSessions(language()));
        }
        if self.session_timeout_ms == 0 {
            return Err(LspConfigError::NoGrace(language()));
        }
        if self.root.as_ref().is_some_and(|r| !r.is_absolute()) {
            return Err(LspConfigError::RelativeRoot(language()));
        }
        if self.save_to_disk && self.root.is_none() {
            return Err(LspConfigError::SaveWithoutRoot(language()));
        }
        Ok(())
    }
}

/// The `[lsp]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LspSettings {
    /// Client ids that may start or join sessions: exact ids, or prefixes ending in `*`
    /// (`"*"` admits every client that passed the server's token). Empty: nobody.
    pub allowed_clients: Vec<String>,
    /// Largest message accepted from a language server's stdout.
    pub max_message_bytes: usize,
    /// The languages, by the name clients send in `lsp/initialize`.
    pub languages: BTreeMap<String, LanguageConfig>,
}

impl Default for LspSettings {
    fn default() -> Self {
        Self {
            allowed_clients: Vec::new(),
            max_message_bytes: 64 * 1024 * 1024,
            languages: BTreeMap::new(),
        }
    }
}

impl LspSettings {
    /// Checks every value.
    pub fn validate(&self) -> Result<(), LspConfigError> {
        if !(1024..=1024 * 1024 * 1024).contains(&self.max_message_bytes) {
            return Err(LspConfigError::MessageLimit);
        }
        for entry in &self.allowed_clients {
            let name = entry.strip_suffix('*').unwrap_or(entry);
            if entry.is_empty() || name.contains('*') {
                return Err(LspConfigError::BadPattern(entry.clone()));
            }
        }
        for (language, config) in &self.languages {
            if language.is_empty()
                || !language
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                return Err(LspConfigError::BadLanguageName(language.clone()));
            }
            config.validate(language)?;
        }
        Ok(())
    }

    /// Whether `client_id` may use language servers.
    pub fn allows(&self, client_id: &str) -> bool {
        self.allowed_clients
            .iter()
            .any(|entry| match entry.strip_suffix('*') {
                Some(prefix) => client_id.starts_with(prefix),
                None => client_id == entry,
            })
    }

    /// Reads the table: the fixed keys, then every other key as a language table.
    pub fn from_table(table: toml::Table) -> Result<Self, LspConfigError> {
        let mut settings = Self::default();
        for (key, value) in table {
            match key.as_str() {
                "allowed-clients" => {
                    settings.allowed_clients =
                        value.try_into().map_err(|_| LspConfigError::WrongType {
                            key,
                            expected: "a list of client ids",
                        })?;
                }
                "max-message-bytes" => {
                    let n = value.as_integer().ok_or(LspConfigError::WrongType {
                        key,
                        expected: "a number of bytes",
                    })?;
                    settings.max_message_bytes =
                        usize::try_from(n).map_err(|_| LspConfigError::MessageLimit)?;
                }
                _ if value.is_table() => {
                    let config: LanguageConfig =
                        value.try_into().map_err(|e: toml::de::Error| {
                            LspConfigError::BadLanguage {
                                language: key.clone(),
                                message: e.message().to_owned(),
                            }
                        })?;
                    settings.languages.insert(key, config);
                }
                _ => return Err(LspConfigError::NotALanguageTable(key)),
            }
        }
        settings.validate()?;
        Ok(settings)
    }
}

impl<'de> Deserialize<'de> for LspSettings {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let table = toml::Table::deserialize(deserializer)?;
        Self::from_table(table).map_err(serde::de::Error::custom)
    }
}

impl Serialize for LspSettings {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2 + self.languages.len()))?;
        map.serialize_entry("allowed-clients", &self.allowed_clients)?;
        map.serialize_entry("max-message-bytes", &self.max_message_bytes)?;
        for (language, config) in &self.languages {
            map.serialize_entry(language, config)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<LspSettings, LspConfigError> {
        LspSettings::from_table(toml::from_str(text).expect("TOML"))
    }

    #[test]
    fn languages_are_tables_with_defaults() {
        let s = parse(
            "allowed-clients = [\"editor-*\"]\n[python]\ncommand = \"pylsp\"\n\
             [rust]\ncommand = \"rust-analyzer\"\nmax-sessions = 2\nenabled = false\n",
        )
        .unwrap();
        assert_eq!(s.languages["python"], LanguageConfig::new("pylsp"));
        assert_eq!(s.languages["rust"].max_sessions, 2);
        assert!(!s.languages["rust"].enabled);
        assert!(s.allows("editor-7") && !s.allows("device-1"));
    }

    #[test]
    fn bad_tables_are_typed_errors() {
        assert_eq!(
            parse("python = \"pylsp\""),
            Err(LspConfigError::NotALanguageTable("python".into()))
        );
        assert_eq!(
            parse("[py]\ncommand = \"\""),
            Err(LspConfigError::EmptyCommand("py".into()))
        );
        assert_eq!(
            parse("[py]\ncommand = \"pylsp\"\nmax-sessions = 0"),
            Err(LspConfigError::NoSessions("py".into()))
        );
        assert_eq!(
            parse("[py]\ncommand = \"pylsp\"\nroot = \"rel\""),
            Err(LspConfigError::RelativeRoot("py".into()))
        );
        assert_eq!(
            parse("[py]\ncommand = \"pylsp\"\nsave-to-disk = true"),
            Err(LspConfigError::SaveWithoutRoot("py".into()))
        );
        assert!(matches!(
            parse("[py]\ncommand = \"pylsp\"\ncomand = \"x\""),
            Err(LspConfigError::BadLanguage { .. })
        ));
        assert!(matches!(
            parse("allowed-clients = \"*\""),
            Err(LspConfigError::WrongType { .. })
        ));
        assert_eq!(
            parse("allowed-clients = [\"a*b\"]"),
            Err(LspConfigError::BadPattern("a*b".into()))
        );
    }
}
