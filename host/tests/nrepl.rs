//! The nREPL endpoint end to end: a raw bencode editor and the real `nrepl.cmdline` client
//! against the host, evaluating on a tokio client that registers a small evaluator.

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sentelite_core::Status;
use sentelite_core::frame::{PayloadBuf, capability};
use sentelite_host::Server;
use sentelite_host::nrepl::bencode::{Framer, encode};
use sentelite_host::nrepl::{NreplEndpoint, NreplOptions, NreplService};
use sentelite_host::translate::{json_to_cbor, payload_to_json};
use sentelite_tokio::{Client, ClientEvent, ClientOptions, IncomingRequest};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc};

const WAIT: Duration = Duration::from_secs(10);

fn require_peers() -> bool {
    std::env::var("SENTELITE_REQUIRE_PEERS").as_deref() == Ok("1")
}

async fn host(
    options: impl FnOnce(&mut NreplOptions),
) -> (Server, NreplEndpoint, NreplService, support::TempDir) {
    let dir = support::TempDir::new("nrepl");
    let mut opts = NreplOptions::new("127.0.0.1:0".parse().unwrap());
    opts.port_file = Some(dir.0.join(".nrepl-port"));
    options(&mut opts);
    let nrepl = NreplService::new(opts);
    let server = Server::builder()
        .config(support::quick_settings())
        .with_nrepl(nrepl.clone())
        .listen("127.0.0.1:0")
        .data_dir(&dir.0)
        .bind()
        .await
        .unwrap();
    let endpoint = nrepl.start(server.handle()).await.unwrap();
    (server, endpoint, nrepl, dir)
}

/// State the test evaluator shares between its requests: sessions waiting for input, and
/// evaluations that can be interrupted.
#[derive(Default)]
struct EvalState {
    input: Mutex<HashMap<String, mpsc::Sender<String>>>,
    interrupt: Mutex<HashMap<String, Arc<Notify>>>,
}

/// A tokio client with the NREPL capability answering: `(+ a b …)`, `(print "x")`,
/// `(sleep ms)` (interruptible), `(read-line)` (asks for input), `describe`, `stdin`,
/// `interrupt`; anything else `unknown-op`.
async fn evaluator(server: &Server, name: &str) -> Client {
    let mut options = ClientOptions::new(format!("ws://{}/ws", server.local_addr()), name);
    options.capabilities = capability::NREPL;
    let client = sentelite_tokio::connect(options).unwrap();
    let state = Arc::new(EvalState::default());
    let events = client.events();
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            match event {
                ClientEvent::Request(request) if request.event == "nrepl/request" => {
                    tokio::spawn(answer(request, state.clone()));
                }
                _ => {}
            }
        }
    });
    tokio::time::timeout(WAIT, async {
        while !client.is_open() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("evaluator connects");
    client
}

async fn part(request: &mut IncomingRequest, fields: Value) {
    let _ = request.part(PayloadBuf::Value(json_to_cbor(&fields))).await;
}

async fn answer(mut request: IncomingRequest, state: Arc<EvalState>) {
    let message = match payload_to_json(&request.payload) {
        Ok(Value::Object(m)) => m,
        _ => return,
    };
    let text = |k: &str| {
        message
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let session = text("session");
    match text("op").as_str() {
        "describe" => {
            part(&mut request, json!({"ops": {"eval": {}, "interrupt": {}, "stdin": {}, "describe": {}}, "status": ["done"]})).await;
        }
        "stdin" => {
            let waiting = state.input.lock().unwrap().remove(&session);
            if let Some(tx) = waiting {
                let _ = tx.send(text("stdin")).await;
            }
            part(&mut request, json!({"status": ["done"]})).await;
        }
        "interrupt" => {
            let notify = state.interrupt.lock().unwrap().get(&session).cloned();
            if let Some(n) = notify {
                n.notify_waiters();
            }
            part(&mut request, json!({"status": ["done"]})).await;
        }
        "eval" => {
            let code = text("code");
            let inner = code.trim().trim_start_matches('(').trim_end_matches(')');
            let mut words = inner.split_whitespace();
            let head = words.next().unwrap_or_default();
            let args: Vec<&str> = words.collect();
            match head {
                "+" => {
                    let sum: i64 = args.iter().filter_map(|a| a.parse::<i64>().ok()).sum();
                    part(
                        &mut request,
                        json!({"value": sum.to_string(), "ns": "user"}),
                    )
                    .await;
                }
                "print" => {
                    part(
                        &mut request,
                        json!({"out": args.join(" ").trim_matches('"')}),
                    )
                    .await;
                    part(&mut request, json!({"value": "nil", "ns": "user"})).await;
                }
                "sleep" => {
                    let ms: u64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(0);
                    let notify = Arc::new(Notify::new());
                    state
                        .interrupt
                        .lock()
                        .unwrap()
                        .insert(session.clone(), notify.clone());
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(ms)) => {
                            part(&mut request, json!({"value": "nil", "ns": "user"})).await;
                        }
                        () = notify.notified() => {
                            part(&mut request, json!({"status": ["done", "interrupted"]})).await;
                            let _ = request.end(Status::OK, PayloadBuf::Empty).await;
                            return;
                        }
                    }
                }
                "read-line" => {
                    let (tx, mut rx) = mpsc::channel(1);
                    state.input.lock().unwrap().insert(session.clone(), tx);
                    part(&mut request, json!({"status": ["need-input"]})).await;
                    let line = rx.recv().await.unwrap_or_default();
                    part(
                        &mut request,
                        json!({"value": format!("{:?}", line.trim_end()), "ns": "user"}),
                    )
                    .await;
                }
                _ => {
                    part(&mut request, json!({"ex": "unsupported", "err": format!("cannot evaluate {code}\n"), "status": ["eval-error"]})).await;
                }
            }
            part(&mut request, json!({"status": ["done"]})).await;
        }
        _ => {
            part(
                &mut request,
                json!({"status": ["done", "unknown-op", "error"]}),
            )
            .await
        }
    }
    let _ = request.end(Status::OK, PayloadBuf::Empty).await;
}

