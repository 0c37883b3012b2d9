#!/usr/bin/env python3
"""A scriptable language server for the host's tests.

Every message it reads is appended to messages.jsonl in its working directory. It answers
initialize and shutdown, echoes `test/echo` params as the result, answers `test/slow` after
five seconds unless cancelled (then at once with -32800), exits with code 3 on the
notification `test/crash`, and on `test/ask {method, params, delay}` sends that request
(with a string id) after `delay` seconds, appending the answer to answers.jsonl.
"""
import json
import os
import select
import sys
import time

buf = b""
slow = {}  # request id (as JSON text) -> (id, deadline)
asks = []  # (deadline, method, params)
asked = 0


def record(name, message):
    with open(name, "a") as f:
        f.write(json.dumps(message) + "\n")


def send(message):
    body = json.dumps(message).encode()
    os.write(1, b"Content-Length: %d\r\n\r\n" % len(body) + body)


def messages():
    global buf
    while True:
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return
        length = None
        for line in buf[:end].split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        if length is None or len(buf) < end + 4 + length:
            return
        body = buf[end + 4:end + 4 + length]
        buf = buf[end + 4 + length:]
        yield json.loads(body)


def handle(message):
    global asked
    record("messages.jsonl", message)
    method = message.get("method")
    if method is None:
        record("answers.jsonl", message)
        return
    if method == "initialize":
        send({"jsonrpc": "2.0", "id": message["id"], "result": {"capabilities": {}, "serverInfo": {"name": "recording"}}})
    elif method == "shutdown":
        send({"jsonrpc": "2.0", "id": message["id"], "result": None})
    elif method == "exit":
        sys.exit(0)
    elif method == "test/echo":
        send({"jsonrpc": "2.0", "id": message["id"], "result": message.get("params")})
    elif method == "test/slow":
        slow[json.dumps(message["id"])] = (message["id"], time.time() + 5)
    elif method == "$/cancelRequest":
        pending = slow.pop(json.dumps(message["params"]["id"]), None)
        if pending:
            send({"jsonrpc": "2.0", "id": pending[0], "error": {"code": -32800, "message": "cancelled"}})
    elif method == "test/crash":
        sys.exit(3)
    elif method == "test/ask":
        p = message["params"]
        asks.append((time.time() + p.get("delay", 0), p["method"], p.get("params")))
    elif method == "test/notify":
        send({"jsonrpc": "2.0", "method": "test/notified", "params": message.get("params")})


while True:
    now = time.time()
    for key, (rid, deadline) in list(slow.items()):
        if deadline <= now:
            del slow[key]
            send({"jsonrpc": "2.0", "id": rid, "result": "slow done"})
    for ask in [a for a in asks if a[0] <= now]:
        asks.remove(ask)
        asked += 1
        request = {"jsonrpc": "2.0", "id": "srv-%d" % asked, "method": ask[1]}
        if ask[2] is not None:
            request["params"] = ask[2]
        send(request)
    deadlines = [d for _, d in slow.values()] + [a[0] for a in asks]
    timeout = max(0.0, min(deadlines) - now) if deadlines else 1.0
    ready, _, _ = select.select([0], [], [], timeout)
    if ready:
        chunk = os.read(0, 65536)
        if not chunk:
            sys.exit(0)
        buf += chunk
        for message in list(messages()):
            handle(message)
