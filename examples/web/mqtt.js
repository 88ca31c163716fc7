// A small MQTT 3.1.1 client over WebSocket for the dashboard: CONNECT (clean session), SUBSCRIBE,
// PUBLISH at QoS 0 and 1 (QoS 1 kept until its PUBACK and sent again after a reconnect), inbound
// QoS 1 acknowledged, PINGREQ on a keep-alive timer, and reconnect with full-jitter backoff, a
// fresh presigned URL each time (temporary credentials may have expired: `url()` then throws and
// the error reaches `onState`). Packets may span WebSocket frames.
//
// const client = new MqttClient({ url: async () => "wss://…", clientId, onMessage, onState });
// client.subscribe("cars/+/telemetry", 0); client.publish(topic, text, 1); client.close();

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function remainingLength(n) {
  const out = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
  return out;
}

function utf8Field(text) {
  const bytes = encoder.encode(text);
  return [bytes.length >> 8, bytes.length & 0xff, ...bytes];
}

function packet(type, flags, body) {
  return new Uint8Array([(type << 4) | flags, ...remainingLength(body.length), ...body]);
}

export class MqttClient {
  constructor({ url, clientId, keepAlive = 30, onMessage = () => {}, onState = () => {} }) {
    this.url = url;
    this.clientId = clientId;
    this.keepAlive = keepAlive;
    this.onMessage = onMessage;
    this.onState = onState;
    this.subscriptions = new Map(); // filter -> qos, restored at every connect
    this.inflight = new Map(); // packet id -> bytes of a QoS 1 PUBLISH
    this.nextId = 0;
    this.buffer = new Uint8Array(0);
    this.closed = false;
    this.attempt = 0;
    this.connect();
  }

  state(state, detail = "") {
    this.onState(state, detail);
  }

  async connect() {
    if (this.closed) return;
    let url;
    try {
      url = await this.url();
    } catch (error) {
      this.state("error", String(error.message || error));
      return; // the application decides (e.g. log in again)
    }
    this.state("connecting");
    const ws = new WebSocket(url, ["mqtt"]);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    ws.onopen = () => {
      const body = [
        ...utf8Field("MQTT"),
        4, // protocol level 3.1.1
        0x02, // clean session
        this.keepAlive >> 8,
        this.keepAlive & 0xff,
        ...utf8Field(this.clientId),
      ];
      ws.send(packet(1, 0, body));
    };
    ws.onmessage = (event) => this.receive(new Uint8Array(event.data));
    ws.onclose = (event) => {
      clearInterval(this.pinger);
      if (this.closed) {
        this.state("closed");
        return;
      }
      const why = event.code === 1006 ? "connection refused or lost" : `closed (${event.code})`;
      this.state("offline", why);
      const ceiling = Math.min(30000, 500 * 2 ** this.attempt++);
      setTimeout(() => this.connect(), Math.random() * ceiling);
    };
  }

  send(bytes) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(bytes);
  }

  packetId() {
    do {
      this.nextId = (this.nextId % 65535) + 1;
    } while (this.inflight.has(this.nextId));
    return this.nextId;
  }

  subscribe(filter, qos = 0) {
    this.subscriptions.set(filter, qos);
    if (this.connected) this.sendSubscribe([[filter, qos]]);
  }

  sendSubscribe(list) {
    for (let i = 0; i < list.length; i += 8) {
      const id = this.packetId();
      const body = [id >> 8, id & 0xff];
      for (const [filter, qos] of list.slice(i, i + 8)) body.push(...utf8Field(filter), qos);
      this.send(packet(8, 2, body));
    }
  }

  publish(topic, text, qos = 0) {
    const payload = encoder.encode(text);
    if (qos === 0) {
      this.send(packet(3, 0, [...utf8Field(topic), ...payload]));
      return;
    }
    const id = this.packetId();
    const bytes = packet(3, 2, [...utf8Field(topic), id >> 8, id & 0xff, ...payload]);
    this.inflight.set(id, bytes);
    this.send(bytes);
  }

  close() {
    this.closed = true;
    this.send(new Uint8Array([0xe0, 0]));
    if (this.ws) this.ws.close();
  }

  receive(chunk) {
    const joined = new Uint8Array(this.buffer.length + chunk.length);
    joined.set(this.buffer);
    joined.set(chunk, this.buffer.length);
    let at = 0;
    for (;;) {
      // Fixed header: type byte, then 1 to 4 bytes of remaining length.
      let length = 0;
      let multiplier = 1;
      let i = at + 1;
      let complete = false;
      while (i < joined.length && i < at + 5) {
        const byte = joined[i++];
        length += (byte & 0x7f) * multiplier;
        multiplier *= 128;
        if ((byte & 0x80) === 0) {
          complete = true;
          break;
        }
      }
      if (!complete || i + length > joined.length) break;
      this.handle(joined[at], joined.subarray(i, i + length));
      at = i + length;
    }
    this.buffer = joined.slice(at);
  }

  handle(header, body) {
    const type = header >> 4;
    if (type === 2) {
      // CONNACK
      if (body[1] !== 0) {
        this.state("error", `connection refused (CONNACK ${body[1]})`);
        this.ws.close();
        return;
      }
      this.connected = true;
      this.attempt = 0;
      this.state("online");
      if (this.subscriptions.size) this.sendSubscribe([...this.subscriptions]);
      for (const bytes of this.inflight.values()) {
        bytes[0] |= 0x08; // DUP
        this.send(bytes);
      }
      clearInterval(this.pinger);
      this.pinger = setInterval(() => this.send(new Uint8Array([0xc0, 0])), this.keepAlive * 750);
    } else if (type === 3) {
      // PUBLISH
      const qos = (header >> 1) & 3;
      const topicLength = (body[0] << 8) | body[1];
      const topic = decoder.decode(body.subarray(2, 2 + topicLength));
      let at = 2 + topicLength;
      if (qos > 0) {
        const id = (body[at] << 8) | body[at + 1];
        at += 2;
        this.send(new Uint8Array([0x40, 2, id >> 8, id & 0xff]));
      }
      this.onMessage(topic, decoder.decode(body.subarray(at)));
    } else if (type === 4) {
      // PUBACK
      this.inflight.delete((body[0] << 8) | body[1]);
    } else if (type === 9) {
      // SUBACK: 0x80 is a refusal; AWS closes the connection instead.
      for (const code of body.subarray(2)) {
        if (code === 0x80) this.state("error", "a subscription was refused");
      }
    }
  }

  get connected() {
    return this._connected && this.ws && this.ws.readyState === WebSocket.OPEN;
  }

  set connected(value) {
    this._connected = value;
  }
}
