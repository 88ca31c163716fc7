//! Shared set-up for the broker's integration tests: a scratch data directory provisioned through
//! the same API the CLI uses, configuration on run-time ports, and TLS clients.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SignatureLocation, SigningSettings};
use aws_sigv4::sign::v4;
use iot_auth::provision::create_keys_and_certificate;
use iot_auth::registry::CertificateStatus;
use iot_examples::config::BrokerConfig;
use iot_examples::store::access_keys::{AccessKey, AccessKeys};
use iot_examples::store::data_dir::DataDir;
use rumqttc::{AsyncClient, EventLoop, MqttOptions, TlsConfiguration, Transport};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

pub fn now() -> i64 {
    (iot_examples::engine::now_ms() / 1000) as i64
}

/// Lets a device connect as any client id and use any topic under `cars/` and its shadows.
pub const CAR_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":"iot:Connect","Resource":"arn:aws:iot:us-east-1:123456789012:client/*"},
  {"Effect":"Allow","Action":["iot:Publish","iot:Receive","iot:RetainPublish"],"Resource":[
     "arn:aws:iot:us-east-1:123456789012:topic/cars/*",
     "arn:aws:iot:us-east-1:123456789012:topic/$aws/things/*"]},
  {"Effect":"Allow","Action":"iot:Subscribe","Resource":[
     "arn:aws:iot:us-east-1:123456789012:topicfilter/cars/*",
     "arn:aws:iot:us-east-1:123456789012:topicfilter/$aws/things/*"]},
  {"Effect":"Deny","Action":"iot:Publish","Resource":"arn:aws:iot:us-east-1:123456789012:topic/cars/forbidden"},
  {"Effect":"Deny","Action":"iot:Subscribe","Resource":"arn:aws:iot:us-east-1:123456789012:topicfilter/cars/forbidden"}]}"#;

/// A scratch directory removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(label: &str) -> Scratch {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "aws-iot-rs-{label}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn config(data_dir: &Path) -> BrokerConfig {
    let mut config = BrokerConfig {
        data_dir: data_dir.to_owned(),
        ..BrokerConfig::default()
    };
    config.listeners.mqtts_port = 0;
    config.listeners.alpn_port = Some(0);
    config.listeners.metrics = Some("127.0.0.1:0".parse().unwrap());
    config
}

/// A device's credentials as files and PEM.
#[derive(Clone)]
pub struct Device {
    pub id: String,
    pub cert_pem: String,
    pub key_pem: String,
    pub ca_pem: String,
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
    pub ca_path: PathBuf,
}

/// Provisions `count` devices with `CAR_POLICY` (as the CLI would), with the broker stopped.
pub fn provision(config: &BrokerConfig, count: usize) -> Vec<Device> {
    let dir = DataDir::new(&config.data_dir);
    let mut opened = dir.open(config, now()).unwrap();
    let _ = opened.registry.create_policy("cars", CAR_POLICY);
    let ca_pem = std::fs::read_to_string(dir.ca_cert()).unwrap();
    std::fs::create_dir_all(dir.certs()).unwrap();
    let devices = (0..count)
        .map(|_| {
            let issued =
                create_keys_and_certificate(&mut opened.registry, &opened.ca, true, now()).unwrap();
            let id = issued.certificate_id.to_string();
            opened.registry.attach_policy("cars", &id).unwrap();
            let cert_path = dir.certs().join(format!("{id}.cert.pem"));
            let key_path = dir.certs().join(format!("{id}.private.key"));
            std::fs::write(&cert_path, &issued.certificate_pem).unwrap();
            std::fs::write(&key_path, &issued.private_key_pem).unwrap();
            Device {
                id,
                cert_pem: issued.certificate_pem,
                key_pem: issued.private_key_pem,
                ca_pem: ca_pem.clone(),
                cert_path,
                key_path,
                ca_path: dir.ca_cert(),
            }
        })
        .collect();
    opened.store.put_registry_json(&opened.registry.to_json());
    opened.store.commit().unwrap();
    devices
}

pub fn set_status(
    running: &iot_examples::broker::server::Running,
    device: &Device,
    status: CertificateStatus,
) {
    let id = iot_auth::x509::CertificateId::parse(&device.id).unwrap();
    running
        .registry
        .write()
        .unwrap()
        .set_certificate_status(&id, status)
        .unwrap();
}

pub fn client_tls(device: Option<&Device>, ca_pem: &str, alpn: &[&[u8]]) -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match device {
        Some(d) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(d.cert_pem.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(d.key_pem.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config
}

/// A rumqttc client over TLS to `localhost:port`.
pub fn rumqttc(
    device: &Device,
    client_id: &str,
    port: u16,
    clean: bool,
) -> (AsyncClient, EventLoop) {
    let mut options = MqttOptions::new(client_id, "localhost", port);
    options.set_keep_alive(Duration::from_secs(30));
    options.set_clean_session(clean);
    options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
        Arc::new(client_tls(Some(device), &device.ca_pem, &[])),
    )));
    AsyncClient::new(options, 100)
}

/// Why [`wait_for`] did not get what it waited for.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// Nothing it wanted within 10 s.
    #[error("timed out")]
    TimedOut,
    /// The connection failed (a refused handshake, a closed socket, ...).
    #[error("{0}")]
    Connection(#[from] rumqttc::ConnectionError),
}

/// Polls the event loop until `pick` returns something, or fails after 10 s.
pub async fn wait_for<T>(
    events: &mut EventLoop,
    mut pick: impl FnMut(&rumqttc::Event) -> Option<T>,
) -> Result<T, WaitError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let event = tokio::time::timeout_at(deadline, events.poll())
            .await
            .map_err(|_| WaitError::TimedOut)??;
        if let Some(found) = pick(&event) {
            return Ok(found);
        }
    }
}

pub fn incoming_publish(event: &rumqttc::Event) -> Option<rumqttc::Publish> {
    match event {
        rumqttc::Event::Incoming(rumqttc::Packet::Publish(p)) => Some(p.clone()),
        _ => None,
    }
}

/// The broker binary, built by cargo for the integration tests.
pub fn broker_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_aws-iot-broker"))
}

/// A broker running as its own process.
pub struct BrokerProcess {
    pub child: std::process::Child,
    pub ready: serde_json::Value,
}

/// Starts `command` (stdout piped, stderr dropped) and waits for its `READY {json}` line.
pub fn start_until_ready(
    mut command: std::process::Command,
) -> (std::process::Child, serde_json::Value) {
    use std::io::BufRead;
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufReader::new(stdout).lines();
    let ready = loop {
        let line = lines.next().expect("the program printed READY").unwrap();
        if let Some(json) = line.strip_prefix("READY ") {
            break serde_json::from_str(json).unwrap();
        }
    };
    (child, ready)
}

/// The port of an `address:port` text in a READY line's field.
pub fn ready_port(ready: &serde_json::Value, field: &str) -> u16 {
    ready[field]
        .as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// Runs a third-party tool off the async runtime; a tool that cannot start fails the test with
/// `hint` (how to install it).
pub async fn run_tool(
    mut command: std::process::Command,
    hint: &'static str,
) -> std::process::Output {
    let program = command.get_program().to_string_lossy().into_owned();
    tokio::task::spawn_blocking(move || {
        command
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program} ({e}); {hint}"))
    })
    .await
    .unwrap()
}

/// A tool's stdout and stderr, for assertion messages.
pub fn output_text(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

impl BrokerProcess {
    /// Starts `broker --config {config_path}` and waits for its READY line.
    pub fn start(config_path: &Path) -> BrokerProcess {
        let mut command = std::process::Command::new(broker_binary());
        command.arg("--config").arg(config_path);
        let (child, ready) = start_until_ready(command);
        BrokerProcess { child, ready }
    }

    pub fn alpn_port(&self) -> u16 {
        ready_port(&self.ready, "alpn")
    }

    pub fn mqtts_port(&self) -> u16 {
        ready_port(&self.ready, "mqtts")
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill_9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A configuration file on run-time ports for a broker process.
pub fn write_config(dir: &Path) -> PathBuf {
    let path = dir.join("broker.toml");
    let text = format!(
        "data_dir = {:?}\n[listeners]\nmqtts_port = 0\nalpn_port = 0\nmetrics = \"127.0.0.1:0\"\n",
        dir.join("data")
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// `path?query` of a presigned `GET /mqtt` for `localhost:{port}`, signed by `aws-sigv4` at
/// `time`, valid for `expires`.
pub fn presigned_mqtt_path(port: u16, key: &AccessKey, time: SystemTime, expires: u64) -> String {
    let identity = Credentials::new(
        key.access_key_id.as_str(),
        key.secret_access_key.as_str(),
        None,
        None,
        "interop",
    )
    .into();
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(Duration::from_secs(expires));
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("iotdevicegateway")
        .time(time)
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let host = format!("localhost:{port}");
    let url = format!("https://{host}/mqtt");
    let signable = SignableRequest::new(
        "GET",
        url.as_str(),
        [("host", host.as_str())].into_iter(),
        SignableBody::Bytes(b""),
    )
    .unwrap();
    let (instructions, _) = aws_sigv4::http_request::sign(signable, &params)
        .unwrap()
        .into_parts();
    let mut request = http::Request::builder().uri(url).body(()).unwrap();
    instructions.apply_to_request_http1x(&mut request);
    request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap()
}

/// Creates an access key for `user` with the `cars` policy attached to the user (broker stopped).
pub fn provision_access_key(config: &BrokerConfig, user: &str) -> AccessKey {
    let dir = DataDir::new(&config.data_dir);
    let mut opened = dir.open(config, now()).unwrap();
    let mut keys = AccessKeys::load(&opened.store, &config.account).unwrap();
    let key = keys.create(user, now() as u64).unwrap();
    keys.save(&mut opened.store);
    let _ = opened.registry.create_policy("cars", CAR_POLICY);
    opened
        .registry
        .attach_policy("cars", &keys.principal(&key))
        .unwrap();
    opened.store.put_registry_json(&opened.registry.to_json());
    opened.store.commit().unwrap();
    key
}

/// One HTTP/1.1 request over TLS to the ALPN port (`request_line` like `POST /topics/a HTTP/1.1`),
/// with an optional client certificate, the given ALPN and extra headers (`Host` added unless
/// given). Returns (status, JSON body); status 0 when the connection failed or the server closed
/// without answering.
pub async fn https(
    port: u16,
    device: Option<&Device>,
    ca_pem: &str,
    alpn: &[&[u8]],
    request_line: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> (u16, serde_json::Value) {
    let reply = https_reply(port, device, ca_pem, alpn, request_line, headers, body).await;
    (reply.status, reply.body)
}

/// A response as [`https_reply`] read it.
#[derive(Debug)]
pub struct HttpsReply {
    /// The status (0 when there was no answer).
    pub status: u16,
    /// Header names (lower-case) and values.
    pub headers: Vec<(String, String)>,
    /// The body as JSON (`Null` when it is not JSON).
    pub body: serde_json::Value,
}

impl HttpsReply {
    /// The first value of header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// [`https`] with the response headers.
pub async fn https_reply(
    port: u16,
    device: Option<&Device>,
    ca_pem: &str,
    alpn: &[&[u8]],
    request_line: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> HttpsReply {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let no_answer = HttpsReply {
        status: 0,
        headers: Vec::new(),
        body: serde_json::Value::Null,
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_tls(device, ca_pem, alpn)));
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
        Ok(tcp) => connector.connect(name, tcp).await,
        Err(error) => Err(error),
    };
    let Ok(mut tls) = tls else {
        return no_answer;
    };
    let mut head = format!("{request_line}\r\n");
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: localhost:{port}\r\n"));
    }
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    ));
    let _ = tls.write_all(head.as_bytes()).await;
    let _ = tls.write_all(body).await;
    // Read to the end, or only the head of a `101 Switching Protocols` (the connection stays).
    let mut response = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match tls.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => response.extend_from_slice(&chunk[..n]),
        }
        if response.starts_with(b"HTTP/1.1 101") && response.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    HttpsReply {
        status,
        headers,
        body: serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    }
}

/// The metrics endpoint's text (`GET /metrics`).
pub async fn metrics(addr: std::net::SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).await.unwrap();
    text
}

/// A TCP port free on loopback right now (for a broker that must come back on the same port).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A configuration file for a broker process on fixed ports (so a restarted broker is found
/// where it was): `(mqtts, alpn)`.
pub fn write_config_on_ports(dir: &Path, mqtts: u16, alpn: u16) -> PathBuf {
    let path = dir.join("broker.toml");
    let text = format!(
        "data_dir = {:?}\n[listeners]\nmqtts_port = {mqtts}\nalpn_port = {alpn}\nmetrics = \"127.0.0.1:0\"\n",
        dir.join("data")
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// The device-side endpoint of a broker's TLS port for `device`.
pub fn tls_endpoint(device: &Device, port: u16) -> iot_examples::device::Endpoint {
    iot_examples::device::Endpoint {
        host: "localhost".into(),
        port,
        transport: iot_examples::device::Transport::Tls(Arc::new(client_tls(
            Some(device),
            &device.ca_pem,
            &[],
        ))),
    }
}

// The device client's probe, shared by the device-client and interop tests.

/// What the probe saw, shared with the test.
#[derive(Debug, Default)]
pub struct Seen {
    pub connects: u32,
    pub subacks: u32,
    pub received: Vec<String>,
    /// Payloads whose PUBACK came.
    pub delivered: std::collections::BTreeSet<u32>,
}

/// Publishes `0..count` at QoS 1 on `topic` every `every_ms`, records what it sees.
pub struct Probe {
    topic: String,
    count: u32,
    next: u32,
    every_ms: u64,
    next_at: u64,
    ids: Vec<(iot_examples::device::PublishId, u32)>,
    seen: Arc<std::sync::Mutex<Seen>>,
}

impl Probe {
    pub fn new(topic: &str, count: u32, every_ms: u64) -> (Probe, Arc<std::sync::Mutex<Seen>>) {
        let seen = Arc::new(std::sync::Mutex::new(Seen::default()));
        let probe = Probe {
            topic: topic.into(),
            count,
            next: 0,
            every_ms,
            next_at: 0,
            ids: Vec::new(),
            seen: seen.clone(),
        };
        (probe, seen)
    }
}

impl iot_examples::device::DeviceApp for Probe {
    fn on_event(
        &mut self,
        session: &mut iot_examples::device::ClientSession,
        event: iot_examples::device::SessionEvent,
        now_ms: u64,
    ) {
        use iot_examples::device::SessionEvent;
        let mut seen = self.seen.lock().unwrap();
        match event {
            SessionEvent::Connected { .. } => seen.connects += 1,
            SessionEvent::Subscribed(_) => seen.subacks += 1,
            SessionEvent::Message(message) => {
                seen.received
                    .push(String::from_utf8(message.payload.to_vec()).unwrap());
                if let Some(token) = message.ack {
                    session.ack(token, now_ms);
                }
            }
            SessionEvent::Delivered(id) => {
                if let Some((_, n)) = self.ids.iter().find(|(i, _)| *i == id) {
                    seen.delivered.insert(*n);
                }
            }
            _ => {}
        }
    }

    fn poll_timeout(&self) -> Option<u64> {
        (self.next < self.count).then_some(self.next_at)
    }

    fn on_timeout(&mut self, session: &mut iot_examples::device::ClientSession, now_ms: u64) {
        use iot_examples::device::PublishOutcome;
        if self.next < self.count {
            match session.publish(
                &self.topic,
                self.next.to_string(),
                mqtt_codec::QoS::AtLeastOnce,
                false,
                now_ms,
            ) {
                Ok(PublishOutcome::Accepted(id)) => {
                    self.ids.push((id, self.next));
                    self.next += 1;
                }
                other => panic!("{other:?}"),
            }
        }
        self.next_at = now_ms + self.every_ms;
    }
}

/// A session that subscribes to `filter` once connected (and keeps it across reconnects).
pub fn subscribed(
    options: iot_examples::device::SessionOptions,
    filter: &str,
) -> iot_examples::device::ClientSession {
    let mut session = iot_examples::device::ClientSession::new(options);
    session
        .subscribe(&[(filter, mqtt_codec::QoS::AtLeastOnce)], 0)
        .unwrap();
    session
}

pub async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    wait_until_or(what, &mut done, String::new).await;
}

pub async fn wait_until_or(what: &str, mut done: impl FnMut() -> bool, why: impl Fn() -> String) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what} {}",
            why()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs a [`Probe`] publishing 20 QoS 1 messages to its own topic, subscribed to it, over
/// `endpoint`: all are acknowledged and come back in order, on one connection.
pub async fn probe_round_trip(
    endpoint: iot_examples::device::Endpoint,
    client_id: &str,
    policy: iot_examples::device::ReconnectPolicy,
) {
    let topic = format!("cars/{client_id}/echo");
    let (mut probe, seen) = Probe::new(&topic, 20, 20);
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let session = subscribed(iot_examples::device::SessionOptions::new(client_id), &topic);
    let task = tokio::spawn(async move {
        iot_examples::device::run(session, vec![endpoint], &mut probe, policy, shutdown).await
    });
    wait_until("20 deliveries and 20 messages", || {
        let seen = seen.lock().unwrap();
        seen.delivered.len() == 20 && seen.received.len() == 20
    })
    .await;
    stop.send(true).unwrap();
    let session = task.await.unwrap();
    assert_eq!(session.unacknowledged(), 0);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.connects, 1);
    let expected: Vec<String> = (0..20).map(|n| n.to_string()).collect();
    assert_eq!(seen.received, expected, "in order, each once");
}

/// Creates policy `name` from `document` and attaches it to `principal` (a certificate id or a
/// user ARN), with the broker stopped.
pub fn attach_new_policy(config: &BrokerConfig, name: &str, document: &str, principal: &str) {
    let dir = DataDir::new(&config.data_dir);
    let mut opened = dir.open(config, now()).unwrap();
    opened.registry.create_policy(name, document).unwrap();
    opened.registry.attach_policy(name, principal).unwrap();
    opened.store.put_registry_json(&opened.registry.to_json());
    opened.store.commit().unwrap();
}

/// An edge core's configuration with its cloud nowhere (a free port nobody listens on; no
/// discovery registration): local traffic only. Client devices' certificates come from the CA of
/// `devices`; the core's own cloud identity is `devices[1]`'s. Its data lives in `dir/edge`.
pub fn offline_core_config(
    dir: &Path,
    devices: &[Device],
) -> iot_examples::config::edge::EdgeConfig {
    let mut edge = iot_examples::config::edge::EdgeConfig {
        data_dir: dir.join("edge"),
        ..iot_examples::config::edge::EdgeConfig::default()
    };
    edge.cloud.mqtts_port = free_port();
    edge.cloud.register_connectivity = false;
    edge.cloud.ca = devices[0].ca_path.clone();
    edge.cloud.certificate = devices[1].cert_path.clone();
    edge.cloud.private_key = devices[1].key_path.clone();
    edge.local.mqtts_port = 0;
    edge.local.client_device_ca = devices[0].ca_path.clone();
    edge
}

/// The broker's CLI refused a command.
#[derive(Debug, thiserror::Error)]
#[error("the CLI failed ({status}): {stderr}")]
pub struct CliError {
    /// Its exit status.
    pub status: std::process::ExitStatus,
    /// What it printed on stderr.
    pub stderr: String,
}

/// Runs `aws-iot-broker --config {config} {args}` (through the admin socket while the broker
/// runs) in the configuration's directory; returns the JSON it printed.
pub fn broker_cli(config: &Path, args: &[&str]) -> Result<serde_json::Value, CliError> {
    let out = std::process::Command::new(broker_binary())
        .current_dir(config.parent().unwrap())
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(CliError {
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    Ok(serde_json::from_slice(&out.stdout).unwrap())
}

/// The device `create-keys-and-certificate` made (its CLI answer, with the files it wrote).
pub fn device_of(created: &serde_json::Value) -> Device {
    let file = |name: &str| created["files"][name].as_str().unwrap().into();
    Device {
        id: created["certificateId"].as_str().unwrap().to_owned(),
        cert_pem: created["certificatePem"].as_str().unwrap().to_owned(),
        key_pem: created["keyPair"]["PrivateKey"]
            .as_str()
            .unwrap()
            .to_owned(),
        ca_pem: std::fs::read_to_string(file("rootCA")).unwrap(),
        cert_path: file("certificate"),
        key_path: file("privateKey"),
        ca_path: file("rootCA"),
    }
}
