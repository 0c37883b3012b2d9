(ns sente-lite-peer
  "A sente-lite client for the sentelite integration tests, run with nbb:

     npx nbb sente_lite_peer.cljs <ws-url> <channel> [<options as EDN>]

  It speaks the sente-lite dialect the way a ClojureScript client does, writing every
  message with `pr-str` and reading every message with `clojure.edn/read-string`, so the
  server's EDN meets the real ClojureScript reader and printer. It connects, expects the
  server's `[:chsk/handshake [uid csrf data first?]]`, answers `[:chsk/ws-ping]`, joins
  <channel> (and again after every reconnect), and reconnects with capped exponential
  backoff with jitter when the server goes away.

  Every observation is one JSON line on stdout (`{\"event\":\"handshake\",\"uid\":…}`) for
  the test to assert on. The test drives it with one JSON command per line on stdin:
  `publish`, `ping`, `subscribe`, `unsubscribe`, `expect`, `logs`, `send` and `quit` (see
  `run-command`). Anything unexpected (a message that does not read as EDN, no handshake
  first, a deadline passed, too many reconnect attempts) prints an `error` line and exits
  with status 1."
  (:require ["node:readline" :as readline]
            ["ws$default" :as WebSocket]
            [clojure.edn :as edn]
            [clojure.string :as str]))

(def defaults
  {:backoff-ms 1000          ; first reconnect delay
   :backoff-max-ms 30000     ; cap of the delay
   :max-attempts 20          ; consecutive failed attempts before giving up
   :handshake-timeout-ms 5000
   :deadline-ms 120000})     ; the whole run

(def trove-levels [:trace :debug :info :warn :error :fatal :report])

(defonce state
  (atom {:ws nil
         :channels #{}
         :connections 0
         :attempt 0
         :quitting? false
         :handshaken? false}))

(defn emit
  "Prints one observation as a JSON line."
  [m]
  (println (js/JSON.stringify (clj->js m))))

(defn fail [reason & [detail]]
  (emit (cond-> {:event "error" :reason reason}
          detail (assoc :detail (str detail))))
  (js/process.exit 1))

(defn send! [msg]
  (let [^js ws (:ws @state)]
    (when-not (and ws (= (.-readyState ws) (.-OPEN WebSocket)))
      (fail "not connected" (pr-str msg)))
    (.send ws (pr-str msg))))

(defn read-edn
  "Reads one message; tags the reader does not know (`#sentelite/bytes`) stay tagged
  literals rather than failing the read."
  [text]
  (edn/read-string {:default tagged-literal} text))

(defn unwrap
  "Server pushes may come wrapped as `[:chsk/recv [ev data]]`."
  [msg]
  (if (and (= :chsk/recv (first msg)) (vector? (second msg)))
    (second msg)
    msg))

(defn subscribe! [channel]
  (send! [:sente-lite/subscribe {:channel-id channel}]))

(defn on-handshake [data]
  (when-not (and (vector? data) (= 4 (count data)))
    (fail "handshake data is not [uid csrf data first?]" (pr-str data)))
  (let [[uid _csrf handshake-data first?] data]
    (when-not (and (string? uid) (seq uid))
      (fail "handshake without a uid" (pr-str data)))
    (when-not (map? handshake-data)
      (fail "handshake data is not a map" (pr-str data)))
    (when-not (boolean? first?)
      (fail "handshake first? is not a boolean" (pr-str data)))
    (let [{:keys [connections]} (swap! state #(-> %
                                                   (assoc :handshaken? true :attempt 0 :uid uid)
                                                   (update :connections inc)))]
      (emit {:event "handshake" :uid uid :first first? :connection connections
             :edn (pr-str handshake-data)})
      (doseq [channel (sort (:channels @state))]
        (subscribe! channel)))))

(defn on-event [[ev data :as msg]]
  (case ev
    :chsk/ws-ping (do (send! [:chsk/ws-pong]) (emit {:event "ping"}))
    :chsk/ws-pong (emit {:event "pong"})
    (:sente-lite/subscribed :sente-lite/unsubscribed)
    (emit (cond-> {:event (name ev)
                   :channel (:channel-id data)
                   :success (:success data)}
            (:error data) (assoc :error (name (:error data)))))
    :sente-lite/channel-msg
    (let [{:keys [channel-id from]} data
          expected (get-in @state [:expected channel-id] ::none)]
      (emit (cond-> {:event "channel-msg" :channel channel-id :from from
                     :edn (pr-str (:data data))}
              (not= expected ::none) (assoc :matches (= expected (:data data))))))
    :sente-lite/echo
    (emit {:event "echo" :original-event-id (str (:original-event-id data))
           :edn (pr-str (:original-data data)) :conn-id (:conn-id data)})
    (emit {:event "other" :id (str ev) :edn (pr-str (vec (rest msg)))})))

(defn on-message [raw]
  (let [msg (try (read-edn (str raw))
                 (catch :default e (fail "server message does not read as EDN"
                                         (str (ex-message e) ": " raw))))]
    (when-not (and (vector? msg) (keyword? (first msg)))
      (fail "server message is not an event vector" raw))
    (let [[ev data :as msg] (unwrap msg)]
      (cond
        (= ev :chsk/handshake) (on-handshake data)
        (not (:handshaken? @state)) (fail "first server message is not the handshake" raw)
        :else (on-event msg)))))

