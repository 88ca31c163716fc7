// The dashboard: sign in (temporary credentials from /dashboard/login), then MQTT over WebSocket
// to the same broker the cars use. Telemetry fills the track and the table; lifecycle events say
// who is online; a selected car's shadow comes live from `update/documents` (and `get` once);
// desired state and commands go out as MQTT publishes. Edge cores report on `edge/{core}/status`
// (online, the cars behind them) and `fleet/{core}/summary`; their prediction handlers on
// `cars/{thing}/predictions` (the Range column) and `cars/{thing}/alerts` (highlighted rows and the
// Alerts list). Rendering is batched to one frame at a
// time, so a thousand cars stay fluid.

import { presignMqttUrl } from "./sigv4.js";
import { MqttClient } from "./mqtt.js";

const $ = (id) => document.getElementById(id);
const cars = new Map(); // thing -> { telemetry, online, seen, history: [{speed, battery}], dot, row }
const cores = new Map(); // edge core -> { online, things, seen, spool, summary, item }
const CORE_SILENCE_MS = 30_000; // a core publishes its status every 10 s while it is online
const ALERT_SHOWN_MS = 60_000; // a car's row stays highlighted this long after an alert
let client = null;
let credentials = null;
let selected = null;
let dirty = false;
const HISTORY = 300; // samples kept per car (5 minutes at one a second)

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

function setConnection(state, detail) {
  const badge = $("connection");
  badge.className = `state ${state}`;
  badge.textContent = detail ? `${state}: ${detail}` : state;
  if (state === "error") showError(detail);
  if (state === "online") showError("");
}

// The track: the route's bounding box mapped onto the SVG.
const bounds = { minLat: 52.325, maxLat: 52.4, minLon: 4.815, maxLon: 4.955 };
function project(lat, lon) {
  const x = ((lon - bounds.minLon) / (bounds.maxLon - bounds.minLon)) * 1000;
  const y = (1 - (lat - bounds.minLat) / (bounds.maxLat - bounds.minLat)) * 700;
  return [x, y];
}

function car(thing) {
  let entry = cars.get(thing);
  if (!entry) {
    entry = { thing, telemetry: null, online: true, seen: 0, history: [] };
    const dot = document.createElementNS("http://www.w3.org/2000/svg", "circle");
    dot.setAttribute("r", "7");
    dot.setAttribute("class", "car");
    dot.dataset.thing = thing;
    dot.addEventListener("click", () => select(thing));
    const title = document.createElementNS("http://www.w3.org/2000/svg", "title");
    title.textContent = thing;
    dot.append(title);
    $("map").append(dot);
    entry.dot = dot;
    const row = document.createElement("tr");
    row.dataset.thing = thing;
    row.addEventListener("click", () => select(thing));
    entry.row = row;
    cars.set(thing, entry);
    const rows = [...cars.keys()].sort();
    const body = $("cars").tBodies[0];
    body.insertBefore(row, body.children[rows.indexOf(thing)] || null);
  }
  return entry;
}

