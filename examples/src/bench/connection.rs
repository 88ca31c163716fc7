//! One MQTT 3.1.1 client connection over the workspace's codec: packets are queued into a write
//! buffer and sent in one write, the read buffer is framed with [`mqtt_codec::decode_buf`]. The
//! scenario loops drive it; every wait has a deadline.

use bytes::BytesMut;
use futures_util::FutureExt;
use mqtt_codec::{
    BorrowedPacket, ConnAck, Connect, ConnectReturnCode, Limits, PacketId, PubAck, Publish, QoS,
    QosPid, SharedPacket, Subscribe, SubscribeFilters, SubscribeReturnCode, decode_buf,
};
use tokio::time::Instant;

use super::error::BenchError;
use super::transport::{Stream, Target};

/// Read buffer reserved per connection at first (it grows to the largest frame).
const READ_CHUNK: usize = 4096;
/// The largest packet accepted from a broker: benchmark payloads are at most 16 KiB and shadow
/// answers a few times their request, so a larger frame is refused as malformed before it is
/// buffered (this bounds the read buffer).
pub const MAX_INBOUND_PACKET: usize = 1 << 20;

/// The decoder's limits: MQTT 3.1.1's, with packets bounded by [`MAX_INBOUND_PACKET`].
fn inbound_limits() -> Limits {
    let mut limits = Limits::mqtt_3_1_1();
    limits.max_packet_size = MAX_INBOUND_PACKET;
    limits.max_payload_size = MAX_INBOUND_PACKET;
    limits
}

/// A connection to the broker.
#[derive(Debug)]
pub struct Connection {
    stream: Stream,
    read: BytesMut,
    write: BytesMut,
    limits: Limits,
}

impl Connection {
    /// Opens the transport, sends CONNECT (clean session) and waits for an accepting CONNACK, all
    /// before `deadline`.
    pub async fn connect(
        target: &Target,
        client_id: &str,
        keep_alive_secs: u16,
        deadline: Instant,
    ) -> Result<Connection, BenchError> {
        let stream = Stream::open(target, deadline).await?;
        let mut connection = Connection {
            stream,
            read: BytesMut::new(),
            write: BytesMut::with_capacity(64),
            limits: inbound_limits(),
        };
        connection.queue(&BorrowedPacket::Connect(Connect {
            client_id,
            clean_session: true,
            keep_alive: keep_alive_secs,
            will: None,
            username: None,
            password: None,
        }))?;
        connection.flush(deadline).await?;
        let ack = connection
            .wait_for(deadline, "CONNACK", |packet| match packet {
                SharedPacket::ConnAck(ack) => Ok(Some(ack)),
                other => Err(BenchError::Unexpected(other.packet_type())),
            })
            .await?;
        match ack {
            ConnAck {
                code: ConnectReturnCode::Accepted,
                ..
            } => Ok(connection),
            ConnAck { code, .. } => Err(BenchError::Refused(code as u8)),
        }
    }

    /// Subscribes to `filters` (at most 8 per SUBSCRIBE, AWS's limit), waiting for every SUBACK
    /// before `deadline`; a refused filter is an error.
    pub async fn subscribe(
        &mut self,
        filters: &[(String, QoS)],
        deadline: Instant,
    ) -> Result<(), BenchError> {
        let mut expected = Vec::new();
        for (index, chunk) in filters.chunks(8).enumerate() {
            let id = u16::try_from(index + 1).unwrap_or(u16::MAX);
            let packet_id = PacketId::new(id).ok_or(BenchError::Timeout("a packet id"))?;
            let list = SubscribeFilters::from_list(chunk)?;
            self.queue(&mqtt_codec::Packet::<&str, bytes::Bytes>::Subscribe(
                Subscribe {
                    packet_id,
                    filters: list,
                },
            ))?;
            expected.push(packet_id);
        }
        self.flush(deadline).await?;
        let mut remaining = expected.len();
        while remaining > 0 {
            self.wait_for(deadline, "SUBACK", |packet| match packet {
                SharedPacket::SubAck(ack) if expected.contains(&ack.packet_id) => {
                    if ack
                        .return_codes
                        .iter()
                        .any(|c| c == SubscribeReturnCode::Failure)
                    {
                        Err(BenchError::SubscriptionRefused)
                    } else {
                        Ok(Some(()))
                    }
                }
                _ => Ok(None),
            })
            .await?;
            remaining -= 1;
        }
        Ok(())
    }

    /// Queues any packet.
    pub fn queue<T: AsRef<str>, B: AsRef<[u8]>>(
        &mut self,
        packet: &mqtt_codec::Packet<T, B>,
    ) -> Result<(), BenchError> {
        packet.encode(&mut self.write)?;
        Ok(())
    }

    /// Queues a PUBLISH whose payload is `stamp` followed by the rest of `template` (the stamp
    /// replaces the template's first `stamp.len()` bytes), without building the payload apart.
    pub fn queue_publish(
        &mut self,
        topic: &str,
        qos_pid: QosPid,
        stamp: &[u8],
        template: &[u8],
    ) -> Result<(), BenchError> {
        let publish = Publish {
            dup: false,
            qos_pid,
            retain: false,
            topic,
            payload: template,
        };
        publish.encode_header(&mut self.write)?;
        self.write.extend_from_slice(stamp);
        self.write
            .extend_from_slice(template.get(stamp.len()..).unwrap_or_default());
        Ok(())
    }

