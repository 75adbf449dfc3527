//! IPC client: one `TEST_ECHO` call to the peer `echo` per size of `BULK_SIZES`, with
//! bulk data byte `i` = `(i * 7 + size) as u8` and the size as payload; checks every byte
//! of each echo. Prints `bulk: ok` and returns 0, or `bulk: FAILED <what> <size>
//! [errno <errno>]` and returns 1.
#![no_std]
#![no_main]

use ankh_guest_rt::console::println_str;
use ankh_guest_rt::ipc::Ipc;
use ankh_guest_rt::BootInfo;
use ankh_test_images::buffer::OnceBuffer;
use ankh_test_images::expect::{BULK_OK, BULK_SIZES, ECHO_PEER};
use ankh_test_images::report::{failed, failed_errno};
use virtio_seep::message::BULK_MAX;
use virtio_seep::opcode::TEST_ECHO;

ankh_guest_rt::entry!(main);

const IMAGE: &str = "bulk";

/// The bulk data sent (the reply arrives in the runtime's own RX bulk buffer).
static SENT: OnceBuffer<{ BULK_MAX as usize }> = OnceBuffer::new();

/// Byte `i` of the pattern for `size`.
fn pattern(i: usize, size: usize) -> u8 {
    i.wrapping_mul(7).wrapping_add(size).to_le_bytes()[0]
}

fn main(boot: &BootInfo) -> u32 {
    let Some(echo) = boot.peer(ECHO_PEER) else {
        return failed(IMAGE, "no peer echo", 0);
    };
    let sent = SENT.take();
    let mut ipc = Ipc::init();
    for size32 in BULK_SIZES {
        let size = size32 as usize;
        for (i, byte) in sent[..size].iter_mut().enumerate() {
            *byte = pattern(i, size);
        }
        let payload = size32.to_le_bytes();
        let reply = match ipc.sendrec(echo, TEST_ECHO, &payload, &sent[..size]) {
            Ok(reply) => reply,
            Err(errno) => return failed_errno(IMAGE, "size", size32.into(), errno),
        };
        if reply.truncated() || reply.bulk.len() != size {
            return failed(IMAGE, "length for size", size32.into());
        }
        if reply.payload != payload {
            return failed(IMAGE, "payload for size", size32.into());
        }
        let wrong = reply
            .bulk
            .iter()
            .enumerate()
            .any(|(i, &byte)| byte != pattern(i, size));
        if wrong {
            return failed(IMAGE, "data for size", size32.into());
        }
    }
    println_str(BULK_OK);
    0
}
