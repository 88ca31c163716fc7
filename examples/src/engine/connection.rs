//! One MQTT connection over any byte stream (TLS, WebSocket, plain TCP): frames what arrives with
//! `mqtt-codec`, reports it to the engine one socket read at a time, and writes what the engine
//! queued in the connection's [`Outbox`].
//!
//! Bounds: the reader reads nothing more while the connection's output is over its budget or its
//! own packets not yet processed by the engine are (back-pressure through TCP); the writer takes
//! at most [`WRITE_CHUNK`] bytes of packets per write. An idle connection keeps no buffers.
//!
//! Zero copy: a PUBLISH whose payload is at least [`INLINE_PAYLOAD`] bytes is written as its small
//! encoded header followed by the payload `Bytes` every subscriber shares, in one vectored write
//! (on streams that support them; TLS copies into records anyway).

use std::io::IoSlice;
use std::pin::Pin;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use iot_broker_core::ConnectionId;
use iot_broker_core::auth::TransportInfo;
use iot_broker_core::codec::{Limits, Packet, SharedPacket, decode_buf};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::outbox::{Outbox, ToConnection, cost};
use super::{EngineHandle, Event};

/// Bytes of queued packets taken per write.
pub const WRITE_CHUNK: usize = 64 * 1024;

/// Payloads shorter than this are copied next to their header (cheaper than another slice).
pub const INLINE_PAYLOAD: usize = 1024;

/// How long a connection being closed by the broker may take to write what was queued before it.
pub const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// Smallest and largest read sizes; the reader adapts between them to what the client sends.
const MIN_READ: usize = 256;
const MAX_READ: usize = 64 * 1024;

/// Write buffer capacity an idle connection may keep.
const IDLE_BUFFER: usize = 1024;

/// Slices per vectored write.
const MAX_SLICES: usize = 64;

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
    let outbox = Outbox::new(engine.output_budget());
    let Some(conn) = engine.open(transport, outbox.clone()).await else {
        return;
    };
    let (reader, writer) = tokio::io::split(stream);
    tokio::select! {
        () = write_loop(writer, &outbox, &engine, conn) => {}
        () = read_loop(reader, &outbox, &engine, conn, &limits) => {}
    }
    outbox.shut();
}