function onMessage(topic, text) {
  const parts = topic.split("/");
  let payload;
  try {
    payload = JSON.parse(text);
  } catch {
    return;
  }
  if (parts[0] === "cars" && parts[2] === "telemetry") {
    const entry = car(parts[1]);
    entry.telemetry = payload;
    entry.online = true;
    entry.seen = Date.now();
    entry.history.push({ speed: payload.speed, battery: payload.battery });
    if (entry.history.length > HISTORY) entry.history.shift();
    entry.moved = true;
    entry.changed = true;
  } else if (parts[0] === "$aws" && parts[1] === "events" && parts[2] === "presence") {
    const entry = car(parts[4]);
    entry.online = parts[3] === "connected";
    entry.changed = true;
  } else if (parts[0] === "$aws" && parts[1] === "things" && parts[2] === selected) {
    const kind = parts.slice(4).join("/");
    if (kind === "update/documents") showShadow(payload.current, payload.current.version);
    else if (kind === "get/accepted") showShadow(payload, payload.version);
    else if (kind.endsWith("rejected")) showError(`shadow: ${payload.code} ${payload.message}`);
  } else if (parts[0] === "cars" && parts[2] === "predictions") {
    const entry = car(parts[1]);
    entry.prediction = payload;
    entry.changed = true;
  } else if (parts[0] === "cars" && parts[2] === "alerts") {
    const entry = car(parts[1]);
    entry.alertUntil = Date.now() + ALERT_SHOWN_MS;
    entry.changed = true;
    const item = document.createElement("li");
    item.className = "alert";
    item.dataset.thing = parts[1];
    item.textContent = `${clock(payload.at ?? Date.now())} ${parts[1]}: ${payload.kind ?? "alert"} (score ${payload.score ?? "?"})`;
    const list = $("alerts");
    list.prepend(item);
    while (list.children.length > 20) list.lastChild.remove();
    $("alerts-panel").hidden = false;
  } else if (parts[0] === "edge" && parts[2] === "status") {
    const entry = core(parts[1]);
    entry.online = payload.online === true;
    entry.things = Array.isArray(payload.things) ? payload.things : entry.things;
    if (!entry.online) entry.things = [];
    entry.spool = payload.spool || null;
    entry.seen = Date.now();
    for (const thing of entry.things) car(thing).changed = true;
    coresDirty = true;
  } else if (parts[0] === "fleet" && parts[2] === "summary") {
    core(parts[1]).summary = payload;
    coresDirty = true;
  } else if (parts[0] === "cars" && parts[2] === "commands" && parts[3] === "result") {
    if (parts[1] === selected) {
      const item = document.createElement("li");
      item.textContent = `${payload.command ?? "?"}: ${payload.status}${payload.reason ? ` (${payload.reason})` : ""}`;
      item.dataset.id = payload.id ?? "";
      $("results").prepend(item);
    }
  }
  dirty = true;
}

let coresDirty = false;
function core(name) {
  let entry = cores.get(name);
  if (!entry) {
    entry = { name, online: false, things: [], seen: 0, spool: null, summary: null };
    entry.item = document.createElement("li");
    entry.item.dataset.core = name;
    $("cores").append(entry.item);
    $("cores-panel").hidden = false;
    cores.set(name, entry);
  }
  return entry;
}

/** The edge core a car is behind, if any (by the cores' latest status). */
function via(thing) {
  for (const entry of cores.values()) {
    if (entry.online && entry.things.includes(thing)) return entry.name;
  }
  return "cloud";
}

function renderCores(wall) {
  for (const entry of cores.values()) {
    const online = entry.online && wall - entry.seen <= CORE_SILENCE_MS;
    const s = entry.summary;
    const summary = s ? ` · last minute: ${s.cars} cars, ${s.messages} messages, avg ${s.speed?.avg ?? "–"} km/h` : "";
    const spool = entry.spool ? ` · spool ${entry.spool.queued}` : "";
    const behind = online ? entry.things.length : 0;
    const text = `${entry.name}: ${online ? "online" : "offline"} · ${behind} car${behind === 1 ? "" : "s"} behind it${spool}${summary}`;
    const className = online ? "core online" : "core offline";
    if (entry.item.textContent !== text) entry.item.textContent = text;
    if (entry.item.className !== className) entry.item.className = className;
  }
}

let shadowState = null;
function showShadow(document, version) {
  shadowState = document.state || {};
  $("shadow-version").textContent = `version ${version}`;
  const reported = { ...(shadowState.reported || {}) };
  const desired = shadowState.desired || {};
  const delta = {};
  for (const [key, value] of Object.entries(desired)) {
    if (JSON.stringify(reported[key]) !== JSON.stringify(value)) delta[key] = value;
  }
  $("shadow").textContent = JSON.stringify(
    { desired, reported, delta: Object.keys(delta).length ? delta : undefined, version },
    null,
    2,
  );
  const form = $("desired");
  if (reported.lights) form.lights.value = reported.lights;
  if (reported.speedLimit !== undefined) form.speedLimit.value = reported.speedLimit;
  form.doorsLocked.checked = !!reported.doorsLocked;
}

function select(thing) {
  selected = thing;
  $("detail").hidden = false;
  $("detail-name").textContent = thing;
  $("results").textContent = "";
  $("shadow").textContent = "…";
  client.subscribe(`$aws/things/${thing}/shadow/update/documents`, 1);
  client.subscribe(`$aws/things/${thing}/shadow/get/+`, 1);
  client.subscribe(`$aws/things/${thing}/shadow/update/rejected`, 1);
  client.subscribe(`cars/${thing}/commands/result`, 1);
  setTimeout(() => client.publish(`$aws/things/${thing}/shadow/get`, "{}", 1), 300);
  dirty = true;
}

