//! A `no_std`, allocator-free consumer of mqtt-codec: decodes a PUBLISH and re-encodes a PUBACK
//! into caller memory, as firmware would.
#![no_std]

use mqtt_codec::{BorrowedPacket, Decoded, Limits, Packet, PubAck, decode_with};

/// Decode the packet at `input[..len]`; if it is a QoS 1 PUBLISH, write its PUBACK to `out` and
/// return the PUBACK's length, else return 0 (or -1 on a malformed packet).
///
/// # Safety
/// `input` must point to `len` readable bytes and `out` to `out_len` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mqtt_ack_publish(
    input: *const u8,
    len: usize,
    out: *mut u8,
    out_len: usize,
) -> isize {
    // SAFETY: guaranteed by the caller.
    let (input, out) = unsafe {
        (core::slice::from_raw_parts(input, len), core::slice::from_raw_parts_mut(out, out_len))
    };
    match decode_with(input, &Limits::aws_iot()) {
        Ok(Decoded::Complete { packet: Packet::Publish(p), .. }) => match p.packet_id() {
            Some(id) => match BorrowedPacket::PubAck(PubAck::new(id)).encode_to_slice(out) {
                Ok(n) => n as isize,
                Err(_) => -1,
            },
            None => 0,
        },
        Ok(_) => 0,
        Err(_) => -1,
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {}
}