/// A bare bencode editor.
struct Editor {
    stream: TcpStream,
    framer: Framer,
}

impl Editor {
    async fn connect(endpoint: &NreplEndpoint) -> Self {
        Self {
            stream: TcpStream::connect(endpoint.local_addr()).await.unwrap(),
            framer: Framer::new(1 << 20),
        }
    }

    async fn send(&mut self, message: Value) {
        let bytes = encode(message.as_object().unwrap());
        self.stream.write_all(&bytes).await.unwrap();
    }

    async fn next(&mut self) -> Map<String, Value> {
        let mut buf = [0u8; 4096];
        tokio::time::timeout(WAIT, async {
            loop {
                if let Some(m) = self.framer.next_message().unwrap() {
                    return m;
                }
                let n = self.stream.read(&mut buf).await.unwrap();
                assert!(n > 0, "the endpoint closed the connection");
                self.framer.push(&buf[..n]);
            }
        })
        .await
        .expect("a response in time")
    }

    /// Every response to `id` up to its `done`, skipping others (kept in `other`).
    async fn until_done(
        &mut self,
        id: &str,
        other: &mut Vec<Map<String, Value>>,
    ) -> Vec<Map<String, Value>> {
        let mut got = Vec::new();
        loop {
            let m = self.next().await;
            if m.get("id").and_then(Value::as_str) != Some(id) {
                other.push(m);
                continue;
            }
            let done = status(&m).contains(&"done".to_owned());
            got.push(m);
            if done {
                return got;
            }
        }
    }

    async fn call(&mut self, message: Value) -> Vec<Map<String, Value>> {
        let id = message["id"].as_str().unwrap().to_owned();
        self.send(message).await;
        self.until_done(&id, &mut Vec::new()).await
    }

    async fn clone_session(&mut self) -> String {
        let got = self.call(json!({"op": "clone", "id": "c"})).await;
        got[0]["new-session"].as_str().unwrap().to_owned()
    }
}

