// A plain JavaScript client of the JSON dialect for the sentelite integration tests:
//
//   node json_peer.mjs <ws-url> <channel> [<options as JSON>]
//
// Connects (the test gives `?dialect=json` in the URL), expects the server's
// `["chsk/handshake", [uid, csrf, data, first]]`, answers `["chsk/ws-ping"]` with
// `["chsk/ws-pong"]` and joins <channel>. Every observation is one JSON line on stdout; the
// test drives it with one JSON command per line on stdin: `publish` (`data` is sent as
// is), `ping`, `subscribe`, `unsubscribe`, `log` (one `telemetry/log-msg`), `send` (a raw
// `[event, data]` array) and `quit`. It does not reconnect: a close it did not ask for, a
// message that is not a JSON event array, no handshake first or a passed deadline prints an
// `error` line and exits with status 1.

import WebSocket from 'ws';
import { createInterface } from 'node:readline';

const defaults = { handshakeTimeoutMs: 5000, deadlineMs: 60000 };

const emit = (observation) => console.log(JSON.stringify(observation));

function fail(reason, detail) {
  emit(detail === undefined ? { event: 'error', reason } : { event: 'error', reason, detail: String(detail) });
  process.exit(1);
}

const [url, channel, options] = process.argv.slice(2);
if (!url || !channel) fail('usage: json_peer.mjs <ws-url> <channel> [<options as JSON>]');
const opts = { ...defaults, ...(options ? JSON.parse(options) : {}) };

let handshaken = false;
let quitting = false;
const ws = new WebSocket(url);

function send(message) {
  if (ws.readyState !== WebSocket.OPEN) fail('not connected', JSON.stringify(message));
  ws.send(JSON.stringify(message));
}

const isObject = (v) => typeof v === 'object' && v !== null && !Array.isArray(v);

function onHandshake(data) {
  if (!Array.isArray(data) || data.length !== 4) fail('handshake data is not [uid, csrf, data, first]', JSON.stringify(data));
  const [uid, , handshakeData, first] = data;
  if (typeof uid !== 'string' || uid === '') fail('handshake without a uid', JSON.stringify(data));
  if (!isObject(handshakeData)) fail('handshake data is not an object', JSON.stringify(data));
  if (typeof first !== 'boolean') fail('handshake first is not a boolean', JSON.stringify(data));
  handshaken = true;
  emit({ event: 'handshake', uid, first, data: handshakeData });
  send(['sente-lite/subscribe', { 'channel-id': channel }]);
}

function onEvent(event, data) {
  switch (event) {
    case 'chsk/ws-ping':
      send(['chsk/ws-pong']);
      emit({ event: 'ping' });
      break;
    case 'chsk/ws-pong':
      emit({ event: 'pong' });
      break;
    case 'sente-lite/subscribed':
    case 'sente-lite/unsubscribed':
      emit({ event: event.slice('sente-lite/'.length), channel: data['channel-id'], success: data.success, error: data.error });
      break;
    case 'sente-lite/channel-msg':
      emit({ event: 'channel-msg', channel: data['channel-id'], from: data.from, data: data.data });
      break;
    case 'sente-lite/echo':
      emit({ event: 'echo', 'original-event-id': data['original-event-id'], data: data['original-data'], 'conn-id': data['conn-id'] });
      break;
    default:
      emit({ event: 'other', id: event, data });
  }
}

ws.on('message', (raw, binary) => {
  if (binary) fail('binary message on a JSON connection');
  let message;
  try {
    message = JSON.parse(raw.toString());
  } catch (e) {
    fail('server message is not JSON', `${e.message}: ${raw}`);
  }
  if (!Array.isArray(message) || typeof message[0] !== 'string') fail('server message is not an event array', raw);
  // Pushes may come wrapped as ["chsk/recv", [event, data]].
  if (message[0] === 'chsk/recv' && Array.isArray(message[1])) message = message[1];
  const [event, data] = message;
  if (event === 'chsk/handshake') onHandshake(data);
  else if (!handshaken) fail('first server message is not the handshake', raw);
  else onEvent(event, data);
});

ws.on('open', () => {
  emit({ event: 'open' });
  setTimeout(() => handshaken || fail('no handshake in time'), opts.handshakeTimeoutMs);
});
ws.on('error', (e) => emit({ event: 'ws-error', message: e.message }));
ws.on('close', (code, reason) => {
  if (!quitting) fail('connection closed', `${code} ${reason}`);
});

function quit() {
  quitting = true;
  ws.close(1000, 'done');
  emit({ event: 'quit' });
  setTimeout(() => process.exit(0), 50);
}

function run(command) {
  switch (command.cmd) {
    case 'publish':
      send(['sente-lite/publish', { 'channel-id': command.channel, data: command.data, 'exclude-sender?': Boolean(command['exclude-sender']) }]);
      emit({ event: 'published', channel: command.channel });
      break;
    case 'ping':
      send(['chsk/ws-ping']);
      break;
    case 'subscribe':
      send(['sente-lite/subscribe', { 'channel-id': command.channel }]);
      break;
    case 'unsubscribe':
      send(['sente-lite/unsubscribe', { 'channel-id': command.channel }]);
      break;
    case 'log':
      send(['telemetry/log-msg', { ns: 'sentelite.json-peer', level: command.level, id: 'sentelite.json-peer/note', data: { msg: command.msg }, timestamp: Date.now() }]);
      emit({ event: 'log-sent', level: command.level });
      break;
    case 'send':
      send(command.message);
      break;
    case 'quit':
      quit();
      break;
    default:
      fail('unknown command', JSON.stringify(command));
  }
}

setTimeout(() => fail('deadline passed', opts.deadlineMs), opts.deadlineMs).unref();
createInterface({ input: process.stdin })
  .on('line', (line) => {
    if (line.trim() === '') return;
    let command;
    try {
      command = JSON.parse(line);
    } catch {
      fail('command is not JSON', line);
    }
    run(command);
  })
  .on('close', () => quitting || quit());
