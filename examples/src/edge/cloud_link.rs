//! The edge core's link to the cloud (tokio): opens the transport (TLS with the core's
//! certificate), pumps bytes between it and the engine, where the core's [`ClientSession`]
//! runs, and reconnects with a jittered, growing delay when it ends. The session (and so every
//! MQTT rule) lives on the engine thread; this task only moves bytes.
//!
//! [`ClientSession`]: crate::device::ClientSession

use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, watch};

use super::program::{CLOUD_WRITE_QUEUE, EdgeRequest};
use crate::device::{Backoff, Endpoint, ReconnectPolicy};
use crate::engine::{EngineHandle, Event, now_ms};

/// A connection that lasted this long resets the reconnect delay.
const STABLE_AFTER: Duration = Duration::from_secs(10);

/// Runs the link until `shutdown` turns true or the engine stops.
pub async fn run(
    endpoints: Vec<Endpoint>,
    engine: EngineHandle<EdgeRequest>,
    policy: ReconnectPolicy,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = Backoff::new(policy.base, policy.cap, now_ms());
    let mut epoch = 0u64;
    let mut next = 0usize;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let Some(endpoint) = endpoints.get(next % endpoints.len().max(1)) else {
            return;
        };
        let started = tokio::time::Instant::now();
        match endpoint.open(now_ms() / 1000).await {
            Ok(stream) => {
                epoch += 1;
                let (tx, mut rx) = mpsc::channel::<Bytes>(CLOUD_WRITE_QUEUE);
                if !engine.send(Event::Request(EdgeRequest::CloudUp {
                    epoch,
                    to_cloud: tx,
                })) {
                    return;
                }
                let (mut reader, mut writer) = tokio::io::split(stream);
                let mut buf = vec![0u8; 16 * 1024];
                let mut stop = false;
                loop {
                    tokio::select! {
                        read = reader.read(&mut buf) => match read {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                let bytes = Bytes::copy_from_slice(buf.get(..n).unwrap_or_default());
                                if !engine.send(Event::Request(EdgeRequest::CloudBytes { epoch, bytes })) {
                                    return;
                                }
                            }
                        },
                        chunk = rx.recv() => match chunk {
                            Some(chunk) => {
                                if writer.write_all(&chunk).await.is_err() {
                                    break;
                                }
                            }
                            // The session closed the connection (or the engine is gone).
                            None => {
                                let _ = writer.flush().await;
                                let _ = writer.shutdown().await;
                                break;
                            }
                        },
                        _ = shutdown.changed(), if !stop => {
                            // Keep pumping: the engine's goodbye (status, DISCONNECT) is on its
                            // way and the channel closes after it.
                            stop = true;
                        }
                    }
                }
                engine.send(Event::Request(EdgeRequest::CloudDown { epoch }));
                if started.elapsed() >= STABLE_AFTER {
                    backoff.reset();
                }
                if stop || *shutdown.borrow() {
                    return;
                }
            }
            Err(error) => {
                tracing::info!(endpoint = endpoint.address(), %error, "edge: the cloud is unreachable");
                next = next.wrapping_add(1);
            }
        }
        let delay = backoff.next_delay();
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = shutdown.changed() => return,
        }
    }
}
