//! rust-analyzer over the channel, on a tiny cargo project made in a temp dir. Skipped
//! loudly without rust-analyzer (`rustup component add rust-analyzer`), failed under
//! `SENTELITE_REQUIRE_PEERS=1`. rust-analyzer loads the project before it answers much, and
//! two busy cores make that slow: every wait is generous but bounded.

mod support;

use std::time::Duration;

use sentelite_host::lsp::LanguageConfig;
use serde_json::{Value, json};
use support::TempDir;
use support::lsp::{Dialect, Editor, eventually, have, lsp_server, process_exists};

const SLOW: Duration = Duration::from_secs(180);

const MAIN: &str = "mod missing;\n\nfn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n\nfn main() {\n    let sum = add(1, 2);\n    println!(\"{sum}\");\n}\n";

#[tokio::test]
async fn rust_analyzer_initializes_asks_for_progress_hovers_completes_diagnoses_cancels_and_shuts_down()
 {
    if !have("rust-analyzer", "--version", "rust_analyzer_initializes") {
        return;
    }
    let project = TempDir::new("ra-project");
    std::fs::create_dir_all(project.0.join("src")).unwrap();
    std::fs::write(
        project.0.join("Cargo.toml"),
        "[package]\nname = \"tiny\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n",
    )
    .unwrap();
    std::fs::write(project.0.join("src/main.rs"), MAIN).unwrap();
    let config = LanguageConfig {
        root: Some(project.0.clone()),
        ..LanguageConfig::new("rust-analyzer")
    };
    let (server, _dir, lsp) = lsp_server(&[("rust", config)]).await;
    let mut editor = Editor::connect(&server, Dialect::Json).await;
    editor
        .send(
            "lsp/initialize",
            json!({
                "session-id": "ra",
                "language": "rust",
                "rootUri": "source://",
                "capabilities": {
                    "window": {"workDoneProgress": true},
                    "workspace": {"configuration": true},
                    "textDocument": {"hover": {"contentFormat": ["markdown"]}, "publishDiagnostics": {}},
                },
                // No `cargo check` on save: native diagnostics suffice and spare the cores.
                "initializationOptions": {"checkOnSave": false, "cachePriming": {"enable": false}},
            }),
        )
        .await;
    let init = editor.response(SLOW, &json!("initialize")).await;
    assert!(
        init["result"]["capabilities"]["hoverProvider"] != Value::Null,
        "{init}"
    );
    assert_eq!(
        init["result"]["serverInfo"]["name"], "rust-analyzer",
        "{init}"
    );

    let uri = "source://src/main.rs";
    editor
        .notify(
            "ra",
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri, "languageId": "rust", "version": 1, "text": MAIN}}),
        )
        .await;

    // rust-analyzer asks the editor to create a progress token for its loading work.
    let create = editor
        .expect(SLOW, "window/workDoneProgress/create", |event, body| {
            event == "lsp/request" && body["method"] == "window/workDoneProgress/create"
        })
        .await;
    let token = create["params"]["token"].clone();
    editor
        .send(
            "lsp/response",
            json!({"session-id": "ra", "request-id": create["request-id"], "result": null}),
        )
        .await;
    editor
        .expect(SLOW, "$/progress for the token", |event, body| {
            event == "lsp/notification"
                && body["method"] == "$/progress"
                && body["params"]["token"] == token
        })
        .await;

    // The unresolved module is a native diagnostic, reported with the client's URI.
    let diagnostics = Value::from(editor.diagnostics(SLOW, uri).await);
    assert!(diagnostics.to_string().contains("missing"), "{diagnostics}");

    // Pull diagnostics (`textDocument/diagnostic`) pass through the same way; rust-analyzer
    // may answer "server cancelled" while busy, so ask again (bounded).
    let mut pulled = Value::Null;
    for attempt in 0..30 {
        let id = json!(format!("pull-{attempt}"));
        editor
            .request(
                "ra",
                id.clone(),
                "textDocument/diagnostic",
                json!({"textDocument": {"uri": uri}}),
            )
            .await;
        pulled = editor.response(SLOW, &id).await;
        if pulled["result"]["kind"] == "full" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(pulled["result"]["kind"], "full", "{pulled}");
    // (rust-analyzer pushes its native diagnostics to an editor that did not announce pull
    // support, so the pulled report may be empty; its shape is what passes through.)
    assert!(pulled["result"]["items"].is_array(), "{pulled}");

    // Hover over the call of `add`; rust-analyzer may answer "content modified" while it
    // is still loading, so ask again (bounded) until it answers with content.
    let mut hover = Value::Null;
    for attempt in 0..30 {
        let id = json!(format!("hover-{attempt}"));
        editor
            .request(
                "ra",
                id.clone(),
                "textDocument/hover",
                json!({"textDocument": {"uri": uri}, "position": {"line": 7, "character": 15}}),
            )
            .await;
        hover = editor.response(SLOW, &id).await;
        if hover["result"]["contents"].to_string().contains("fn add") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        hover["result"]["contents"].to_string().contains("fn add"),
        "{hover}"
    );

    editor
        .request(
            "ra",
            json!(100),
            "textDocument/completion",
            json!({"textDocument": {"uri": uri}, "position": {"line": 7, "character": 14}}),
        )
        .await;
    let completion = editor.response(SLOW, &json!(100)).await;
    let items = completion["result"]["items"]
        .as_array()
        .or(completion["result"].as_array())
        .cloned()
        .unwrap_or_default();
    assert!(
        items
            .iter()
            .any(|i| i["label"].as_str().is_some_and(|l| l.starts_with("add"))),
        "{}",
        support::lsp::clip(&completion.to_string())
    );

    // Cancelled: one response still comes (rust-analyzer usually answers -32800).
    editor
        .request(
            "ra",
            json!(101),
            "textDocument/hover",
            json!({"textDocument": {"uri": uri}, "position": {"line": 7, "character": 15}}),
        )
        .await;
    editor
        .notify("ra", "$/cancelRequest", json!({"id": 101}))
        .await;
    let cancelled = editor.response(SLOW, &json!(101)).await;
    println!("cancelled request answered: {cancelled}");

    let pid = lsp.sessions()[0].pid;
    editor
        .request("ra", json!(102), "shutdown", Value::Null)
        .await;
    assert_eq!(
        editor.response(SLOW, &json!(102)).await["result"],
        Value::Null
    );
    editor.notify("ra", "exit", Value::Null).await;
    assert!(eventually(Duration::from_secs(30), || lsp.sessions().is_empty()).await);
    assert!(
        eventually(Duration::from_secs(10), || !process_exists(pid)).await,
        "pid {pid} reaped"
    );
    println!(
        "server requests answered along the way: {:?}",
        editor.answered
    );
    editor.close().await;
    server.shutdown().await;
}
