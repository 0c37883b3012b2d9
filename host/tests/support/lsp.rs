//! Language-server tests: a text-dialect editor speaking the `lsp/*` events, a server with
//! an `[lsp]` table, and the check for the real language servers these tests need.
#![allow(dead_code)]

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use sentelite_host::lsp::{LanguageConfig, LspService, LspSettings};
use sentelite_host::translate::{cbor_to_edn, json_to_cbor_keyword_keys};
use sentelite_host::{Server, ServerSettings};
use serde_json::{Value, json};

use super::text::{Heard, TextPeer, edn};
use super::{TempDir, quick_settings, start_with};

/// True when `program` runs; otherwise a loud skip, or a failure under
/// `SENTELITE_REQUIRE_PEERS=1`.
pub fn have(program: &str, version_arg: &str, test: &str) -> bool {
    let ok = std::process::Command::new(program)
        .arg(version_arg)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return true;
    }
    let require = std::env::var("SENTELITE_REQUIRE_PEERS").is_ok_and(|v| v == "1");
    assert!(
        !require,
        "{test}: {program} is missing and SENTELITE_REQUIRE_PEERS=1"
    );
    let _ = writeln!(
        std::io::stderr(),
        "\n*** SKIPPED {test}: {program} is missing (pip install python-lsp-server pyflakes / \
         rustup component add rust-analyzer); set SENTELITE_REQUIRE_PEERS=1 to fail instead ***\n"
    );
    false
}

/// A server whose `[lsp]` table has `languages`, every client allowed.
pub async fn lsp_server(languages: &[(&str, LanguageConfig)]) -> (Server, TempDir, LspService) {
    let mut lsp = LspSettings {
        allowed_clients: vec!["*".to_owned()],
        ..LspSettings::default()
    };
    for (name, config) in languages {
        lsp.languages.insert((*name).to_owned(), config.clone());
    }
    lsp_server_with(lsp).await
}

/// A server with this `[lsp]` table.
pub async fn lsp_server_with(lsp: LspSettings) -> (Server, TempDir, LspService) {
    let settings = ServerSettings {
        max_frame_bytes: 8 * 1024 * 1024,
        lsp: lsp.clone(),
        ..quick_settings()
    };
    let service = LspService::new(lsp).expect("valid lsp settings");
    let (server, dir) =
        start_with(Server::builder().config(settings).with_lsp(service.clone())).await;
    (server, dir, service)
}

/// Which text dialect an editor speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Json,
    SenteLite,
}

/// An editor on `/ws`, printing every exchange (visible with `--nocapture`).
pub struct Editor {
    peer: TextPeer,
    dialect: Dialect,
    /// Raw texts received, for failure messages.
    pub heard: Vec<String>,
    /// Methods of the server's requests answered by [`Self::expect`] along the way.
    pub answered: Vec<String>,
}

impl Editor {
    pub async fn connect(server: &Server, dialect: Dialect) -> Self {
        let query = match dialect {
            Dialect::Json => "?dialect=json",
            Dialect::SenteLite => "?dialect=sente-lite",
        };
        let mut peer = TextPeer::connect(server.local_addr(), query).await;
        let handshake = peer.text().await;
        assert!(handshake.contains("chsk/handshake"), "{handshake}");
        Self {
            peer,
            dialect,
            heard: Vec::new(),
            answered: Vec::new(),
        }
    }

    /// Sends `[event body]` in the editor's dialect.
    pub async fn send(&mut self, event: &str, body: Value) {
        let text = match self.dialect {
            Dialect::Json => json!([event, body]).to_string(),
            Dialect::SenteLite => format!(
                "[:{event} {}]",
                cbor_to_edn(&json_to_cbor_keyword_keys(&body)).expect("EDN")
            ),
        };
        println!(">> {}", clip(&text));
        self.peer.send(&text).await;
    }

