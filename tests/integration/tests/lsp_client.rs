//! `LspSession` of the tokio and smol clients against the real `sentelite serve` running
//! pylsp from an `[lsp.python]` table of its TOML file. Skipped loudly without pylsp, failed
//! under `SENTELITE_REQUIRE_PEERS=1`.

use std::io::Write;
use std::time::Duration;

use futures_lite::FutureExt;
use sentelite_driver::lsp::{LspClient, LspError, LspSession, ServerMessage};
use sentelite_integration_tests::serve::TempDir;
use sentelite_integration_tests::wait::within;
use sentelite_integration_tests::{ServeProcess, scenarios};
use serde_json::json;

/// pylsp answers within a second or two; two busy cores may stretch that a lot.
const SLOW: Duration = Duration::from_secs(60);

const SOURCE: &str = "import os\n\nprint(os.path.join('a', 'b'))\nprint(undefined_name)\n";

fn have_pylsp(test: &str) -> bool {
    let ok = std::process::Command::new("pylsp")
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        let require = std::env::var("SENTELITE_REQUIRE_PEERS").is_ok_and(|v| v == "1");
        assert!(
            !require,
            "{test}: pylsp is missing and SENTELITE_REQUIRE_PEERS=1"
        );
        let _ = writeln!(
            std::io::stderr(),
            "\n*** SKIPPED {test}: pylsp is missing (pip install python-lsp-server pyflakes); \
             set SENTELITE_REQUIRE_PEERS=1 to fail instead ***\n"
        );
    }
    ok
}

/// The server, with pylsp working in `root` and every client allowed.
fn serve(root: &TempDir) -> ServeProcess {
    ServeProcess::start_with_config(&format!(
        "max-frame-bytes = 8388608\n\n[lsp]\nallowed-clients = [\"*\"]\n\n[lsp.python]\n\
         command = \"pylsp\"\nroot = \"{}\"\nsession-timeout-ms = 3000\n",
        root.path().display()
    ))
}

/// Starts a session, opens a file with an error, and checks diagnostics, hover, completion,
/// cancel and shutdown through the client API.
async fn python_session(connect: scenarios::Connect, url: &str) {
    let mut options = scenarios::options(url, "lsp-editor");
    options.max_frame = 8 * 1024 * 1024;
    let client = connect(options).expect("client starts");
    let lsp = LspClient::new(client.clone());
    // The application's event loop: lsp/* events to the sessions, the rest dropped here.
    let router = {
        let lsp = lsp.clone();
        let events = client.events();
        async move {
            while let Some(event) = events.recv().await {
                let _ = lsp.route(event).await;
            }
        }
    };
    let body = async {
        // The first Opened may not have come yet: start retries until the connection is up.
        let session = within(SLOW, "the session", async {
            loop {
                match LspSession::start(&lsp, "python", Some("source://")).await {
                    Ok(session) => return session,
                    Err(LspError::Client(_)) => {
                        async_io_sleep(Duration::from_millis(50)).await;
                    }
                    Err(e) => panic!("start: {e}"),
                }
            }
        })
        .await;
        assert!(session.initialize_result()["capabilities"]["hoverProvider"] == true);
        let uri = "source://main.py";
        session
            .notify(
                "textDocument/didOpen",
                json!({"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": SOURCE}}),
            )
            .await
            .unwrap();
        let messages = session.messages();
        let diagnostics = within(SLOW, "diagnostics", async {
            loop {
                if let Ok(ServerMessage::Notification {
                    method,
                    params: Some(p),
                }) = messages.recv().await
                    && method == "textDocument/publishDiagnostics"
                    && p["uri"] == uri
                {
                    return p["diagnostics"].clone();
                }
            }
        })
        .await;
        assert!(
            diagnostics.to_string().contains("undefined_name"),
            "{diagnostics}"
        );

        let position =
            json!({"textDocument": {"uri": uri}, "position": {"line": 2, "character": 15}});
        let hover = within(
            SLOW,
            "hover",
            session.request("textDocument/hover", position.clone()),
        )
        .await
        .unwrap();
        assert!(hover["contents"].to_string().contains("join"), "{hover}");
        let completion = within(
            SLOW,
            "completion",
            session.request(
                "textDocument/completion",
                json!({"textDocument": {"uri": uri}, "position": {"line": 2, "character": 9}}),
            ),
        )
        .await
        .unwrap();
        assert!(completion.to_string().contains("\"path\""), "{completion}");

        let pending = session
            .start_request("textDocument/hover", position)
            .await
            .unwrap();
        session.cancel(&pending).await.unwrap();
        match within(SLOW, "the cancelled request", pending.response()).await {
            Ok(_) | Err(LspError::Server { code: -32800, .. }) => {}
            other => panic!("cancelled: {other:?}"),
        }
        within(SLOW, "shutdown", session.shutdown()).await.unwrap();
        // A refusal is typed: an unknown language.
        let refused = within(SLOW, "the refusal", LspSession::start(&lsp, "cobol", None)).await;
        assert!(
            matches!(&refused, Err(LspError::Refused { kind, .. }) if kind == "unknown-language"),
            "{refused:?}"
        );
    };
    body.or(router).await;
    client.close().await;
}

