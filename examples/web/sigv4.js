// SigV4 presigning of `wss://{host}/mqtt` in the browser, with Web Crypto (HMAC-SHA256,
// SHA-256), as AWS IoT's JavaScript SDK does for MQTT over WebSocket: the query carries the
// algorithm, credential, date, expiry and signed headers (`host`), the payload hash is that of the
// empty string, and a session token is appended after signing, outside the canonical query.
//
// presignMqttUrl({ host, region, accessKeyId, secretAccessKey, sessionToken, now, expires })
//   -> Promise<string>  the full `wss://host/mqtt?...` URL.
// Works the same in Node 20 (globalThis.crypto), which the tests use to compare it with the
// `aws-sigv4` crate's output.

const encoder = new TextEncoder();

/** AWS's URI encoding: everything but A-Z a-z 0-9 - _ . ~ as upper-case %XX. */
export function uriEncode(text) {
  return encodeURIComponent(text).replace(
    /[!'()*]/g,
    (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase(),
  );
}

function hex(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function sha256Hex(text) {
  return hex(await crypto.subtle.digest("SHA-256", encoder.encode(text)));
}

async function hmac(key, text) {
  const raw = typeof key === "string" ? encoder.encode(key) : key;
  const imported = await crypto.subtle.importKey(
    "raw",
    raw,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return crypto.subtle.sign("HMAC", imported, encoder.encode(text));
}

/** `YYYYMMDDTHHMMSSZ` of a Date. */
export function amzDate(date) {
  return date.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
}

/** The presigned URL (see the file's header). */
export async function presignMqttUrl({
  host,
  region,
  accessKeyId,
  secretAccessKey,
  sessionToken,
  now = new Date(),
  expires = 300,
  service = "iotdevicegateway",
  path = "/mqtt",
}) {
  const stamp = amzDate(now);
  const day = stamp.slice(0, 8);
  const scope = `${day}/${region}/${service}/aws4_request`;
  // Already in name order, so also the canonical query.
  const query = [
    "X-Amz-Algorithm=AWS4-HMAC-SHA256",
    `X-Amz-Credential=${uriEncode(`${accessKeyId}/${scope}`)}`,
    `X-Amz-Date=${stamp}`,
    `X-Amz-Expires=${expires}`,
    "X-Amz-SignedHeaders=host",
  ].join("&");
  const canonical = [
    "GET",
    path,
    query,
    `host:${host}\n`,
    "host",
    await sha256Hex(""),
  ].join("\n");
  const toSign = ["AWS4-HMAC-SHA256", stamp, scope, await sha256Hex(canonical)].join("\n");
  let key = await hmac(`AWS4${secretAccessKey}`, day);
  key = await hmac(key, region);
  key = await hmac(key, service);
  key = await hmac(key, "aws4_request");
  const signature = hex(await hmac(key, toSign));
  let url = `wss://${host}${path}?${query}&X-Amz-Signature=${signature}`;
  if (sessionToken) {
    url += `&X-Amz-Security-Token=${uriEncode(sessionToken)}`;
  }
  return url;
}
