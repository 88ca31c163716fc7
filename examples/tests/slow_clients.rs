//! Slow clients through the real broker: an HTTPS request whose body trickles in a byte at a time
//! after its headers is answered with an error once the body deadline passes and its connection
//! is closed, rather than holding a task for as long as the client likes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_body_sent_a_byte_a_second_is_cut_off() {
    let scratch = Scratch::new("slow-body");
    let config = config(&scratch.0);
    let running = iot_examples::broker::server::start(&config).await.unwrap();
    let port = running.alpn.unwrap().port();
    let ca_pem = std::fs::read_to_string(
        iot_examples::store::data_dir::DataDir::new(&config.data_dir).ca_cert(),
    )
    .unwrap();

    let connector =
        tokio_rustls::TlsConnector::from(Arc::new(client_tls(None, &ca_pem, &[b"http/1.1"])));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = connector.connect(name, tcp).await.unwrap();
    let (mut reader, mut writer) = tokio::io::split(tls);
    writer
        .write_all(b"POST /topics/cars/1?qos=1 HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n\r\n")
        .await
        .unwrap();
    // One byte a second, for longer than any deadline.
    let trickle = tokio::spawn(async move {
        for _ in 0..60 {
            if writer.write_all(b"x").await.is_err() || writer.flush().await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    let mut response = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(40), reader.read_to_end(&mut response))
        .await
        .expect("the broker ends the request well before the client would");
    let _ = read; // a reset after the answer is fine too
    let text = String::from_utf8_lossy(&response);
    assert!(
        text.starts_with("HTTP/1.1 400"),
        "answered with an error: {text}"
    );
    assert!(text.contains("not received in time"), "{text}");
    trickle.abort();
    running.shutdown().await;
}