fn status(m: &Map<String, Value>) -> Vec<String> {
    m.get("status")
        .and_then(Value::as_array)
        .map(|s| {
            s.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn field<'a>(got: &'a [Map<String, Value>], key: &str) -> Option<&'a str> {
    got.iter().find_map(|m| m.get(key).and_then(Value::as_str))
}

#[tokio::test]
async fn eval_on_a_client_with_ids_untouched_and_honest_describe() {
    let (server, endpoint, _nrepl, dir) = host(|_| {}).await;
    assert!(endpoint.banner().starts_with(&format!(
        "nREPL server started on port {} on host 127.0.0.1 - nrepl://127.0.0.1:",
        endpoint.local_addr().port()
    )));
    assert_eq!(
        std::fs::read_to_string(dir.0.join(".nrepl-port")).unwrap(),
        endpoint.local_addr().port().to_string()
    );
    let _device = evaluator(&server, "board-1").await;
    let mut editor = Editor::connect(&endpoint).await;
    let session = editor.clone_session().await;
    // An empty id is an id like any other.
    let got = editor
        .call(json!({"op": "eval", "code": "(+ 1 2)", "id": "", "session": session}))
        .await;
    assert_eq!(field(&got, "value"), Some("3"));
    assert!(
        got.iter()
            .all(|m| m["id"] == "" && m["session"] == session.as_str())
    );
    let got = editor
        .call(json!({"op": "describe", "id": "d", "session": session}))
        .await;
    let ops = got[0]["ops"].as_object().unwrap();
    for op in ["eval", "stdin", "clone", "ls-sessions", "sentelite/select"] {
        assert!(ops.contains_key(op), "describe lists {op}: {ops:?}");
    }
    assert!(
        !ops.contains_key("load-file"),
        "the client does not load files"
    );
    assert_eq!(got[0]["aux"]["sentelite/client"], "board-1");
    assert_eq!(got[0]["aux"]["current-ns"], "user");
    let got = editor.call(json!({"op": "ls-sessions", "id": "l"})).await;
    assert_eq!(got[0]["sessions"], json!([session]));
    assert_eq!(got[0]["sentelite/clients"][&session], "board-1");
    // Unknown op at the client, unknown session at the host.
    let got = editor
        .call(json!({"op": "frobnicate", "id": "u", "session": session}))
        .await;
    assert_eq!(status(got.last().unwrap()), ["done", "unknown-op", "error"]);
    let got = editor
        .call(json!({"op": "eval", "code": "(+ 1 1)", "id": "s", "session": "nope"}))
        .await;
    assert_eq!(status(&got[0]), ["done", "error", "unknown-session"]);
    // CIDER's JVM probes are answered as a non-JVM server would.
    let got = editor.call(json!({"op": "eval", "code": "(System/getProperty \"java.version\")", "id": "j", "session": session})).await;
    assert_eq!(field(&got, "value"), Some("nil"));
    endpoint.shutdown();
    assert!(
        !dir.0.join(".nrepl-port").exists(),
        "the port file goes with the endpoint"
    );
}

#[tokio::test]
async fn overlapping_requests_end_out_of_order() {
    let (server, endpoint, _nrepl, _dir) = host(|_| {}).await;
    let _device = evaluator(&server, "board-1").await;
    let mut editor = Editor::connect(&endpoint).await;
    let session = editor.clone_session().await;
    editor
        .send(json!({"op": "eval", "code": "(sleep 400)", "id": "slow", "session": session}))
        .await;
    editor
        .send(json!({"op": "eval", "code": "(+ 40 2)", "id": "fast", "session": session}))
        .await;
    let mut first = Vec::new();
    let fast = editor.until_done("fast", &mut first).await;
    assert_eq!(field(&fast, "value"), Some("42"));
    let slow = editor.until_done("slow", &mut first).await;
    assert_eq!(field(&slow, "value"), Some("nil"));
}

#[tokio::test]
async fn interrupt_and_need_input() {
    let (server, endpoint, _nrepl, _dir) = host(|_| {}).await;
    let _device = evaluator(&server, "board-1").await;
    let mut editor = Editor::connect(&endpoint).await;
    let session = editor.clone_session().await;
    let got = editor
        .call(json!({"op": "interrupt", "id": "i0", "session": session}))
        .await;
    assert_eq!(status(&got[0]), ["done", "session-idle"]);
    editor
        .send(json!({"op": "eval", "code": "(sleep 30000)", "id": "e1", "session": session}))
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let got = editor
        .call(json!({"op": "interrupt", "id": "i1", "interrupt-id": "other", "session": session}))
        .await;
    assert_eq!(status(&got[0]), ["done", "interrupt-id-mismatch"]);
    let mut rest = Vec::new();
    editor
        .call(json!({"op": "interrupt", "id": "i2", "interrupt-id": "e1", "session": session}))
        .await;
    let got = editor.until_done("e1", &mut rest).await;
    assert!(
        status(got.last().unwrap()).contains(&"interrupted".to_owned()),
        "{got:?}"
    );
    // stdin after need-input.
    editor
        .send(json!({"op": "eval", "code": "(read-line)", "id": "r", "session": session}))
        .await;
    let m = editor.next().await;
    assert_eq!(status(&m), ["need-input"]);
    let mut other = Vec::new();
    editor
        .call(json!({"op": "stdin", "stdin": "hello\n", "id": "in", "session": session}))
        .await;
    let got = editor.until_done("r", &mut other).await;
    assert_eq!(field(&got, "value"), Some("\"hello\""));
}

#[tokio::test]
async fn client_drop_ends_every_pending_request_and_the_session_survives_a_reconnect() {
    let (server, endpoint, _nrepl, _dir) = host(|_| {}).await;
    let device = evaluator(&server, "board-1").await;
    let mut editor = Editor::connect(&endpoint).await;
    let session = editor.clone_session().await;
    for id in ["a", "b", "c"] {
        editor
            .send(json!({"op": "eval", "code": "(sleep 30000)", "id": id, "session": session}))
            .await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    device.close().await;
    let mut other = Vec::new();
    for id in ["a", "b", "c"] {
        let got = editor.until_done(id, &mut other).await;
        let last = got.last().unwrap();
        assert_eq!(status(last), ["done", "error"], "{id}: {got:?}");
        assert!(field(&got, "err").is_some());
    }
    // The same client id back: the session evaluates there again.
    let _device = evaluator(&server, "board-1").await;
    let got = editor
        .call(json!({"op": "eval", "code": "(+ 2 2)", "id": "after", "session": session}))
        .await;
    assert_eq!(field(&got, "value"), Some("4"));
}

#[tokio::test]
async fn select_timeouts_output_limit_and_eval_limit() {
    let (server, endpoint, _nrepl, _dir) = host(|o| {
        o.eval_timeout = Duration::from_millis(300);
        o.max_output_bytes = 4;
    })
    .await;
    let _one = evaluator(&server, "board-1").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let _two = evaluator(&server, "board-2").await;
    let mut editor = Editor::connect(&endpoint).await;
    let session = editor.clone_session().await;
    let got = editor.call(json!({"op": "ls-sessions", "id": "l"})).await;
    assert_eq!(
        got[0]["sentelite/clients"][&session], "board-2",
        "the newest client by default"
    );
    let got = editor
        .call(json!({"op": "sentelite/select", "client": "board-1", "id": "s", "session": session}))
        .await;
    assert_eq!(status(&got[0]), ["done"]);
    let got = editor
        .call(json!({"op": "sentelite/select", "client": "ghost", "id": "g", "session": session}))
        .await;
    assert!(status(&got[0]).contains(&"unknown-client".to_owned()));
    let got = editor
        .call(json!({"op": "describe", "id": "d", "session": session}))
        .await;
    assert_eq!(got[0]["aux"]["sentelite/client"], "board-1");
    let got = editor
        .call(json!({"op": "eval", "code": "(sleep 5000)", "id": "t", "session": session}))
        .await;
    assert_eq!(
        status(got.last().unwrap()),
        ["done", "error", "eval-timeout"]
    );
    let got = editor.call(json!({"op": "eval", "code": "(print \"abcdefgh\")", "id": "p", "session": session, "eval-timeout": 5000})).await;
    assert_eq!(field(&got, "out"), Some("abcd"));
    assert!(status(got.last().unwrap()).contains(&"output-truncated".to_owned()));
    for i in 0..5 {
        editor.send(json!({"op": "eval", "code": "(sleep 2000)", "id": format!("w{i}"), "session": session, "eval-timeout": 5000})).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut other = Vec::new();
    editor
        .send(json!({"op": "eval", "code": "(+ 1 1)", "id": "sixth", "session": session}))
        .await;
    let got = editor.until_done("sixth", &mut other).await;
    assert_eq!(
        status(&got[0]),
        ["done", "error"],
        "the sixth evaluation is refused: {got:?}"
    );
}

#[tokio::test]
async fn bad_bencode_gets_a_typed_error_and_a_close() {
    let (_server, endpoint, _nrepl, _dir) = host(|o| o.max_message_bytes = 64).await;
    let mut editor = Editor::connect(&endpoint).await;
    editor.stream.write_all(b"d4:code100:").await.unwrap();
    editor.stream.write_all(&[b'x'; 100]).await.unwrap();
    let m = editor.next().await;
    assert_eq!(status(&m), ["error", "bad-message"]);
    let mut rest = Vec::new();
    let n = tokio::time::timeout(WAIT, editor.stream.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0, "closed after the error");
}

#[tokio::test]
async fn sessions_past_the_limit_are_refused_cloned_or_implicit() {
    let (server, endpoint, nrepl, _dir) = host(|o| o.max_sessions = 2).await;
    let _device = evaluator(&server, "board-1").await;
    let mut first = Editor::connect(&endpoint).await;
    let kept = first.clone_session().await;
    first.clone_session().await;
    let refused = first.call(json!({"op": "clone", "id": "c3"})).await;
    assert_eq!(status(&refused[0]), ["done", "error", "session-limit"]);
    assert!(field(&refused, "err").is_some_and(|e| e.contains("at most 2")));
    // A new editor's session-less eval would open an implicit session: refused the same way.
    let mut second = Editor::connect(&endpoint).await;
    let implicit = second
        .call(json!({"op": "eval", "code": "(+ 1 1)", "id": "e"}))
        .await;
    assert_eq!(status(&implicit[0]), ["done", "error", "session-limit"]);
    assert_eq!(nrepl.sessions().len(), 2, "nothing opened past the limit");
    // Closing one frees its place.
    first
        .call(json!({"op": "close", "id": "x", "session": kept}))
        .await;
    second.clone_session().await;
    assert_eq!(nrepl.sessions().len(), 2);
}

#[tokio::test]
async fn editors_past_the_connection_limit_are_told_and_closed() {
    let (_server, endpoint, _nrepl, _dir) = host(|o| o.max_connections = 2).await;
    let mut one = Editor::connect(&endpoint).await;
    let mut two = Editor::connect(&endpoint).await;
    one.clone_session().await;
    two.clone_session().await;
    let mut three = Editor::connect(&endpoint).await;
    let told = three.next().await;
    assert_eq!(status(&told), ["done", "error", "too-many-connections"]);
    let mut rest = Vec::new();
    let n = tokio::time::timeout(WAIT, three.stream.read_to_end(&mut rest))
        .await
        .expect("closed in time")
        .unwrap_or(0);
    assert_eq!(n, 0, "closed after the refusal");
    // The two admitted editors are unaffected, and a place freed is taken again.
    one.clone_session().await;
    drop(two);
    let mut four = None;
    for _ in 0..50 {
        let mut editor = Editor::connect(&endpoint).await;
        editor.send(json!({"op": "clone", "id": "c"})).await;
        if editor.next().await.contains_key("new-session") {
            four = Some(editor);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(four.is_some(), "the freed place was never given again");
}

#[tokio::test]
async fn sessions_expire_after_their_ttl() {
    let (_server, endpoint, nrepl, _dir) =
        host(|o| o.session_ttl = Duration::from_millis(200)).await;
    let mut editor = Editor::connect(&endpoint).await;
    let session = editor.clone_session().await;
    assert_eq!(nrepl.sessions().len(), 1);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let got = editor
        .call(json!({"op": "eval", "code": "(+ 1 1)", "id": "x", "session": session}))
        .await;
    assert!(status(&got[0]).contains(&"unknown-session".to_owned()));
}

/// The real `nrepl.cmdline` client (Debian `clojure` + `libnrepl-clojure`) evaluates on the
/// client through the endpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clojure_nrepl_cmdline_evaluates_on_a_client() {
    if !clojure_available("clojure_nrepl_cmdline_evaluates_on_a_client") {
        return;
    }
    let (server, endpoint, _nrepl, _dir) = host(|_| {}).await;
    let _device = evaluator(&server, "board-1").await;
    let transcript = cmdline(&endpoint, "(+ 1 2 39)\n").await;
    assert!(
        transcript.contains("user=> 42"),
        "the value evaluated on the client: {transcript}"
    );
}

/// A sente-lite (EDN) client evaluates: it declares itself with `[:nrepl/evaluator {}]`,
/// receives `[:nrepl/request {:op "eval" …}]` with keyword keys and answers with
/// `[:nrepl/response {…}]` events.
#[tokio::test]
async fn a_sente_lite_client_evaluates_with_plain_events() {
    let (server, endpoint, nrepl, _dir) = host(|_| {}).await;
    let mut peer = support::text::TextPeer::connect(
        server.local_addr(),
        "?dialect=sente-lite&client-id=browser-1",
    )
    .await;
    let _handshake = peer.text().await;
    peer.send("[:nrepl/evaluator {}]").await;
    tokio::time::timeout(WAIT, async {
        while nrepl.evaluators().is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the declaration is taken");
    let mut editor = Editor::connect(&endpoint).await;
    let session = editor.clone_session().await;
    editor
        .send(json!({"op": "eval", "code": "(* 6 7)", "id": "7", "session": session, "x.ext/key": "kept"}))
        .await;
    let raw = peer.text_where(|t| t.contains("nrepl/request")).await;
    assert!(raw.starts_with("[:nrepl/request {"), "{raw}");
    assert!(raw.contains(":code \"(* 6 7)\""), "keyword keys: {raw}");
    assert!(
        raw.contains(":x.ext/key \"kept\""),
        "extension keys intact: {raw}"
    );
    peer.send(&format!(
        "[:nrepl/response {{:id \"7\" :session \"{session}\" :out \"computing\\n\"}}]"
    ))
    .await;
    peer.send(&format!(
        "[:nrepl/response {{:id \"7\" :session \"{session}\" :value \"42\" :ns \"cljs.user\"}}]"
    ))
    .await;
    peer.send(&format!(
        "[:nrepl/response {{:id \"7\" :session \"{session}\" :status [\"done\"]}}]"
    ))
    .await;
    let got = editor.until_done("7", &mut Vec::new()).await;
    assert_eq!(field(&got, "out"), Some("computing\n"));
    assert_eq!(field(&got, "value"), Some("42"));
    assert_eq!(field(&got, "ns"), Some("cljs.user"));
}

const NREPL_JAR: &str = "/usr/share/java/nrepl.jar";

/// Whether Debian's `clojure` and `libnrepl-clojure` are installed; a loud skip notice (or a
/// failure under `SENTELITE_REQUIRE_PEERS=1`) when not.
fn clojure_available(test: &str) -> bool {
    let have = std::path::Path::new(NREPL_JAR).exists()
        && std::process::Command::new("clojure")
            .args(["-e", "nil"])
            .stdin(std::process::Stdio::null())
            .output()
            .is_ok_and(|o| o.status.success());
    if !have {
        assert!(
            !require_peers(),
            "{test}: clojure/libnrepl-clojure missing and SENTELITE_REQUIRE_PEERS=1"
        );
        eprintln!(
            "\n*** SKIPPED {test}: clojure + libnrepl-clojure not installed (apt-get install clojure libnrepl-clojure) ***\n"
        );
    }
    have
}

/// A real nREPL server: `nrepl.cmdline --bind 127.0.0.1 --port P`, killed on drop.
struct ClojureServer {
    child: std::process::Child,
    port: u16,
}

impl ClojureServer {
    /// Started in `dir`, where it writes its own `.nrepl-port`.
    async fn start(dir: &std::path::Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new("clojure")
            .args([
                "-cp",
                NREPL_JAR,
                "-m",
                "nrepl.cmdline",
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
            ])
            .current_dir(dir)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // The JVM starts slowly on a busy machine: up to two minutes.
        for _ in 0..1200 {
            if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return Self { child, port };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut child = child;
        let _ = child.kill();
        let _ = child.wait();
        panic!("nrepl.cmdline server did not listen within two minutes");
    }
}

impl Drop for ClojureServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends one `nrepl/browser-request` and returns the response maps.
async fn browser_request(client: &Client, message: Value) -> Vec<Map<String, Value>> {
    let mut response = client
        .request(
            "nrepl/browser-request",
            PayloadBuf::Value(json_to_cbor(&message)),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    let mut got = Vec::new();
    while let Some(part) = tokio::time::timeout(Duration::from_secs(60), response.next_part())
        .await
        .unwrap()
    {
        if let Ok(Value::Object(m)) = payload_to_json(&part) {
            got.push(m);
        }
    }
    got
}

#[tokio::test]
async fn browser_request_without_an_upstream_ends_with_an_error() {
    let (server, _endpoint, _nrepl, _dir) = host(|_| {}).await;
    let client = evaluator(&server, "browser-1").await;
    let got = browser_request(
        &client,
        json!({"op": "eval", "code": "(+ 1 2)", "id": "b1"}),
    )
    .await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(status(&got[0]), ["done", "error"]);
    assert!(field(&got, "err").unwrap().contains("no upstream"));
}

/// A client that evaluates by asking the host's upstream: each `nrepl/request` goes out
/// again as `nrepl/browser-request` (without the host's session, which the upstream does
/// not know) and the upstream's responses come back as parts.
async fn relay(server: &Server, name: &str) -> Client {
    let mut options = ClientOptions::new(format!("ws://{}/ws", server.local_addr()), name);
    options.capabilities = capability::NREPL;
    let client = sentelite_tokio::connect(options).unwrap();
    let events = client.events();
    let asker = client.clone();
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            let ClientEvent::Request(mut request) = event else {
                continue;
            };
            let asker = asker.clone();
            tokio::spawn(async move {
                let Ok(Value::Object(mut message)) = payload_to_json(&request.payload) else {
                    return;
                };
                message.remove("session");
                for response in browser_request(&asker, Value::Object(message)).await {
                    part(&mut request, Value::Object(response)).await;
                }
                let _ = request.end(Status::OK, PayloadBuf::Empty).await;
            });
        }
    });
    tokio::time::timeout(WAIT, async {
        while !client.is_open() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("relay connects");
    client
}

/// Both directions with real peers: `nrepl.cmdline --connect` against the endpoint,
/// evaluating on a client that forwards through the reverse path to a real
/// `nrepl.cmdline` server, so the value is computed by Clojure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reverse_path_reaches_a_real_nrepl_server() {
    if !clojure_available("reverse_path_reaches_a_real_nrepl_server") {
        return;
    }
    let upstream_dir = support::TempDir::new("nrepl-upstream");
    std::fs::create_dir_all(&upstream_dir.0).unwrap();
    let upstream = ClojureServer::start(&upstream_dir.0).await;
    let (server, endpoint, _nrepl, _dir) =
        host(|o| o.upstream = Some(format!("127.0.0.1:{}", upstream.port))).await;
    let browser = evaluator(&server, "browser-1").await;
    let got = browser_request(
        &browser,
        json!({"op": "eval", "code": "(str \"clojure \" (clojure-version))", "id": "v"}),
    )
    .await;
    assert_eq!(field(&got, "value"), Some("\"clojure 1.11.1\""), "{got:?}");
    assert!(got.iter().all(|m| m["id"] == "v"));
    drop(browser);
    let _relay = relay(&server, "relay-1").await;
    let transcript = cmdline(&endpoint, "(reduce * (range 1 8))\n").await;
    assert!(
        transcript.contains("5040"),
        "computed upstream: {transcript}"
    );
}

/// Runs `nrepl.cmdline --connect` against `endpoint` with `input`; its stdout.
async fn cmdline(endpoint: &NreplEndpoint, input: &str) -> String {
    let port = endpoint.local_addr().port().to_string();
    let mut child = std::process::Command::new("clojure")
        .args([
            "-cp",
            NREPL_JAR,
            "-m",
            "nrepl.cmdline",
            "--connect",
            "--host",
            "127.0.0.1",
            "--port",
            &port,
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    // The JVM starts slowly on a busy machine: up to three minutes, then it is killed.
    for _ in 0..1800 {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!(
        "nrepl.cmdline transcript:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// `nr` (nreplops-tool, a Rust nREPL client): clones with an empty id, sends its evaluations
/// back to back and closes as soon as the last is done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nreplops_nr_evaluates_on_a_client() {
    let have = std::process::Command::new("nr")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        assert!(!require_peers(), "nr missing and SENTELITE_REQUIRE_PEERS=1");
        eprintln!(
            "\n*** SKIPPED nreplops_nr_evaluates_on_a_client: nr not installed (cargo install nreplops-tool) ***\n"
        );
        return;
    }
    let (server, endpoint, nrepl, _dir) = host(|_| {}).await;
    let _device = evaluator(&server, "board-1").await;
    let addr = endpoint.local_addr().to_string();
    let mut child = std::process::Command::new("nr")
        .args([
            "-p",
            &addr,
            "-e",
            "(+ 1 2)",
            "-e",
            "(print \"hi\")",
            "-e",
            "(+ 40 2)",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    for _ in 0..300 {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!(
        "nr transcript:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines.contains(&"3") && lines.contains(&"42"), "{stdout}");
    assert!(stdout.contains("hi"), "{stdout}");
    // nr closed its session on the way out.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(nrepl.sessions().is_empty(), "{:?}", nrepl.sessions());
}

/// The core's dispatcher on a tokio client through `sentelite_tokio::nrepl::answer`: the
/// evaluator's `out` and `value` reach the editor, `describe` lists only what it supports,
/// an op it lacks is `unknown-op`.
#[tokio::test]
async fn the_driver_answers_with_a_core_evaluator() {
    use sentelite_tokio::nrepl::{Evaluator, Ops, Reply, ReplyError, answer};
    struct Counter(u32);
    impl Evaluator for Counter {
        fn supports(&self) -> Ops {
            Ops {
                completions: true,
                ..Ops::default()
            }
        }
        fn eval(
            &mut self,
            _: &str,
            code: &str,
            _: Option<&str>,
            reply: &mut Reply<'_>,
        ) -> Result<(), ReplyError> {
            self.0 += 1;
            reply.out(&format!("evaluation {}\n", self.0))?;
            reply.value(&format!("{:?}", code.len()), "counter")
        }
    }
    let (server, endpoint, _nrepl, _dir) = host(|_| {}).await;
    let mut options = ClientOptions::new(format!("ws://{}/ws", server.local_addr()), "driver-1");
    options.capabilities = capability::NREPL;
    let client = sentelite_tokio::connect(options).unwrap();
    let events = client.events();
    tokio::spawn(async move {
        let mut evaluator = Counter(0);
        while let Some(event) = events.recv().await {
            if let ClientEvent::Request(request) = event
                && request.event == sentelite_tokio::nrepl::REQUEST_EVENT
            {
                let _ = answer(request, &mut evaluator).await;
            }
        }
    });
    tokio::time::timeout(WAIT, async {
        while !client.is_open() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
    let mut editor = Editor::connect(&endpoint).await;
    let session = editor.clone_session().await;
    let got = editor
        .call(json!({"op": "eval", "code": "(hello)", "id": "1", "session": session}))
        .await;
    assert_eq!(field(&got, "out"), Some("evaluation 1\n"));
    assert_eq!(field(&got, "value"), Some("7"));
    assert_eq!(field(&got, "ns"), Some("counter"));
    let got = editor
        .call(json!({"op": "describe", "id": "2", "session": session}))
        .await;
    let ops = got[0]["ops"].as_object().unwrap();
    assert!(
        ops.contains_key("completions") && !ops.contains_key("lookup"),
        "{ops:?}"
    );
    assert_eq!(got[0]["aux"]["current-ns"], "counter");
    let got = editor
        .call(json!({"op": "lookup", "sym": "x", "id": "3", "session": session}))
        .await;
    assert_eq!(status(got.last().unwrap()), ["done", "unknown-op", "error"]);
}