/** A line of the last samples, scaled to their range (at least `span` wide). */
function chart(canvas, values, span) {
  const context = canvas.getContext("2d");
  context.clearRect(0, 0, canvas.width, canvas.height);
  if (!values.length) return;
  let low = Math.min(...values);
  let high = Math.max(...values);
  if (high - low < span) {
    const middle = (high + low) / 2;
    low = middle - span / 2;
    high = middle + span / 2;
  }
  context.strokeStyle = "#2563eb";
  context.lineWidth = 2;
  context.beginPath();
  values.forEach((v, i) => {
    const x = (i / Math.max(1, values.length - 1)) * canvas.width;
    const y = canvas.height - ((v - low) / (high - low)) * (canvas.height - 8) - 4;
    if (i === 0) context.moveTo(x, y);
    else context.lineTo(x, y);
  });
  context.stroke();
}

let lastTable = 0;
let lastSweep = 0;
function render(now) {
  requestAnimationFrame(render);
  if (!dirty) return;
  dirty = false;
  const wall = Date.now();
  // Once a second every car is looked at (silence turns it offline); otherwise only the cars a
  // message touched: a thousand cars cost a thousand small updates a second, not per frame.
  const sweep = now - lastSweep > 1000;
  if (sweep) lastSweep = now;
  let online = 0;
  for (const entry of cars.values()) {
    const isOnline = entry.online && wall - entry.seen <= 5000;
    if (isOnline) online++;
    if (entry.moved && entry.telemetry) {
      entry.moved = false;
      const [x, y] = project(entry.telemetry.position.lat, entry.telemetry.position.lon);
      entry.dot.setAttribute("cx", x.toFixed(1));
      entry.dot.setAttribute("cy", y.toFixed(1));
    }
    const className = `car${isOnline ? "" : " offline"}${entry.thing === selected ? " selected" : ""}`;
    if (entry.dotClass !== className) {
      entry.dotClass = className;
      entry.dot.setAttribute("class", className);
    }
    if (isOnline !== entry.wasOnline) {
      entry.wasOnline = isOnline;
      entry.changed = true;
    }
  }
  $("counts").textContent = `${online} online of ${cars.size}`;
  if (coresDirty || sweep) {
    coresDirty = false;
    renderCores(wall);
  }
  // The table is text-heavy: twice a second, and only rows whose car changed.
  if (now - lastTable > 500 || sweep) {
    lastTable = now;
    for (const entry of cars.values()) {
      const alerting = (entry.alertUntil ?? 0) > wall;
      if (alerting !== !!entry.wasAlerting) {
        entry.wasAlerting = alerting;
        entry.changed = true;
      }
      const className = [entry.thing === selected ? "selected" : "", alerting ? "alert" : ""].join(" ").trim();
      if (entry.row.className !== className) entry.row.className = className;
      if (!entry.changed) continue;
      entry.changed = false;
      const t = entry.telemetry || {};
      const texts = [
        entry.thing,
        entry.wasOnline ? "online" : "offline",
        entry.wasOnline ? via(entry.thing) : "",
        t.speed ?? "",
        t.battery ?? "",
        entry.prediction?.rangeKm ?? "",
        t.lights ?? "",
        t.doorsLocked === undefined ? "" : t.doorsLocked ? "locked" : "open",
        entry.seen ? clock(entry.seen) : "",
      ];
      // Cells are made once; only text that changed is written.
      while (entry.row.cells.length < texts.length) entry.row.insertCell();
      texts.forEach((text, i) => {
        const cell = entry.row.cells[i];
        const value = String(text);
        if (cell.textContent !== value) cell.textContent = value;
      });
    }
    const entry = selected && cars.get(selected);
    if (entry) {
      const speeds = entry.history.map((h) => h.speed);
      const batteries = entry.history.map((h) => h.battery);
      chart($("speed-chart"), speeds, 20);
      chart($("battery-chart"), batteries, 5);
      $("speed-caption").textContent = `speed ${speeds.at(-1) ?? "–"} km/h (${speeds.length} samples)`;
      $("battery-caption").textContent = `battery ${batteries.at(-1) ?? "–"} %`;
    }
  }
}

