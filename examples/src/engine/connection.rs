//! One MQTT connection over any byte stream (TLS, WebSocket, plain TCP): frames what arrives with
//! `mqtt-codec`, reports it to the engine, and writes what the engine sends back.

use bytes::BytesMut;
use iot_broker_core::auth::TransportInfo;
use iot_broker_core::codec::{Limits, decode_buf};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::{EngineHandle, Event, ToConnection};

/// Serves one connection until either side ends it.
pub async fn serve<S, Q>(
    stream: S,
    transport: TransportInfo,
    engine: EngineHandle<Q>,
    limits: Limits,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    Q: Send + 'static,
{
    let (outbox, mut inbox) = mpsc::unbounded_channel();
    let Some(conn) = engine.open(transport, outbox).await else {
        return;
    };
    let (mut reader, mut writer) = tokio::io::split(stream);

    let write = async move {
        let mut buf = BytesMut::with_capacity(4096);
        while let Some(message) = inbox.recv().await {
            let mut closing = false;
            let mut next = Some(message);
            // Coalesce what is already queued into one write.
            while let Some(message) = next {
                match message {
                    ToConnection::Packet(packet) => {
                        if packet.encode(&mut buf).is_err() {
                            tracing::warn!(?conn, "could not encode an outgoing packet");
                        }
                    }
                    ToConnection::Close(reason) => {
                        tracing::debug!(?conn, ?reason, "closing");
                        closing = true;
                        break;
                    }
                }
                next = if buf.len() < 64 * 1024 {
                    inbox.try_recv().ok()
                } else {
                    None
                };
            }
            if !buf.is_empty() && writer.write_all(&buf).await.is_err() {
                return;
            }
            buf.clear();
            if closing {
                let _ = writer.flush().await;
                let _ = writer.shutdown().await;
                return;
            }
        }
    };

    let read_engine = engine.clone();
    let read = async move {
        let mut buf = BytesMut::with_capacity(4096);
        loop {
            loop {
                match decode_buf(&mut buf, &limits) {
                    Ok(Some(packet)) => {
                        if !read_engine.send(Event::Packet(conn, packet)) {
                            return;
                        }
                    }
                    Ok(None) => break,
                    Err(error) => {
                        read_engine.send(Event::DecodeError(conn, error));
                        // The broker closes it; wait for the writer to finish.
                        std::future::pending::<()>().await;
                    }
                }
            }
            match reader.read_buf(&mut buf).await {
                Ok(0) | Err(_) => {
                    read_engine.send(Event::Lost(conn));
                    return;
                }
                Ok(_) => {}
            }
        }
    };

    tokio::select! {
        () = write => {}
        () = read => {}
    }
}