/// Reads, frames and reports until the peer goes or sends something that does not decode.
async fn read_loop<R: AsyncRead + Unpin, Q>(
    mut reader: R,
    outbox: &Outbox,
    engine: &EngineHandle<Q>,
    conn: ConnectionId,
    limits: &Limits,
) {
    let mut buf = BytesMut::new();
    let mut want = MIN_READ;
    loop {
        let mut packets: Vec<SharedPacket> = Vec::new();
        let mut bytes = 0usize;
        let mut error = None;
        loop {
            match decode_buf(&mut buf, limits) {
                Ok(Some(packet)) => {
                    bytes += packet_cost(&packet);
                    packets.push(packet);
                }
                Ok(None) => break,
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        if !packets.is_empty() {
            outbox.add_inbound(bytes);
            if !engine.send(Event::Packets {
                conn,
                packets,
                bytes,
            }) {
                return;
            }
        }
        if let Some(error) = error {
            engine.send(Event::DecodeError(conn, error));
            // The broker closes it; the writer ends the connection.
            std::future::pending::<()>().await;
        }
        outbox.room().await;
        if buf.is_empty() && buf.capacity() > want {
            // Idle connections keep no buffer.
            buf = BytesMut::new();
        }
        buf.reserve(want);
        let spare = buf.capacity() - buf.len();
        match reader.read_buf(&mut buf).await {
            Ok(0) | Err(_) => {
                if outbox.claim_lost_report() {
                    engine.send(Event::Lost(conn));
                }
                return;
            }
            Ok(n) if n >= spare => want = (want * 2).min(MAX_READ),
            Ok(n) if n < spare / 4 => want = (want / 2).max(MIN_READ),
            Ok(_) => {}
        }
    }
}

/// What a decoded packet counts for against the inbound budget.
fn packet_cost(packet: &SharedPacket) -> usize {
    cost(&ToConnection::Packet(packet.clone()))
}

/// Writes what the engine queues until it closes the connection or a write fails (then the
/// engine is told the connection was lost, so its will fires and its session is released).
async fn write_loop<W: AsyncWrite + Unpin, Q>(
    mut writer: W,
    outbox: &Outbox,
    engine: &EngineHandle<Q>,
    conn: ConnectionId,
) {
    let mut frames = Frames::default();
    let vectored = writer.is_write_vectored();
    loop {
        let items = outbox.next(WRITE_CHUNK).await;
        let mut bytes = 0usize;
        let mut closing = false;
        for item in items {
            bytes += cost(&item);
            match item {
                ToConnection::Packet(packet) => {
                    if frames.push(&packet, vectored).is_err() {
                        tracing::warn!(%conn, "could not encode an outgoing packet");
                    }
                }
                ToConnection::Close(reason) => {
                    tracing::debug!(%conn, ?reason, "closing");
                    closing = true;
                    break;
                }
            }
        }
        frames.finish();
        let written = {
            let write = write_chunks(&mut writer, &mut frames.chunks);
            tokio::pin!(write);
            tokio::select! {
                result = &mut write => result,
                () = outbox.close_queued() => {
                    // The broker is closing this connection: what is being written gets a grace
                    // period, not the client's reading pace.
                    tokio::time::timeout(CLOSE_GRACE, write)
                        .await
                        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
                }
            }
        };
        frames.chunks.clear();
        if frames.head.capacity() > IDLE_BUFFER && outbox.bytes() <= bytes {
            // Nothing more to write: an idle connection keeps no write buffer.
            frames.head = BytesMut::new();
        }
        if written.is_err() {
            tracing::debug!(%conn, "write failed; connection lost");
            if outbox.claim_lost_report() {
                engine.send(Event::Lost(conn));
            }
            return;
        }
        if outbox.written(bytes) {
            engine.send(Event::OutputReady(conn));
        }
        if closing {
            // The engine has forgotten the connection: the reader reports nothing more.
            outbox.claim_lost_report();
            let _ = tokio::time::timeout(CLOSE_GRACE, async {
                let _ = writer.flush().await;
                let _ = writer.shutdown().await;
            })
            .await;
            return;
        }
    }
}

/// Encoded packets ready for one (vectored) write.
#[derive(Debug, Default)]
struct Frames {
    /// Headers and small packets, not yet cut into a chunk.
    head: BytesMut,
    chunks: Vec<Bytes>,
}

impl Frames {
    fn push(
        &mut self,
        packet: &SharedPacket,
        vectored: bool,
    ) -> Result<(), iot_broker_core::codec::EncodeError> {
        match packet {
            Packet::Publish(publish) if vectored && publish.payload.len() >= INLINE_PAYLOAD => {
                publish.encode_header(&mut self.head)?;
                self.chunks.push(self.head.split().freeze());
                self.chunks.push(publish.payload.clone());
            }
            other => {
                other.encode(&mut self.head)?;
            }
        }
        Ok(())
    }

    fn finish(&mut self) {
        if !self.head.is_empty() {
            self.chunks.push(self.head.split().freeze());
        }
    }
}

/// Writes every chunk, in order, with as few system calls as the stream allows.
async fn write_chunks<W: AsyncWrite + Unpin>(
    writer: &mut W,
    chunks: &mut [Bytes],
) -> std::io::Result<()> {
    let mut first = 0;
    while first < chunks.len() {
        let pending = chunks.get(first..).unwrap_or_default();
        // The slices live on the stack of one poll, not in the connection's future: an idle
        // connection does not carry them.
        let mut n = std::future::poll_fn(|cx| {
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let mut count = 0;
            for (slot, chunk) in slices.iter_mut().zip(pending) {
                *slot = IoSlice::new(chunk);
                count += 1;
            }
            Pin::new(&mut *writer).poll_write_vectored(cx, slices.get(..count).unwrap_or_default())
        })
        .await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while n > 0 {
            let Some(chunk) = chunks.get_mut(first) else {
                break;
            };
            let step = n.min(chunk.len());
            chunk.advance(step);
            n -= step;
            if chunk.is_empty() {
                first += 1;
            }
        }
        while chunks.get(first).is_some_and(Bytes::is_empty) {
            first += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn chunks_are_written_whole_and_in_order_through_partial_writes() {
        // A duplex pipe with a tiny buffer forces partial vectored writes.
        let (mut a, mut b) = tokio::io::duplex(7);
        let mut chunks: Vec<Bytes> = (0u8..20)
            .map(|i| Bytes::from(vec![i; usize::from(i % 5)]))
            .collect();
        let expected: Vec<u8> = chunks.iter().flat_map(|c| c.to_vec()).collect();
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            b.read_to_end(&mut got).await.map(|_| got)
        });
        write_chunks(&mut a, &mut chunks).await.unwrap();
        drop(a);
        assert_eq!(reader.await.unwrap().unwrap(), expected);
    }

    #[test]
    fn an_idle_connection_task_is_small() {
        let (stream, _peer) = tokio::io::duplex(64);
        let (tx, _events) = super::super::channel::<()>(1 << 20);
        let future = serve(stream, TransportInfo::default(), tx, Limits::default());
        let size = size_of_val(&future);
        eprintln!("serve future: {size} bytes");
        assert!(size <= 2048, "the connection's future is {size} bytes");
    }

    #[test]
    fn a_large_payload_is_shared_not_copied() {
        use iot_broker_core::codec::{Publish, QosPid};
        let payload = Bytes::from(vec![7u8; 4096]);
        let packet = Packet::Publish(Publish {
            dup: false,
            qos_pid: QosPid::AtMostOnce,
            retain: false,
            topic: "cars/1".into(),
            payload: payload.clone(),
        });
        let mut frames = Frames::default();
        frames.push(&packet, true).unwrap();
        frames.finish();
        assert_eq!(frames.chunks.len(), 2);
        assert_eq!(
            frames.chunks[1].as_ptr(),
            payload.as_ptr(),
            "the same bytes"
        );
        let mut whole = BytesMut::new();
        packet.encode(&mut whole).unwrap();
        assert_eq!(frames.chunks.concat(), whole.to_vec());
    }
}