    /// The diagnostics of the next non-empty `publishDiagnostics` for `uri` within `limit`
    /// (a close publishes an empty list first, which is skipped).
    pub async fn diagnostics(&mut self, limit: Duration, uri: &str) -> Vec<Value> {
        let body = self
            .expect(limit, "diagnostics", |event, body| {
                event == "lsp/notification"
                    && body["method"] == "textDocument/publishDiagnostics"
                    && body["params"]["uri"] == uri
                    && body["params"]["diagnostics"]
                        .as_array()
                        .is_some_and(|d| !d.is_empty())
            })
            .await;
        body["params"]["diagnostics"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The next `[event body]` for which `keep` is true, within `limit`; others are skipped.
    pub async fn expect(
        &mut self,
        limit: Duration,
        what: &str,
        mut keep: impl FnMut(&str, &Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let heard = self.peer.hear_within(left).await;
            let Some(Heard::Text(text)) = heard else {
                panic!(
                    "waiting for {what}: got {heard:?}; heard before:\n{}",
                    self.heard.join("\n")
                );
            };
            let value = match self.dialect {
                Dialect::Json => serde_json::from_str::<Value>(&text).expect("JSON"),
                Dialect::SenteLite => edn(&text),
            };
            self.heard.push(clip(&text));
            let event = value[0].as_str().unwrap_or("").to_owned();
            if event == "chsk/ws-ping" {
                continue;
            }
            println!("<< {}", clip(&text));
            let body = &value[1];
            if keep(&event, body) {
                return body.clone();
            }
            if event == "lsp/request" {
                // An editor answers every server request, or the server stalls.
                let method = body["method"].as_str().unwrap_or("").to_owned();
                let result = match method.as_str() {
                    "workspace/configuration" => {
                        let n = body["params"]["items"].as_array().map_or(0, Vec::len);
                        Value::Array(vec![Value::Null; n])
                    }
                    _ => Value::Null,
                };
                let answer = json!({"session-id": body["session-id"], "request-id": body["request-id"], "result": result});
                self.answered.push(method);
                self.send("lsp/response", answer).await;
            }
        }
    }

    /// Starts a session and returns the `lsp/response` to `lsp/initialize`.
    pub async fn initialize(&mut self, session: &str, language: &str, root: Option<&str>) -> Value {
        let mut body = json!({
            "session-id": session,
            "language": language,
            "capabilities": {"textDocument": {"hover": {"contentFormat": ["markdown", "plaintext"]}}},
        });
        if let Some(root) = root {
            body["rootUri"] = json!(root);
        }
        self.send("lsp/initialize", body).await;
        self.expect(
            Duration::from_secs(60),
            "the initialize answer",
            |event, body| {
                event == "lsp/error" || (event == "lsp/response" && body["method"] == "initialize")
            },
        )
        .await
    }

    pub async fn request(&mut self, session: &str, id: Value, method: &str, params: Value) {
        self.send(
            "lsp/request",
            json!({"session-id": session, "request-id": id, "method": method, "params": params}),
        )
        .await;
    }

    pub async fn notify(&mut self, session: &str, method: &str, params: Value) {
        self.send(
            "lsp/notification",
            json!({"session-id": session, "method": method, "params": params}),
        )
        .await;
    }

    /// The `lsp/response` to request `id`.
    pub async fn response(&mut self, limit: Duration, id: &Value) -> Value {
        let id = id.clone();
        self.expect(limit, &format!("the response to {id}"), |event, body| {
            event == "lsp/response" && body["request-id"] == id
        })
        .await
    }

    pub async fn close(self) {
        self.peer.close().await;
    }
}

/// A long message shortened for the log.
pub fn clip(text: &str) -> String {
    if text.len() <= 400 || std::env::var_os("LSP_TEST_FULL").is_some() {
        return text.to_owned();
    }
    let mut end = 400;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &text[..end], text.len())
}

/// Whether process `pid` still exists (a zombie counts: only a reaped process is gone).
pub fn process_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Waits up to `limit` for `check`.
pub async fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    check()
}
