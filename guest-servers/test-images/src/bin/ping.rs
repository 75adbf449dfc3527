//! IPC client: `PING_COUNT` `TEST_PING` calls and `PING_ECHO_COUNT` `TEST_ECHO` calls
//! with varied payloads to the peer `echo`, every reply checked. Prints `ping: ok` and
//! returns 0, or `ping: FAILED <what> <call> [errno <errno>]` and returns 1.
#![no_std]
#![no_main]

use ankh_guest_rt::console::println_str;
use ankh_guest_rt::ipc::Ipc;
use ankh_guest_rt::BootInfo;
use ankh_test_images::expect::{ECHO_PEER, PING_COUNT, PING_ECHO_COUNT, PING_OK};
use ankh_test_images::report::{failed, failed_errno};
use virtio_seep::message::INLINE_PAYLOAD_MAX;
use virtio_seep::opcode::{TEST_ECHO, TEST_PING};

ankh_guest_rt::entry!(main);

const IMAGE: &str = "ping";

fn main(boot: &BootInfo) -> u32 {
    let Some(echo) = boot.peer(ECHO_PEER) else {
        return failed(IMAGE, "no peer echo", 0);
    };
    let mut ipc = Ipc::init();
    for call in 0..PING_COUNT {
        match ipc.sendrec(echo, TEST_PING, &[], &[]) {
            Ok(reply) if reply.payload.is_empty() && reply.bulk.is_empty() => {}
            Ok(_) => return failed(IMAGE, "ping reply not empty", call.into()),
            Err(errno) => return failed_errno(IMAGE, "ping", call.into(), errno),
        }
    }
    let mut payload = [0u8; INLINE_PAYLOAD_MAX];
    for call in 0..PING_ECHO_COUNT {
        let i = call as usize;
        let len = i * 37 % (INLINE_PAYLOAD_MAX + 1);
        for (j, byte) in payload[..len].iter_mut().enumerate() {
            *byte = (3 * i + j).to_le_bytes()[0];
        }
        match ipc.sendrec(echo, TEST_ECHO, &payload[..len], &[]) {
            Ok(reply) if reply.payload == &payload[..len] && reply.bulk.is_empty() => {}
            Ok(_) => return failed(IMAGE, "echo reply differs", call.into()),
            Err(errno) => return failed_errno(IMAGE, "echo", call.into(), errno),
        }
    }
    println_str(PING_OK);
    0
}