(declare connect!)

(defn backoff-ms
  "Capped exponential backoff with jitter: the delay doubles per failed attempt up to the
  cap, and each delay is drawn from its upper half so reconnecting clients spread out."
  [{:keys [backoff-ms backoff-max-ms]} attempt]
  (let [ceiling (min backoff-max-ms (* backoff-ms (js/Math.pow 2 attempt)))]
    (js/Math.round (* ceiling (+ 0.5 (* 0.5 (js/Math.random)))))))

(defn schedule-reconnect! [opts url]
  (let [{:keys [attempt]} (swap! state update :attempt inc)]
    (when (> attempt (:max-attempts opts))
      (fail "gave up reconnecting" (str attempt " attempts")))
    (let [delay (backoff-ms opts (dec attempt))]
      (emit {:event "reconnecting" :attempt attempt :delay-ms delay})
      (js/setTimeout #(connect! opts url) delay))))

(defn connect! [opts url]
  (let [^js ws (WebSocket. url)
        handshake-timer (atom nil)
        opened? (atom false)]
    (swap! state assoc :ws ws :handshaken? false)
    (.on ws "open"
         (fn []
           (reset! opened? true)
           (emit {:event "open"})
           (reset! handshake-timer
                   (js/setTimeout #(when-not (:handshaken? @state)
                                     (fail "no handshake in time"))
                                  (:handshake-timeout-ms opts)))))
    (.on ws "message"
         (fn [raw binary?]
           (when binary? (fail "binary message on a sente-lite connection"))
           (on-message raw)))
    ;; A refused connection reports an error and then a close; the close decides.
    (.on ws "error" (fn [e] (emit {:event "ws-error" :message (.-message e)})))
    (.on ws "close"
         (fn [code reason]
           (some-> @handshake-timer js/clearTimeout)
           (when (identical? ws (:ws @state))
             (swap! state assoc :ws nil :handshaken? false)
             (when-not (:quitting? @state)
               (emit (if @opened?
                       {:event "closed" :code code :reason (str reason)}
                       {:event "connect-failed"}))
               (schedule-reconnect! opts url)))))))

(defn log-record
  "A Trove-shaped record, as sente-lite clients send them."
  [tag level n]
  {:ns "sentelite.peer"
   :level level
   :id :sentelite.peer/tick
   :data {:msg (str "tick " tag " " (name level)) :tag tag :n n}
   :timestamp (js/Date.now)})

(defn send-logs!
  "One `telemetry/log-msg` per Trove level and one record published on `log-routing`."
  [tag]
  (doseq [[n level] (map-indexed vector trove-levels)]
    (send! [:telemetry/log-msg (log-record tag level n)]))
  (send! [:sente-lite/publish
          {:channel-id "log-routing"
           :data (assoc (log-record tag :warn 99)
                        :coords [12 3]
                        :source "sente-lite-peer")
           :exclude-sender? true}])
  (emit {:event "logs-sent" :tag tag :count (inc (count trove-levels))}))

(defn quit! []
  (swap! state assoc :quitting? true)
  (some-> ^js (:ws @state) (.close 1000 "done"))
  (emit {:event "quit"})
  (js/setTimeout #(js/process.exit 0) 50))

(defn run-command [{:keys [cmd channel edn tag] :as command}]
  (case cmd
    "publish" (do (send! [:sente-lite/publish {:channel-id channel
                                               :data (read-edn edn)
                                               :exclude-sender? (boolean (:exclude-sender command))}])
                  (emit {:event "published" :channel channel}))
    "ping" (send! [:chsk/ws-ping])
    "subscribe" (do (swap! state update :channels conj channel) (subscribe! channel))
    "unsubscribe" (do (swap! state update :channels disj channel)
                      (send! [:sente-lite/unsubscribe {:channel-id channel}]))
    ;; What the next messages on `channel` should equal, by ClojureScript's own `=` (maps
    ;; in any order, keywords apart from strings); `channel-msg` lines then carry `matches`.
    ;; Acknowledged, so the test publishes only once the expectation is in place (stdin and
    ;; the WebSocket are read independently).
    "expect" (do (swap! state assoc-in [:expected channel] (read-edn edn))
                 (emit {:event "expecting" :channel channel}))
    "logs" (send-logs! tag)
    "send" (send! (read-edn edn))
    "quit" (quit!)
    (fail "unknown command" (pr-str command))))

(defn read-commands!
  "One JSON command per stdin line; the end of stdin quits."
  []
  (let [rl (readline/createInterface #js {:input js/process.stdin})]
    (.on rl "line"
         (fn [line]
           (when-not (str/blank? line)
             (let [parsed (try (js->clj (js/JSON.parse line))
                               (catch :default _ (fail "command is not JSON" line)))]
               (run-command (update-keys parsed keyword))))))
    (.on rl "close" #(when-not (:quitting? @state) (quit!)))))

(defn main [[url channel options]]
  (when-not (and url channel)
    (fail "usage: sente_lite_peer.cljs <ws-url> <channel> [<options as EDN>]"))
  (let [opts (merge defaults (when options (read-edn options)))]
    (swap! state assoc :channels #{channel})
    (js/setTimeout #(fail "deadline passed" (:deadline-ms opts)) (:deadline-ms opts))
    (read-commands!)
    (connect! opts url)))

(main *command-line-args*)