async fn async_io_sleep(d: Duration) {
    smol::Timer::after(d).await;
}

#[test]
fn tokio_lsp_session_against_pylsp() {
    if !have_pylsp("tokio_lsp_session_against_pylsp") {
        return;
    }
    // The adapter re-exports the module the way it does `blob`.
    let _: Option<sentelite_tokio::lsp::LspSession> = None;
    let root = TempDir::new("lsp-root");
    let server = serve(&root);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(python_session(sentelite_tokio::connect, &server.ws_url));
}

#[test]
fn smol_lsp_session_against_pylsp() {
    if !have_pylsp("smol_lsp_session_against_pylsp") {
        return;
    }
    let _: Option<sentelite_smol::lsp::LspSession> = None;
    let root = TempDir::new("lsp-root");
    let server = serve(&root);
    smol::block_on(python_session(sentelite_smol::connect, &server.ws_url));
}

/// A cut connection: the client reconnects, `LspClient::route` rejoins the session within
/// the host's grace, the host reopens the document in the same server, and its diagnostics
/// come again without the editor reopening it.
#[test]
fn tokio_lsp_session_rejoins_after_a_cut_connection() {
    if !have_pylsp("tokio_lsp_session_rejoins_after_a_cut_connection") {
        return;
    }
    let root = TempDir::new("lsp-root");
    let server = serve(&root);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let upstream = server.addr.parse().expect("server address");
        let proxy = sentelite_integration_tests::chaos_proxy::ChaosProxy::start(upstream).await;
        let mut options = scenarios::options(&format!("ws://{}/ws", proxy.addr), "lsp-rejoin");
        options.max_frame = 8 * 1024 * 1024;
        let client = sentelite_tokio::connect(options).expect("client starts");
        let lsp = LspClient::new(client.clone());
        let router = {
            let lsp = lsp.clone();
            let events = client.events();
            tokio::spawn(async move {
                while let Some(event) = events.recv().await {
                    let _ = lsp.route(event).await;
                }
            })
        };
        let session = within(SLOW, "the session", async {
            loop {
                match LspSession::start(&lsp, "python", Some("source://")).await {
                    Ok(session) => return session,
                    Err(LspError::Client(_)) => async_io_sleep(Duration::from_millis(50)).await,
                    Err(e) => panic!("start: {e}"),
                }
            }
        })
        .await;
        let uri = "source://kept.py";
        session
            .notify(
                "textDocument/didOpen",
                json!({"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": SOURCE}}),
            )
            .await
            .unwrap();
        let messages = session.messages();
        let diagnosed = || async {
            within(SLOW, "diagnostics", async {
                loop {
                    if let Ok(ServerMessage::Notification {
                        method,
                        params: Some(p),
                    }) = messages.recv().await
                        && method == "textDocument/publishDiagnostics"
                        && p["uri"] == uri
                        && p["diagnostics"].as_array().is_some_and(|d| !d.is_empty())
                    {
                        return;
                    }
                }
            })
            .await;
        };
        diagnosed().await;
        proxy.cut_all();
        // Reopened by the host after the rejoin: diagnostics again, no didOpen from here.
        diagnosed().await;
        let hover = within(
            SLOW,
            "hover after the rejoin",
            session.request(
                "textDocument/hover",
                json!({"textDocument": {"uri": uri}, "position": {"line": 2, "character": 15}}),
            ),
        )
        .await
        .unwrap();
        assert!(hover["contents"].to_string().contains("join"), "{hover}");
        within(SLOW, "shutdown", session.shutdown()).await.unwrap();
        client.close().await;
        router.abort();
    });
}