/** HH:MM:SS of a time, without the cost of Intl formatting a thousand times a second. */
function clock(ms) {
  const d = new Date(ms);
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, "0")).join(":");
}

function drawRoute() {
  const route = [
    [52.3889, 4.8375], [52.393, 4.898], [52.378, 4.942], [52.352, 4.948],
    [52.333, 4.911], [52.335, 4.859], [52.356, 4.83], [52.376, 4.825],
  ];
  const path = document.createElementNS("http://www.w3.org/2000/svg", "polygon");
  path.setAttribute("class", "route");
  path.setAttribute("points", route.map(([a, b]) => project(a, b).join(",")).join(" "));
  $("map").append(path);
}

async function login(event) {
  event.preventDefault();
  const form = event.target;
  showError("");
  const response = await fetch("/dashboard/login", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ username: form.username.value, password: form.password.value }),
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    showError(body.message || `sign-in failed (${response.status})`);
    return;
  }
  credentials = { ...body.Credentials, region: body.Region, user: form.username.value };
  form.password.value = "";
  start();
}

function start() {
  $("login").hidden = true;
  $("app").hidden = false;
  $("logout").hidden = false;
  $("who").textContent = credentials.user;
  const clientId = `dashboard-${credentials.user}-${Math.random().toString(36).slice(2, 8)}`;
  client = new MqttClient({
    clientId,
    url: async () => {
      if (Date.now() / 1000 >= credentials.Expiration) {
        throw new Error("your sign-in expired: sign in again");
      }
      return presignMqttUrl({
        host: location.host,
        region: credentials.region,
        accessKeyId: credentials.AccessKeyId,
        secretAccessKey: credentials.SecretKey,
        sessionToken: credentials.SessionToken,
      });
    },
    onMessage,
    onState: setConnection,
  });
  client.subscribe("cars/+/telemetry", 0);
  client.subscribe("$aws/events/presence/+/+", 0);
  client.subscribe("edge/+/status", 1);
  client.subscribe("fleet/+/summary", 0);
  client.subscribe("cars/+/predictions", 0);
  client.subscribe("cars/+/alerts", 1);
  // Temporary credentials end: say so, and stop, rather than fail quietly on the next reconnect.
  clearInterval(expiryTimer);
  expiryTimer = setInterval(() => {
    if (credentials && Date.now() / 1000 >= credentials.Expiration) {
      clearInterval(expiryTimer);
      if (client) {
        client.onState = () => {};
        client.close();
      }
      client = null;
      setConnection("error", "your sign-in expired: sign in again");
    }
  }, 10_000);
}
let expiryTimer = null;

function logout() {
  clearInterval(expiryTimer);
  if (client) {
    client.onState = () => {};
    client.close();
  }
  client = null;
  credentials = null;
  selected = null;
  cars.clear();
  $("map").textContent = "";
  drawRoute();
  $("cars").tBodies[0].textContent = "";
  $("app").hidden = true;
  $("detail").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  $("who").textContent = "";
  setConnection("offline", "signed out");
}

function setDesired(event) {
  event.preventDefault();
  if (!selected) return;
  const form = event.target;
  const desired = {
    lights: form.lights.value,
    speedLimit: Number(form.speedLimit.value),
    doorsLocked: form.doorsLocked.checked,
  };
  client.publish(
    `$aws/things/${selected}/shadow/update`,
    JSON.stringify({ state: { desired }, clientToken: `dashboard-${Date.now()}` }),
    1,
  );
}

let commandCount = 0;
function sendCommand(event) {
  const command = event.target.dataset.command;
  if (!command || !selected) return;
  const id = `cmd-${Date.now()}-${++commandCount}`;
  client.publish(`cars/${selected}/commands`, JSON.stringify({ id, command }), 1);
}

drawRoute();
$("login").addEventListener("submit", login);
$("logout").addEventListener("click", logout);
$("desired").addEventListener("submit", setDesired);
document.querySelector(".commands").addEventListener("click", sendCommand);
requestAnimationFrame(render);
// Cars fall silent without a message: redraw once a second so they turn offline.
setInterval(() => {
  dirty = true;
}, 1000);