    /// Queues a PUBACK.
    pub fn queue_puback(&mut self, packet_id: PacketId) -> Result<(), BenchError> {
        self.queue(&BorrowedPacket::PubAck(PubAck::new(packet_id)))
    }

    /// Bytes queued and not yet written.
    pub fn pending(&self) -> usize {
        self.write.len()
    }

    /// Writes everything queued, failing at `deadline`.
    pub async fn flush(&mut self, deadline: Instant) -> Result<(), BenchError> {
        if self.write.is_empty() {
            return Ok(());
        }
        tokio::time::timeout_at(deadline, self.stream.write_all(&self.write))
            .await
            .map_err(|_| BenchError::Timeout("the socket to take our bytes"))??;
        self.write.clear();
        Ok(())
    }

    /// Reads more bytes, waiting until `deadline`: `Ok(false)` when the deadline passed first.
    pub async fn fill(&mut self, deadline: Instant) -> Result<bool, BenchError> {
        self.read.reserve(READ_CHUNK);
        match tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.read)).await {
            Err(_) => Ok(false),
            Ok(Ok(0)) => Err(BenchError::Closed),
            Ok(Ok(_)) => Ok(true),
            Ok(Err(error)) => Err(BenchError::Io(error)),
        }
    }

    /// Reads more bytes if some are there already, without waiting.
    pub fn try_fill(&mut self) -> Result<bool, BenchError> {
        self.read.reserve(READ_CHUNK);
        match self.stream.read_buf(&mut self.read).now_or_never() {
            None => Ok(false),
            Some(Ok(0)) => Err(BenchError::Closed),
            Some(Ok(_)) => Ok(true),
            Some(Err(error)) => Err(BenchError::Io(error)),
        }
    }

    /// The next whole packet already read, if any.
    pub fn next_packet(&mut self) -> Result<Option<SharedPacket>, BenchError> {
        Ok(decode_buf(&mut self.read, &self.limits)?)
    }

    /// Reads and decodes until `pick` returns a value (or an error), failing at `deadline` with
    /// [`BenchError::Timeout`] naming `what`. Packets `pick` passes over (`Ok(None)`) are dropped.
    pub async fn wait_for<T>(
        &mut self,
        deadline: Instant,
        what: &'static str,
        mut pick: impl FnMut(SharedPacket) -> Result<Option<T>, BenchError>,
    ) -> Result<T, BenchError> {
        loop {
            while let Some(packet) = self.next_packet()? {
                if let Some(found) = pick(packet)? {
                    return Ok(found);
                }
            }
            if !self.fill(deadline).await? {
                return Err(BenchError::Timeout(what));
            }
        }
    }

    /// Sends DISCONNECT, best effort, within `deadline`.
    pub async fn disconnect(mut self, deadline: Instant) {
        if self.queue(&BorrowedPacket::Disconnect).is_ok() {
            let _ = self.flush(deadline).await;
        }
    }

    /// Sends PINGREQ and waits for PINGRESP before `deadline` (other packets are dropped).
    pub async fn ping(&mut self, deadline: Instant) -> Result<(), BenchError> {
        self.queue(&BorrowedPacket::PingReq)?;
        self.flush(deadline).await?;
        self.wait_for(deadline, "PINGRESP", |p| {
            Ok(matches!(p, SharedPacket::PingResp).then_some(()))
        })
        .await
    }

    /// Gives back buffer memory an idle connection does not need.
    pub fn shrink(&mut self) {
        if self.read.is_empty() {
            self.read = BytesMut::new();
        }
        if self.write.is_empty() {
            self.write = BytesMut::new();
        }
    }
}

/// Requested QoS as the codec's type (0 or 1; anything else is QoS 1).
pub fn qos(level: u8) -> QoS {
    if level == 0 {
        QoS::AtMostOnce
    } else {
        QoS::AtLeastOnce
    }
}

/// Packet ids `1..=65535` in turn.
#[derive(Debug, Clone, Copy, Default)]
pub struct PacketIds(u16);

impl PacketIds {
    /// The next id (1 first, wrapping from 65535 to 1).
    pub fn next_id(&mut self) -> PacketId {
        // At most two turns: only 0 is skipped.
        loop {
            self.0 = self.0.wrapping_add(1);
            if let Some(id) = PacketId::new(self.0) {
                return id;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_ids_wrap_without_zero() {
        let mut ids = PacketIds::default();
        assert_eq!(ids.next_id().get(), 1);
        let last = (0..65_534).map(|_| ids.next_id().get()).last();
        assert_eq!(last, Some(65_535));
        assert_eq!(ids.next_id().get(), 1);
    }

    #[test]
    fn an_oversized_frame_is_refused_from_its_header() {
        // PUBLISH with a remaining length of 2 MiB: only the fixed header has arrived.
        let mut read = BytesMut::from(&[0x30, 0x80, 0x80, 0x80, 0x01][..]);
        assert!(decode_buf(&mut read, &inbound_limits()).is_err());
    }

    #[test]
    fn qos_levels() {
        assert_eq!(qos(0), QoS::AtMostOnce);
        assert_eq!(qos(1), QoS::AtLeastOnce);
    }
}
