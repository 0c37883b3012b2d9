//! Golden frames: the EDN frames recorded from real sente-lite peers and quoted for Sente,
//! read by the host's EDN reader and printed back. Frames a peer printed with `pr-str` come
//! back byte-identical; hand-written client frames (maps without commas) come back in
//! `pr-str` form, which is what a Clojure peer would have printed for the same value.

use sentelite_host::translate::{cbor_to_edn, edn_to_cbor};

/// Frames in `pr-str` form: they must survive EDN → CBOR → EDN byte for byte.
const PR_STR_FRAMES: &[&str] = &[
    // sente-lite, recorded from the reference server.
    r#"[:chsk/handshake ["conn-1795648751298-1" nil {:sente-lite-version "2.0.0"} true]]"#,
    r#"[:sente-lite/subscribe {:channel-id "c1"}]"#,
    r#"[:sente-lite/subscribed {:channel-id "c1", :success true}]"#,
    r#"[:sente-lite/channel-msg {:channel-id "c1", :data {:n 1}, :from "conn-1795648751298-1"}]"#,
    r#"[:sente-lite/unsubscribe {:channel-id "c1"}]"#,
    r#"[:sente-lite/subscribed {:channel-id "c1", :success false, :error :max-subscriptions-per-conn}]"#,
    r#"[:sente-lite/subscribed {:channel-id "c1", :success false, :error :max-subscribers-reached}]"#,
    r#"[:sente-lite/subscribed {:channel-id "c1", :success false, :error :channel-not-found}]"#,
    r#"[:chsk/ws-ping]"#,
    r#"[:chsk/ws-pong]"#,
    r#"[:chsk/recv [:sente-lite/channel-msg {:channel-id "c1", :data {:n 1}, :from "conn-1795648751298-1"}]]"#,
    r#"{:error :timeout}"#,
    r#"{:error :closed, :reason :disconnected}"#,
    r#"[:telemetry/log-msg {:ns "my.namespace", :level :info, :id :my.namespace/event-id, :data {:key "value"}, :timestamp 1766108726643}]"#,
    r#"[:nrepl/response {:id "7", :session "s-1", :value "3", :ns "user", :status [:done]}]"#,
    // Sente (v1.21+) envelopes.
    r#"[[:chsk/handshake ["user-1" nil {:app "x"}]] nil]"#,
    r#"[[[:app/a {:n 1}] [:app/b {:n 2}]] nil]"#,
    r#"[:chsk/ws-ping nil]"#,
    r#"[[:chsk/ws-pong] nil]"#,
    r#"[[:app/get {:id 7}] "k3Xz9a"]"#,
    r#"[{:name "A"} "k3Xz9a"]"#,
    r#"[[:chsk/ws-ping] "Ab12Cd"]"#,
    r#"["pong" "Ab12Cd"]"#,
    r#"[:chsk/uidport-open "user-1"]"#,
    r#"[[:chsk/closed] "k3Xz9a"]"#,
];

/// Frames written by hand or by a client without commas, and their `pr-str` form.
const CLIENT_FRAMES: &[(&str, &str)] = &[
    (
        r#"[:sente-lite/publish {:channel-id "c1" :data {:n 1} :exclude-sender? false}]"#,
        r#"[:sente-lite/publish {:channel-id "c1", :data {:n 1}, :exclude-sender? false}]"#,
    ),
    (
        r#"[:nrepl/request {:op "eval" :code "(+ 1 2)" :id "7" :session "s-1" :ns "user"}]"#,
        r#"[:nrepl/request {:op "eval", :code "(+ 1 2)", :id "7", :session "s-1", :ns "user"}]"#,
    ),
    (
        r#"[:sente-lite/publish {:channel-id "log-routing" :data {:ns "app.core" :coords [12 3] :level :warn :id :app.core/slow :data {:ms 1500} :timestamp 1766108726643 :source "browser"}}]"#,
        r#"[:sente-lite/publish {:channel-id "log-routing", :data {:ns "app.core", :coords [12 3], :level :warn, :id :app.core/slow, :data {:ms 1500}, :timestamp 1766108726643, :source "browser"}}]"#,
    ),
    (
        "[:sente-lite/echo {:original-event-id :app/unknown\n :original-data #{:a}\n :conn-id \"conn-1\" :timestamp 1766108726643}]",
        r#"[:sente-lite/echo {:original-event-id :app/unknown, :original-data #{:a}, :conn-id "conn-1", :timestamp 1766108726643}]"#,
    ),
];

fn round_trip(frame: &str) -> String {
    let cbor = edn_to_cbor(frame).unwrap_or_else(|e| panic!("{frame}: {e}"));
    cbor_to_edn(&cbor).unwrap_or_else(|e| panic!("{frame}: {e}"))
}

#[test]
fn pr_str_frames_print_back_byte_identical() {
    for frame in PR_STR_FRAMES {
        assert_eq!(round_trip(frame), *frame);
    }
}

#[test]
fn client_frames_print_back_in_pr_str_form() {
    for (frame, pr_str) in CLIENT_FRAMES {
        assert_eq!(round_trip(frame), *pr_str, "{frame}");
        // The pr-str form is itself stable.
        assert_eq!(round_trip(pr_str), *pr_str);
        // Both spellings are the same value.
        assert_eq!(edn_to_cbor(frame).unwrap(), edn_to_cbor(pr_str).unwrap());
    }
}
