//! Real language servers over the channel: pylsp (python-lsp-server with pyflakes) behind
//! `lsp/*` events from JSON and sente-lite editors. Skipped loudly without pylsp, failed
//! under `SENTELITE_REQUIRE_PEERS=1`.

mod support;

use std::time::Duration;

use sentelite_host::lsp::LanguageConfig;
use serde_json::{Value, json};
use support::TempDir;
use support::lsp::{Dialect, Editor, eventually, have, lsp_server, process_exists};

/// pylsp starts in about a second; on two busy cores everything may take much longer.
const SLOW: Duration = Duration::from_secs(60);

const SOURCE: &str = "import os\n\nprint(os.path.join('a', 'b'))\nprint(undefined_name)\n";

fn pylsp(root: &TempDir, grace_ms: u64) -> LanguageConfig {
    std::fs::create_dir_all(&root.0).unwrap();
    LanguageConfig {
        root: Some(root.0.clone()),
        session_timeout_ms: grace_ms,
        ..LanguageConfig::new("pylsp")
    }
}

async fn open(editor: &mut Editor, session: &str, uri: &str, text: &str) {
    editor
        .notify(
            session,
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": text}}),
        )
        .await;
}

/// Hovers over `join` (line 2) and returns the first response whose contents name it. jedi
/// may answer a hover with empty contents while it is still loading `os` on a busy
/// machine, so a bounded number of later asks follow (ids `id`, then `again(1)`, …); the
/// last response is returned either way, for the caller's assertion to print.
async fn hover_join(
    editor: &mut Editor,
    session: &str,
    uri: &str,
    id: Value,
    again: impl Fn(usize) -> Value,
) -> Value {
    let mut hover = Value::Null;
    for attempt in 0..10 {
        let id = if attempt == 0 {
            id.clone()
        } else {
            again(attempt)
        };
        editor
            .request(
                session,
                id.clone(),
                "textDocument/hover",
                json!({"textDocument": {"uri": uri}, "position": {"line": 2, "character": 15}}),
            )
            .await;
        hover = editor.response(SLOW, &id).await;
        if hover["result"]["contents"].to_string().contains("join") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    hover
}

#[tokio::test]
async fn pylsp_initializes_hovers_completes_diagnoses_cancels_and_shuts_down() {
    if !have(
        "pylsp",
        "--version",
        "pylsp_initializes_hovers_completes_diagnoses_cancels_and_shuts_down",
    ) {
        return;
    }
    let root = TempDir::new("pylsp-root");
    let (server, _dir, lsp) = lsp_server(&[("python", pylsp(&root, 60_000))]).await;
    let mut editor = Editor::connect(&server, Dialect::Json).await;

    let init = editor.initialize("s1", "python", Some("source://")).await;
    assert_eq!(init["session-id"], "s1", "{init}");
    assert!(
        init["result"]["capabilities"]["hoverProvider"]
            .as_bool()
            .unwrap_or(false),
        "{init}"
    );
    let sessions = lsp.sessions();
    assert_eq!(sessions.len(), 1);
    assert!(process_exists(sessions[0].pid));

    // A file with an error: pyflakes reports the undefined name, with the client's URI.
    let uri = "source://main.py";
    open(&mut editor, "s1", uri, SOURCE).await;
    let found = editor.diagnostics(SLOW, uri).await;
    assert!(
        found.iter().any(|d| d["message"]
            .as_str()
            .unwrap_or("")
            .contains("undefined_name")),
        "{found:?}"
    );

    // Hover over `join`, with a string request id (kept a string).
    let hover = hover_join(&mut editor, "s1", uri, json!("hover-1"), |n| {
        json!(format!("hover-1-again-{n}"))
    })
    .await;
    let contents = hover["result"]["contents"].to_string();
    assert!(contents.contains("join"), "{hover}");

    // Completion after `os.pa`, with a number id (kept a number).
    editor
        .notify("s1", "textDocument/didChange", json!({
            "textDocument": {"uri": uri, "version": 2},
            "contentChanges": [{"range": {"start": {"line": 4, "character": 0}, "end": {"line": 4, "character": 0}}, "text": "os.pa"}]}))
        .await;
    editor
        .request(
            "s1",
            json!(7),
            "textDocument/completion",
            json!({
            "textDocument": {"uri": uri}, "position": {"line": 4, "character": 5}}),
        )
        .await;
    let completion = editor.response(SLOW, &json!(7)).await;
    let items = completion["result"]["items"]
        .as_array()
        .or(completion["result"].as_array())
        .cloned()
        .unwrap_or_default();
    assert!(items.iter().any(|i| i["label"] == "path"), "{completion}");

    // A cancelled request still gets exactly one response (result or the cancel error).
    editor
        .request(
            "s1",
            json!(8),
            "textDocument/hover",
            json!({
            "textDocument": {"uri": uri}, "position": {"line": 2, "character": 15}}),
        )
        .await;
    editor
        .notify("s1", "$/cancelRequest", json!({"id": 8}))
        .await;
    let cancelled = editor.response(SLOW, &json!(8)).await;
    assert!(
        cancelled.get("result").is_some() || cancelled["error"]["code"] == -32800,
        "{cancelled}"
    );

    // shutdown + exit end the process, and the session is gone without an error.
    let pid = lsp.sessions()[0].pid;
    editor
        .request("s1", json!(9), "shutdown", Value::Null)
        .await;
    let shutdown = editor.response(SLOW, &json!(9)).await;
    assert_eq!(shutdown["result"], Value::Null, "{shutdown}");
    editor
        .send(
            "lsp/notification",
            json!({"session-id": "s1", "method": "exit"}),
        )
        .await;
    assert!(eventually(SLOW, || lsp.sessions().is_empty()).await);
    assert!(
        eventually(Duration::from_secs(5), || !process_exists(pid)).await,
        "pid {pid} reaped"
    );
    editor.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn reconnect_within_the_grace_keeps_the_process_and_documents_and_after_it_the_process_is_gone()
 {
    if !have(
        "pylsp",
        "--version",
        "reconnect_within_the_grace_keeps_the_process_and_documents",
    ) {
        return;
    }
    let root = TempDir::new("pylsp-grace");
    let grace = Duration::from_millis(2500);
    let (server, _dir, lsp) =
        lsp_server(&[("python", pylsp(&root, grace.as_millis() as u64))]).await;
    let mut first = Editor::connect(&server, Dialect::Json).await;
    first.initialize("s-re", "python", None).await;
    let uri = "source://kept.py";
    open(&mut first, "s-re", uri, SOURCE).await;
    assert!(!first.diagnostics(SLOW, uri).await.is_empty());
    let pid = lsp.sessions()[0].pid;
    first.close().await;
    assert!(
        eventually(Duration::from_secs(5), || lsp.sessions()[0]
            .attached
            .is_none())
        .await
    );

    // Back within the grace: same process, the document still open, its diagnostics
    // published again without the editor reopening it.
    let mut second = Editor::connect(&server, Dialect::Json).await;
    let init = second.initialize("s-re", "python", None).await;
    assert_eq!(init["reattached"], true, "{init}");
    assert_eq!(init["open-documents"], json!([uri]), "{init}");
    assert_eq!(lsp.sessions()[0].pid, pid);
    assert!(!second.diagnostics(SLOW, uri).await.is_empty());
    let hover = hover_join(&mut second, "s-re", uri, json!(1), |n| json!(100 + n)).await;
    assert!(
        hover["result"]["contents"].to_string().contains("join"),
        "{hover}"
    );
    second.close().await;

    // Past the grace: shutdown + exit, and the process reaped.
    assert!(
        eventually(grace + Duration::from_secs(15), || lsp
            .sessions()
            .is_empty())
        .await
    );
    assert!(
        eventually(Duration::from_secs(5), || !process_exists(pid)).await,
        "pid {pid} reaped"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_sente_lite_edn_client_uses_pylsp() {
    if !have("pylsp", "--version", "a_sente_lite_edn_client_uses_pylsp") {
        return;
    }
    let root = TempDir::new("pylsp-edn");
    let (server, _dir, lsp) = lsp_server(&[("python", pylsp(&root, 60_000))]).await;
    let mut editor = Editor::connect(&server, Dialect::SenteLite).await;
    let init = editor.initialize("e1", "python", Some("source://")).await;
    assert_eq!(init["result"]["serverInfo"]["name"], "pylsp", "{init}");
    let raw = editor.heard.last().unwrap().clone();
    assert!(raw.starts_with("[:lsp/response {"), "{raw}");
    assert!(raw.contains(":capabilities {"), "keyword keys: {raw}");
    let uri = "source://main.py";
    open(&mut editor, "e1", uri, SOURCE).await;
    let found = editor.diagnostics(SLOW, uri).await;
    assert!(found.iter().any(|d| d["source"] == "pyflakes"), "{found:?}");
    let hover = hover_join(&mut editor, "e1", uri, json!(7), |n| json!(100 + n)).await;
    assert!(
        hover["result"]["contents"].to_string().contains("join"),
        "{hover}"
    );
    let pid = lsp.sessions()[0].pid;
    editor.close().await;
    // The host stops the server with the server.
    lsp.shutdown(Duration::from_secs(15)).await;
    assert!(lsp.sessions().is_empty());
    assert!(eventually(Duration::from_secs(5), || !process_exists(pid)).await);
    server.shutdown().await;
}
