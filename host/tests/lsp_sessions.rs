//! The host's side of LSP sessions, checked against a scriptable language server
//! (`tests/lsp/recording_server.py`, needs python3) that records every message it reads:
//! id spaces, `params`, URI remapping, cancel, the server's own requests with and without
//! an editor, crashes, and the limits.

mod support;

use std::path::Path;
use std::time::Duration;

use sentelite_host::lsp::{LanguageConfig, LspSettings};
use serde_json::{Value, json};
use support::TempDir;
use support::lsp::{
    Dialect, Editor, eventually, have, lsp_server, lsp_server_with, process_exists,
};

const LIMIT: Duration = Duration::from_secs(20);

fn recording(root: &TempDir) -> LanguageConfig {
    std::fs::create_dir_all(&root.0).unwrap();
    LanguageConfig {
        args: vec![
            concat!(env!("CARGO_MANIFEST_DIR"), "/tests/lsp/recording_server.py").to_owned(),
        ],
        root: Some(root.0.clone()),
        session_timeout_ms: 1500,
        ..LanguageConfig::new("python3")
    }
}

/// The JSON lines the recording server wrote to `file` so far.
fn lines(root: &TempDir, file: &str) -> Vec<Value> {
    std::fs::read_to_string(root.0.join(file))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

fn python(test: &str) -> bool {
    have("python3", "--version", test)
}

#[tokio::test]
async fn ids_keep_their_types_uris_map_both_ways_and_params_null_is_never_sent() {
    if !python("ids_keep_their_types") {
        return;
    }
    let root = TempDir::new("rec-ids");
    let (server, _dir, _lsp) = lsp_server(&[("rec", recording(&root))]).await;
    let mut editor = Editor::connect(&server, Dialect::Json).await;
    let init = editor.initialize("s", "rec", Some("source://")).await;
    assert_eq!(init["result"]["serverInfo"]["name"], "recording", "{init}");
    // The editor's own `initialized` is not passed on: the host sent one already.
    editor.notify("s", "initialized", json!({})).await;

    let file_root = url::Url::from_directory_path(&root.0).unwrap().to_string();
    let params = json!({"textDocument": {"uri": "source://a.py"}, "text": "source://kept", "edit": {"changes": {"source://b.py": []}}});
    editor
        .request("s", json!("id-a"), "test/echo", params.clone())
        .await;
    editor
        .request("s", json!(5), "test/echo", params.clone())
        .await;
    editor
        .request("s", json!(6), "test/echo", Value::Null)
        .await;
    let a = editor.response(LIMIT, &json!("id-a")).await;
    let five = editor.response(LIMIT, &json!(5)).await;
    let six = editor.response(LIMIT, &json!(6)).await;
    assert_eq!(a["result"], params, "mapped back to the client's root: {a}");
    assert_eq!(five["result"], params);
    assert_eq!(six["result"], Value::Null, "{six}");

    let seen = lines(&root, "messages.jsonl");
    let echoes: Vec<&Value> = seen.iter().filter(|m| m["method"] == "test/echo").collect();
    assert_eq!(echoes.len(), 3);
    assert!(
        echoes.iter().all(|m| m["id"].is_i64()),
        "the host's own ids: {echoes:?}"
    );
    assert_eq!(
        echoes[0]["params"]["textDocument"]["uri"],
        format!("{file_root}a.py")
    );
    assert_eq!(
        echoes[0]["params"]["text"], "source://kept",
        "document text is not remapped"
    );
    assert!(
        echoes[0]["params"]["edit"]["changes"]
            .get(format!("{file_root}b.py"))
            .is_some()
    );
    assert!(
        echoes[2].get("params").is_none(),
        "no params: null: {:?}",
        echoes[2]
    );
    let init_sent = &seen[0];
    assert_eq!(init_sent["method"], "initialize");
    assert_eq!(init_sent["params"]["rootUri"], file_root);
    assert_eq!(
        seen.iter().filter(|m| m["method"] == "initialized").count(),
        1
    );
    assert!(
        seen.iter()
            .all(|m| m.get("params").is_none_or(|p| !p.is_null()))
    );
    editor.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_cancel_reaches_the_server_under_the_hosts_id() {
    if !python("a_cancel_reaches_the_server") {
        return;
    }
    let root = TempDir::new("rec-cancel");
    let (server, _dir, _lsp) = lsp_server(&[("rec", recording(&root))]).await;
    let mut editor = Editor::connect(&server, Dialect::Json).await;
    editor.initialize("s", "rec", None).await;
    editor
        .request("s", json!("slow-1"), "test/slow", json!({}))
        .await;
    editor
        .notify("s", "$/cancelRequest", json!({"id": "slow-1"}))
        .await;
    // Answered at once with the cancel error; without the id mapping it would take 5 s.
    let response = editor
        .response(Duration::from_secs(3), &json!("slow-1"))
        .await;
    assert_eq!(response["error"]["code"], -32800, "{response}");
    editor.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn server_requests_go_to_the_editor_and_are_answered_by_the_host_without_one() {
    if !python("server_requests_go_to_the_editor") {
        return;
    }
    let root = TempDir::new("rec-asks");
    let (server, _dir, lsp) = lsp_server(&[("rec", recording(&root))]).await;
    let mut editor = Editor::connect(&server, Dialect::Json).await;
    editor.initialize("s", "rec", None).await;
    let ask = |method: &str, params: Value, delay: f64| json!({"method": method, "params": params, "delay": delay});
    editor
        .notify(
            "s",
            "test/ask",
            ask("workspace/configuration", json!({"items": [{}, {}]}), 0.0),
        )
        .await;
    let request = editor
        .expect(LIMIT, "the server's request", |event, _| {
            event == "lsp/request"
        })
        .await;
    assert_eq!(
        request["request-id"], "srv-1",
        "the server's string id as it was: {request}"
    );
    assert_eq!(request["method"], "workspace/configuration");
    editor
        .send(
            "lsp/response",
            json!({"session-id": "s", "request-id": "srv-1", "result": [1, 2]}),
        )
        .await;
    assert!(eventually(LIMIT, || !lines(&root, "answers.jsonl").is_empty()).await);
    assert_eq!(
        lines(&root, "answers.jsonl")[0],
        json!({"jsonrpc": "2.0", "id": "srv-1", "result": [1, 2]})
    );

    // The editor leaves; the server's requests during the grace are answered by the host.
    for (method, params) in [
        ("workspace/configuration", json!({"items": [{}, {}, {}]})),
        ("window/workDoneProgress/create", json!({"token": "t"})),
        ("workspace/applyEdit", json!({"edit": {}})),
    ] {
        editor
            .notify("s", "test/ask", ask(method, params, 0.5))
            .await;
    }
    editor.close().await;
    assert!(eventually(LIMIT, || lines(&root, "answers.jsonl").len() == 4).await);
    let answers = lines(&root, "answers.jsonl");
    let by_id = |id: &str| answers.iter().find(|a| a["id"] == id).cloned().unwrap();
    assert_eq!(by_id("srv-2")["result"], json!([null, null, null]));
    assert_eq!(by_id("srv-3")["result"], Value::Null);
    assert!(by_id("srv-3").get("result").is_some());
    assert_eq!(by_id("srv-4")["result"]["applied"], false);
    assert!(
        eventually(LIMIT, || lsp.sessions().is_empty()).await,
        "gone after the grace"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_crashed_server_is_reported_with_its_exit_code_and_the_session_restarts() {
    if !python("a_crashed_server_is_reported") {
        return;
    }
    let root = TempDir::new("rec-crash");
    let (server, _dir, lsp) = lsp_server(&[("rec", recording(&root))]).await;
    let mut editor = Editor::connect(&server, Dialect::Json).await;
    editor.initialize("s", "rec", None).await;
    let pid = lsp.sessions()[0].pid;
    editor.request("s", json!(1), "test/slow", json!({})).await;
    editor.notify("s", "test/crash", json!({})).await;
    let pending = editor.response(LIMIT, &json!(1)).await;
    assert_eq!(
        pending["error"]["code"], -32050,
        "the request in flight fails: {pending}"
    );
    let error = editor
        .expect(LIMIT, "the crash report", |event, _| event == "lsp/error")
        .await;
    assert_eq!(error["error"], "server-exited", "{error}");
    assert_eq!(error["exit-code"], 3, "{error}");
    assert_eq!(error["session-id"], "s");
    assert!(eventually(LIMIT, || lsp.sessions().is_empty()).await);
    assert!(!process_exists(pid));

    let init = editor.initialize("s", "rec", None).await;
    assert_eq!(
        init["result"]["serverInfo"]["name"], "recording",
        "restarted: {init}"
    );
    assert_ne!(lsp.sessions()[0].pid, pid);
    editor
        .request("s", json!(2), "test/echo", json!({"x": 1}))
        .await;
    assert_eq!(
        editor.response(LIMIT, &json!(2)).await["result"],
        json!({"x": 1})
    );
    editor.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn limits_unknown_sessions_and_languages_are_typed_refusals() {
    if !python("limits_unknown_sessions") {
        return;
    }
    let root = TempDir::new("rec-limits");
    let config = LanguageConfig {
        max_sessions: 1,
        ..recording(&root)
    };
    let disabled = LanguageConfig {
        enabled: false,
        ..recording(&root)
    };
    let ghost = LanguageConfig::new("/nonexistent/language-server");
    let (server, _dir, lsp) =
        lsp_server(&[("rec", config), ("off", disabled), ("ghost", ghost)]).await;
    let mut editor = Editor::connect(&server, Dialect::Json).await;
    editor.initialize("one", "rec", None).await;
    let refused = editor.initialize("two", "rec", None).await;
    assert_eq!(refused["error"], "max-sessions", "{refused}");
    assert_eq!(refused["session-id"], "two");
    assert_eq!(lsp.sessions().len(), 1);
    assert_eq!(
        editor.initialize("x", "cobol", None).await["error"],
        "unknown-language"
    );
    assert_eq!(
        editor.initialize("y", "off", None).await["error"],
        "language-disabled"
    );
    assert_eq!(
        editor.initialize("z", "ghost", None).await["error"],
        "spawn-failed"
    );
    let bad_root = editor.initialize("w", "ghost", Some("source://")).await;
    assert_eq!(bad_root["error"], "bad-root", "{bad_root}");
    editor
        .request("nobody", json!(1), "test/echo", json!({}))
        .await;
    let error = editor
        .expect(LIMIT, "no-session", |event, _| event == "lsp/error")
        .await;
    assert_eq!(error["error"], "no-session", "{error}");
    editor
        .send("lsp/request", json!({"session-id": "one"}))
        .await;
    let error = editor
        .expect(LIMIT, "bad-payload", |event, _| event == "lsp/error")
        .await;
    assert_eq!(error["error"], "bad-payload", "{error}");
    editor.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn only_allowed_clients_may_start_sessions() {
    let root = TempDir::new("rec-allowed");
    let mut settings = LspSettings {
        allowed_clients: vec!["editor-*".to_owned()],
        ..LspSettings::default()
    };
    settings
        .languages
        .insert("rec".to_owned(), recording(&root));
    let (server, _dir, lsp) = lsp_server_with(settings).await;
    // A text client's id is its server-given uid `conn-…`, not in the list.
    let mut editor = Editor::connect(&server, Dialect::Json).await;
    let refused = editor.initialize("s", "rec", None).await;
    assert_eq!(refused["error"], "not-allowed", "{refused}");
    assert!(lsp.sessions().is_empty());
    editor.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_sente_lite_edn_client_speaks_lsp_in_keyword_maps() {
    if !python("a_sente_lite_edn_client_speaks_lsp") {
        return;
    }
    let root = TempDir::new("rec-edn");
    let (server, _dir, _lsp) = lsp_server(&[("rec", recording(&root))]).await;
    let mut editor = Editor::connect(&server, Dialect::SenteLite).await;
    let init = editor.initialize("e1", "rec", Some("source://")).await;
    assert_eq!(init["result"]["serverInfo"]["name"], "recording", "{init}");
    let raw = editor.heard.last().unwrap().clone();
    assert!(raw.starts_with("[:lsp/response {"), "{raw}");
    assert!(raw.contains(":session-id \"e1\""), "{raw}");
    assert!(raw.contains(":serverInfo {:name \"recording\"}"), "{raw}");
    editor
        .notify("e1", "test/notify", json!({"uri": "source://n.py"}))
        .await;
    let note = editor
        .expect(LIMIT, "a notification", |event, _| {
            event == "lsp/notification"
        })
        .await;
    assert_eq!(note["method"], "test/notified");
    assert_eq!(note["params"]["uri"], "source://n.py");
    let raw = editor.heard.last().unwrap();
    assert!(raw.contains(":params {:uri \"source://n.py\"}"), "{raw}");
    editor.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn did_save_text_is_written_under_the_root_and_nowhere_else() {
    if !python("did_save_text_is_written") {
        return;
    }
    let root = TempDir::new("rec-save");
    let config = LanguageConfig {
        save_to_disk: true,
        ..recording(&root)
    };
    let (server, _dir, _lsp) = lsp_server(&[("rec", config)]).await;
    let mut editor = Editor::connect(&server, Dialect::Json).await;
    editor.initialize("s", "rec", None).await;
    let escape = root
        .0
        .parent()
        .unwrap()
        .join(format!("escape-{}.py", std::process::id()));
    for (uri, text) in [
        ("source://saved.py", "x = 1\n"),
        (
            &*format!(
                "source://../{}",
                escape.file_name().unwrap().to_str().unwrap()
            ),
            "y = 2\n",
        ),
        ("source://no/such/dir.py", "z = 3\n"),
    ] {
        editor
            .notify(
                "s",
                "textDocument/didSave",
                json!({"textDocument": {"uri": uri}, "text": text}),
            )
            .await;
    }
    // The server saw all three saves, so the host has handled them.
    assert!(
        eventually(LIMIT, || lines(&root, "messages.jsonl")
            .iter()
            .filter(|m| m["method"] == "textDocument/didSave")
            .count()
            == 3)
        .await
    );
    assert_eq!(
        std::fs::read_to_string(root.0.join("saved.py")).unwrap(),
        "x = 1\n"
    );
    assert!(
        !escape.exists(),
        "written outside the root: {}",
        escape.display()
    );
    assert!(!root.0.join("no").exists());
    editor.close().await;
    server.shutdown().await;
}

/// The `lsp/error` table of PROTOCOL.md section 19.4 names exactly the host's kinds.
#[test]
fn the_protocol_documents_every_error_kind() {
    let doc = include_str!("../../docs/PROTOCOL.md");
    let section = doc.split("### 19.4 Errors").nth(1).expect("section 19.4");
    let table = section.split("JSON-RPC errors").next().unwrap();
    let mut documented: Vec<&str> = table
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .collect();
    let mut kinds: Vec<&str> = sentelite_host::lsp::LspErrorKind::ALL
        .iter()
        .map(|k| k.as_str())
        .collect();
    documented.sort_unstable();
    kinds.sort_unstable();
    assert_eq!(documented, kinds);
}

#[test]
fn the_recording_server_exists() {
    assert!(
        Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/lsp/recording_server.py"
        ))
        .exists()
    );
}

#[tokio::test]
async fn server_shutdown_alone_sends_shutdown_and_exit_to_attached_language_servers() {
    if !python("server_shutdown_alone_sends_shutdown_and_exit") {
        return;
    }
    let root = TempDir::new("rec-server-shutdown");
    let (server, _dir, lsp) = lsp_server(&[("rec", recording(&root))]).await;
    let mut editor = Editor::connect(&server, Dialect::Json).await;
    editor.initialize("s", "rec", None).await;
    let pid = lsp.sessions()[0].pid;
    // An embedder that only stops the server, with the editor still attached: the language
    // server must be asked to leave, not killed with its task.
    server.shutdown().await;
    let seen: Vec<String> = lines(&root, "messages.jsonl")
        .iter()
        .filter_map(|m| m["method"].as_str().map(str::to_owned))
        .collect();
    assert!(
        seen.ends_with(&["shutdown".to_owned(), "exit".to_owned()]),
        "the server's last messages: {seen:?}"
    );
    assert!(
        eventually(LIMIT, || !process_exists(pid)).await,
        "pid {pid} reaped"
    );
    assert!(lsp.sessions().is_empty());
}
