// mqtt.js against the broker: connect (mqtts:// with a client certificate, or wss:// with a
// SigV4 presigned URL), subscribe, publish at QoS 1, wait for the message to come back. Prints one
// line the Rust test reads: RECEIVED <payload> | CONNECT_FAILED <reason> | SUBSCRIBE_DENIED (0x80)
// | SUBSCRIBE_FAILED <reason> | CLOSED | TIMEOUT.
//
// usage: node mqttjs_client.js <url> <client-id> <topic> <ca.pem> [cert.pem key.pem]
'use strict';
const fs = require('fs');
const mqtt = require('mqtt');
const WebSocket = require('ws');

const [url, clientId, topic, caPath, certPath, keyPath] = process.argv.slice(2);
const options = {
  clientId,
  protocolVersion: 4,
  reconnectPeriod: 0,
  connectTimeout: 5000,
  ca: fs.readFileSync(caPath),
  servername: 'localhost',
  rejectUnauthorized: true,
};
if (certPath) {
  options.cert = fs.readFileSync(certPath);
  options.key = fs.readFileSync(keyPath);
}
if (url.startsWith('wss:')) {
  options.wsOptions = { ca: options.ca, servername: 'localhost', rejectUnauthorized: true };
  // mqtt.js's own socket, plus the HTTP status of a refused upgrade (403 for a bad signature).
  options.createWebsocket = (wsUrl, protocols, opts) => {
    const socket = new WebSocket(wsUrl, protocols, opts.wsOptions);
    socket.on('unexpected-response', (req, res) => finish(`CONNECT_FAILED HTTP ${res.statusCode}`));
    return socket;
  };
}

let finished = false;
function finish(line) {
  if (finished) return;
  finished = true;
  console.log(line);
  client.end(true, () => process.exit(line.startsWith('RECEIVED') ? 0 : 2));
  setTimeout(() => process.exit(line.startsWith('RECEIVED') ? 0 : 2), 500);
}

const client = mqtt.connect(url, options);
const timer = setTimeout(() => finish('TIMEOUT'), 10000);
client.on('error', (error) => finish(`CONNECT_FAILED ${error.message}`));
client.on('close', () => finish('CLOSED'));
client.on('message', (t, payload) => {
  clearTimeout(timer);
  finish(`RECEIVED ${payload.toString()}`);
});
client.on('connect', () => {
  client.subscribe(topic, { qos: 1 }, (error, granted) => {
    if (error) {
      finish(`SUBSCRIBE_FAILED ${error.message}`);
      return;
    }
    if (granted.some((g) => g.qos === 128)) {
      finish('SUBSCRIBE_DENIED');
      return;
    }
    client.publish(topic, 'hello from mqtt.js', { qos: 1 });
  });
});
