//! Queues messages behind a crash: sends `echo` the poison `TEST_CRASH` without
//! waiting, then `QUEUED_NOTIFIES` one-way `TEST_NOTIFY`s, all before echo runs; then
//! asks for echo's count. Prints `queue-crasher: count <n>` (each queued message must
//! be delivered exactly once after echo is recovered) and returns 0.
#![no_std]
#![no_main]

use ankh_guest_rt::console::Line;
use ankh_guest_rt::ipc::Ipc;
use ankh_guest_rt::BootInfo;
use ankh_test_images::expect::{ECHO_PEER, QUEUED_NOTIFIES};
use virtio_seep::opcode::{TEST_COUNT, TEST_CRASH, TEST_NOTIFY};

ankh_guest_rt::entry!(main);

fn main(boot: &BootInfo) -> u32 {
    let Some(echo) = boot.peer(ECHO_PEER) else {
        return 1;
    };
    let mut ipc = Ipc::init();
    ipc.send(echo, TEST_CRASH, &[], &[]);
    for _ in 0..QUEUED_NOTIFIES {
        ipc.send(echo, TEST_NOTIFY, &[], &[]);
    }
    match ipc.sendrec(echo, TEST_COUNT, &[], &[]) {
        Ok(reply) if reply.payload.len() == 8 => {
            let mut count = [0u8; 8];
            count.copy_from_slice(reply.payload);
            Line::new()
                .str("queue-crasher: count ")
                .dec(u64::from_le_bytes(count))
                .send();
        }
        Ok(_) => Line::new().str("queue-crasher: bad reply").send(),
        Err(errno) => Line::new()
            .str("queue-crasher: errno ")
            .int(errno.into())
            .send(),
    }
    0
}
